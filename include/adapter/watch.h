#ifndef ADAPTER_WATCH_H
#define ADAPTER_WATCH_H

#include <stdbool.h>

#include "adapter/config.h"
#include "adapter/http.h"
#include "adapter/kube.h"
#include "adapter/loop.h"
#include "adapter/metrics.h"
#include "adapter/sink.h"
#include "adapter/state.h"

/* List and watch one configured resource: discovery (kind -> plural and
 * scope, retried with backoff until the kind is served), then per namespace
 * (or cluster-wide) a paged list followed by a watch from its
 * resourceVersion, with bookmarks, a jittered timeoutSeconds and resumption
 * from the last resourceVersion seen. The objects seen are kept per watch, so
 * a relist (after 410 Expired or a too-large resourceVersion) reports what
 * changed in the gap: new objects as adds, changed ones as updates, missing
 * ones as deletes carrying their last state. */

struct watcher;

/* What every watcher shares; borrowed, must outlive the watchers. */
struct watch_context {
	const struct config *cfg;
	struct loop *loop;
	struct http *http;
	struct kube *kube;
	struct sink *sink;
	/* Called when --fail-fast (or failFast) meets an error that retrying
	 * would not fix. */
	void (*fatal)(void *userdata);
	void *userdata;
	/* State loaded from --state-dir; watches take over what matches them. */
	struct state_checkpoint *checkpoint;
	/* Bumped on every change of object state or resourceVersion, so the
	 * checkpoint timer knows when there is something new to write. */
	uint64_t changes;
	struct metrics *metrics; /* NULL: not counted */
};

/* Borrows ctx and res. */
int watcher_create(struct watch_context *ctx, const struct config_resource *res,
	struct watcher **ret_watcher);
void watcher_destroy(struct watcher *w);
int watcher_start(struct watcher *w);
/* Cancels every transfer and timer; events already queued stay queued. */
void watcher_stop(struct watcher *w);
/* Resumes the streams paused because the delivery queue was full. Not from
 * inside a libcurl callback. */
void watcher_resume(struct watcher *w);
/* Writes the state of every synced watch of this resource. */
int watcher_checkpoint(const struct watcher *w, struct state_writer *sw);
/* False while a list or watch of this resource is failing (the API server
 * unreachable, or answering errors), until it answers 200 again. */
bool watcher_reachable(const struct watcher *w);
/* True once every watch of this resource has listed and is watching. */
bool watcher_synced(const struct watcher *w);

#endif

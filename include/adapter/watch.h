#ifndef ADAPTER_WATCH_H
#define ADAPTER_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/cevent.h"
#include "adapter/checkpoint.h"
#include "adapter/config.h"
#include "adapter/http.h"
#include "adapter/kube.h"
#include "adapter/loop.h"
#include "adapter/metrics.h"
#include "adapter/ndjson.h"
#include "adapter/objects.h"
#include "adapter/sink.h"
#include "adapter/checkpoint.h"

/* One namespace's (or a cluster-wide) list and watch of a resource: a paged
 * list, then a watch from its resourceVersion, with bookmarks, a jittered
 * timeoutSeconds and resumption from the last resourceVersion whose events
 * were queued. After 410 Expired (or a too-large resourceVersion) it lists
 * again, and the object table (objects.c) reports what changed in the gap.
 * Failures are retried with backoff (at least Retry-After). */

#define WATCH_LIST_PAGE_LIMIT 500
/* Pages one list may take (5 million objects at WATCH_LIST_PAGE_LIMIT): a
 * server whose continue tokens never end fails the list past it, as it does
 * at once when it hands back a token already seen in the same list. The
 * list is then retried from its start, with backoff. */
#define WATCH_LIST_MAX_PAGES 10000
/* Without config.request_timeout_usec (0): how long a list may take, and
 * the margin a watch may stay silent past its timeoutSeconds. */
#define WATCH_REQUEST_TIMEOUT_DEFAULT_USEC (60ull * 1000000ull)

/* What every watch shares; borrowed, must outlive the watches. */
struct watch_context {
	const struct config *cfg;
	struct loop *loop;
	struct http *http;
	struct kube *kube; /* NULL: no token to re-read after a 401 */
	struct sink *sink;
	/* Called when --fail-fast (or failFast) meets an error that retrying
	 * would not fix. */
	void (*fatal)(void *userdata);
	void *userdata;
	/* State loaded from --state-dir; watches take over what matches them. */
	struct checkpoint_state *checkpoint;
	/* Bumped on every change of object state or resourceVersion, so the
	 * checkpoint timer knows when there is something new to write. */
	uint64_t changes;
	struct metrics *metrics; /* NULL: not counted */
};

struct watch;

/* How a watch reaches the API server: one GET at a time. The answer comes
 * back through watch_io_answer(), watch_io_body() and watch_io_done(). NULL
 * ops: libcurl through the context's http and kube. Tests pass a fake. */
struct watch_io {
	/* Starts GET path (with its query). Returns 0 or a negative errno. */
	int (*start)(struct watch *wa, const char *path, void *userdata);
	/* Drops the request in flight, if any, without watch_io_done(). */
	void (*cancel)(struct watch *wa, void *userdata);
	/* Hands over a paused body again; may call watch_io_done(). */
	void (*resume)(struct watch *wa, void *userdata);
	void *userdata;
};

/* Returned by watch_io_body() instead of a byte count. */
#define WATCH_IO_PAUSE ((size_t)-1)

/* What a watch needs from the watcher that owns it; borrowed, must outlive
 * the watch. */
struct watch_owner {
	struct watch_context *ctx;
	const char *label;	    /* the resource, for logs */
	const char *label_selector; /* NULL: everything */
	const char *field_selector; /* NULL: none ("metadata.name=X": one object) */
	/* Kind and apiVersion for the deletes a relist finds. */
	const char *kind;
	const char *api_version;
	struct metrics_resource *mres; /* NULL: not counted */
	/* Queues the event for a change, or leaves it out (filters). Returns a
	 * negative errno when it could not be queued: the watch then reports
	 * the same change again later. */
	objects_emit_fn emit;
	/* True while the delivery queue is full: streams pause. */
	bool (*full)(void *userdata);
	void *userdata;
	const struct watch_io *io; /* NULL: libcurl */
	/* NULL, or asked on a 403: true when the owner takes over (the watch
	 * then goes idle, with no log and no retry, until stopped). */
	bool (*forbidden)(void *userdata);
};

/* ns: NULL for cluster-wide; base_path: the resource's collection path; key:
 * names the watch in checkpoints (and adopts the checkpoint's state for it).
 * Borrows owner. */
int watch_create(const struct watch_owner *owner, const char *ns, const char *base_path,
	const char *key, struct watch **ret_watch);
void watch_destroy(struct watch *wa);
/* Takes over a checkpoint's state for this watch: its resourceVersion and
 * objects (map is left empty); relist: it was taken in the middle of a relist.
 * Before watch_start(). */
void watch_adopt(struct watch *wa, const char *rv, struct hashmap *objects, bool relist);
/* Lists (or, with a checkpoint's state, resumes the watch or relists). */
void watch_start(struct watch *wa);
/* Cancels the request and the retry timer; nothing starts again. */
void watch_stop(struct watch *wa);
/* Resumes a stream paused because the queue was full. Not from inside a
 * libcurl callback. Returns true if the watch was paused. */
bool watch_resume(struct watch *wa);
/* Adds its resourceVersion and (references to) its objects to the snapshot,
 * if it has listed. */
int watch_checkpoint(struct watch *wa, struct checkpoint_snapshot *cs);
bool watch_synced(const struct watch *wa);
/* The last list or watch failed, and nothing has answered 200 since. */
bool watch_failing(const struct watch *wa);
/* The resourceVersion it would resume from. Borrowed. */
const char *watch_resource_version(const struct watch *wa);
const struct objects *watch_objects(const struct watch *wa);

/* The transport's side (struct watch_io, and the libcurl one inside). */
/* The status line of the answer (once the headers are complete). */
void watch_io_answer(struct watch *wa, long status, uint64_t retry_after_usec);
/* A chunk of the body: returns n when taken, WATCH_IO_PAUSE when the queue is
 * full (hand it over again after resume), or 0 to abort the request (then
 * watch_io_done() follows with -ECANCELED). */
size_t watch_io_body(struct watch *wa, const char *data, size_t n);
/* The request ended: err as for http_done_fn. */
void watch_io_done(struct watch *wa, int err, long status, const char *errbuf);

#endif

#ifndef ADAPTER_WATCHER_H
#define ADAPTER_WATCHER_H

#include <stdbool.h>

#include "adapter/config.h"
#include "adapter/checkpoint.h"
#include "adapter/util/hashmap.h"
#include "adapter/watch.h"

/* List and watch one configured resource: discovery (kind -> plural and
 * scope, retried with backoff until the kind is served), then one watch
 * (watch.c) per namespace (a fixed list, or a set followed live), or one
 * cluster-wide, each taking over what a
 * checkpoint kept for it. The watcher turns the changes its watches report
 * into CloudEvents (owner filter, filters) and queues them. */

struct watcher;

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
/* Adds the state of every synced watch of this resource to the snapshot. */
int watcher_checkpoint(struct watcher *w, struct checkpoint_snapshot *cs);
/* False while a list or watch of this resource is failing (the API server
 * unreachable, or answering errors), until it answers 200 again. */
bool watcher_reachable(const struct watcher *w);
/* True once every watch of this resource has listed and is watching. */
bool watcher_synced(const struct watcher *w);

/* The namespaces to watch, for per-namespace watches that follow a
 * namespaceSelector (or the fallback below): set maps each namespace name to
 * a non-NULL value; borrowed (and not changed) until the next call or
 * watcher_destroy(). The watches of namespaces that left it are stopped and
 * their objects forgotten (no delete events); new ones are listed. Ignored
 * unless the watcher follows a set. Not from inside a libcurl callback. */
void watcher_set_namespaces(struct watcher *w, struct hashmap *set);
/* With every namespace selected (`{}` or -A), a namespaced resource whose
 * cluster-wide list is answered 403 falls back to per-namespace watches:
 * it logs that once and calls fn (from a loop timer), which must then hand
 * it the namespaces with watcher_set_namespaces(). Without fn, a 403 is
 * retried as any other. */
typedef void (*watcher_forbidden_fn)(struct watcher *w, void *userdata);
void watcher_on_forbidden(struct watcher *w, watcher_forbidden_fn fn, void *userdata);

#endif

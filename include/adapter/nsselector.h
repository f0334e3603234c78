#ifndef ADAPTER_NSSELECTOR_H
#define ADAPTER_NSSELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/watch.h"
#include "adapter/watcher.h"

/* spec.namespaceSelector, followed live: a list and watch of Namespaces
 * (watch.c) with the selector as its labelSelector, so the API server does
 * the matching (Kubernetes' semantics: a namespace that gains the labels
 * comes as ADDED, one that loses them as DELETED). The set of selected
 * namespaces goes to every watcher, which starts and stops its
 * per-namespace watches to follow it; never from inside a libcurl callback
 * (a zero-delay loop timer applies the changes), and not before the first
 * list is complete (the watchers would otherwise stop and start watches
 * while its pages arrive). A watcher waiting for the set is not synced, so
 * readiness waits for that first list.
 *
 * Without a selector (all namespaces: `{}` or -A) it is created idle: a
 * watcher whose cluster-wide list is forbidden (403) falls back to
 * per-namespace watches and starts it, over every namespace. */

struct nsselector;

/* selector: a label selector (NULL: every namespace). Borrows ctx, selector
 * and the watchers; the watchers may be destroyed first if it is stopped
 * before (nsselector_stop) or destroyed right after. Starts nothing. */
int nsselector_create(struct watch_context *ctx, const char *selector, struct watcher **watchers,
	size_t n_watchers, struct nsselector **ret_nsselector);
void nsselector_destroy(struct nsselector *s);
/* Starts the namespace list and watch; again: nothing. */
void nsselector_start(struct nsselector *s);
/* Cancels the namespace watch (SIGTERM); the watchers keep what they have. */
void nsselector_stop(struct nsselector *s);
/* For watcher_on_forbidden(): the watcher w lost its cluster-wide list;
 * starts the namespace watch and hands w the namespaces once known. */
void nsselector_handle_forbidden(struct watcher *w, void *userdata);

#endif

#ifndef ADAPTER_SINK_H
#define ADAPTER_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "adapter/config.h"
#include "adapter/http.h"
#include "adapter/loop.h"
#include "adapter/queue.h"

/* Delivers CloudEvents: one HTTP POST per event in binary content mode over
 * keep-alive connections (or one JSON line on stdout for --sink -), and
 * classifies each answer. Owns the delivery queue. */

struct sink;

typedef void (*sink_space_fn)(void *userdata);

/* Maps an attempt's outcome to what the queue does next: 2xx delivered;
 * transport errors, 404, 408, 425, 429 and 5xx retried; any other status
 * dropped. err is the negative errno of a failed transfer, or 0. */
enum queue_result sink_classify(int err, long status);

/* Borrows cfg, loop and http, which must outlive the sink. */
int sink_create(const struct config *cfg, struct loop *loop, struct http *http,
	struct sink **ret_sink);
void sink_destroy(struct sink *s);
struct metrics;
struct oidc;
/* Borrowed; must outlive the sink. NULL: not counted. */
void sink_set_metrics(struct sink *s, struct metrics *m);
/* Borrowed; must outlive the sink. With it, every POST to the sink (not to
 * the dead-letter sink) carries its token, and a 401 fetches a new one and
 * retries once. */
void sink_set_oidc(struct sink *s, struct oidc *o);
struct sink_headers;
/* Borrowed; must outlive the sink. NULL: none. Added to every POST to the
 * sink, not to the dead-letter sink (sink_headers.h). */
void sink_set_headers(struct sink *s, const struct sink_headers *h);
/* Where the next attempts go (url is borrowed: valid until the next call or
 * sink_destroy): POSTs in flight finish at the old address, and retries go
 * to the new one. NULL: no address yet; nothing
 * is sent (the dead-letter sink included) and events wait in the queue. A
 * sink created with a sink reference starts so. Safe inside a libcurl
 * callback. Returns 0 or -ENOMEM (nothing changed). */
int sink_set_url(struct sink *s, const char *url);
/* Takes ownership of ev. */
int sink_submit(struct sink *s, struct cevent *ev);
void sink_get_stats(const struct sink *s, struct queue_stats *ret);
bool sink_idle(const struct sink *s);
/* True when the queue is at its bound: producers pause until fn (set with
 * sink_on_space) is called. */
bool sink_full(const struct sink *s);
void sink_on_space(struct sink *s, sink_space_fn fn, void *userdata);
/* Every event not yet finished, each object's in order (for checkpoints). */
void sink_foreach_pending(const struct sink *s,
	void (*fn)(const struct queue_entry *e, void *userdata), void *userdata);

#endif

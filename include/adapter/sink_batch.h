#ifndef ADAPTER_SINK_BATCH_H
#define ADAPTER_SINK_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/loop.h"
#include "adapter/queue.h"
#include "adapter/util/buf.h"

/* The batched content mode: the events the queue hands the sink are
 * collected into batches of up to max_events and max_bytes (a larger event
 * goes alone), each sent as one application/cloudevents-batch+json POST once
 * full or after the linger. A failed batch is retried whole (same body, same
 * order) on the queue's schedule (backoff, Retry-After, budget); when it is
 * refused or out of budget, its events go back to the queue one by one,
 * which hands them to the dead-letter sink (batched again) or drops them.
 * The events stay in the queue, in flight, until their batch's outcome is
 * known: a checkpoint lists them as undelivered. */

/* Defaults of --batch-max-events, --batch-max-bytes and --batch-linger. */
#define SINK_BATCH_MAX_EVENTS 100
#define SINK_BATCH_MAX_BYTES (1024u * 1024u)
#define SINK_BATCH_LINGER_USEC (10u * 1000u)

struct sink_batcher;

struct sink_batch {
	bool dead_letter; /* for the dead-letter sink */
	bool auth_retried; /* retried once after a 401 with a new OIDC token */
	struct buf body;  /* the JSON array, once closed */
	size_t n;
	struct queue_entry **entries; /* borrowed from the queue, in order */
	/* Internal. */
	struct sink_batcher *owner;
	char **texts; /* each event's JSON until the batch closes */
	size_t *lens;
	size_t cap;
	size_t bytes;
	unsigned attempts;
	struct loop_timer timer; /* the linger while open, then the retry delay */
	struct sink_batch *next_wait;
	struct sink_batch *prev, *next; /* every batch, for destroy */
};

/* Starts one POST of b->body (to the dead-letter sink for b->dead_letter).
 * Returns 0 when started (sink_batcher_done() follows, never from inside
 * post), or a negative errno (counted as a failed attempt). */
typedef int (*sink_batch_post_fn)(struct sink_batch *b, void *userdata);

struct sink_batch_options {
	size_t max_events;
	size_t max_bytes;
	uint64_t linger_usec;
	size_t max_requests; /* batch POSTs in flight at once */
	/* The queue's retry policy, applied to each batch. */
	unsigned retry_max;
	uint64_t retry_timeout_usec;
	uint64_t backoff_initial_usec;
	uint64_t backoff_max_usec;
	uint64_t retry_after_max_usec;
};

/* Fills ret from cfg's --batch-* (with the defaults) and the queue's retry
 * policy (q). Returns ret. */
struct config;
struct sink_batch_options *sink_batch_options_init(struct sink_batch_options *ret,
	const struct config *cfg, const struct queue_options *q);

/* Borrows loop, queue and ops (ops->retrying is called for each event of a
 * batch that waits for a retry, with ops_userdata), which must outlive the
 * batcher; opts is copied. */
int sink_batcher_create(struct loop *loop, const struct sink_batch_options *opts,
	struct queue *queue, const struct queue_ops *ops, void *ops_userdata, sink_batch_post_fn post,
	void *post_userdata, struct sink_batcher **ret_batcher);
/* Frees every batch without completing its events (the queue still owns
 * them). Cancel the batches' POSTs first: they read the bodies. */
void sink_batcher_destroy(struct sink_batcher *bt);
/* Adds e, which the queue is sending (a queue_ops send): 0, or a negative
 * errno when it could not be encoded. dest is knativeerrordest for an event
 * going to the dead-letter sink (the sink's URL, credentials removed; read
 * now). Never posts from inside the call. */
int sink_batcher_add(struct sink_batcher *bt, struct queue_entry *e, const char *dest);
/* The outcome of b's POST: every event gets the status, error and body
 * (a prefix, may be NULL); then the batch is delivered, retried whole, or
 * handed back to the queue. Not from inside a libcurl callback. */
void sink_batcher_done(struct sink_batcher *bt, struct sink_batch *b, enum queue_result result,
	int err, long status, const char *body, size_t body_len, uint64_t retry_after_usec);
/* Sends the batches still collecting now, without waiting for the linger
 * (the drain on SIGTERM). NULL-tolerant. */
void sink_batcher_flush(struct sink_batcher *bt);
/* Batch POSTs in flight. */
size_t sink_batcher_requests(const struct sink_batcher *bt);

#endif

#ifndef ADAPTER_QUEUE_H
#define ADAPTER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/cevent.h"
#include "adapter/loop.h"

/* The delivery queue: owns every event from the watch until it is delivered
 * or finally dropped. Events of one object (same key) go out one at a time,
 * in order; different objects go out concurrently up to max_inflight. Retries
 * wait on loop timers with capped, jittered exponential backoff, at least as
 * long as the sink's Retry-After. No I/O and no logging: sending and the
 * final outcome go through the ops. */

enum queue_result { QUEUE_DELIVERED, QUEUE_RETRY, QUEUE_DROP };

struct queue_chain;

struct queue_entry {
	struct cevent *ev;
	unsigned attempts; /* started so far, in the current phase */
	uint64_t first_attempt_usec;
	bool dead_letter; /* the sink gave up on it: now going to the dead-letter sink */
	bool auth_retried; /* retried once after a 401 with a new OIDC token */
	struct queue_entry *next;
	struct queue_chain *chain;
	long last_status;
	int last_error;
	char *last_body; /* the sink's last answer (a prefix), for the dead-letter sink */
	/* What the sink said when it gave up, kept for the dead-letter event. */
	long failed_status;
	char *failed_body;
};

enum queue_outcome { QUEUE_OUT_DELIVERED, QUEUE_OUT_DEAD_LETTERED, QUEUE_OUT_DROPPED };

struct queue_ops {
	/* Starts delivering e. Returns 0 when started (queue_complete() follows
	 * later, never from inside send), 1 when delivered already (synchronous
	 * sinks), or a negative errno (counted as a retryable failure). */
	int (*send)(struct queue_entry *e, void *userdata);
	/* Called once per event when the queue is done with it: delivered (to
	 * the sink or the dead-letter sink), or dropped after a non-retryable
	 * answer or the retry budget, with no dead-letter sink to take it. The
	 * event is destroyed afterwards. */
	void (*finished)(struct queue_entry *e, enum queue_outcome outcome, bool exhausted,
		void *userdata);
	/* Called before each retry is scheduled. */
	void (*retrying)(struct queue_entry *e, uint64_t delay_usec, void *userdata);
	/* Called when the sink gives up and the event goes to the dead-letter sink. */
	void (*dead_lettering)(struct queue_entry *e, bool exhausted, void *userdata);
	/* Called when a full queue has drained below its low-water mark. */
	void (*space)(void *userdata);
};

struct queue_options {
	size_t max_inflight;
	size_t max_events; /* queue_full() past these; 0: no bound */
	size_t max_bytes;
	bool dead_letter;  /* a dead-letter sink takes what the sink gives up on */
	uint64_t retry_timeout_usec; /* 0: none */
	unsigned retry_max; /* attempts per event, first one included; 0: no limit */
	uint64_t backoff_initial_usec;
	uint64_t backoff_max_usec;
	uint64_t retry_after_max_usec;
};

struct queue_stats {
	size_t queued; /* accepted and not finished, in flight included */
	size_t inflight;
	size_t bytes;
	uint64_t accepted; /* pushed since the start */
	uint64_t delivered;
	uint64_t dead_lettered;
	uint64_t dropped;
	uint64_t retries;
};

struct queue;

int queue_create(struct loop *loop, const struct queue_options *opts, const struct queue_ops *ops,
	void *userdata, struct queue **ret_queue);
/* Drops whatever is still queued (without calling finished). */
void queue_destroy(struct queue *q);
/* Takes ownership of ev. Sending starts from the loop (a zero-delay timer),
 * never from inside the caller: it may be in a libcurl callback. */
int queue_push(struct queue *q, struct cevent *ev);
/* Starts whatever may be sent now. Not from inside a libcurl callback. */
void queue_dispatch(struct queue *q);
/* Reports the outcome of an attempt started by ops->send. retry_after_usec
 * is the sink's Retry-After (0 if none). */
void queue_complete(struct queue *q, struct queue_entry *e, enum queue_result result,
	uint64_t retry_after_usec);
/* hold: nothing more is sent (attempts in flight finish; events wait, and
 * accepting more stops at the bound as usual) until released; sending then
 * resumes from the loop. Safe inside a libcurl callback. */
void queue_hold(struct queue *q, bool hold);
void queue_get_stats(const struct queue *q, struct queue_stats *ret);
bool queue_empty(const struct queue *q);
/* True when the queue holds max_events or max_bytes: producers should stop
 * (pause their input) until ops->space is called. The bound is checked before
 * each chunk of input, so it is passed by at most one chunk's events. */
bool queue_full(const struct queue *q);
/* Calls fn for every queued event, each object's events in order. */
void queue_foreach(const struct queue *q, void (*fn)(const struct queue_entry *e, void *userdata),
	void *userdata);

#endif

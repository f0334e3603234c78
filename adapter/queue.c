#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/queue.h"
#include "adapter/util/backoff.h"
#include "adapter/util/hashmap.h"

/* One object's events, oldest first. A chain is "ready" when its head may be
 * sent: not in flight and not waiting for a retry. */
struct queue_chain {
	struct queue *q;
	struct queue_entry *head, *tail;
	bool busy; /* head in flight or waiting for its retry timer */
	bool in_ready;
	struct queue_chain *ready_next;
	struct loop_timer retry_timer;
	struct hashmap_entry *node; /* in q->chains; node->key is the object's key */
};

struct queue {
	struct loop *loop;
	struct queue_options opts;
	struct queue_ops ops;
	void *userdata;
	struct hashmap chains;
	struct queue_chain *ready_head, *ready_tail;
	struct queue_stats stats;
	bool dispatching;
	bool full_signalled; /* producers were told the queue is full */
	bool held; /* queue_hold(): nothing is sent */
	/* queue_push() runs inside curl's write callback, where starting a
	 * transfer is not allowed: it arms this zero-delay timer instead. */
	struct loop_timer kick;
};

static void dispatch(struct queue *q);

static void handle_kick(struct loop_timer *t, void *userdata) {
	(void)t;
	dispatch(userdata);
}

int queue_create(struct loop *loop, const struct queue_options *opts, const struct queue_ops *ops,
	void *userdata, struct queue **ret_queue) {
	struct queue *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	q->loop = loop;
	q->opts = *opts;
	if (!q->opts.max_inflight)
		q->opts.max_inflight = 1;
	q->ops = *ops;
	q->userdata = userdata;
	hashmap_init(&q->chains);
	loop_timer_init(&q->kick, handle_kick, q);
	*ret_queue = q;
	return 0;
}

static void entry_free(struct queue_entry *e) {
	cevent_destroy(e->ev);
	free(e->last_body);
	free(e->failed_body);
	free(e);
}

bool queue_full(const struct queue *q) {
	return (q->opts.max_events && q->stats.queued >= q->opts.max_events) ||
		(q->opts.max_bytes && q->stats.bytes >= q->opts.max_bytes);
}

/* At most 90% of both bounds: room enough to resume without flapping (and
 * an empty queue always qualifies, whatever the bounds). */
static bool below_low_water(const struct queue *q) {
	return (!q->opts.max_events || q->stats.queued * 10 <= q->opts.max_events * 9) &&
		(!q->opts.max_bytes || q->stats.bytes / 10 * 10 <= q->opts.max_bytes / 10 * 9);
}

static void free_chain(struct queue *q, struct queue_chain *c) {
	struct queue_entry *e = c->head;

	loop_timer_disarm(q->loop, &c->retry_timer);
	while (e) {
		struct queue_entry *n = e->next;
		entry_free(e);
		e = n;
	}
	free(c);
}

void queue_destroy(struct queue *q) {
	struct hashmap_iter it = { 0 };
	void *v;

	if (!q)
		return;
	loop_timer_disarm(q->loop, &q->kick);
	while (hashmap_next(&q->chains, &it, NULL, &v))
		free_chain(q, v);
	hashmap_finish(&q->chains);
	free(q);
}

static void make_ready(struct queue *q, struct queue_chain *c) {
	if (c->in_ready || c->busy || !c->head)
		return;
	c->in_ready = true;
	c->ready_next = NULL;
	if (q->ready_tail)
		q->ready_tail->ready_next = c;
	else
		q->ready_head = c;
	q->ready_tail = c;
}

static void handle_retry_timer(struct loop_timer *t, void *userdata) {
	struct queue_chain *c = userdata;

	(void)t;
	c->busy = false;
	make_ready(c->q, c);
	dispatch(c->q);
}

int queue_push(struct queue *q, struct cevent *ev) {
	size_t h = hashmap_hash(ev->key);
	struct queue_chain *c = hashmap_get_hashed(&q->chains, ev->key, h);
	struct queue_entry *e;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c) {
			free(e);
			return -ENOMEM;
		}
		c->q = q;
		loop_timer_init(&c->retry_timer, handle_retry_timer, c);
		c->node = hashmap_add_hashed(&q->chains, ev->key, h, c);
		if (!c->node) {
			free(c);
			free(e);
			return -ENOMEM;
		}
	}
	e->ev = ev;
	e->chain = c;
	if (c->tail)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	q->stats.queued++;
	q->stats.accepted++;
	q->stats.bytes += ev->bytes;
	if (queue_full(q))
		q->full_signalled = true;
	make_ready(q, c);
	if (q->ready_head && !loop_timer_armed(&q->kick))
		loop_timer_arm_in(q->loop, &q->kick, 0);
	return 0;
}

/* Removes the finished head of its chain and frees the chain when empty. */
static void finish_head(struct queue *q, struct queue_entry *e, enum queue_outcome outcome,
	bool exhausted) {
	struct queue_chain *c = e->chain;

	switch (outcome) {
	case QUEUE_OUT_DELIVERED:
		q->stats.delivered++;
		break;
	case QUEUE_OUT_DEAD_LETTERED:
		q->stats.dead_lettered++;
		break;
	case QUEUE_OUT_DROPPED:
		q->stats.dropped++;
		break;
	}
	if (q->ops.finished)
		q->ops.finished(e, outcome, exhausted, q->userdata);
	c->head = e->next;
	if (!c->head)
		c->tail = NULL;
	q->stats.queued--;
	q->stats.bytes -= e->ev->bytes;
	entry_free(e);
	c->busy = false;
	if (!c->head) {
		hashmap_remove_entry(&q->chains, c->node);
		loop_timer_disarm(q->loop, &c->retry_timer);
		free(c);
	} else {
		make_ready(q, c);
	}
	if (q->full_signalled && below_low_water(q)) {
		q->full_signalled = false;
		if (q->ops.space)
			q->ops.space(q->userdata);
	}
}

/* The sink gave up (a status not worth retrying, or the budget is spent):
 * the dead-letter sink gets it if there is one, else it is dropped. */
static void give_up(struct queue *q, struct queue_entry *e, bool exhausted) {
	if (!q->opts.dead_letter || e->dead_letter) {
		finish_head(q, e, QUEUE_OUT_DROPPED, exhausted);
		return;
	}
	if (q->ops.dead_lettering)
		q->ops.dead_lettering(e, exhausted, q->userdata);
	e->dead_letter = true;
	e->failed_status = e->last_status;
	e->failed_body = e->last_body;
	e->last_body = NULL;
	e->attempts = 0;
	e->first_attempt_usec = 0;
	e->chain->busy = false;
	make_ready(q, e->chain);
}

static bool budget_spent(const struct queue *q, const struct queue_entry *e) {
	if (q->opts.retry_max && e->attempts >= q->opts.retry_max)
		return true;
	return q->opts.retry_timeout_usec &&
		loop_now_usec() - e->first_attempt_usec >= q->opts.retry_timeout_usec;
}

static void schedule_retry(struct queue *q, struct queue_entry *e, uint64_t retry_after_usec) {
	struct queue_chain *c = e->chain;
	uint64_t delay = backoff_delay(q->opts.backoff_initial_usec, q->opts.backoff_max_usec,
		e->attempts, backoff_random());

	if (retry_after_usec > q->opts.retry_after_max_usec)
		retry_after_usec = q->opts.retry_after_max_usec;
	if (retry_after_usec > delay)
		delay = retry_after_usec;
	q->stats.retries++;
	if (q->ops.retrying)
		q->ops.retrying(e, delay, q->userdata);
	c->busy = true;
	if (loop_timer_arm_in(q->loop, &c->retry_timer, delay) < 0) {
		/* No timer: retry on the next dispatch instead of losing the event. */
		c->busy = false;
		make_ready(q, c);
	}
}

void queue_complete(struct queue *q, struct queue_entry *e, enum queue_result result,
	uint64_t retry_after_usec) {
	q->stats.inflight--;
	switch (result) {
	case QUEUE_DELIVERED:
		finish_head(q, e, e->dead_letter ? QUEUE_OUT_DEAD_LETTERED : QUEUE_OUT_DELIVERED, false);
		break;
	case QUEUE_DROP:
		give_up(q, e, false);
		break;
	case QUEUE_RETRY:
		if (budget_spent(q, e))
			give_up(q, e, true);
		else
			schedule_retry(q, e, retry_after_usec);
		break;
	}
	dispatch(q);
}

void queue_dispatch(struct queue *q) {
	loop_timer_disarm(q->loop, &q->kick);
	dispatch(q);
}

static void dispatch(struct queue *q) {
	/* send() never completes synchronously through queue_complete(), but a
	 * synchronous delivery (return 1) finishes here; guard re-entry anyway. */
	if (q->dispatching)
		return;
	q->dispatching = true;
	while (!q->held && q->ready_head && q->stats.inflight < q->opts.max_inflight) {
		struct queue_chain *c = q->ready_head;
		struct queue_entry *e = c->head;
		int r;

		q->ready_head = c->ready_next;
		if (!q->ready_head)
			q->ready_tail = NULL;
		c->in_ready = false;
		c->busy = true;
		if (!e->attempts)
			e->first_attempt_usec = loop_now_usec();
		e->attempts++;
		q->stats.inflight++;
		r = q->ops.send(e, q->userdata);
		if (r == 1) {
			q->stats.inflight--;
			finish_head(q, e, QUEUE_OUT_DELIVERED, false);
		} else if (r < 0) {
			q->stats.inflight--;
			e->last_error = r;
			if (budget_spent(q, e))
				give_up(q, e, true);
			else
				schedule_retry(q, e, 0);
		}
	}
	q->dispatching = false;
}

void queue_hold(struct queue *q, bool hold) {
	q->held = hold;
	if (!hold)
		loop_timer_arm_in(q->loop, &q->kick, 0);
}

void queue_get_stats(const struct queue *q, struct queue_stats *ret) {
	*ret = q->stats;
}

void queue_count_retries(struct queue *q, size_t n) {
	q->stats.retries += n;
}

bool queue_empty(const struct queue *q) {
	return q->stats.queued == 0;
}

void queue_foreach(const struct queue *q, void (*fn)(const struct queue_entry *e, void *userdata),
	void *userdata) {
	struct hashmap_iter it = { 0 };
	void *v;

	while (hashmap_next((struct hashmap *)&q->chains, &it, NULL, &v))
		for (struct queue_entry *e = ((struct queue_chain *)v)->head; e; e = e->next)
			fn(e, userdata);
}

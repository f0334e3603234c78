#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/cevent_json.h"
#include "adapter/config.h"
#include "adapter/log.h"
#include "adapter/sink_batch.h"
#include "adapter/util/backoff.h"

struct sink_batcher {
	struct loop *loop;
	struct queue *queue;
	const struct queue_ops *ops;
	void *ops_userdata;
	struct sink_batch_options opts;
	sink_batch_post_fn post;
	void *post_userdata;
	struct sink_batch *open[2]; /* collecting, [dead_letter] */
	struct sink_batch *wait_head, *wait_tail; /* closed, waiting for a request slot */
	size_t requests;			  /* POSTs in flight */
	struct loop_timer kick; /* starts closed batches from the loop */
	struct sink_batch *all;
};

static void handle_batch_timer(struct loop_timer *t, void *userdata);
static void handle_kick(struct loop_timer *t, void *userdata);
static void batch_close(struct sink_batcher *bt, struct sink_batch *b);

struct sink_batch_options *sink_batch_options_init(struct sink_batch_options *ret,
	const struct config *cfg, const struct queue_options *q) {
	*ret = (struct sink_batch_options){
		.max_events = cfg->batch_max_events ? cfg->batch_max_events : SINK_BATCH_MAX_EVENTS,
		.max_bytes = cfg->batch_max_bytes ? cfg->batch_max_bytes : SINK_BATCH_MAX_BYTES,
		.linger_usec = cfg->batch_linger_set ? cfg->batch_linger_usec : SINK_BATCH_LINGER_USEC,
		.max_requests = cfg->max_inflight,
		.retry_max = q->retry_max,
		.retry_timeout_usec = q->retry_timeout_usec,
		.backoff_initial_usec = q->backoff_initial_usec,
		.backoff_max_usec = q->backoff_max_usec,
		.retry_after_max_usec = q->retry_after_max_usec,
	};
	return ret;
}

static void batch_free(struct sink_batcher *bt, struct sink_batch *b) {
	if (!b)
		return;
	loop_timer_disarm(bt->loop, &b->timer);
	if (b->prev)
		b->prev->next = b->next;
	else if (bt->all == b)
		bt->all = b->next;
	if (b->next)
		b->next->prev = b->prev;
	for (size_t i = 0; b->texts && i < b->n; i++)
		free(b->texts[i]);
	free(b->texts);
	free(b->lens);
	free(b->entries);
	buf_finish(&b->body);
	free(b);
}

int sink_batcher_create(struct loop *loop, const struct sink_batch_options *opts,
	struct queue *queue, const struct queue_ops *ops, void *ops_userdata, sink_batch_post_fn post,
	void *post_userdata, struct sink_batcher **ret_batcher) {
	struct sink_batcher *bt = calloc(1, sizeof(*bt));

	if (!bt)
		return -ENOMEM;
	*bt = (struct sink_batcher){ .loop = loop, .queue = queue, .ops = ops,
		.ops_userdata = ops_userdata, .opts = *opts, .post = post,
		.post_userdata = post_userdata };
	loop_timer_init(&bt->kick, handle_kick, bt);
	if (!bt->opts.max_events)
		bt->opts.max_events = 1;
	if (!bt->opts.max_requests)
		bt->opts.max_requests = 1;
	*ret_batcher = bt;
	return 0;
}

void sink_batcher_destroy(struct sink_batcher *bt) {
	if (!bt)
		return;
	loop_timer_disarm(bt->loop, &bt->kick);
	while (bt->all)
		batch_free(bt, bt->all);
	free(bt);
}

void sink_batcher_flush(struct sink_batcher *bt) {
	for (size_t i = 0; bt && i < 2; i++)
		if (bt->open[i])
			batch_close(bt, bt->open[i]);
}

size_t sink_batcher_requests(const struct sink_batcher *bt) {
	return bt->requests;
}

static struct sink_batch *batch_new(struct sink_batcher *bt, bool dead_letter) {
	struct sink_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->owner = bt;
	b->dead_letter = dead_letter;
	buf_init(&b->body, 0);
	loop_timer_init(&b->timer, handle_batch_timer, b);
	b->next = bt->all;
	if (bt->all)
		bt->all->prev = b;
	bt->all = b;
	return b;
}

/* Room for one more event. */
static int batch_grow(struct sink_batch *b) {
	size_t cap = b->cap ? 2 * b->cap : 8;
	void *p;

	if (b->n < b->cap)
		return 0;
	if (!(p = realloc(b->entries, cap * sizeof(*b->entries))))
		return -ENOMEM;
	b->entries = p;
	if (!(p = realloc(b->texts, cap * sizeof(*b->texts))))
		return -ENOMEM;
	b->texts = p;
	if (!(p = realloc(b->lens, cap * sizeof(*b->lens))))
		return -ENOMEM;
	b->lens = p;
	b->cap = cap;
	return 0;
}

/* No more events: the batch waits for a request slot behind the batches
 * closed before it, and goes from the loop (never from inside the queue's
 * send), where its body is written. */
static void batch_close(struct sink_batcher *bt, struct sink_batch *b) {
	if (bt->open[b->dead_letter] == b)
		bt->open[b->dead_letter] = NULL;
	loop_timer_disarm(bt->loop, &b->timer);
	if (bt->wait_tail)
		bt->wait_tail->next_wait = b;
	else
		bt->wait_head = b;
	bt->wait_tail = b;
	if (!loop_timer_armed(&bt->kick))
		loop_timer_arm_in(bt->loop, &bt->kick, 0);
}

/* The JSON array of the events' objects, in order. */
static int batch_body(struct sink_batch *b) {
	int r = cevent_json_array((const char *const *)b->texts, b->lens, b->n, &b->body);

	for (size_t i = 0; i < b->n; i++)
		free(b->texts[i]);
	free(b->texts);
	b->texts = NULL;
	b->attempts = 1; /* the queue counted each event's first attempt */
	return r;
}

int sink_batcher_add(struct sink_batcher *bt, struct queue_entry *e, const char *dest) {
	struct cevent_json_error err = { .dest = dest,
		.code = e->failed_status, .data = e->failed_body };
	struct sink_batch *b = bt->open[e->dead_letter];
	struct buf text;
	size_t len;
	int r;

	buf_init(&text, 0);
	r = cevent_json_event(e->ev, e->dead_letter ? &err : NULL, &text);
	if (r < 0) {
		buf_finish(&text);
		return r;
	}
	len = text.len;
	/* Full, or this event would take it past max_bytes: it starts the
	 * next one (alone, if it is larger than max_bytes by itself). */
	if (b && b->n && b->bytes + len + 2 > bt->opts.max_bytes) {
		batch_close(bt, b);
		b = NULL;
	}
	if (!b) {
		b = batch_new(bt, e->dead_letter);
		r = b ? loop_timer_arm_in(bt->loop, &b->timer, bt->opts.linger_usec) : -ENOMEM;
		if (r == 0)
			bt->open[e->dead_letter] = b;
		else
			batch_free(bt, b);
	}
	if (r == 0)
		r = batch_grow(b);
	if (r < 0) {
		buf_finish(&text);
		return r;
	}
	b->entries[b->n] = e;
	b->lens[b->n] = len;
	b->texts[b->n++] = buf_steal(&text, NULL);
	b->bytes += len + 1; /* and a comma or '[': the body is bytes + 1 (']') */
	if (b->n == bt->opts.max_events || b->bytes + 1 >= bt->opts.max_bytes)
		batch_close(bt, b);
	return 0;
}

static void pump(struct sink_batcher *bt);

/* Hands every event back to the queue with the batch's outcome, in order. */
static void complete_all(struct sink_batcher *bt, struct sink_batch *b, enum queue_result result,
	uint64_t retry_after_usec) {
	struct queue_entry **entries = b->entries;
	size_t n = b->n;

	/* The batch goes first: completing may start new batches. */
	b->entries = NULL;
	batch_free(bt, b);
	for (size_t i = 0; i < n; i++)
		queue_complete(bt->queue, entries[i], result, retry_after_usec);
	free(entries);
}

static void start(struct sink_batcher *bt, struct sink_batch *b) {
	int r;

	if (!b->n) { /* its only event could not be added */
		batch_free(bt, b);
		return;
	}
	if (b->texts && batch_body(b) < 0) {
		/* No body: the events go back to the queue as a failed attempt. */
		complete_all(bt, b, QUEUE_RETRY, 0);
		return;
	}
	bt->requests++;
	r = bt->post(b, bt->post_userdata);
	if (r < 0)
		sink_batcher_done(bt, b, QUEUE_RETRY, r, 0, NULL, 0, 0);
}

/* Starts waiting batches, in order, while request slots are free. */
static void pump(struct sink_batcher *bt) {
	while (bt->wait_head && bt->requests < bt->opts.max_requests) {
		struct sink_batch *b = bt->wait_head;

		bt->wait_head = b->next_wait;
		if (!bt->wait_head)
			bt->wait_tail = NULL;
		b->next_wait = NULL;
		start(bt, b);
	}
}

static void handle_kick(struct loop_timer *t, void *userdata) {
	(void)t;
	pump(userdata);
}

/* The linger ended before the batch filled. */
static void handle_batch_timer(struct loop_timer *t, void *userdata) {
	struct sink_batch *b = userdata;

	(void)t;
	batch_close(b->owner, b);
	pump(b->owner);
}

static bool budget_spent(const struct sink_batcher *bt, const struct sink_batch *b) {
	uint64_t now = loop_now_usec();

	for (size_t i = 0; i < b->n; i++) {
		const struct queue_entry *e = b->entries[i];
		if (bt->opts.retry_max && e->attempts >= bt->opts.retry_max)
			return true;
		if (bt->opts.retry_timeout_usec &&
			now - e->first_attempt_usec >= bt->opts.retry_timeout_usec)
			return true;
	}
	return false;
}

/* The retry is due: one more attempt for every event of the batch. */
static void handle_retry_timer(struct loop_timer *t, void *userdata) {
	struct sink_batch *b = userdata;

	(void)t;
	for (size_t i = 0; i < b->n; i++)
		b->entries[i]->attempts++;
	b->attempts++;
	loop_timer_init(&b->timer, handle_batch_timer, b);
	batch_close(b->owner, b);
	pump(b->owner);
}

void sink_batcher_done(struct sink_batcher *bt, struct sink_batch *b, enum queue_result result,
	int err, long status, const char *body, size_t body_len, uint64_t retry_after_usec) {
	uint64_t delay;

	bt->requests--;
	if (result != QUEUE_DELIVERED)
		log_debug("sink", "batch delivery attempt failed", LOG_INT("events", b->n),
			LOG_INT("status", status), LOG_STR("error", err ? strerror(-err) : ""));
	for (size_t i = 0; i < b->n; i++) {
		struct queue_entry *e = b->entries[i];
		e->last_status = status;
		e->last_error = err;
		free(e->last_body);
		e->last_body = body_len ? strndup(body, body_len) : NULL;
	}
	if (result != QUEUE_RETRY || budget_spent(bt, b)) {
		/* Delivered, refused, or out of budget: the queue decides, per
		 * event (the dead-letter sink, or a drop). */
		complete_all(bt, b, result, retry_after_usec);
		pump(bt);
		return;
	}
	delay = backoff_delay(bt->opts.backoff_initial_usec, bt->opts.backoff_max_usec, b->attempts,
		backoff_random());
	if (retry_after_usec > bt->opts.retry_after_max_usec)
		retry_after_usec = bt->opts.retry_after_max_usec;
	if (retry_after_usec > delay)
		delay = retry_after_usec;
	queue_count_retries(bt->queue, b->n);
	for (size_t i = 0; bt->ops->retrying && i < b->n; i++)
		bt->ops->retrying(b->entries[i], delay, bt->ops_userdata);
	loop_timer_init(&b->timer, handle_retry_timer, b);
	if (loop_timer_arm_in(bt->loop, &b->timer, delay) < 0)
		complete_all(bt, b, QUEUE_RETRY, retry_after_usec);
	pump(bt);
}

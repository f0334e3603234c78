#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/queue.h"

struct rec {
	struct queue_entry *sent[64];
	char sent_ids[64][40];
	int nsent;
	int delivered, dropped, exhausted, retrying, dead_lettered, dead_lettering, space;
	uint64_t last_delay;
	int sync; /* send returns 1 (synchronous delivery) */
	struct loop *loop;
	int quit_after_sends;
};

static int do_send(struct queue_entry *e, void *ud) {
	struct rec *r = ud;

	r->sent[r->nsent] = e;
	snprintf(r->sent_ids[r->nsent], 40, "%s", e->ev->id);
	r->nsent++;
	if (r->quit_after_sends && r->nsent >= r->quit_after_sends)
		loop_quit(r->loop, 0);
	return r->sync ? 1 : 0;
}

static void do_finished(struct queue_entry *e, enum queue_outcome out, bool exhausted, void *ud) {
	struct rec *r = ud;

	(void)e;
	if (out == QUEUE_OUT_DELIVERED)
		r->delivered++;
	else if (out == QUEUE_OUT_DEAD_LETTERED)
		r->dead_lettered++;
	else
		r->dropped++;
	if (exhausted)
		r->exhausted++;
}

static void do_dead_lettering(struct queue_entry *e, bool exhausted, void *ud) {
	struct rec *r = ud;

	(void)e;
	(void)exhausted;
	r->dead_lettering++;
}

static void do_space(void *ud) {
	struct rec *r = ud;

	r->space++;
}

static void do_retrying(struct queue_entry *e, uint64_t delay, void *ud) {
	struct rec *r = ud;

	(void)e;
	r->retrying++;
	r->last_delay = delay;
}

static const struct queue_ops ops = { do_send, do_finished, do_retrying, do_dead_lettering,
	do_space };

static struct cevent *ev(const char *key, const char *id) {
	struct cevent *e = calloc(1, sizeof(*e));

	e->key = strdup(key);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->bytes = 100;
	return e;
}

static struct queue *make_opts(struct rec *r, struct queue_options o) {
	struct queue *q;

	cr_assert_eq(loop_create(&r->loop), 0);
	cr_assert_eq(queue_create(r->loop, &o, &ops, r, &q), 0);
	return q;
}

static struct queue *make(struct rec *r, size_t inflight, unsigned retry_max) {
	struct queue_options o = { .max_inflight = inflight,
		.retry_max = retry_max,
		.backoff_initial_usec = 1000,
		.backoff_max_usec = 4000,
		.retry_after_max_usec = 1000000 };
	struct queue *q;

	cr_assert_eq(loop_create(&r->loop), 0);
	cr_assert_eq(queue_create(r->loop, &o, &ops, r, &q), 0);
	return q;
}

Test(queue, per_object_order_and_concurrency) {
	struct rec r = { 0 };
	struct queue *q = make(&r, 8, 6);
	struct queue_stats st;

	queue_push(q, ev("A", "a1"));
	queue_push(q, ev("A", "a2"));
	queue_push(q, ev("B", "b1"));
	queue_push(q, ev("A", "a3"));
	cr_assert_eq(r.nsent, 0); /* nothing starts inside push */
	queue_dispatch(q);
	/* One event per object in flight. */
	cr_assert_eq(r.nsent, 2);
	cr_assert_str_eq(r.sent_ids[0], "a1");
	cr_assert_str_eq(r.sent_ids[1], "b1");
	queue_complete(q, r.sent[0], QUEUE_DELIVERED, 0);
	cr_assert_eq(r.nsent, 3);
	cr_assert_str_eq(r.sent_ids[2], "a2");
	queue_complete(q, r.sent[2], QUEUE_DROP, 0);
	cr_assert_str_eq(r.sent_ids[3], "a3");
	queue_complete(q, r.sent[3], QUEUE_DELIVERED, 0);
	queue_complete(q, r.sent[1], QUEUE_DELIVERED, 0);
	queue_get_stats(q, &st);
	cr_assert_eq(st.delivered, 3);
	cr_assert_eq(st.dropped, 1);
	cr_assert_eq(st.queued, 0);
	cr_assert(queue_empty(q));
	queue_destroy(q);
	loop_destroy(r.loop);
}

Test(queue, inflight_cap) {
	struct rec r = { 0 };
	struct queue *q = make(&r, 2, 6);
	char k[8];

	for (int i = 0; i < 5; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		queue_push(q, ev(k, k));
	}
	queue_dispatch(q);
	cr_assert_eq(r.nsent, 2);
	queue_complete(q, r.sent[0], QUEUE_DELIVERED, 0);
	cr_assert_eq(r.nsent, 3);
	queue_destroy(q);
	loop_destroy(r.loop);
}

Test(queue, retry_same_event_until_budget) {
	struct rec r = { 0 };
	struct queue *q = make(&r, 4, 3);

	queue_push(q, ev("A", "a1"));
	queue_push(q, ev("A", "a2"));
	queue_dispatch(q);
	cr_assert_eq(r.nsent, 1);
	queue_complete(q, r.sent[0], QUEUE_RETRY, 0);
	cr_assert_eq(r.retrying, 1);
	r.quit_after_sends = 2;
	loop_run(r.loop);
	cr_assert_str_eq(r.sent_ids[1], "a1"); /* the same event again, a2 waits */
	cr_assert_eq(r.sent[1]->attempts, 2);
	queue_complete(q, r.sent[1], QUEUE_RETRY, 0);
	r.quit_after_sends = 3;
	loop_run(r.loop);
	cr_assert_str_eq(r.sent_ids[2], "a1");
	queue_complete(q, r.sent[2], QUEUE_RETRY, 0);
	/* Third attempt was the last: dropped, and a2 goes out. */
	cr_assert_eq(r.exhausted, 1);
	cr_assert_eq(r.nsent, 4);
	cr_assert_str_eq(r.sent_ids[3], "a2");
	queue_destroy(q);
	loop_destroy(r.loop);
}

Test(queue, retry_after_is_honoured) {
	struct rec r = { 0 };
	struct queue *q = make(&r, 4, 3);
	uint64_t start;

	queue_push(q, ev("A", "a1"));
	queue_dispatch(q);
	queue_complete(q, r.sent[0], QUEUE_RETRY, 200000);
	cr_assert_eq(r.last_delay, 200000);
	start = loop_now_usec();
	r.quit_after_sends = 2;
	loop_run(r.loop);
	cr_assert_geq(loop_now_usec() - start, 190000);
	queue_destroy(q);
	loop_destroy(r.loop);
}

Test(queue, synchronous_sink) {
	struct rec r = { .sync = 1 };
	struct queue *q = make(&r, 1, 3);

	queue_push(q, ev("A", "a1"));
	queue_push(q, ev("A", "a2"));
	queue_push(q, ev("B", "b1"));
	r.quit_after_sends = 3;
	loop_run(r.loop); /* the kick timer sends from the loop */
	cr_assert_eq(r.delivered, 3);
	cr_assert(queue_empty(q));
	queue_destroy(q);
	loop_destroy(r.loop);
}

Test(queue, destroy_with_pending_frees_everything) {
	struct rec r = { 0 };
	struct queue *q = make(&r, 1, 3);

	queue_push(q, ev("A", "a1"));
	queue_push(q, ev("B", "b1"));
	queue_dispatch(q);
	queue_complete(q, r.sent[0], QUEUE_RETRY, 0);
	queue_destroy(q); /* ASan reports anything left behind */
	loop_destroy(r.loop);
}

Test(queue, no_limit_by_default_then_dead_letter_after_a_400) {
	struct rec r = { 0 };
	struct queue *q = make_opts(&r, (struct queue_options){ .max_inflight = 4,
					  .backoff_initial_usec = 100,
					  .backoff_max_usec = 200,
					  .dead_letter = true });

	queue_push(q, ev("A", "a1"));
	queue_push(q, ev("A", "a2"));
	queue_dispatch(q);
	/* Twenty failures in a row: still retrying, never dropped. */
	for (int i = 0; i < 20; i++) {
		queue_complete(q, r.sent[r.nsent - 1], QUEUE_RETRY, 0);
		r.quit_after_sends = r.nsent + 1;
		loop_run(r.loop);
	}
	cr_assert_eq(r.dropped, 0);
	cr_assert_str_eq(r.sent_ids[r.nsent - 1], "a1");
	/* A 400: the same event goes to the dead-letter sink, before a2. */
	r.sent[r.nsent - 1]->last_status = 400;
	queue_complete(q, r.sent[r.nsent - 1], QUEUE_DROP, 0);
	cr_assert_eq(r.dead_lettering, 1);
	cr_assert_str_eq(r.sent_ids[r.nsent - 1], "a1");
	cr_assert(r.sent[r.nsent - 1]->dead_letter);
	cr_assert_eq(r.sent[r.nsent - 1]->failed_status, 400);
	queue_complete(q, r.sent[r.nsent - 1], QUEUE_DELIVERED, 0);
	cr_assert_eq(r.dead_lettered, 1);
	cr_assert_str_eq(r.sent_ids[r.nsent - 1], "a2");
	queue_destroy(q);
	loop_destroy(r.loop);
}

Test(queue, retry_timeout_bounds_the_retries) {
	struct rec r = { 0 };
	struct queue *q = make_opts(&r, (struct queue_options){ .max_inflight = 4,
					  .backoff_initial_usec = 20000,
					  .backoff_max_usec = 20000,
					  .retry_timeout_usec = 50000 });
	int rounds = 0;

	queue_push(q, ev("A", "a1"));
	queue_dispatch(q);
	while (!r.dropped && rounds++ < 100) {
		queue_complete(q, r.sent[r.nsent - 1], QUEUE_RETRY, 0);
		if (r.dropped)
			break;
		r.quit_after_sends = r.nsent + 1;
		loop_run(r.loop);
	}
	cr_assert_eq(r.dropped, 1);
	cr_assert_eq(r.exhausted, 1);
	/* It gives up after 50 ms: a handful of 20 ms rounds, fewer on a loaded machine. */
	cr_assert(rounds >= 1 && rounds <= 10, "%d rounds", rounds);
	queue_destroy(q);
	loop_destroy(r.loop);
}

static void count_entry(const struct queue_entry *e, void *ud) {
	(void)e;
	(*(int *)ud)++;
}

Test(queue, full_and_space) {
	struct rec r = { 0 };
	struct queue *q = make_opts(&r, (struct queue_options){ .max_inflight = 100,
					  .max_events = 10,
					  .retry_max = 1 });
	char k[8];
	int seen = 0;

	for (int i = 0; i < 10; i++) {
		cr_assert_not(queue_full(q));
		snprintf(k, sizeof(k), "k%d", i);
		queue_push(q, ev(k, k));
	}
	cr_assert(queue_full(q));
	queue_dispatch(q);
	/* Resume at the low-water mark, 90%: 9 of 10 here, told once. */
	queue_complete(q, r.sent[0], QUEUE_DELIVERED, 0);
	cr_assert_not(queue_full(q));
	cr_assert_eq(r.space, 1);
	queue_complete(q, r.sent[1], QUEUE_DELIVERED, 0);
	cr_assert_eq(r.space, 1);
	queue_foreach(q, count_entry, &seen);
	cr_assert_eq(seen, 8);
	queue_destroy(q);
	loop_destroy(r.loop);
}

Test(queue, small_bounds_still_resume) {
	struct rec r = { 0 };
	struct queue *q = make_opts(&r, (struct queue_options){ .max_inflight = 10,
					  .max_events = 5,
					  .retry_max = 1 });
	char k[8];

	for (int i = 0; i < 5; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		queue_push(q, ev(k, k));
	}
	cr_assert(queue_full(q));
	queue_dispatch(q);
	queue_complete(q, r.sent[0], QUEUE_DELIVERED, 0);
	cr_assert_eq(r.space, 1); /* 4 of 5: at 90% or below */
	queue_destroy(q);
	loop_destroy(r.loop);
}

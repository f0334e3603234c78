#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/cevent.h"
#include "adapter/cevent_json.h"
#include "adapter/queue.h"
#include "adapter/sink_batch.h"

/* The batcher between a real queue and a recording "POST": batch sizes,
 * bodies, order, whole retries, and the queue's view meanwhile. */

struct rig {
	struct loop *loop;
	struct queue *q;
	struct sink_batcher *bt;
	struct sink_batch *posted[16];
	char *bodies[16];
	int nposted, quit_after;
	int delivered, dropped, retrying;
	struct loop_timer deadline;
};

static int do_send(struct queue_entry *e, void *ud) {
	return sink_batcher_add(((struct rig *)ud)->bt, e, "http://sink/");
}

static void do_finished(struct queue_entry *e, enum queue_outcome out, bool exhausted, void *ud) {
	struct rig *r = ud;

	(void)e, (void)exhausted;
	if (out == QUEUE_OUT_DELIVERED)
		r->delivered++;
	else
		r->dropped++;
}

static void do_retrying(struct queue_entry *e, uint64_t delay, void *ud) {
	(void)e, (void)delay;
	((struct rig *)ud)->retrying++;
}

static const struct queue_ops ops = { .send = do_send, .finished = do_finished,
	.retrying = do_retrying };

static int do_post(struct sink_batch *b, void *ud) {
	struct rig *r = ud;

	r->posted[r->nposted] = b;
	r->bodies[r->nposted++] = strndup(b->body.data, b->body.len);
	if (r->nposted >= r->quit_after)
		loop_quit(r->loop, 0);
	return 0;
}

static void handle_deadline(struct loop_timer *t, void *ud) {
	(void)t;
	loop_quit(ud, 1);
}

static struct cevent *event(int i) {
	static const char json[] = "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{}}";
	struct cevent_params p = { .mode = CONFIG_MODE_RESOURCE, .source = "https://k" };
	struct kobj o;
	struct cevent *ev = NULL;

	memset(&o, 0, sizeof(o));
	o.json = json;
	o.json_len = strlen(json);
	strcpy(o.kind, "Pod");
	strcpy(o.api_version, "v1");
	snprintf(o.name, sizeof(o.name), "p%d", i);
	strcpy(o.namespace, "ns");
	snprintf(o.uid, sizeof(o.uid), "uid-%d", i);
	strcpy(o.resource_version, "1");
	cr_assert_eq(cevent_create(&p, &o, CEVENT_ADD, &ev), 0);
	return ev;
}

static size_t json_len(int i) {
	struct cevent *ev = event(i);
	struct buf b;
	size_t n;

	buf_init(&b, 0);
	cr_assert_eq(cevent_json_event(ev, NULL, &b), 0);
	n = b.len;
	buf_finish(&b);
	cevent_destroy(ev);
	return n;
}

static void rig_init(struct rig *r, size_t max_events, size_t max_bytes) {
	struct queue_options qo = { .max_inflight = 1000, .backoff_initial_usec = 1000,
		.backoff_max_usec = 2000, .retry_after_max_usec = 1000000 };
	struct sink_batch_options bo = { .max_events = max_events, .max_bytes = max_bytes,
		.linger_usec = 0, .max_requests = 8, .backoff_initial_usec = 1000,
		.backoff_max_usec = 2000, .retry_after_max_usec = 1000000 };

	memset(r, 0, sizeof(*r));
	cr_assert_eq(loop_create(&r->loop), 0);
	cr_assert_eq(queue_create(r->loop, &qo, &ops, r, &r->q), 0);
	cr_assert_eq(sink_batcher_create(r->loop, &bo, r->q, &ops, r, do_post, r, &r->bt), 0);
	loop_timer_init(&r->deadline, handle_deadline, r->loop);
}

/* Runs the loop until n batches in all have been posted. */
static void run_until_posted(struct rig *r, int n) {
	r->quit_after = n;
	loop_timer_arm_in(r->loop, &r->deadline, 5000000);
	cr_assert_eq(loop_run(r->loop), 0, "only %d of %d batches posted", r->nposted, n);
	loop_timer_disarm(r->loop, &r->deadline);
}

static void rig_finish(struct rig *r) {
	sink_batcher_destroy(r->bt);
	queue_destroy(r->q);
	for (int i = 0; i < r->nposted; i++)
		free(r->bodies[i]);
	loop_destroy(r->loop);
}

static int count(const char *s, const char *what) {
	int n = 0;

	for (const char *p = s; (p = strstr(p, what)); p++)
		n++;
	return n;
}

Test(sink_batch, splits_at_max_events_and_keeps_the_order) {
	struct rig r;
	struct queue_stats st;
	char name[32];

	rig_init(&r, 3, 1 << 20);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(queue_push(r.q, event(i)), 0);
	run_until_posted(&r, 3);
	cr_assert_eq(r.posted[0]->n, 3);
	cr_assert_eq(r.posted[1]->n, 3);
	cr_assert_eq(r.posted[2]->n, 1);
	for (int i = 0, k = 0; i < 3; i++)
		for (size_t j = 0; j < r.posted[i]->n; j++, k++) {
			snprintf(name, sizeof(name), "\"name\":\"p%d\"", k);
			cr_assert_not_null(strstr(r.bodies[i], name), "%s not in batch %d", name, i);
		}
	/* Until acknowledged, every event is still queued and in flight. */
	queue_get_stats(r.q, &st);
	cr_assert_eq(st.queued, 7);
	cr_assert_eq(st.inflight, 7);
	cr_assert_eq(sink_batcher_requests(r.bt), 3);
	for (int i = 0; i < 3; i++)
		sink_batcher_done(r.bt, r.posted[i], QUEUE_DELIVERED, 0, 200, NULL, 0, 0);
	queue_get_stats(r.q, &st);
	cr_assert_eq(r.delivered, 7);
	cr_assert_eq(st.queued, 0);
	cr_assert_eq(sink_batcher_requests(r.bt), 0);
	rig_finish(&r);
}

Test(sink_batch, a_failed_batch_is_retried_whole) {
	struct rig r;
	struct queue_stats st;

	rig_init(&r, 100, 1 << 20);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(queue_push(r.q, event(i)), 0);
	run_until_posted(&r, 1);
	cr_assert_eq(r.posted[0]->n, 4);
	sink_batcher_done(r.bt, r.posted[0], QUEUE_RETRY, 0, 503, "busy", 4, 0);
	cr_assert_eq(r.retrying, 4);
	queue_get_stats(r.q, &st);
	cr_assert_eq(st.queued, 4); /* waiting for the retry, still queued */
	cr_assert_eq(st.retries, 4);
	run_until_posted(&r, 2);
	cr_assert_eq(r.posted[1], r.posted[0]); /* the same batch */
	cr_assert_str_eq(r.bodies[1], r.bodies[0]);
	cr_assert_eq(r.posted[1]->entries[0]->attempts, 2);
	sink_batcher_done(r.bt, r.posted[1], QUEUE_DELIVERED, 0, 200, NULL, 0, 0);
	cr_assert_eq(r.delivered, 4);
	cr_assert_eq(count(r.bodies[0], "\"specversion\""), 4);
	rig_finish(&r);
}

/* The body is [a,b]: len(a) + len(b) + 3 bytes. */
Test(sink_batch, max_bytes_is_the_body_length) {
	size_t both = json_len(0) + json_len(1) + 3;
	struct rig r;

	rig_init(&r, 100, both);
	cr_assert_eq(queue_push(r.q, event(0)), 0);
	cr_assert_eq(queue_push(r.q, event(1)), 0);
	run_until_posted(&r, 1);
	cr_assert_eq(r.posted[0]->n, 2);
	cr_assert_eq(strlen(r.bodies[0]), both);
	rig_finish(&r);

	rig_init(&r, 100, both - 1);
	cr_assert_eq(queue_push(r.q, event(0)), 0);
	cr_assert_eq(queue_push(r.q, event(1)), 0);
	run_until_posted(&r, 2);
	cr_assert_eq(r.posted[0]->n, 1);
	cr_assert_eq(r.posted[1]->n, 1);
	rig_finish(&r);
}

/* Refused: each event goes back to the queue, which drops it (no
 * dead-letter sink here). */
Test(sink_batch, a_refused_batch_goes_back_to_the_queue) {
	struct rig r;

	rig_init(&r, 100, 1 << 20);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(queue_push(r.q, event(i)), 0);
	run_until_posted(&r, 1);
	sink_batcher_done(r.bt, r.posted[0], QUEUE_DROP, 0, 400, "no", 2, 0);
	cr_assert_eq(r.dropped, 3);
	cr_assert(queue_empty(r.q));
	rig_finish(&r);
}

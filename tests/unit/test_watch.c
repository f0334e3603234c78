#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* White-box: the retry timer is fired by hand instead of waiting for it. */
#include "../../adapter/watch_internal.h"

/* The watch's state machine driven through a fake transport (struct
 * watch_io) with canned bodies: no network, no libcurl transfer. */

/* ---------------- the fake transport ---------------- */

static char path[4096];   /* of the last request */
static unsigned starts;   /* requests started */
static unsigned cancels;
static unsigned resumes;
static bool in_flight;

static int fake_start(struct watch *wa, const char *p, void *userdata) {
	(void)wa;
	(void)userdata;
	cr_assert(!in_flight, "a second request while one is in flight");
	snprintf(path, sizeof(path), "%s", p);
	starts++;
	in_flight = true;
	return 0;
}

static void fake_cancel(struct watch *wa, void *userdata) {
	(void)wa;
	(void)userdata;
	cancels++;
	in_flight = false;
}

static void fake_resume(struct watch *wa, void *userdata) {
	(void)wa;
	(void)userdata;
	resumes++;
}

static const struct watch_io io = {
	.start = fake_start,
	.cancel = fake_cancel,
	.resume = fake_resume,
};

/* ---------------- the owner ---------------- */

struct event {
	enum cevent_op op;
	char name[KOBJ_NAME_MAX];
	char rv[64];
};

static struct event events[256];
static size_t n_events;
static unsigned emits;	 /* every call, failed or not */
static unsigned fail_at; /* fail the emit with this 1-based number; 0: never */
static bool full;
static unsigned fatals;
static const char *fail_strdup_of; /* strdup() of this string fails once */

static int fake_emit(enum cevent_op op, const struct kobj *obj, void *userdata) {
	(void)userdata;
	if (++emits == fail_at)
		return -ENOMEM;
	cr_assert_lt(n_events, sizeof(events) / sizeof(events[0]));
	events[n_events].op = op;
	snprintf(events[n_events].name, sizeof(events[0].name), "%s", obj->name);
	snprintf(events[n_events].rv, sizeof(events[0].rv), "%s", obj->resource_version);
	n_events++;
	return 0;
}

static bool fake_full(void *userdata) {
	(void)userdata;
	return full;
}

static void fake_fatal(void *userdata) {
	(void)userdata;
	fatals++;
}

char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s) {
	if (fail_strdup_of && strcmp(s, fail_strdup_of) == 0) {
		fail_strdup_of = NULL;
		return NULL;
	}
	return __real_strdup(s);
}

static struct config cfg;
static struct loop *loop;
static struct watch_context ctx;
static struct watch_owner owner;
static struct watch *wa;

static void setup(void) {
	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = CONFIG_MODE_RESOURCE;
	cfg.max_event_bytes = 1 << 20;
	cfg.watch_timeout_sec = 300;
	cr_assert_eq(loop_create(&loop), 0);
	ctx = (struct watch_context){ .cfg = &cfg, .loop = loop, .fatal = fake_fatal };
	owner = (struct watch_owner){
		.ctx = &ctx,
		.label = "guitars.kool.karmalabs.local/v1",
		.label_selector = "app in (a,b)",
		.kind = "Guitar",
		.api_version = "kool.karmalabs.local/v1",
		.emit = fake_emit,
		.full = fake_full,
		.io = &io,
	};
	starts = cancels = resumes = fatals = emits = fail_at = 0;
	n_events = 0;
	full = in_flight = false;
	fail_strdup_of = NULL;
	cr_assert_eq(watch_create(&owner, "default", "/apis/kool.karmalabs.local/v1/namespaces/default/guitars",
			     "key", &wa),
		0);
}

static void teardown(void) {
	watch_destroy(wa);
	loop_destroy(loop);
}

TestSuite(watch, .init = setup, .fini = teardown);

/* ---------------- driving it ---------------- */

/* The answer to the request in flight: status, body (one chunk), end. */
static void answer(long status, const char *body) {
	size_t n;

	cr_assert(in_flight, "no request to answer");
	watch_io_answer(wa, status, 0);
	n = watch_io_body(wa, body, strlen(body));
	in_flight = false;
	watch_io_done(wa, n == strlen(body) ? 0 : -ECANCELED, status, "");
}

static void fire_retry(void) {
	cr_assert(loop_timer_armed(&wa->timer), "no retry scheduled");
	cr_assert(!in_flight);
	loop_timer_disarm(loop, &wa->timer);
	wa->timer.fn(&wa->timer, wa->timer.userdata);
}

static char *item(char *buf, size_t len, const char *name_rv) {
	char name[64];
	const char *colon = strchr(name_rv, ':');

	snprintf(name, sizeof(name), "%.*s", (int)(colon - name_rv), name_rv);
	snprintf(buf, len,
		"{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":\"uid-%s\","
		"\"resourceVersion\":\"%s\"},\"spec\":{}}",
		name, name, colon + 1);
	return buf;
}

/* A list page of "name:rv" items, NULL-terminated. */
static void list_page(const char *rv, const char *cont, const char *const *items) {
	char body[8192], one[512];

	snprintf(body, sizeof(body),
		"{\"kind\":\"GuitarList\",\"apiVersion\":\"kool.karmalabs.local/v1\",\"metadata\":"
		"{\"resourceVersion\":\"%s\"%s%s%s},\"items\":[",
		rv, cont ? ",\"continue\":\"" : "", cont ? cont : "", cont ? "\"" : "");
	for (size_t i = 0; items[i]; i++) {
		if (i)
			strcat(body, ",");
		strcat(body, item(one, sizeof(one), items[i]));
	}
	strcat(body, "]}");
	cr_assert(strstr(path, "limit=500"), "not a list: %s", path);
	answer(200, body);
}

static char *line(char *buf, size_t len, const char *type, const char *name_rv) {
	char one[512];

	snprintf(buf, len, "{\"type\":\"%s\",\"object\":%s}\n", type, item(one, sizeof(one), name_rv));
	return buf;
}

/* Stream lines to the watch in flight; returns what the body callback said. */
static size_t stream(const char *lines) {
	cr_assert(strstr(path, "watch=1"), "not a watch: %s", path);
	watch_io_answer(wa, 200, 0);
	return watch_io_body(wa, lines, strlen(lines));
}

static void stream_ends(int err) {
	in_flight = false;
	watch_io_done(wa, err, 200, "");
}

static const struct event *find(enum cevent_op op, const char *name, const char *rv) {
	for (size_t i = 0; i < n_events; i++)
		if (events[i].op == op && strcmp(events[i].name, name) == 0 &&
			strcmp(events[i].rv, rv) == 0)
			return &events[i];
	return NULL;
}

static const char *const before[] = { "a:1", "b:2", "c:3", NULL };

/* Lists before at version 10 and starts watching from it. */
static void synced(void) {
	watch_start(wa);
	list_page("10", NULL, before);
	cr_assert(watch_synced(wa));
	cr_assert_str_eq(watch_resource_version(wa), "10");
}

/* ---------------- the cases ---------------- */

Test(watch, list_then_watch) {
	watch_start(wa);
	cr_assert_str_eq(path, "/apis/kool.karmalabs.local/v1/namespaces/default/guitars"
			       "?limit=500&labelSelector=app%20in%20%28a%2Cb%29");
	cr_assert(!watch_synced(wa));
	list_page("10", NULL, before);
	cr_assert(watch_synced(wa));
	cr_assert_eq(n_events, 0); /* no initial events */
	cr_assert_eq(objects_count(watch_objects(wa)), 3);
	cr_assert(strstr(path, "?watch=1&allowWatchBookmarks=true&resourceVersion=10&timeoutSeconds="));
	cr_assert(strstr(path, "&labelSelector=app%20in%20%28a%2Cb%29"));
}

Test(watch, initial_events) {
	cfg.initial_events = true;
	synced();
	cr_assert_eq(n_events, 3);
	cr_assert_not_null(find(CEVENT_ADD, "b", "2"));
}

Test(watch, stream_events_move_the_version) {
	char l1[600], l2[600], l3[600], all[2000];

	synced();
	snprintf(all, sizeof(all), "%s%s%s", line(l1, sizeof(l1), "ADDED", "d:11"),
		line(l2, sizeof(l2), "MODIFIED", "a:12"), line(l3, sizeof(l3), "DELETED", "b:13"));
	cr_assert_eq(stream(all), strlen(all));
	cr_assert_eq(n_events, 3);
	cr_assert_not_null(find(CEVENT_ADD, "d", "11"));
	cr_assert_not_null(find(CEVENT_UPDATE, "a", "12"));
	cr_assert_not_null(find(CEVENT_DELETE, "b", "2")); /* with the last version known */
	cr_assert_str_eq(watch_resource_version(wa), "13");
	/* A bookmark moves it too, without an event. */
	cr_assert_gt(stream("{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"20\"}}}\n"),
		0);
	cr_assert_eq(n_events, 3);
	cr_assert_str_eq(watch_resource_version(wa), "20");
}

Test(watch, failed_queue_resumes_the_stream_before_it) {
	char l1[600], l2[600], all[2000];

	synced();
	fail_at = 2;
	snprintf(all, sizeof(all), "%s%s", line(l1, sizeof(l1), "ADDED", "d:11"),
		line(l2, sizeof(l2), "MODIFIED", "a:12"));
	cr_assert_eq(stream(all), 0); /* aborted */
	stream_ends(-ECANCELED);
	cr_assert_eq(n_events, 1);
	cr_assert_str_eq(watch_resource_version(wa), "11"); /* not 12 */
	cr_assert(watch_failing(wa));
	fire_retry();
	cr_assert(strstr(path, "resourceVersion=11&"), "%s", path);
	/* The server sends the change again, and this time it is queued. */
	cr_assert_eq(stream(line(l2, sizeof(l2), "MODIFIED", "a:12")), strlen(l2));
	cr_assert_not_null(find(CEVENT_UPDATE, "a", "12"));
	cr_assert_str_eq(watch_resource_version(wa), "12");
	cr_assert(!watch_failing(wa));
}

Test(watch, expired_relists_and_reports_the_gap) {
	static const char *const after[] = { "a:1", "b:14", "e:15", NULL };

	synced();
	cr_assert_eq(stream("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
			    "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}\n"),
		0);
	stream_ends(-ECANCELED);
	list_page("20", NULL, after);
	cr_assert_eq(n_events, 3);
	cr_assert_not_null(find(CEVENT_UPDATE, "b", "14"));
	cr_assert_not_null(find(CEVENT_ADD, "e", "15"));
	cr_assert_not_null(find(CEVENT_DELETE, "c", "3"));
	cr_assert_str_eq(watch_resource_version(wa), "20");
	cr_assert(strstr(path, "watch=1"));
}

Test(watch, paged_list) {
	static const char *const page1[] = { "a:1", "b:2", NULL };
	static const char *const page2[] = { "c:3", NULL };

	watch_start(wa);
	list_page("10", "tok/1", page1);
	cr_assert(!watch_synced(wa));
	cr_assert_str_eq(watch_resource_version(wa), "");
	cr_assert(strstr(path, "&continue=tok%2F1"), "%s", path);
	list_page("11", NULL, page2);
	cr_assert(watch_synced(wa));
	/* Only the complete list moves the version (the server gives every
	 * page the snapshot's; the last one is taken). */
	cr_assert_str_eq(watch_resource_version(wa), "11");
	cr_assert_eq(objects_count(watch_objects(wa)), 3);
}

/* Relists pages (with a failure to queue at emit k) until watching again;
 * every change of the gap must have been queued. */
Test(watch, failed_queue_at_every_point_of_a_paged_relist) {
	static const char *const page1[] = { "a:1", "b:14", NULL };
	static const char *const page2[] = { "e:15", NULL };

	for (unsigned k = 1; k <= 3; k++) {
		teardown();
		setup();
		synced();
		answer(410, "{\"kind\":\"Status\",\"code\":410}"); /* the watch has expired */
		fail_at = k;
		for (unsigned tries = 0; !watch_synced(wa) || !strstr(path, "watch=1"); tries++) {
			cr_assert_lt(tries, 10);
			if (!in_flight)
				fire_retry();
			if (strstr(path, "continue="))
				list_page("20", NULL, page2);
			else
				list_page("20", "next", page1);
		}
		cr_assert_eq(emits, 4, "k %u: %u emits", k, emits);
		cr_assert_eq(n_events, 3, "k %u", k);
		cr_assert_not_null(find(CEVENT_UPDATE, "b", "14"), "k %u", k);
		cr_assert_not_null(find(CEVENT_ADD, "e", "15"), "k %u", k);
		cr_assert_not_null(find(CEVENT_DELETE, "c", "3"), "k %u", k);
		cr_assert_str_eq(watch_resource_version(wa), "20");
	}
}

/* The continue token could not be copied: before, the list looked complete
 * after page 1 and the sweep sent a false delete for every later object. */
Test(watch, continue_token_out_of_memory) {
	static const char *const page1[] = { "a:1", NULL };
	static const char *const page2[] = { "b:2", "c:3", NULL };

	synced();
	answer(410, "{\"kind\":\"Status\",\"code\":410}");
	fail_strdup_of = "tok-2";
	list_page("20", "tok-2", page1);
	cr_assert_eq(n_events, 0, "a false delete");
	cr_assert(!in_flight);
	fire_retry();
	cr_assert(!strstr(path, "continue="), "%s", path); /* the list starts over */
	list_page("20", "tok-2", page1);
	cr_assert(strstr(path, "continue=tok-2"), "%s", path);
	list_page("20", NULL, page2);
	cr_assert_eq(n_events, 0, "a false delete");
	cr_assert(strstr(path, "watch=1"));
}

Test(watch, expired_continue_token_restarts_and_sweeps) {
	static const char *const page1[] = { "a:1", "x:2", NULL };
	static const char *const again[] = { "a:1", "c:3", NULL };

	cfg.initial_events = true;
	watch_start(wa);
	list_page("10", "tok", page1);
	answer(410, "{\"kind\":\"Status\",\"code\":410}");
	cr_assert(!strstr(path, "continue="), "%s", path);
	list_page("12", NULL, again);
	/* x was announced, and is gone by the time the list completes. */
	cr_assert_not_null(find(CEVENT_DELETE, "x", "2"));
	cr_assert_not_null(find(CEVENT_ADD, "c", "3"));
	cr_assert_eq(objects_count(watch_objects(wa)), 2);
}

Test(watch, backpressure_pauses_and_resumes) {
	char l1[600];

	synced();
	full = true;
	cr_assert_eq(stream(line(l1, sizeof(l1), "ADDED", "d:11")), WATCH_IO_PAUSE);
	cr_assert_eq(n_events, 0);
	cr_assert(watch_resume(wa));
	cr_assert_eq(resumes, 1);
	cr_assert(!watch_resume(wa)); /* not paused any more */
	full = false;
	cr_assert_eq(watch_io_body(wa, l1, strlen(l1)), strlen(l1));
	cr_assert_eq(n_events, 1);
}

Test(watch, http_failures_retry_and_readiness) {
	const char *busy = "{\"kind\":\"Status\",\"message\":\"busy\"}";

	watch_start(wa);
	watch_io_answer(wa, 503, 4000000);
	cr_assert_eq(watch_io_body(wa, busy, strlen(busy)), strlen(busy));
	in_flight = false;
	watch_io_done(wa, 0, 503, "");
	cr_assert(watch_failing(wa));
	/* At least Retry-After. */
	cr_assert_geq(wa->timer.due_usec, loop_now_usec() + 3500000);
	fire_retry();
	cr_assert(strstr(path, "limit=500"));
	list_page("10", NULL, before);
	cr_assert(!watch_failing(wa));
}

Test(watch, forbidden_with_fail_fast_is_fatal) {
	cfg.fail_fast = true;
	watch_start(wa);
	answer(403, "{\"kind\":\"Status\",\"message\":\"forbidden\"}");
	cr_assert_eq(fatals, 1);
}

Test(watch, stream_ended_at_once_backs_off) {
	char l1[600];

	synced();
	stream_ends(0);
	/* It ended at once without an event: it waits. */
	cr_assert(!in_flight);
	fire_retry();
	cr_assert(strstr(path, "resourceVersion=10&"), "%s", path);
	/* One that brought an event resumes at once, from the event's version. */
	cr_assert_eq(stream(line(l1, sizeof(l1), "ADDED", "d:11")), strlen(l1));
	stream_ends(0);
	cr_assert(in_flight);
	cr_assert(strstr(path, "resourceVersion=11&"), "%s", path);
	stream_ends(-ECONNRESET);
	cr_assert(!in_flight);
	fire_retry();
	cr_assert(strstr(path, "resourceVersion=11&"), "%s", path);
}

Test(watch, resumes_from_a_checkpoint) {
	struct hashmap m;
	struct checkpoint_object *o = calloc(1, sizeof(*o));

	hashmap_init(&m);
	o->rv = strdup("3");
	o->name = strdup("c");
	o->ns = strdup("default");
	cr_assert_eq(hashmap_put(&m, "uid-c", o), 0);
	watch_adopt(wa, "30", &m, false);
	watch_start(wa);
	cr_assert(watch_synced(wa));
	cr_assert(strstr(path, "resourceVersion=30&"), "%s", path);
	hashmap_finish(&m);
}

Test(watch, resumes_a_checkpoint_taken_mid_relist) {
	struct hashmap m;
	struct checkpoint_object *o = calloc(1, sizeof(*o));
	static const char *const now[] = { "a:1", NULL };

	hashmap_init(&m);
	o->rv = strdup("3");
	o->name = strdup("c");
	o->ns = strdup("default");
	cr_assert_eq(hashmap_put(&m, "uid-c", o), 0);
	watch_adopt(wa, "30", &m, true);
	watch_start(wa);
	list_page("40", NULL, now);
	cr_assert_not_null(find(CEVENT_ADD, "a", "1"));
	cr_assert_not_null(find(CEVENT_DELETE, "c", "3"));
	hashmap_finish(&m);
}

Test(watch, stop_cancels) {
	watch_start(wa);
	watch_stop(wa);
	cr_assert_eq(cancels, 1);
	cr_assert(!loop_timer_armed(&wa->timer));
}

/* ---------------- bounds against a server that never finishes (issue 9) ---------------- */

/* Fires the deadline timer as the loop would, with the deadline passed
 * (passed: true) or still ahead. */
static void fire_deadline(bool passed) {
	cr_assert(loop_timer_armed(&wa->deadline_timer), "no deadline armed");
	if (passed)
		wa->deadline_usec = loop_now_usec() - 1;
	loop_timer_disarm(loop, &wa->deadline_timer);
	wa->deadline_timer.fn(&wa->deadline_timer, wa->deadline_timer.userdata);
}

Test(watch, list_that_never_answers_times_out) {
	cfg.request_timeout_usec = 2000000;
	watch_start(wa);
	cr_assert_eq(wa->limit_usec, 2000000);
	fire_deadline(false); /* not due: nothing happens, armed again */
	cr_assert(in_flight);
	cr_assert(loop_timer_armed(&wa->deadline_timer));
	fire_deadline(true);
	cr_assert_eq(cancels, 1);
	cr_assert(!in_flight);
	cr_assert(watch_failing(wa));
	cr_assert(!loop_timer_armed(&wa->deadline_timer));
	fire_retry(); /* retried with backoff, from the first page */
	cr_assert_eq(starts, 2);
	cr_assert(strstr(path, "limit=500") && !strstr(path, "continue="), "%s", path);
	list_page("10", NULL, before);
	cr_assert(watch_synced(wa));
}

Test(watch, list_that_trickles_times_out) {
	/* Bytes keep coming, but the list must end within its limit. */
	watch_start(wa);
	watch_io_answer(wa, 200, 0);
	cr_assert_eq(watch_io_body(wa, "{\"items\":[", 10), 10);
	fire_deadline(true);
	cr_assert_eq(cancels, 1);
	cr_assert(watch_failing(wa));
	cr_assert_eq(wa->state, ST_WAITING);
}

Test(watch, paused_list_does_not_time_out) {
	watch_start(wa);
	watch_io_answer(wa, 200, 0);
	full = true;
	cr_assert_eq(watch_io_body(wa, "{\"items\":[", 10), WATCH_IO_PAUSE);
	fire_deadline(true); /* waiting for the queue is not the server's fault */
	cr_assert_eq(cancels, 0);
	cr_assert(in_flight);
	full = false;
	cr_assert(watch_resume(wa));
	cr_assert_eq(resumes, 1);
	cr_assert(loop_timer_armed(&wa->deadline_timer));
}

Test(watch, silent_watch_is_restarted) {
	char l1[600];

	cfg.request_timeout_usec = 1000000;
	cfg.watch_timeout_sec = 10;
	synced();
	/* The limit: the timeoutSeconds asked for plus the request timeout. */
	cr_assert_geq(wa->limit_usec, 11000000);
	cr_assert_leq(wa->limit_usec, 21000000);
	cr_assert_eq(stream(line(l1, sizeof(l1), "ADDED", "d:11")), strlen(l1));
	cr_assert_gt(wa->deadline_usec, loop_now_usec() + 10000000); /* moved on by the event */
	fire_deadline(true);
	cr_assert_eq(cancels, 1);
	cr_assert(watch_failing(wa));
	fire_retry();
	cr_assert(strstr(path, "watch=1") && strstr(path, "resourceVersion=11&"), "%s", path);
}

Test(watch, repeated_continue_token_fails_the_list) {
	static const char *const none[] = { NULL };

	watch_start(wa);
	list_page("10", "tok-a", none);
	cr_assert(strstr(path, "continue=tok-a"), "%s", path);
	list_page("10", "tok-b", before);
	list_page("10", "tok-a", none); /* a loop: a, b, a, ... */
	cr_assert(!in_flight);
	cr_assert(watch_failing(wa));
	cr_assert(!watch_synced(wa));
	cr_assert_null(wa->list_continue);
	fire_retry();
	cr_assert(!strstr(path, "continue="), "the list starts over: %s", path);
	/* A new list may see the same tokens again. */
	list_page("11", "tok-a", none);
	list_page("11", NULL, before);
	cr_assert(watch_synced(wa));
}

Test(watch, too_many_list_pages_fail_the_list) {
	static const char *const none[] = { NULL };
	char tok[32];
	unsigned pages = 0;

	watch_start(wa);
	while (in_flight) {
		snprintf(tok, sizeof(tok), "tok-%u", pages++);
		list_page("10", tok, none);
		cr_assert_leq(pages, WATCH_LIST_MAX_PAGES, "never bounded");
	}
	cr_assert_eq(pages, WATCH_LIST_MAX_PAGES);
	cr_assert(watch_failing(wa));
	cr_assert(!watch_synced(wa));
	cr_assert_null(wa->list_continue);
}

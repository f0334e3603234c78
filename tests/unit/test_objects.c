#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/objects.h"

/* What the emit function was handed, in order. */
struct call {
	enum cevent_op op;
	char name[KOBJ_NAME_MAX];
	char uid[64];
	char rv[64];
	char json[2048];
};

static struct objects objs;
static uint64_t changes;
static struct call calls[256];
static size_t n_calls;
static unsigned emit_count; /* every call, failed or not */
static unsigned fail_at;    /* fail the call with this 1-based number; 0: never */
static struct call failed;  /* what the failed call was handed */

static int record_emit(enum cevent_op op, const struct kobj *obj, void *userdata) {
	struct call *c;

	(void)userdata;
	c = ++emit_count == fail_at ? &failed : &calls[n_calls++];
	cr_assert_lt(n_calls, sizeof(calls) / sizeof(calls[0]));
	c->op = op;
	snprintf(c->name, sizeof(c->name), "%s", obj->name);
	snprintf(c->uid, sizeof(c->uid), "%s", obj->uid);
	snprintf(c->rv, sizeof(c->rv), "%s", obj->resource_version);
	snprintf(c->json, sizeof(c->json), "%.*s", (int)obj->json_len, obj->json);
	return c == &failed ? -ENOMEM : 0;
}

static void setup(void) {
	objects_init(&objs, true, NULL, &changes);
	changes = 0;
	n_calls = 0;
	emit_count = 0;
	fail_at = 0;
}

static void setup_refs(void) {
	setup();
	objs.keep_json = false;
}

static void teardown(void) {
	objects_finish(&objs);
}

/* A Guitar named name (uid "uid-" name) at resourceVersion rv. */
static struct kobj guitar(const char *name, const char *rv) {
	static char json[8][256];
	static unsigned next;
	char *j = json[next++ % 8];
	struct kobj k;

	memset(&k, 0, sizeof(k));
	snprintf(j, 256,
		"{\"apiVersion\":\"kool.karmalabs.local/v1\",\"kind\":\"Guitar\",\"metadata\":"
		"{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":\"uid-%s\",\"resourceVersion\":"
		"\"%s\"}}",
		name, name, rv);
	k.json = j;
	k.json_len = strlen(j);
	strcpy(k.kind, "Guitar");
	strcpy(k.api_version, "kool.karmalabs.local/v1");
	snprintf(k.name, sizeof(k.name), "%s", name);
	strcpy(k.namespace, "default");
	snprintf(k.uid, sizeof(k.uid), "uid-%s", name);
	snprintf(k.resource_version, sizeof(k.resource_version), "%s", rv);
	return k;
}

/* A list of "name:rv" items: returns 0 or the first failure. */
static int list_items(const char *const *items, size_t n, enum objects_report report) {
	for (size_t i = 0; i < n; i++) {
		char name[64], *colon;
		struct kobj k;
		int r;

		snprintf(name, sizeof(name), "%s", items[i]);
		colon = strchr(name, ':');
		*colon = '\0';
		k = guitar(name, colon + 1);
		r = objects_list_item(&objs, &k, report, record_emit, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static void quiet_list(const char *const *items, size_t n) {
	objects_list_begin(&objs);
	cr_assert_eq(list_items(items, n, OBJECTS_QUIET), 0);
	cr_assert_eq(objects_sweep(&objs, false, "Guitar", "kool.karmalabs.local/v1", record_emit,
			     NULL),
		0);
}

static const struct call *find(enum cevent_op op, const char *name, const char *rv) {
	for (size_t i = 0; i < n_calls; i++)
		if (calls[i].op == op && strcmp(calls[i].name, name) == 0 &&
			strcmp(calls[i].rv, rv) == 0)
			return &calls[i];
	return NULL;
}

static const char *rv_of(const char *name) {
	static char rv[64];
	char key[80];

	snprintf(key, sizeof(key), "uid-%s", name);
	return objects_rv(&objs, key, rv, sizeof(rv)) ? rv : NULL;
}

static const char *const before[] = { "a:1", "b:2", "c:3", "d:4" };
/* In the gap: b changed, c was deleted, e was added; a and d unchanged. */
static const char *const after[] = { "a:1", "b:7", "d:4", "e:8" };

TestSuite(objects, .init = setup, .fini = teardown);

Test(objects, first_list_is_quiet) {
	quiet_list(before, 4);
	cr_assert_eq(n_calls, 0);
	cr_assert_eq(objects_count(&objs), 4);
	cr_assert_str_eq(rv_of("c"), "3");
	cr_assert_gt(changes, 0);
}

Test(objects, initial_events_are_adds) {
	objects_list_begin(&objs);
	cr_assert_eq(list_items(before, 4, OBJECTS_ADDS), 0);
	cr_assert_eq(n_calls, 4);
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(calls[i].op, CEVENT_ADD);
}

Test(objects, relist_reports_the_gap) {
	quiet_list(before, 4);
	objects_list_begin(&objs);
	cr_assert_eq(list_items(after, 4, OBJECTS_CHANGES), 0);
	cr_assert_eq(n_calls, 2);
	cr_assert_not_null(find(CEVENT_UPDATE, "b", "7"));
	cr_assert_not_null(find(CEVENT_ADD, "e", "8"));
	cr_assert_eq(objects_sweep(&objs, true, "Guitar", "kool.karmalabs.local/v1", record_emit, NULL),
		1);
	cr_assert_eq(n_calls, 3);
	/* The delete carries the last state and the last resourceVersion. */
	cr_assert_not_null(find(CEVENT_DELETE, "c", "3"));
	cr_assert_str_eq(find(CEVENT_DELETE, "c", "3")->uid, "uid-c");
	cr_assert(strstr(find(CEVENT_DELETE, "c", "3")->json, "\"name\":\"c\""));
	cr_assert_eq(objects_count(&objs), 4);
	cr_assert_null(rv_of("c"));
	cr_assert_str_eq(rv_of("b"), "7");
}

Test(objects, sweep_with_references_only, .init = setup_refs) {
	quiet_list(before, 4);
	objects_list_begin(&objs);
	cr_assert_eq(list_items(after, 4, OBJECTS_CHANGES), 0);
	n_calls = 0;
	cr_assert_eq(objects_sweep(&objs, true, "Guitar", "kool.karmalabs.local/v1", record_emit, NULL),
		1);
	cr_assert_eq(n_calls, 1);
	cr_assert_str_eq(calls[0].json, "{\"kind\":\"Guitar\",\"namespace\":\"default\",\"name\":\"c\","
					"\"apiVersion\":\"kool.karmalabs.local/v1\"}");
}

Test(objects, quiet_sweep_forgets_without_events) {
	quiet_list(before, 4);
	objects_list_begin(&objs);
	cr_assert_eq(list_items(after, 4, OBJECTS_QUIET), 0);
	cr_assert_eq(objects_sweep(&objs, false, "Guitar", "v1", record_emit, NULL), 1);
	cr_assert_eq(n_calls, 0);
	cr_assert_null(rv_of("c"));
}

Test(objects, paged_relist_sweeps_once_complete) {
	static const char *const page1[] = { "a:1", "b:7" };
	static const char *const page2[] = { "d:4", "e:8" };

	quiet_list(before, 4);
	/* One generation for every page: d, seen on page 2 only, is not
	 * deleted; c, on no page, is. */
	objects_list_begin(&objs);
	cr_assert_eq(list_items(page1, 2, OBJECTS_CHANGES), 0);
	cr_assert_eq(list_items(page2, 2, OBJECTS_CHANGES), 0);
	cr_assert_eq(objects_sweep(&objs, true, "Guitar", "v1", record_emit, NULL), 1);
	cr_assert_eq(n_calls, 3);
	cr_assert_not_null(find(CEVENT_DELETE, "c", "3"));
	cr_assert_null(find(CEVENT_DELETE, "d", "4"));
}

Test(objects, watch_events) {
	struct kobj a1 = guitar("a", "1"), a2 = guitar("a", "2"), z = guitar("z", "5");

	cr_assert_eq(objects_update(&objs, &a1, true, record_emit, NULL), 1);
	cr_assert_eq(objects_update(&objs, &a1, false, record_emit, NULL), 0); /* replayed */
	cr_assert_eq(objects_update(&objs, &a2, false, record_emit, NULL), 1);
	cr_assert_eq(objects_update(&objs, &z, false, record_emit, NULL), 1); /* unknown: an add */
	cr_assert_eq(n_calls, 3);
	cr_assert_eq(calls[0].op, CEVENT_ADD);
	cr_assert_eq(calls[1].op, CEVENT_UPDATE);
	cr_assert_eq(calls[2].op, CEVENT_ADD);
	/* A delete carries the last version known, whatever the event says. */
	struct kobj gone = guitar("a", "9");
	cr_assert_eq(objects_delete(&objs, &gone, record_emit, NULL), 0);
	cr_assert_eq(calls[3].op, CEVENT_DELETE);
	cr_assert_str_eq(calls[3].rv, "2");
	cr_assert_null(rv_of("a"));
}

Test(objects, key_without_uid) {
	struct kobj k = guitar("nouid", "1");

	k.uid[0] = '\0';
	cr_assert_eq(objects_update(&objs, &k, true, record_emit, NULL), 1);
	char rv[64];
	cr_assert(objects_rv(&objs, "default/nouid", rv, sizeof(rv)));
	objects_list_begin(&objs);
	cr_assert_eq(objects_sweep(&objs, true, "Guitar", "v1", record_emit, NULL), 1);
	cr_assert_str_eq(calls[1].uid, ""); /* no uid invented from the key */
}

/* ---------------- a failure to queue, at every point ---------------- */

Test(objects, failed_watch_event_is_reported_again) {
	struct kobj a1 = guitar("a", "1"), a2 = guitar("a", "2");

	fail_at = 1;
	cr_assert_eq(objects_update(&objs, &a1, true, record_emit, NULL), -ENOMEM);
	cr_assert_null(rv_of("a")); /* not seen */
	cr_assert_eq(objects_update(&objs, &a1, true, record_emit, NULL), 1);
	cr_assert_not_null(find(CEVENT_ADD, "a", "1"));
	fail_at = 3;
	cr_assert_eq(objects_update(&objs, &a2, false, record_emit, NULL), -ENOMEM);
	cr_assert_str_eq(rv_of("a"), "1");
	cr_assert_eq(objects_update(&objs, &a2, false, record_emit, NULL), 1);
	cr_assert_not_null(find(CEVENT_UPDATE, "a", "2"));
	fail_at = 5;
	cr_assert_eq(objects_delete(&objs, &a2, record_emit, NULL), -ENOMEM);
	cr_assert_str_eq(rv_of("a"), "2"); /* still known: its delete comes again */
	cr_assert_eq(objects_delete(&objs, &a2, record_emit, NULL), 0);
	cr_assert_not_null(find(CEVENT_DELETE, "a", "2"));
	cr_assert_eq(n_calls, 3);
}

/* Relists the way watch.c does: a failed item retries its page (same list,
 * same generation); a failed sweep starts a new list. Each attempt may fail
 * at the emit numbered fail_at. Returns the attempts made. */
static unsigned relist_until_done(const char *const *page1, size_t n1, const char *const *page2,
	size_t n2, bool restart_on_page_failure) {
	bool fresh = true;
	unsigned attempts = 0;

	for (;;) {
		cr_assert_lt(++attempts, 20);
		if (fresh)
			objects_list_begin(&objs);
		if (list_items(page1, n1, OBJECTS_CHANGES) < 0 ||
			list_items(page2, n2, OBJECTS_CHANGES) < 0) {
			fresh = restart_on_page_failure;
			continue;
		}
		if (objects_sweep(&objs, true, "Guitar", "v1", record_emit, NULL) < 0) {
			fresh = true;
			continue;
		}
		return attempts;
	}
}

static void check_nothing_lost(void) {
	cr_assert_not_null(find(CEVENT_UPDATE, "b", "7"), "fail_at %u: update lost", fail_at);
	cr_assert_not_null(find(CEVENT_ADD, "e", "8"), "fail_at %u: add lost", fail_at);
	cr_assert_not_null(find(CEVENT_DELETE, "c", "3"), "fail_at %u: delete lost", fail_at);
	cr_assert_not_null(find(CEVENT_DELETE, "f", "5"), "fail_at %u: delete lost", fail_at);
	/* Nothing false: a and d were never changed. */
	for (size_t i = 0; i < n_calls; i++)
		cr_assert(strcmp(calls[i].name, "a") && strcmp(calls[i].name, "d"),
			"fail_at %u: a false event for %s", fail_at, calls[i].name);
	cr_assert_eq(objects_count(&objs), 4);
	cr_assert_str_eq(rv_of("b"), "7");
	cr_assert_null(rv_of("c"));
	cr_assert_null(rv_of("f"));
}

static void relist_failing_everywhere(bool restart_on_page_failure) {
	static const char *const old[] = { "a:1", "b:2", "c:3", "d:4", "f:5" };
	static const char *const page1[] = { "a:1", "b:7" };
	static const char *const page2[] = { "d:4", "e:8" };
	/* 2 changes listed and 2 deletes swept: 4 emits when nothing fails. */
	for (unsigned k = 1; k <= 4; k++) {
		objects_finish(&objs);
		setup();
		quiet_list(old, 5);
		fail_at = k;
		cr_assert_eq(relist_until_done(page1, 2, page2, 2, restart_on_page_failure), 2);
		cr_assert_eq(emit_count, 5, "fail_at %u: %u emits", k, emit_count);
		cr_assert_eq(n_calls, 4);
		check_nothing_lost();
		/* The change whose event failed was reported again, the same. */
		cr_assert_not_null(find(failed.op, failed.name, failed.rv), "fail_at %u", k);
	}
}

Test(objects, failed_queue_during_relist_loses_nothing) {
	relist_failing_everywhere(false);
}

Test(objects, failed_queue_during_relist_restarted_from_page_one_loses_nothing) {
	relist_failing_everywhere(true);
}

Test(objects, failed_sweep_stops_and_keeps_the_rest) {
	static const char *const old[] = { "a:1", "b:2", "c:3" };
	static const char *const now[] = { "a:1" };

	quiet_list(old, 3);
	objects_list_begin(&objs);
	cr_assert_eq(list_items(now, 1, OBJECTS_CHANGES), 0);
	fail_at = 2;
	cr_assert_eq(objects_sweep(&objs, true, "Guitar", "v1", record_emit, NULL), -ENOMEM);
	cr_assert_eq(n_calls, 1);
	cr_assert_eq(objects_count(&objs), 2); /* the one deleted, the one not */
	/* The next complete list finds the other again. */
	objects_list_begin(&objs);
	cr_assert_eq(list_items(now, 1, OBJECTS_CHANGES), 0);
	cr_assert_eq(objects_sweep(&objs, true, "Guitar", "v1", record_emit, NULL), 1);
	cr_assert_eq(n_calls, 2);
	cr_assert_not_null(find(CEVENT_DELETE, "b", "2"));
	cr_assert_not_null(find(CEVENT_DELETE, "c", "3"));
}

Test(objects, adopt_takes_over_a_checkpoint) {
	struct hashmap m;
	struct checkpoint_object *o = calloc(1, sizeof(*o));

	hashmap_init(&m);
	o->rv = strdup("3");
	o->name = strdup("c");
	o->ns = strdup("default");
	cr_assert_eq(hashmap_put(&m, "uid-c", o), 0);
	cr_assert_eq(objects_adopt(&objs, &m), 0);
	cr_assert_eq(m.count, 0);
	cr_assert_str_eq(rv_of("c"), "3");
	/* A relist that does not find it reports it, as a reference. */
	objects_list_begin(&objs);
	cr_assert_eq(objects_sweep(&objs, true, "Guitar", "v1", record_emit, NULL), 1);
	cr_assert_str_eq(calls[0].json,
		"{\"kind\":\"Guitar\",\"namespace\":\"default\",\"name\":\"c\",\"apiVersion\":\"v1\"}");
	hashmap_finish(&m);
}

/* ---------------- the last bytes, read back ---------------- */

static struct call previous; /* what objects_last_bytes() gave the emit fn */
static int previous_found;

static int emit_with_previous(enum cevent_op op, const struct kobj *obj, void *userdata) {
	struct buf out;

	buf_init(&out, 0);
	previous_found = objects_last_bytes(&objs, obj->uid, &out) == 0;
	snprintf(previous.json, sizeof(previous.json), "%.*s", (int)out.len, out.data ? out.data : "");
	buf_finish(&out);
	return record_emit(op, obj, userdata);
}

/* An update's emit fn gets the previous state (objects_last_bytes(), for
 * --with-changes), read back from the spill file; an add has none. */
Test(objects, previous_state_of_an_update_is_read_back) {
	struct kobj a1 = guitar("a", "1"), a2 = guitar("a", "2");
	char want[256];

	snprintf(want, sizeof(want), "%.*s", (int)a1.json_len, a1.json);
	cr_assert_eq(objects_update(&objs, &a1, true, emit_with_previous, NULL), 1);
	cr_assert_eq(previous_found, 0);
	cr_assert_eq(objects_update(&objs, &a2, false, emit_with_previous, NULL), 1);
	cr_assert_eq(previous_found, 1);
	cr_assert_str_eq(previous.json, want);
	cr_assert_eq(calls[1].op, CEVENT_UPDATE);
}

Test(objects, previous_state_with_references_only_is_none, .init = setup_refs) {
	struct kobj a1 = guitar("a", "1"), a2 = guitar("a", "2");

	cr_assert_eq(objects_update(&objs, &a1, true, emit_with_previous, NULL), 1);
	cr_assert_eq(objects_update(&objs, &a2, false, emit_with_previous, NULL), 1);
	cr_assert_eq(previous_found, 0);
}

/* An object larger than the spill file's write buffer, and many small ones
 * behind it: the delete a relist finds for each carries its last bytes. */
Test(objects, relist_delete_carries_last_state_of_large_and_small_objects) {
	static char big[40000];
	struct kobj k = guitar("big", "5");
	char name[32];

	memset(big, ' ', sizeof(big) - 1);
	memcpy(big, k.json, k.json_len);
	k.json = big;
	k.json_len = sizeof(big) - 1;
	objects_list_begin(&objs);
	cr_assert_eq(objects_list_item(&objs, &k, OBJECTS_QUIET, record_emit, NULL), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		k = guitar(name, "6");
		cr_assert_eq(objects_list_item(&objs, &k, OBJECTS_QUIET, record_emit, NULL), 0);
	}
	objects_list_begin(&objs); /* a relist that finds none of them */
	cr_assert_eq(objects_sweep(&objs, true, "Guitar", "v1", record_emit, NULL), 201);
	cr_assert_eq(n_calls, 201);
	cr_assert_not_null(find(CEVENT_DELETE, "big", "5"));
	cr_assert(strstr(find(CEVENT_DELETE, "big", "5")->json, "\"name\":\"big\""));
	cr_assert(strstr(find(CEVENT_DELETE, "s199", "6")->json, "\"name\":\"s199\""));
	cr_assert_str_eq(find(CEVENT_DELETE, "s7", "6")->uid, "uid-s7");
	cr_assert_eq(objects_count(&objs), 0);
}

/* The spill file changed under the table: the delete a relist finds is not
 * lost, and carries no bytes it cannot vouch for. */
Test(objects, damaged_spill_file_still_sends_the_delete) {
	static const char *const one[] = { "c:3" };
	struct objects_store_frozen *fz = NULL;

	quiet_list(one, 1);
	cr_assert_eq(objects_store_freeze(&objs.store, &fz), 0); /* on the file now */
	objects_store_frozen_free(fz);
	cr_assert_eq(pwrite(objs.store.spill->fd, "XXXX", 4, 40), 4);
	objects_list_begin(&objs);
	cr_assert_eq(objects_sweep(&objs, true, "Guitar", "v1", record_emit, NULL), 1);
	cr_assert_eq(calls[0].op, CEVENT_DELETE);
	cr_assert_str_eq(calls[0].uid, "uid-c");
	cr_assert_str_eq(calls[0].rv, "3");
	cr_assert_null(strstr(calls[0].json, "XXXX"));
}

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter/checkpoint.h"
#include "adapter/objects.h"

static char dir[64];

static void make_dir(void) {
	snprintf(dir, sizeof(dir), "/tmp/test-checkpoint-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void drop_dir(void) {
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static const struct cevent_params params = {
	.mode = CONFIG_MODE_RESOURCE,
	.source = "https://127.0.0.1:6443",
};

static struct checkpoint_object *obj(const char *name, const char *rv, size_t pad) {
	struct checkpoint_object *o = calloc(1, sizeof(*o));
	char *json;

	o->rv = strdup(rv);
	o->name = strdup(name);
	o->ns = strdup("guitar-eventing");
	if (pad) {
		json = malloc(pad + 200);
		o->json_len = (size_t)sprintf(json,
			"{\"metadata\":{\"name\":\"%s\",\"namespace\":\"guitar-eventing\","
			"\"uid\":\"%s\",\"resourceVersion\":\"%s\"},\"spec\":\"%*s\"}",
			name, name, rv, (int)pad, "x");
		o->json = json;
	}
	return o;
}

static struct cevent *event(const char *name, const char *uid) {
	char json[512];
	struct kobj k;
	struct cevent *ev = NULL;

	snprintf(json, sizeof(json),
		"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
		"\"namespace\":\"guitar-eventing\",\"uid\":\"%s\",\"resourceVersion\":\"9\"}}",
		name, uid);
	memset(&k, 0, sizeof(k));
	k.json = json;
	k.json_len = strlen(json);
	strcpy(k.kind, "ConfigMap");
	strcpy(k.api_version, "v1");
	snprintf(k.name, sizeof(k.name), "%s", name);
	strcpy(k.namespace, "guitar-eventing");
	snprintf(k.uid, sizeof(k.uid), "%s", uid);
	strcpy(k.resource_version, "9");
	cr_assert_eq(cevent_create(&params, &k, CEVENT_ADD, &ev), 0);
	return ev;
}

/* The snapshot keeps what it referenced, even once the owner has dropped or
 * replaced it; the file reads back whole. */
Test(checkpoint, snapshot_outlives_the_owner, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_snapshot *cs = NULL;
	struct checkpoint_state *cp = NULL;
	struct checkpoint_object *a = obj("u-1", "5", 16), *b = obj("u-2", "6", 0);
	struct cevent *ev = event("c", "u-3");
	struct checkpoint_watch *sw;
	struct checkpoint_object *o;
	struct checkpoint_load_error err;

	cr_assert_eq(checkpoint_snapshot_create(dir, &cs), 0);
	cr_assert_eq(checkpoint_snapshot_watch(cs, "v1/ConfigMap|guitar-eventing|", "7", true), 0);
	cr_assert_eq(checkpoint_snapshot_object(cs, "u-1", a), 0);
	cr_assert_eq(checkpoint_snapshot_object(cs, "u-2", b), 0);
	cr_assert_eq(checkpoint_snapshot_event(cs, ev), 0);
	cevent_destroy(ev); /* delivered meanwhile: the snapshot serialised it */
	checkpoint_object_free(a); /* replaced or deleted by the loop */
	checkpoint_object_free(b);
	cr_assert_eq(checkpoint_snapshot_objects(cs), 2);
	cr_assert_eq(checkpoint_snapshot_write(cs), 0);
	checkpoint_snapshot_free(cs); /* the last references: ASan checks */

	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), 0, "%s", err.reason);
	sw = checkpoint_find_watch(cp, "v1/ConfigMap|guitar-eventing|");
	cr_assert_not_null(sw);
	cr_assert(sw->relist);
	cr_assert_str_eq(sw->rv, "7");
	o = hashmap_get(&sw->objects, "u-1");
	cr_assert_not_null(o);
	cr_assert_str_eq(o->rv, "5");
	cr_assert_not_null(o->json);
	o = hashmap_get(&sw->objects, "u-2");
	cr_assert_not_null(o);
	cr_assert_null(o->json);
	cr_assert_eq(cp->n_events, 1);
	cr_assert_str_eq(cp->events[0]->name, "c");
	checkpoint_state_free(cp);
}

struct run {
	struct loop *loop;
	struct loop_timer tick;
	struct hashmap *objects;
	unsigned ticks, ticks_in_flight, replaced;
	int result;
	bool done;
	struct checkpoint_writer *w;
};

/* The loop keeps running while the thread writes, and changes the table. */
static void handle_tick(struct loop_timer *t, void *userdata) {
	struct run *r = userdata;
	char key[32];

	r->ticks++;
	if (checkpoint_writer_busy(r->w)) {
		r->ticks_in_flight++;
		snprintf(key, sizeof(key), "u-%u", r->replaced % 4000);
		checkpoint_object_free(hashmap_get(r->objects, key));
		hashmap_put(r->objects, key, obj("new", "999", 8));
		r->replaced++;
	}
	loop_timer_arm_in(r->loop, t, 1000);
}

static void handle_done(int result, void *userdata) {
	struct run *r = userdata;

	r->result = result;
	r->done = true;
	loop_quit(r->loop, 0);
}

Test(checkpoint, written_while_the_loop_runs, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_snapshot *cs = NULL, *second = NULL;
	struct checkpoint_state *cp = NULL;
	struct hashmap objects;
	struct run r = { 0 };
	struct hashmap_iter it = { 0 };
	const char *key;
	void *v;
	char name[32];
	struct checkpoint_load_error err;

	hashmap_init(&objects);
	r.objects = &objects;
	for (unsigned i = 0; i < 4000; i++) {
		snprintf(name, sizeof(name), "u-%u", i);
		cr_assert_eq(hashmap_put(&objects, name, obj(name, "1", 2000)), 0);
	}
	cr_assert_eq(loop_create(&r.loop), 0);
	cr_assert_eq(checkpoint_writer_create(r.loop, handle_done, &r, &r.w), 0);
	cr_assert_eq(checkpoint_snapshot_create(dir, &cs), 0);
	cr_assert_eq(checkpoint_snapshot_watch(cs, "w", "1", false), 0);
	while (hashmap_next(&objects, &it, &key, &v))
		cr_assert_eq(checkpoint_snapshot_object(cs, key, v), 0);
	cr_assert_eq(checkpoint_writer_start(r.w, cs), 0);
	cr_assert(checkpoint_writer_busy(r.w));
	/* One at a time. */
	cr_assert_eq(checkpoint_snapshot_create(dir, &second), 0);
	cr_assert_eq(checkpoint_writer_start(r.w, second), -EBUSY);
	checkpoint_snapshot_free(second);
	loop_timer_init(&r.tick, handle_tick, &r);
	loop_timer_arm_in(r.loop, &r.tick, 0);
	cr_assert_eq(loop_run(r.loop), 0);
	cr_assert(r.done);
	cr_assert_eq(r.result, 0);
	cr_assert_not(checkpoint_writer_busy(r.w));
	cr_log_info("%u ticks while writing", r.ticks_in_flight);
	loop_timer_disarm(r.loop, &r.tick);

	/* The file holds the state as it was at the snapshot. */
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), 0, "%s", err.reason);
	cr_assert_eq(cp->n_objects, 4000);
	cr_assert_str_eq(((struct checkpoint_object *)hashmap_get(
				  &checkpoint_find_watch(cp, "w")->objects, "u-0"))->rv, "1");
	checkpoint_state_free(cp);

	/* A write in flight at the end is joined, without its callback. */
	r.done = false;
	cr_assert_eq(checkpoint_snapshot_create(dir, &cs), 0);
	cr_assert_eq(checkpoint_snapshot_watch(cs, "w", "2", false), 0);
	cr_assert_eq(checkpoint_writer_start(r.w, cs), 0);
	checkpoint_writer_wait(r.w);
	cr_assert(r.done);
	cr_assert_eq(checkpoint_snapshot_create(dir, &cs), 0);
	cr_assert_eq(checkpoint_writer_start(r.w, cs), 0);
	r.done = false;
	checkpoint_writer_destroy(r.w);
	cr_assert_not(r.done);
	loop_destroy(r.loop);
	checkpoint_objects_clear(&objects);
}

/* ---------------- the file: writer and loader ---------------- */

static struct checkpoint_object *obj_json(const char *name, const char *rv, const char *json) {
	struct checkpoint_object *o = calloc(1, sizeof(*o));

	o->rv = strdup(rv);
	o->name = strdup(name);
	o->ns = strdup("guitar-eventing");
	if (json) {
		o->json = strdup(json);
		o->json_len = strlen(json);
	}
	return o;
}

static struct cevent *event_rv(const char *name, const char *uid, const char *rv) {
	char json[512];
	struct kobj k;
	struct cevent *ev = NULL;

	snprintf(json, sizeof(json),
		"{\"apiVersion\":\"kool.karmalabs.local/v1\",\"kind\":\"Guitar\",\"metadata\":{\"name\":\"%s\","
		"\"namespace\":\"guitar-eventing\",\"uid\":\"%s\",\"resourceVersion\":\"%s\"},"
		"\"spec\":{\"brand\":\"martin \\\"quoted\\\"\"}}",
		name, uid, rv);
	memset(&k, 0, sizeof(k));
	k.json = json;
	k.json_len = strlen(json);
	strcpy(k.kind, "Guitar");
	strcpy(k.api_version, "kool.karmalabs.local/v1");
	snprintf(k.name, sizeof(k.name), "%s", name);
	strcpy(k.namespace, "guitar-eventing");
	snprintf(k.uid, sizeof(k.uid), "%s", uid);
	snprintf(k.resource_version, sizeof(k.resource_version), "%s", rv);
	cr_assert_eq(cevent_create(&params, &k, CEVENT_UPDATE, &ev), 0);
	return ev;
}

Test(checkpoint, round_trip, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_file *w = NULL;
	struct checkpoint_state *cp = NULL;
	struct checkpoint_object *full = obj_json("d15", "42", "{\"metadata\":{\"name\":\"d15\",\"namespace\":"
						 "\"guitar-eventing\",\"uid\":\"u-1\",\"resourceVersion\":\"42\"}}");
	struct checkpoint_object *ref = obj_json("d16", "43", NULL);
	struct cevent *ev = event_rv("d15", "u-1", "44");
	struct checkpoint_watch *sw;
	struct checkpoint_object *o;
	struct checkpoint_load_error err;

	cr_assert_eq(checkpoint_file_open(dir, &w), 0);
	cr_assert_eq(checkpoint_file_watch(w, "kool.karmalabs.local/v1/Guitar|guitar-eventing|", "44", false), 0);
	cr_assert_eq(checkpoint_file_object(w, "u-1", full), 0);
	cr_assert_eq(checkpoint_file_object(w, "u-2", ref), 0);
	cr_assert_eq(checkpoint_file_event(w, ev), 0);
	cr_assert_eq(checkpoint_file_commit(w), 0);

	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), 0);
	cr_assert_eq(cp->n_watches, 1);
	cr_assert_eq(cp->n_objects, 2);
	sw = checkpoint_find_watch(cp, "kool.karmalabs.local/v1/Guitar|guitar-eventing|");
	cr_assert_not_null(sw);
	cr_assert_str_eq(sw->rv, "44");
	o = hashmap_get(&sw->objects, "u-1");
	cr_assert_not_null(o);
	cr_assert_str_eq(o->rv, "42");
	cr_assert_str_eq(o->json, full->json); /* the object's bytes, untouched */
	o = hashmap_get(&sw->objects, "u-2");
	cr_assert_not_null(o);
	cr_assert_null(o->json); /* a reference stays a reference */
	cr_assert_str_eq(o->name, "d16");
	cr_assert_eq(cp->n_events, 1);
	/* The event comes back as it was: same id, time, subject and data. */
	cr_assert_str_eq(cp->events[0]->id, ev->id);
	cr_assert_str_eq(cp->events[0]->time, ev->time);
	cr_assert_str_eq(cp->events[0]->subject, ev->subject);
	cr_assert_str_eq(cp->events[0]->type, "dev.knative.apiserver.resource.update");
	cr_assert_eq(cp->events[0]->data_len, ev->data_len);
	cr_assert_eq(memcmp(cp->events[0]->data, ev->data, ev->data_len), 0);
	checkpoint_state_free(cp);
	checkpoint_object_free(full);
	checkpoint_object_free(ref);
	cevent_destroy(ev);
}

Test(checkpoint, missing_and_damaged, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_state *cp = NULL;
	struct checkpoint_file *w = NULL;
	char path[128], cmd[256];
	struct checkpoint_load_error err;

	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -ENOENT);
	cr_assert_eq(checkpoint_file_open(dir, &w), 0);
	cr_assert_eq(checkpoint_file_watch(w, "k", "1", false), 0);
	cr_assert_eq(checkpoint_file_commit(w), 0);
	snprintf(path, sizeof(path), "%s/checkpoint.ndjson", dir);
	/* Bytes after the end record are damage, not more state. */
	snprintf(cmd, sizeof(cmd), "printf '{\"type\":\"OBJECT\",\"key\"' >> %s", path);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_eq(err.line, 4, "%zu %s", err.line, err.reason);
	snprintf(cmd, sizeof(cmd), "printf 'garbage\\n' > %s", path);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_eq(err.line, 1);
}

Test(checkpoint, abort_leaves_the_old_checkpoint, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_state *cp = NULL;
	struct checkpoint_file *w = NULL;
	struct checkpoint_load_error err;

	cr_assert_eq(checkpoint_file_open(dir, &w), 0);
	cr_assert_eq(checkpoint_file_watch(w, "old", "7", false), 0);
	cr_assert_eq(checkpoint_file_commit(w), 0);
	cr_assert_eq(checkpoint_file_open(dir, &w), 0);
	cr_assert_eq(checkpoint_file_watch(w, "new", "8", true), 0);
	checkpoint_file_abort(w);
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), 0);
	cr_assert_not_null(checkpoint_find_watch(cp, "old"));
	cr_assert_null(checkpoint_find_watch(cp, "new"));
	checkpoint_state_free(cp);
}

Test(checkpoint, relist_flag_long_keys_and_reference_data, .init = make_dir, .fini = drop_dir) {
	struct cevent_params ref_params = params;
	struct checkpoint_file *w = NULL;
	struct checkpoint_state *cp = NULL;
	struct checkpoint_watch *sw;
	struct cevent *ev = NULL;
	struct kobj k;
	char key[600];
	struct checkpoint_load_error err;
	const char *ref = "{\"kind\":\"Guitar\",\"namespace\":\"guitar-eventing\",\"name\":\"d15\","
			  "\"apiVersion\":\"kool.karmalabs.local/v1\"}";

	/* A delete found by a relist with --object-state reference: Resource
	 * mode, but the data is a reference without metadata. */
	memset(&k, 0, sizeof(k));
	k.json = ref;
	k.json_len = strlen(ref);
	strcpy(k.kind, "Guitar");
	strcpy(k.api_version, "kool.karmalabs.local/v1");
	strcpy(k.name, "d15");
	strcpy(k.namespace, "guitar-eventing");
	strcpy(k.uid, "u-9");
	strcpy(k.resource_version, "50");
	cr_assert_eq(cevent_create(&ref_params, &k, CEVENT_DELETE, &ev), 0);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	cr_assert_eq(checkpoint_file_open(dir, &w), 0);
	cr_assert_eq(checkpoint_file_watch(w, key, "51", true), 0);
	cr_assert_eq(checkpoint_file_event(w, ev), 0);
	cr_assert_eq(checkpoint_file_commit(w), 0);
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), 0, "%s", err.reason);
	sw = checkpoint_find_watch(cp, key);
	cr_assert_not_null(sw);
	cr_assert(sw->relist);
	cr_assert_eq(cp->n_events, 1);
	cr_assert_str_eq(cp->events[0]->subject,
		"/apis/kool.karmalabs.local/v1/namespaces/guitar-eventing/guitars/d15");
	cr_assert_str_eq(cp->events[0]->name, "d15");
	cr_assert_str_eq(cp->events[0]->key, "u-9");
	cr_assert_str_eq(cp->events[0]->data, ref);
	cr_assert_str_eq(cp->events[0]->id, ev->id);
	checkpoint_state_free(cp);
	cevent_destroy(ev);
}

/* ---------------- hostile checkpoints (issue 9) ---------------- */

static char path[128];

static char *slurp(size_t *ret_len) {
	FILE *f = fopen(path, "rb");
	char *d = NULL;
	size_t cap = 0;

	cr_assert_not_null(f);
	cr_assert_eq(getdelim(&d, &cap, '\0', f) >= 0, true);
	*ret_len = (size_t)ftell(f);
	fclose(f);
	return d;
}

static void spit(const char *d, size_t len) {
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(d, 1, len, f), len);
	fclose(f);
}

/* A watch with a pretty-printed object, a reference and an event. */
static void write_sample(void) {
	static const char pretty[] = "{\n  \"metadata\": {\n    \"name\": \"p\",\n    \"uid\": \"u-1\"\n  }\n}\n";
	struct checkpoint_file *w = NULL;
	struct checkpoint_object *a = obj("p", "5", 0), *b = obj("r", "6", 0);
	struct cevent *ev = event("c", "u-3");

	a->json = strdup(pretty);
	a->json_len = strlen(pretty);
	snprintf(path, sizeof(path), "%s/checkpoint.ndjson", dir);
	cr_assert_eq(checkpoint_file_open(dir, &w), 0);
	cr_assert_eq(checkpoint_file_watch(w, "v1/ConfigMap|guitar-eventing|", "7", false), 0);
	cr_assert_eq(checkpoint_file_object(w, "u-1", a), 0);
	cr_assert_eq(checkpoint_file_object(w, "u-2", b), 0);
	cr_assert_eq(checkpoint_file_event(w, ev), 0);
	cr_assert_eq(checkpoint_file_commit(w), 0);
	checkpoint_object_free(a);
	checkpoint_object_free(b);
	cevent_destroy(ev);
}

Test(checkpoint, pretty_printed_object_survives_restart, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_state *cp = NULL;
	struct checkpoint_load_error err;
	struct checkpoint_object *o;

	write_sample();
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), 0, "%s", err.message);
	o = hashmap_get(&checkpoint_find_watch(cp, "v1/ConfigMap|guitar-eventing|")->objects, "u-1");
	cr_assert_not_null(o);
	cr_assert_str_eq(o->json, "{\n  \"metadata\": {\n    \"name\": \"p\",\n    \"uid\": \"u-1\"\n  }\n}\n");
	cr_assert_eq(cp->n_objects, 2);
	cr_assert_eq(cp->n_events, 1);
	checkpoint_state_free(cp);
}

Test(checkpoint, checkpoint_truncated_at_line_end_is_refused, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_state *cp = NULL;
	struct checkpoint_load_error err;
	size_t len;
	char *d;

	write_sample();
	d = slurp(&len);
	/* Cut after each line end in turn: every cut is refused. */
	for (size_t cut = 0; cut + 1 < len; cut++) {
		if (d[cut] != '\n')
			continue;
		spit(d, cut + 1);
		cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG, "cut at %zu", cut);
	}
	spit(d, len - 1); /* the end record's newline */
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	/* Without the end record: */
	spit(d, (size_t)(strstr(d, "{\"type\":\"END\"") - d));
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_not_null(strstr(err.message, "checkpoint.ndjson:"), "%s", err.message);
	cr_assert_not_null(strstr(err.message, "no end record"), "%s", err.message);
	cr_assert_null(strchr(err.message, '\n'));
	free(d);
}

Test(checkpoint, checkpoint_with_a_changed_byte_is_refused, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_state *cp = NULL;
	struct checkpoint_load_error err;
	size_t len;
	char *d, *p;

	write_sample();
	d = slurp(&len);
	p = strstr(d, "\"name\": \"p\"");
	p[9] = 'q'; /* inside the object's bytes: only the checksum can tell */
	spit(d, len);
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_not_null(strstr(err.reason, "SHA-256"), "%s", err.reason);
	free(d);
}

Test(checkpoint, checkpoint_format_1_is_refused_with_a_message, .init = make_dir,
	.fini = drop_dir) {
	struct checkpoint_state *cp = NULL;
	struct checkpoint_load_error err;
	const char old[] = "{\"type\":\"CHECKPOINT\",\"object\":{\"kind\":\"Checkpoint\",\"metadata\":"
			   "{\"name\":\"1\"}}}\n";

	snprintf(path, sizeof(path), "%s/checkpoint.ndjson", dir);
	spit(old, strlen(old));
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_not_null(strstr(err.message, "format 1"), "%s", err.message);
	cr_assert_not_null(strstr(err.message, "move it away"), "%s", err.message);
}

Test(checkpoint, checkpoint_nested_header_is_refused, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_state *cp = NULL;
	struct checkpoint_load_error err;
	char deep[12000];

	snprintf(path, sizeof(path), "%s/checkpoint.ndjson", dir);
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 2] = '\n';
	deep[sizeof(deep) - 1] = '\0';
	spit(deep, strlen(deep));
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_eq(err.line, 1);
}

/* A uid twice: the last wins, and the first is freed (ASan checks). */
Test(checkpoint, checkpoint_duplicate_uid_does_not_leak, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_file *w = NULL;
	struct checkpoint_state *cp = NULL;
	struct checkpoint_load_error err;
	struct checkpoint_object *a = obj("a", "1", 8), *b = obj("b", "2", 8);

	cr_assert_eq(checkpoint_file_open(dir, &w), 0);
	cr_assert_eq(checkpoint_file_watch(w, "w", "3", false), 0);
	cr_assert_eq(checkpoint_file_object(w, "u-1", a), 0);
	cr_assert_eq(checkpoint_file_object(w, "u-1", b), 0);
	cr_assert_eq(checkpoint_file_commit(w), 0);
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), 0, "%s", err.message);
	cr_assert_eq(cp->n_objects, 1);
	cr_assert_str_eq(((struct checkpoint_object *)hashmap_get(&checkpoint_find_watch(cp, "w")->objects,
				  "u-1"))->name, "b");
	checkpoint_state_free(cp);
	checkpoint_object_free(a);
	checkpoint_object_free(b);
}

Test(checkpoint, checkpoint_symlink_is_not_followed, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_state *cp = NULL;
	struct checkpoint_file *w = NULL;
	struct checkpoint_load_error err;
	char target[160], tmp[160], buf[16] = "";
	FILE *f;

	snprintf(target, sizeof(target), "%s/target", dir);
	f = fopen(target, "w");
	fputs("precious", f);
	fclose(f);
	/* At the checkpoint's path: refused, not read through. */
	snprintf(path, sizeof(path), "%s/checkpoint.ndjson", dir);
	cr_assert_eq(symlink(target, path), 0);
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_not_null(strstr(err.message, "symbolic link"), "%s", err.message);
	/* At the temporary file's path: replaced, not written through. */
	snprintf(tmp, sizeof(tmp), "%s/.checkpoint.ndjson.tmp", dir);
	cr_assert_eq(symlink(target, tmp), 0);
	cr_assert_eq(checkpoint_file_open(dir, &w), 0);
	cr_assert_eq(checkpoint_file_watch(w, "w", "1", false), 0);
	cr_assert_eq(checkpoint_file_commit(w), 0);
	f = fopen(target, "r");
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "precious");
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), 0, "%s", err.message);
	checkpoint_state_free(cp);
}

Test(checkpoint, checkpoint_fifo_is_refused_promptly, .init = make_dir, .fini = drop_dir,
	.timeout = 5) {
	struct checkpoint_state *cp = NULL;
	struct checkpoint_load_error err;

	snprintf(path, sizeof(path), "%s/checkpoint.ndjson", dir);
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_not_null(strstr(err.message, "not a regular file"), "%s", err.message);
}

/* A delete a relist finds, with only references kept: the reference is
 * generated, so a quote in the kind stays inside its string. */
static int capture(enum cevent_op op, const struct kobj *k, void *userdata) {
	(void)op;
	snprintf(userdata, 512, "%.*s", (int)k->json_len, k->json);
	return 0;
}

Test(checkpoint, sweep_reference_kind_with_quote_is_escaped) {
	struct objects o;
	struct kobj k;
	char got[512] = "";

	objects_init(&o, false, NULL, NULL);
	memset(&k, 0, sizeof(k));
	k.json = "{}";
	k.json_len = 2;
	strcpy(k.name, "n");
	strcpy(k.namespace, "ns");
	strcpy(k.uid, "u-1");
	strcpy(k.resource_version, "1");
	objects_list_begin(&o);
	cr_assert_eq(objects_list_item(&o, &k, OBJECTS_QUIET, capture, got), 0);
	objects_list_begin(&o);
	cr_assert_eq(objects_sweep(&o, true, "K\",\"x\":\"y", "v1", capture, got), 1);
	cr_assert_str_eq(got, "{\"kind\":\"K\\\",\\\"x\\\":\\\"y\",\"namespace\":\"ns\",\"name\":\"n\","
			      "\"apiVersion\":\"v1\"}");
	objects_finish(&o);
}

/* ---------------- snapshots in O(changes) (issue 8) ---------------- */

static int quiet(enum cevent_op op, const struct kobj *k, void *userdata) {
	(void)op;
	(void)k;
	(void)userdata;
	return 0;
}

static struct kobj item(const char *uid, const char *rv) {
	struct kobj k;

	memset(&k, 0, sizeof(k));
	k.json = "{\"metadata\":{}}";
	k.json_len = strlen(k.json);
	snprintf(k.name, sizeof(k.name), "n-%s", uid);
	strcpy(k.namespace, "ns");
	snprintf(k.uid, sizeof(k.uid), "%s", uid);
	snprintf(k.resource_version, sizeof(k.resource_version), "%s", rv);
	return k;
}

static const char *rv_of(struct checkpoint_state *cp, const char *uid) {
	struct checkpoint_object *o = hashmap_get(&checkpoint_find_watch(cp, "w")->objects, uid);

	return o ? o->rv : NULL;
}

/* The second snapshot sees what changed since the first, and an object
 * replaced while a snapshot is being written is written as it was when the
 * snapshot was taken (its old bytes stay in the spill file). */
Test(checkpoint, snapshot_of_objects_follows_changes, .init = make_dir, .fini = drop_dir) {
	struct checkpoint_snapshot *cs = NULL;
	struct checkpoint_state *cp = NULL;
	struct checkpoint_load_error err;
	struct objects o;
	struct kobj k;

	objects_init(&o, true, NULL, NULL);
	objects_list_begin(&o);
	for (const char *const *u = (const char *const[]){ "a", "b", "c", NULL }; *u; u++) {
		k = item(*u, "1");
		cr_assert_eq(objects_list_item(&o, &k, OBJECTS_QUIET, quiet, NULL), 0);
	}
	cr_assert_eq(checkpoint_snapshot_create(dir, &cs), 0);
	cr_assert_eq(checkpoint_snapshot_watch(cs, "w", "1", false), 0);
	cr_assert_eq(objects_checkpoint(&o, cs), 0);
	cr_assert_eq(checkpoint_snapshot_objects(cs), 3);
	cr_assert_eq(checkpoint_snapshot_write(cs), 0);
	checkpoint_snapshot_free(cs);

	k = item("a", "2");
	cr_assert_eq(objects_update(&o, &k, false, quiet, NULL), 1);
	k = item("b", "1");
	cr_assert_eq(objects_delete(&o, &k, quiet, NULL), 0);
	k = item("d", "3");
	cr_assert_eq(objects_update(&o, &k, true, quiet, NULL), 1);
	cr_assert_eq(checkpoint_snapshot_create(dir, &cs), 0);
	cr_assert_eq(checkpoint_snapshot_watch(cs, "w", "3", false), 0);
	cr_assert_eq(objects_checkpoint(&o, cs), 0);
	/* Changed after the snapshot: the file holds c as it was. */
	k = item("c", "4");
	cr_assert_eq(objects_update(&o, &k, false, quiet, NULL), 1);
	cr_assert_eq(checkpoint_snapshot_write(cs), 0);
	checkpoint_snapshot_free(cs);
	cr_assert_eq(checkpoint_load(dir, &params, 1 << 20, &cp, &err), 0, "%s", err.message);
	cr_assert_eq(cp->n_objects, 3);
	cr_assert_str_eq(rv_of(cp, "a"), "2");
	cr_assert_null(rv_of(cp, "b"));
	cr_assert_str_eq(rv_of(cp, "c"), "1");
	cr_assert_str_eq(rv_of(cp, "d"), "3");
	checkpoint_state_free(cp);
	objects_finish(&o);
}

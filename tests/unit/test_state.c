#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/state.h"

static char dir[64];

static void make_dir(void) {
	snprintf(dir, sizeof(dir), "/tmp/test-state-XXXXXX");
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

static struct state_object *obj(const char *name, const char *rv, const char *json) {
	struct state_object *o = calloc(1, sizeof(*o));

	o->rv = strdup(rv);
	o->name = strdup(name);
	o->ns = strdup("guitar-eventing");
	if (json) {
		o->json = strdup(json);
		o->json_len = strlen(json);
	}
	return o;
}

static struct cevent *event(const char *name, const char *uid, const char *rv) {
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

Test(state, round_trip, .init = make_dir, .fini = drop_dir) {
	struct state_writer *w = NULL;
	struct state_checkpoint *cp = NULL;
	struct state_object *full = obj("d15", "42", "{\"metadata\":{\"name\":\"d15\",\"namespace\":"
						 "\"guitar-eventing\",\"uid\":\"u-1\",\"resourceVersion\":\"42\"}}");
	struct state_object *ref = obj("d16", "43", NULL);
	struct cevent *ev = event("d15", "u-1", "44");
	struct state_watch *sw;
	struct state_object *o;
	struct state_load_error err;

	cr_assert_eq(state_writer_open(dir, &w), 0);
	cr_assert_eq(state_writer_watch(w, "kool.karmalabs.local/v1/Guitar|guitar-eventing|", "44", false), 0);
	cr_assert_eq(state_writer_object(w, "u-1", full), 0);
	cr_assert_eq(state_writer_object(w, "u-2", ref), 0);
	cr_assert_eq(state_writer_event(w, ev), 0);
	cr_assert_eq(state_writer_commit(w), 0);

	cr_assert_eq(state_load(dir, &params, 1 << 20, &cp, &err), 0);
	cr_assert_eq(cp->n_watches, 1);
	cr_assert_eq(cp->n_objects, 2);
	sw = state_find_watch(cp, "kool.karmalabs.local/v1/Guitar|guitar-eventing|");
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
	state_checkpoint_free(cp);
	state_object_free(full);
	state_object_free(ref);
	cevent_destroy(ev);
}

Test(state, missing_and_damaged, .init = make_dir, .fini = drop_dir) {
	struct state_checkpoint *cp = NULL;
	struct state_writer *w = NULL;
	char path[128], cmd[256];
	struct state_load_error err;

	cr_assert_eq(state_load(dir, &params, 1 << 20, &cp, &err), -ENOENT);
	cr_assert_eq(state_writer_open(dir, &w), 0);
	cr_assert_eq(state_writer_watch(w, "k", "1", false), 0);
	cr_assert_eq(state_writer_commit(w), 0);
	snprintf(path, sizeof(path), "%s/checkpoint.ndjson", dir);
	/* Bytes after the end record are damage, not more state. */
	snprintf(cmd, sizeof(cmd), "printf '{\"type\":\"OBJECT\",\"key\"' >> %s", path);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(state_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_eq(err.line, 4, "%zu %s", err.line, err.reason);
	snprintf(cmd, sizeof(cmd), "printf 'garbage\\n' > %s", path);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(state_load(dir, &params, 1 << 20, &cp, &err), -EBADMSG);
	cr_assert_eq(err.line, 1);
}

Test(state, abort_leaves_the_old_checkpoint, .init = make_dir, .fini = drop_dir) {
	struct state_checkpoint *cp = NULL;
	struct state_writer *w = NULL;
	struct state_load_error err;

	cr_assert_eq(state_writer_open(dir, &w), 0);
	cr_assert_eq(state_writer_watch(w, "old", "7", false), 0);
	cr_assert_eq(state_writer_commit(w), 0);
	cr_assert_eq(state_writer_open(dir, &w), 0);
	cr_assert_eq(state_writer_watch(w, "new", "8", true), 0);
	state_writer_abort(w);
	cr_assert_eq(state_load(dir, &params, 1 << 20, &cp, &err), 0);
	cr_assert_not_null(state_find_watch(cp, "old"));
	cr_assert_null(state_find_watch(cp, "new"));
	state_checkpoint_free(cp);
}

Test(state, relist_flag_long_keys_and_reference_data, .init = make_dir, .fini = drop_dir) {
	struct cevent_params ref_params = params;
	struct state_writer *w = NULL;
	struct state_checkpoint *cp = NULL;
	struct state_watch *sw;
	struct cevent *ev = NULL;
	struct kobj k;
	char key[600];
	struct state_load_error err;
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
	cr_assert_eq(state_writer_open(dir, &w), 0);
	cr_assert_eq(state_writer_watch(w, key, "51", true), 0);
	cr_assert_eq(state_writer_event(w, ev), 0);
	cr_assert_eq(state_writer_commit(w), 0);
	cr_assert_eq(state_load(dir, &params, 1 << 20, &cp, &err), 0, "%s", err.reason);
	sw = state_find_watch(cp, key);
	cr_assert_not_null(sw);
	cr_assert(sw->relist);
	cr_assert_eq(cp->n_events, 1);
	cr_assert_str_eq(cp->events[0]->subject,
		"/apis/kool.karmalabs.local/v1/namespaces/guitar-eventing/guitars/d15");
	cr_assert_str_eq(cp->events[0]->name, "d15");
	cr_assert_str_eq(cp->events[0]->key, "u-9");
	cr_assert_str_eq(cp->events[0]->data, ref);
	cr_assert_str_eq(cp->events[0]->id, ev->id);
	state_checkpoint_free(cp);
	cevent_destroy(ev);
}

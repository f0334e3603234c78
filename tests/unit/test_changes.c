#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/changes.h"
#include "adapter/strip.h"

static struct buf out;

static void setup(void) {
	buf_init(&out, 0);
}

static void teardown(void) {
	buf_finish(&out);
}

/* The paths from old to new, as the extension's value. */
static const char *diff(const char *old, const char *new, int *ret) {
	int r;

	buf_reset(&out);
	r = changes_diff(old, strlen(old), new, strlen(new), 128, &out);
	if (ret)
		*ret = r;
	return out.data ? out.data : "";
}

TestSuite(changes, .init = setup, .fini = teardown);

Test(changes, label_added_to_object_without_labels) {
	int r;

	cr_assert_str_eq(diff("{\"metadata\":{\"name\":\"d15\",\"resourceVersion\":\"1\"},"
			      "\"spec\":{\"brand\":\"martin\"}}",
			     "{\"metadata\":{\"name\":\"d15\",\"resourceVersion\":\"2\","
			     "\"labels\":{\"helloknative\":\"\"}},\"spec\":{\"brand\":\"martin\"}}",
			     &r),
		"metadata.labels.helloknative");
	cr_assert_eq(r, 1);
}

Test(changes, nested_maps_changed_added_removed) {
	cr_assert_str_eq(diff("{\"spec\":{\"a\":{\"b\":1,\"c\":2},\"gone\":true},\"status\":{}}",
			     "{\"spec\":{\"a\":{\"b\":1,\"c\":3,\"d\":{\"e\":null}},\"new\":\"x\"},"
			     "\"status\":{}}",
			     NULL),
		"spec.a.c,spec.a.d.e,spec.gone,spec.new");
}

Test(changes, key_order_does_not_matter) {
	int r;

	cr_assert_str_eq(diff("{\"a\":{\"x\":1,\"y\":[1,{\"p\":1,\"q\":2}]}}",
			     "{\"a\":{\"y\":[1,{\"q\":2,\"p\":1}],\"x\":1}}", &r),
		"");
	cr_assert_eq(r, 0);
}

Test(changes, arrays_are_one_path) {
	cr_assert_str_eq(diff("{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"v1\"}]}}",
			     "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"v2\"}]}}", NULL),
		"spec.containers");
	cr_assert_str_eq(diff("{\"l\":[1,2]}", "{\"l\":[1,2,3]}", NULL), "l");
	cr_assert_str_eq(diff("{\"l\":[1,2]}", "{\"l\":[1,2]}", NULL), "");
}

Test(changes, type_changes_and_empty_maps) {
	cr_assert_str_eq(diff("{\"a\":{\"b\":1}}", "{\"a\":\"flat\"}", NULL), "a");
	cr_assert_str_eq(diff("{\"a\":1}", "{\"a\":1,\"m\":{}}", NULL), "m");
	cr_assert_str_eq(diff("{\"n\":1}", "{\"n\":1.0}", NULL), "n");
	cr_assert_str_eq(diff("{\"t\":true}", "{\"t\":false}", NULL), "t");
	cr_assert_str_eq(diff("{\"t\":null}", "{\"t\":false}", NULL), "t");
}

Test(changes, ignored_metadata_fields) {
	int r;

	cr_assert_str_eq(diff("{\"metadata\":{\"resourceVersion\":\"1\",\"generation\":1,"
			      "\"managedFields\":[{\"manager\":\"a\"}]}}",
			     "{\"metadata\":{\"resourceVersion\":\"2\",\"generation\":2,"
			     "\"managedFields\":[{\"manager\":\"b\"}]}}",
			     &r),
		"");
	cr_assert_eq(r, 0);
	/* Only under the top-level metadata. */
	cr_assert_str_eq(diff("{\"spec\":{\"generation\":1}}", "{\"spec\":{\"generation\":2}}", NULL),
		"spec.generation");
}

Test(changes, escaping) {
	cr_assert_str_eq(diff("{\"metadata\":{\"labels\":{}}}",
			     "{\"metadata\":{\"labels\":{\"app.kubernetes.io/name\":\"x\"}}}", NULL),
		"metadata.labels.app\\.kubernetes\\.io/name");
	cr_assert_str_eq(diff("{}", "{\"a,b\":1,\"c\\\\d\":2}", NULL), "a\\,b,c\\\\d");
	cr_assert_str_eq(diff("{}", "{\"t\\tab\":1}", NULL), "t\\x09ab");
	cr_assert_str_eq(diff("{}", "{\"c1\\u0085x\":1}", NULL), "c1\\xC2\\x85x");
	cr_assert_str_eq(diff("{}", "{\"caf\\u00e9\":1}", NULL), "caf\xc3\xa9");
	/* An empty key: an empty segment. */
	cr_assert_str_eq(diff("{\"a\":{}}", "{\"a\":{\"\":1}}", NULL), "a.");
}

Test(changes, truncated_by_count) {
	char old[64], new[8192];
	size_t n = 0;
	int r;

	snprintf(old, sizeof(old), "{}");
	n += (size_t)snprintf(new + n, sizeof(new) - n, "{");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(new + n, sizeof(new) - n, "%s\"k%03d\":1", i ? "," : "", i);
	snprintf(new + n, sizeof(new) - n, "}");
	diff(old, new, &r);
	cr_assert_eq(r, CHANGES_MAX_PATHS);
	cr_assert(strncmp(out.data, "k000,k001,", 10) == 0);
	cr_assert(strlen(out.data) > 4 && strcmp(out.data + strlen(out.data) - 4, ",...") == 0,
		"%s", out.data);
	cr_assert(strstr(out.data, "k063,...") != NULL, "%s", out.data);
	cr_assert_leq(out.len, CHANGES_MAX_BYTES);
}

Test(changes, truncated_by_bytes) {
	static char new[8192];
	char key[401];
	int r;

	memset(key, 'x', 400);
	key[400] = '\0';
	snprintf(new, sizeof(new), "{\"a%s\":1,\"b%s\":1,\"c%s\":1}", key, key, key);
	diff("{}", new, &r);
	cr_assert_eq(r, 2);
	cr_assert_leq(out.len, CHANGES_MAX_BYTES);
	cr_assert(strcmp(out.data + out.len - 4, ",...") == 0);
	/* A single path longer than the bound: only the marker. */
	memset(new, 0, sizeof(new));
	{
		static char big[4096];
		memset(big, 'y', 3000);
		big[3000] = '\0';
		snprintf(new, sizeof(new), "{\"%s\":1}", big);
	}
	diff("{}", new, &r);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(out.data, "...");
}

Test(changes, hostile_deep_input_is_refused_and_bounded) {
	size_t depth = 200000;
	char *deep = malloc(2 * depth + 16);
	size_t n = 0;
	int r;

	cr_assert_not_null(deep);
	n += (size_t)sprintf(deep, "{\"a\":");
	for (size_t i = 0; i < depth; i++)
		deep[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	buf_reset(&out);
	buf_append_str(&out, "kept");
	r = changes_diff("{}", 2, deep, n, 128, &out);
	cr_assert_eq(r, -EBADMSG);
	cr_assert_str_eq(out.data, "kept"); /* untouched on failure */
	r = changes_diff(deep, n, "{}", 2, 128, &out);
	cr_assert_eq(r, -EBADMSG);
	free(deep);
	/* At the bound it works: 120 levels of maps. */
	{
		char a[2048] = "", b[2048] = "";
		size_t na = 0, nb = 0;
		for (int i = 0; i < 120; i++) {
			na += (size_t)snprintf(a + na, sizeof(a) - na, "{\"k\":");
			nb += (size_t)snprintf(b + nb, sizeof(b) - nb, "{\"k\":");
		}
		na += (size_t)snprintf(a + na, sizeof(a) - na, "1");
		nb += (size_t)snprintf(b + nb, sizeof(b) - nb, "2");
		for (int i = 0; i < 120; i++) {
			a[na++] = '}';
			b[nb++] = '}';
		}
		buf_reset(&out);
		cr_assert_eq(changes_diff(a, na, b, nb, 128, &out), 1);
		cr_assert_eq(out.len, 120 * 2 - 1);
	}
}

Test(changes, invalid_json_and_utf8) {
	int r;

	diff("{", "{}", &r);
	cr_assert_eq(r, -EBADMSG);
	diff("{}", "{\"a\":\"\xff\"}", &r);
	cr_assert_eq(r, -EBADMSG);
}

Test(changes, many_keys_sorted_merge) {
	/* 20000 keys on each side, one changed: n log n, not n squared. */
	size_t cap = 20000 * 24 + 16, na = 0, nb = 0;
	char *a = malloc(cap), *b = malloc(cap);
	int r;

	na += (size_t)snprintf(a, cap, "{");
	nb += (size_t)snprintf(b, cap, "{");
	for (int i = 0; i < 20000; i++) {
		/* b lists them backwards: positional comparison cannot help. */
		na += (size_t)snprintf(a + na, cap - na, "%s\"k%05d\":%d", i ? "," : "", i, i);
		nb += (size_t)snprintf(b + nb, cap - nb, "%s\"k%05d\":%d", i ? "," : "", 19999 - i,
			19999 - i == 777 ? -1 : 19999 - i);
	}
	snprintf(a + na, cap - na, "}");
	snprintf(b + nb, cap - nb, "}");
	diff(a, b, &r);
	cr_assert_eq(r, 1);
	cr_assert_str_eq(out.data, "k00777");
	free(a);
	free(b);
}

/* ---------------- --strip-managed-fields ---------------- */

static const char *strip(const char *in, int *ret) {
	buf_reset(&out);
	*ret = strip_managed_fields(in, strlen(in), &out);
	return out.data ? out.data : "";
}

Test(changes, strip_managed_fields_middle_first_last_only) {
	int r;

	cr_assert_str_eq(strip("{\"metadata\":{\"name\":\"a\",\"managedFields\":[{\"x\":{\"y\":1}}],"
			       "\"uid\":\"u\"},\"spec\":{}}",
			     &r),
		"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{}}");
	cr_assert_eq(r, 1);
	cr_assert_str_eq(strip("{\"metadata\": {\"managedFields\" : [ ] , \"name\":\"a\"}}", &r),
		"{\"metadata\": { \"name\":\"a\"}}");
	cr_assert_str_eq(strip("{\"metadata\":{\"name\":\"a\",\n  \"managedFields\": null\n}}", &r),
		"{\"metadata\":{\"name\":\"a\"\n}}");
	cr_assert_str_eq(strip("{\"metadata\":{\"managedFields\":[]}}", &r), "{\"metadata\":{}}");
	cr_assert_eq(r, 1);
}

Test(changes, strip_managed_fields_only_in_metadata) {
	int r;

	strip("{\"spec\":{\"managedFields\":[1]},\"metadata\":{\"name\":\"a\"}}", &r);
	cr_assert_eq(r, 0);
	cr_assert_eq(out.len, 0);
	strip("{\"metadata\":{\"annotations\":{\"managedFields\":\"x\"}}}", &r);
	cr_assert_eq(r, 0);
	strip("{\"metadata\":{\"name\":\"a\"", &r);
	cr_assert_eq(r, -EBADMSG);
}

Test(changes, strip_managed_fields_escaped_key_and_strings) {
	int r;

	/* A value holding the name and quotes does not fool it. */
	cr_assert_str_eq(strip("{\"metadata\":{\"name\":\"\\\"managedFields\\\"\",\"managedFields\":"
			       "[{\"f:\\\"q\":\"}\"}]}}",
			     &r),
		"{\"metadata\":{\"name\":\"\\\"managedFields\\\"\"}}");
	cr_assert_eq(r, 1);
}

/* ---------------- ingest: the table's last bytes, the hook ---------------- */

#include "adapter/ingest.h"
#include "adapter/objects.h"

static char seen_paths[2048];
static bool seen_has_paths;
static char seen_json[2048];

static int capture(enum cevent_op op, const struct kobj *obj, void *userdata) {
	(void)op, (void)userdata;
	seen_has_paths = obj->changed_paths != NULL;
	snprintf(seen_paths, sizeof(seen_paths), "%s", obj->changed_paths ? obj->changed_paths : "");
	snprintf(seen_json, sizeof(seen_json), "%.*s", (int)obj->json_len, obj->json);
	return 0;
}

static struct kobj make_obj(const char *json, const char *rv) {
	struct kobj o;

	memset(&o, 0, sizeof(o));
	o.json = json;
	o.json_len = strlen(json);
	snprintf(o.uid, sizeof(o.uid), "u1");
	snprintf(o.name, sizeof(o.name), "d15");
	snprintf(o.namespace, sizeof(o.namespace), "ns");
	snprintf(o.resource_version, sizeof(o.resource_version), "%s", rv);
	return o;
}

/* One watch event through the hook, as watch_stream.c passes it. */
static int through(struct objects *t, const struct config *cfg, const struct kobj *obj) {
	struct ingest in;
	int r = ingest_begin(&in, cfg, t, obj, capture, NULL);

	if (r == 0)
		r = objects_update(t, in.obj, false, ingest_emit, &in);
	ingest_end(&in);
	return r;
}

Test(changes, objects_last_bytes_full_and_reference) {
	struct objects t;
	struct kobj o = make_obj("{\"a\":1}", "1");
	struct config cfg = { 0 };

	objects_init(&t, true, NULL, NULL);
	cr_assert_eq(objects_last_bytes(&t, "u1", &out), -ENOENT);
	cr_assert_eq(through(&t, &cfg, &o), 1);
	cr_assert_eq(objects_last_bytes(&t, "u1", &out), 0);
	cr_assert_str_eq(out.data, "{\"a\":1}");
	objects_finish(&t);
	/* References only: no bytes. */
	objects_init(&t, false, NULL, NULL);
	cr_assert_eq(through(&t, &cfg, &o), 1);
	cr_assert_eq(objects_last_bytes(&t, "u1", &out), -ENOENT);
	objects_finish(&t);
}

Test(changes, ingest_update_gets_paths_add_does_not) {
	struct objects t;
	struct config cfg = { .with_changes = true };
	struct kobj v1 = make_obj("{\"metadata\":{\"resourceVersion\":\"1\"}}", "1");
	struct kobj v2 = make_obj("{\"metadata\":{\"resourceVersion\":\"2\",\"labels\":{\"x\":\"\"}}}",
		"2");
	struct kobj v3 = make_obj("{\"metadata\":{\"resourceVersion\":\"3\",\"labels\":{\"x\":\"\"}}}",
		"3");

	objects_init(&t, true, NULL, NULL);
	cr_assert_eq(through(&t, &cfg, &v1), 1);
	cr_assert_not(seen_has_paths); /* an add */
	cr_assert_eq(through(&t, &cfg, &v2), 1);
	cr_assert(seen_has_paths);
	cr_assert_str_eq(seen_paths, "metadata.labels.x");
	cr_assert_eq(through(&t, &cfg, &v3), 1);
	cr_assert(seen_has_paths);
	cr_assert_str_eq(seen_paths, ""); /* only the version changed */
	/* Without the flag: nothing. */
	cfg.with_changes = false;
	v2.resource_version[0] = '4';
	cr_assert_eq(through(&t, &cfg, &v2), 1);
	cr_assert_not(seen_has_paths);
	objects_finish(&t);
}

Test(changes, ingest_strips_what_is_recorded_and_sent) {
	struct objects t;
	struct config cfg = { .strip_managed_fields = true };
	struct kobj o = make_obj("{\"metadata\":{\"name\":\"d15\",\"managedFields\":[{}]}}", "1");

	objects_init(&t, true, NULL, NULL);
	cr_assert_eq(through(&t, &cfg, &o), 1);
	cr_assert_str_eq(seen_json, "{\"metadata\":{\"name\":\"d15\"}}");
	cr_assert_eq(objects_last_bytes(&t, "u1", &out), 0);
	cr_assert_str_eq(out.data, "{\"metadata\":{\"name\":\"d15\"}}");
	objects_finish(&t);
}

/* ---------------- the extension on the event ---------------- */

#include "adapter/cevent.h"
#include "adapter/http.h"

Test(changes, cevent_sends_changedpaths_binary_structured_filter) {
	struct cevent_params params = { .mode = CONFIG_MODE_RESOURCE, .source = "https://k",
		.default_kind = "Guitar", .default_api_version = "kool.karmalabs.local/v1" };
	struct kobj o = make_obj("{\"a\":1}", "2");
	struct cevent *ev = NULL;
	struct curl_slist *h = NULL;
	struct http_headers hh = { 0 };
	struct cesql_value v;
	bool found = false;

	o.changed_paths = "metadata.labels.app\\.kubernetes\\.io/name,spec.x";
	cr_assert_eq(cevent_create(&params, &o, CEVENT_UPDATE, &ev), 0);
	cr_assert_eq(cevent_http_header_lines(ev, &hh.lines), 0);
	cr_assert_eq(http_headers_link(&hh, &h), 0);
	for (struct curl_slist *l = h; l; l = l->next)
		found |= strcmp(l->data, "ce-changedpaths: metadata.labels.app\\.kubernetes\\.io/name,"
					 "spec.x") == 0;
	cr_assert(found);
	http_headers_finish(&hh);
	buf_reset(&out);
	cr_assert_eq(cevent_structured(ev, &out), 0);
	cr_assert(strstr(out.data, "\"changedpaths\":\"metadata.labels.app\\\\.kubernetes"
				   "\\\\.io/name,spec.x\"") != NULL, "%s", out.data);
	cr_assert_eq(cevent_filter_attr("changedpaths", &v, ev), 1);
	cevent_destroy(ev);
	/* Not known: not sent. */
	o.changed_paths = NULL;
	cr_assert_eq(cevent_create(&params, &o, CEVENT_UPDATE, &ev), 0);
	h = NULL;
	cr_assert_eq(cevent_http_header_lines(ev, &hh.lines), 0);
	cr_assert_eq(http_headers_link(&hh, &h), 0);
	for (struct curl_slist *l = h; l; l = l->next)
		cr_assert(strncmp(l->data, "ce-changedpaths", 15) != 0);
	http_headers_finish(&hh);
	cevent_destroy(ev);
}

/* ---------------- the Secrets warning ---------------- */

#include "adapter/secrets_warning.h"

Test(secrets_warning, kind_or_plural_core_v1_resource_mode_only) {
	struct config_resource by_kind = { .group = "", .version = "v1", .kind = "Secret" };
	struct config_resource by_plural = { .group = "", .version = "v1", .resource = "secrets" };
	struct config_resource other_group = { .group = "example.com", .version = "v1",
		.kind = "Secret" };
	struct config_resource cm = { .group = "", .version = "v1", .kind = "ConfigMap" };
	struct config cfg = { .mode = CONFIG_MODE_RESOURCE, .n_resources = 1 };

	cfg.resources = &by_kind;
	cr_assert(secrets_warning_needed(&cfg));
	cfg.resources = &by_plural;
	cr_assert(secrets_warning_needed(&cfg));
	cfg.resources = &other_group;
	cr_assert_not(secrets_warning_needed(&cfg));
	cfg.resources = &cm;
	cr_assert_not(secrets_warning_needed(&cfg));
	cfg.resources = &by_kind;
	cfg.mode = CONFIG_MODE_REFERENCE;
	cr_assert_not(secrets_warning_needed(&cfg));
}

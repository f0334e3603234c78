/* Hostile configuration input (issue 9): each test is named after its finding. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapter/config.h"
#include "adapter/util/buf.h"

struct env {
	const char *kv[8][2];
};

static const char *lookup(const char *name, void *ud) {
	struct env *e = ud;

	for (int i = 0; i < 8 && e->kv[i][0]; i++)
		if (strcmp(e->kv[i][0], name) == 0)
			return e->kv[i][1];
	return NULL;
}

struct errs {
	char lines[16][1200];
	int n;
};

static void on_error(const char *field, const char *msg, void *ud) {
	struct errs *e = ud;

	if (e->n < 16)
		snprintf(e->lines[e->n++], sizeof(e->lines[0]), "%s: %s", field, msg);
}

static bool has_error(struct errs *e, const char *needle) {
	for (int i = 0; i < e->n; i++)
		if (strstr(e->lines[i], needle) && !strchr(e->lines[i], '\n'))
			return true;
	return false;
}

static int load(struct config *c, struct env *env, struct errs *e, const char *file) {
	char *argv[] = { "apiserversource-adapter", "--source-file", (char *)file, NULL };

	return config_load(c, file ? 3 : 1, argv, lookup, env, on_error, e);
}

static double now(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char path[64];

static void write_tmp(const struct buf *b) {
	int fd;

	snprintf(path, sizeof(path), "/tmp/test-hostile-XXXXXX.yaml");
	fd = mkstemps(path, 5);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, b->data, b->len), (ssize_t)b->len);
	close(fd);
}

static const char head[] = "apiVersion: sources.knative.dev/v1\n"
			   "kind: ApiServerSource\n"
			   "metadata: {name: x, namespace: default}\n"
			   "spec:\n"
			   "  sink: {uri: 'http://127.0.0.1:9'}\n"
			   "  resources:\n";

/* The finding: "\u0000" in K_SOURCE_CONFIG silently cut strings short. */
Test(config_hostile, nul_in_k_source_config_is_refused) {
	struct env env = { {
		{ "K_SOURCE_CONFIG", "{\"resources\":[{\"gvr\":{\"Group\":\"\",\"Version\":\"v1\","
				     "\"Resource\":\"pods\\u0000x\"}}]}" },
		{ "K_SINK", "http://127.0.0.1:9" },
		{ NULL },
	} };
	struct errs e = { 0 };
	struct config c;

	cr_assert_eq(load(&c, &env, &e, NULL), -EINVAL);
	cr_assert(has_error(&e, "K_SOURCE_CONFIG: invalid JSON: a string contains \\u0000"), "%s",
		e.lines[0]);
	config_finish(&c);
}

Test(config_hostile, nul_in_k_ce_overrides_is_refused) {
	struct env env = { {
		{ "K_SOURCE_CONFIG", "{\"resources\":[{\"gvr\":{\"Version\":\"v1\",\"Resource\":\"pods\"}}]}" },
		{ "K_SINK", "http://127.0.0.1:9" },
		{ "K_CE_OVERRIDES", "{\"extensions\":{\"team\":\"a\\u0000b\"}}" },
		{ NULL },
	} };
	struct errs e = { 0 };
	struct config c;

	cr_assert_eq(load(&c, &env, &e, NULL), -EINVAL);
	cr_assert(has_error(&e, "K_CE_OVERRIDES: invalid JSON: a string contains \\u0000"), "%s",
		e.lines[0]);
	config_finish(&c);
}

Test(config_hostile, deeply_nested_k_source_config_is_refused) {
	struct env env = { { { "K_SINK", "http://127.0.0.1:9" }, { NULL } } };
	struct errs e = { 0 };
	struct config c;
	struct buf b;

	buf_init(&b, 0);
	buf_append_str(&b, "{\"filters\":");
	for (int i = 0; i < 100000; i++)
		buf_append_str(&b, "[");
	for (int i = 0; i < 100000; i++)
		buf_append_str(&b, "]");
	buf_append_str(&b, "}");
	env.kv[1][0] = "K_SOURCE_CONFIG";
	env.kv[1][1] = b.data;
	cr_assert_eq(load(&c, &env, &e, NULL), -EINVAL);
	cr_assert(has_error(&e, "K_SOURCE_CONFIG: invalid JSON: nested deeper than 64 levels"), "%s",
		e.lines[0]);
	config_finish(&c);
	buf_finish(&b);
}

/* The finding: a 1.6 MB manifest of 200,000 aliases to a resource aborted in
 * xstrdup. It is refused at the 1001st alias, naming the file and line. */
Test(config_hostile, manifest_alias_bomb_is_refused) {
	struct env env = { { { NULL } } };
	struct errs e = { 0 };
	struct config c;
	struct buf b;
	char want[256];
	double t0;

	buf_init(&b, 0);
	buf_append_str(&b, head);
	buf_append_str(&b, "  - &r {apiVersion: v1, kind: Pod}\n");
	for (int i = 0; i < 200000; i++)
		buf_append_str(&b, "  - *r\n");
	write_tmp(&b);
	t0 = now();
	cr_assert_eq(load(&c, &env, &e, path), -EINVAL);
	cr_assert(now() - t0 < 1.0, "%.2f s", now() - t0);
	snprintf(want, sizeof(want), "%s:1008:5: invalid YAML: more than 1000 aliases", path);
	cr_assert(has_error(&e, want), "%s", e.lines[0]);
	config_finish(&c);
	unlink(path);
	buf_finish(&b);
}

/* The finding: aliases inside matchExpressions values cost 7.6 s and 202 MiB
 * at 50 KB. Expanded, they pass the node limit and are refused. */
Test(config_hostile, manifest_aliases_in_match_expressions_are_refused) {
	struct env env = { { { NULL } } };
	struct errs e = { 0 };
	struct config c;
	struct buf b;
	double t0;

	buf_init(&b, 0);
	buf_append_str(&b, head);
	buf_append_str(&b, "  - apiVersion: v1\n    kind: Pod\n    selector:\n      matchExpressions:\n");
	buf_append_str(&b, "      - {key: a, operator: In, values: &v [");
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%sv%d", i ? ", " : "", i);
	buf_append_str(&b, "]}\n");
	for (int i = 0; i < 900; i++)
		buf_append_str(&b, "      - {key: a, operator: In, values: *v}\n");
	write_tmp(&b);
	t0 = now();
	cr_assert_eq(load(&c, &env, &e, path), -EINVAL);
	cr_assert(now() - t0 < 1.0, "%.2f s", now() - t0);
	cr_assert(has_error(&e, "invalid YAML: more than 100000 nodes with aliases expanded"), "%s",
		e.lines[0]);
	config_finish(&c);
	unlink(path);
	buf_finish(&b);
}

/* The finding: libyaml's tokenizer is quadratic in nesting depth (100,000
 * levels in 200 KB took minutes). */
Test(config_hostile, manifest_deeply_nested_is_refused) {
	struct env env = { { { NULL } } };
	struct errs e = { 0 };
	struct config c;
	struct buf b;
	char want[256];
	double t0;

	buf_init(&b, 0);
	buf_append_str(&b, head);
	buf_append_str(&b, "  - ");
	for (int i = 0; i < 100000; i++)
		buf_append_str(&b, "[");
	buf_append_str(&b, "\n");
	write_tmp(&b);
	t0 = now();
	cr_assert_eq(load(&c, &env, &e, path), -EINVAL);
	cr_assert(now() - t0 < 1.0, "%.2f s", now() - t0);
	snprintf(want, sizeof(want), "%s:7:", path);
	cr_assert(has_error(&e, want) && has_error(&e, "invalid YAML: nested deeper than 64 levels"),
		"%s", e.lines[0]);
	config_finish(&c);
	unlink(path);
	buf_finish(&b);
}

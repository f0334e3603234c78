#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter/util/buf.h"
#include "adapter/util/yamldoc.h"

static double now(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Loads text; returns the result and leaves the error (or "") in err. */
static int load(const char *text, size_t len, char *err, size_t errlen) {
	struct yamldoc *docs = NULL;
	size_t n = 0;
	char *e = NULL;
	int r = yamldoc_load_all(text, len, &docs, &n, &e);

	snprintf(err, errlen, "%s", e ? e : "");
	free(e);
	if (r >= 0)
		yamldoc_free_all(docs, n);
	return r;
}

Test(yamldoc, ordinary_document_loads) {
	static const char text[] = "a: &x {b: [1, 2]}\nc: *x\n---\nd: 1\n";
	char err[256];

	cr_assert_eq(load(text, strlen(text), err, sizeof(err)), 2, "%s", err);
}

/* The finding: libyaml's tokenizer is quadratic in nesting depth (100,000
 * levels in 200 KB took minutes). The pre-pass stops at level 65. */
Test(yamldoc, deeply_nested_is_refused_quickly) {
	static const char *open_[] = { "[", "{a: ", "- " };
	size_t levels = 100000;

	for (size_t k = 0; k < 3; k++) {
		struct buf b;
		char err[256];
		double t0;

		buf_init(&b, 0);
		for (size_t i = 0; i < levels; i++)
			buf_append_str(&b, open_[k]);
		buf_append_str(&b, "x\n");
		t0 = now();
		cr_assert_eq(load(b.data, b.len, err, sizeof(err)), -EBADMSG);
		cr_assert(now() - t0 < 0.5, "%.2f s", now() - t0);
		cr_assert(strstr(err, "nested deeper than 64 levels"), "%s", err);
		cr_assert(strncmp(err, "1:", 2) == 0, "%s", err);
		buf_finish(&b);
	}
}

Test(yamldoc, depth_limit_is_exact) {
	struct buf b;
	char err[256];

	buf_init(&b, 0);
	for (int i = 0; i < YAMLDOC_MAX_DEPTH; i++)
		buf_append_str(&b, "[");
	for (int i = 0; i < YAMLDOC_MAX_DEPTH; i++)
		buf_append_str(&b, "]");
	cr_assert_eq(load(b.data, b.len, err, sizeof(err)), 1, "%s", err);
	buf_reset(&b);
	for (int i = 0; i <= YAMLDOC_MAX_DEPTH; i++)
		buf_append_str(&b, "[");
	for (int i = 0; i <= YAMLDOC_MAX_DEPTH; i++)
		buf_append_str(&b, "]");
	cr_assert_eq(load(b.data, b.len, err, sizeof(err)), -EBADMSG);
	buf_finish(&b);
}

/* The finding: 200,000 aliases to one resource (1.6 MB) aborted in xstrdup. */
Test(yamldoc, alias_count_is_limited) {
	struct buf b;
	char err[256];
	double t0;

	buf_init(&b, 0);
	buf_append_str(&b, "resources:\n- &r {apiVersion: v1, kind: Pod}\n");
	for (int i = 0; i < 200000; i++)
		buf_append_str(&b, "- *r\n");
	t0 = now();
	cr_assert_eq(load(b.data, b.len, err, sizeof(err)), -EBADMSG);
	cr_assert(now() - t0 < 0.5, "%.2f s", now() - t0);
	/* The 1001st alias, on line 1003. */
	cr_assert(strstr(err, "1003:3: more than 1000 aliases"), "%s", err);
	buf_finish(&b);
}

/* Billion laughs: nine lines, 10^9 nodes once expanded. */
Test(yamldoc, billion_laughs_is_refused) {
	struct buf b;
	char err[256];

	buf_init(&b, 0);
	buf_append_str(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 9; i++)
		buf_printf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
			i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	cr_assert_eq(load(b.data, b.len, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "more than 100000 nodes with aliases expanded"), "%s", err);
	/* At a4 (10^5 nodes), not after reading the rest. */
	cr_assert(strncmp(err, "5:", 2) == 0, "%s", err);
	buf_finish(&b);
}

/* Few aliases of one long scalar: little to parse, much to expand. */
Test(yamldoc, expanded_text_is_limited) {
	struct buf b;
	char err[256];

	buf_init(&b, 0);
	buf_append_str(&b, "a: &s ");
	for (int i = 0; i < 1024 * 1024; i++)
		buf_append_str(&b, "x");
	buf_append_str(&b, "\nb: [");
	for (int i = 0; i < 20; i++)
		buf_append_str(&b, "*s, ");
	buf_append_str(&b, "]\n");
	cr_assert_eq(load(b.data, b.len, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "more than 16 MiB of text with aliases expanded"), "%s", err);
	buf_finish(&b);
}

Test(yamldoc, alias_cycle_is_refused) {
	static const char text[] = "a: &a\n  b: *a\n";
	char err[256];

	cr_assert_eq(load(text, strlen(text), err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "2:6: alias *a refers to a node that contains it"), "%s", err);
}

Test(yamldoc, anchors_are_limited) {
	struct buf b;
	char err[256];

	buf_init(&b, 0);
	for (int i = 0; i <= YAMLDOC_MAX_ANCHORS; i++)
		buf_printf(&b, "k%d: &a%d x\n", i, i);
	cr_assert_eq(load(b.data, b.len, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "more than 1000 anchors"), "%s", err);
	buf_finish(&b);
}

Test(yamldoc, input_size_is_limited) {
	size_t len = YAMLDOC_MAX_BYTES + 1;
	char *text = malloc(len), err[256];

	memset(text, ' ', len);
	cr_assert_eq(load(text, len, err, sizeof(err)), -E2BIG);
	cr_assert(strstr(err, "more than the limit of 4 MiB"), "%s", err);
	free(text);
}

Test(yamldoc, syntax_error_has_position) {
	static const char text[] = "a: [unclosed\n";
	char err[256];

	cr_assert_eq(load(text, strlen(text), err, sizeof(err)), -EBADMSG);
	cr_assert(strncmp(err, "2:1: ", 5) == 0, "%s", err);
}

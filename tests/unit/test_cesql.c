#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter/cesql.h"
#include "adapter/util/fileio.h"
#include "adapter/util/yamldoc.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#endif
#ifdef HAVE_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* Under ASan, each test ends by asserting that nothing leaked: Criterion's
 * workers would only print LeakSanitizer's report at exit, and neither an
 * assertion nor a crash in a fini function fails the test. */
static void no_leaks(void) {
#ifdef HAVE_ASAN
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (see the report above)");
#endif
}

/* The whole CESQL conformance suite (TCK) from ../shared/reference/cesql-tck,
 * plus targeted tests. The TCK's files and case counts are pinned, so a lost
 * file or case fails the test rather than shrinking it. */

#define TCK_FILES 18
#define TCK_CASES 275

struct attr {
	char name[64];
	struct cesql_value v;
};

struct event {
	struct attr a[32];
	size_t n;
};

static int lookup(const char *name, struct cesql_value *ret_value, void *userdata) {
	struct event *ev = userdata;

	for (size_t i = 0; i < ev->n; i++)
		if (strcmp(ev->a[i].name, name) == 0) {
			*ret_value = ev->a[i].v;
			return 1;
		}
	return 0;
}

static void event_set(struct event *ev, const char *name, struct cesql_value v) {
	size_t i;

	for (i = 0; i < ev->n; i++)
		if (strcmp(ev->a[i].name, name) == 0)
			break;
	cr_assert(i < 32, "too many attributes");
	if (i == ev->n)
		ev->n++;
	snprintf(ev->a[i].name, sizeof(ev->a[i].name), "%s", name);
	ev->a[i].v = v;
}

/* A YAML scalar as a CESQL value: plain true/false (any case) and integers are
 * typed, anything else (and every quoted scalar) is a string. */
static struct cesql_value scalar_value(yaml_node_t *n) {
	const char *s = yamldoc_str(n);
	char *end;
	long v;

	cr_assert(s, "expected a scalar");
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0)
			return (struct cesql_value){ .type = CESQL_BOOLEAN,
				.b = strcasecmp(s, "true") == 0 };
		v = strtol(s, &end, 10);
		if (*s && !*end)
			return (struct cesql_value){ .type = CESQL_INTEGER, .i = (int32_t)v };
	}
	return (struct cesql_value){ .type = CESQL_STRING, .s = s, .len = strlen(s) };
}

static void event_apply(struct event *ev, struct yamldoc *d, yaml_node_t *map) {
	yaml_node_t *k, *v;

	cr_assert(map->type == YAML_MAPPING_NODE, "event must be a mapping");
	for (size_t i = 0; yamldoc_pair(d, map, i, &k, &v); i++)
		event_set(ev, yamldoc_str(k), scalar_value(v));
}

static const char *value_str(const struct cesql_value *v, char *buf, size_t len) {
	if (v->type == CESQL_BOOLEAN)
		snprintf(buf, len, "%s", v->b ? "true" : "false");
	else if (v->type == CESQL_INTEGER)
		snprintf(buf, len, "%d", v->i);
	else
		snprintf(buf, len, "'%.*s'", (int)v->len, v->s);
	return buf;
}

/* Runs one case; returns 1 when it passed (asserting otherwise). */
static int run_case(struct yamldoc *d, yaml_node_t *t, const char *file) {
	const char *name = yamldoc_str(yamldoc_get(d, t, "name"));
	const char *expr = yamldoc_str(yamldoc_get(d, t, "expression"));
	yaml_node_t *result = yamldoc_get(d, t, "result");
	const char *error = yamldoc_str(yamldoc_get(d, t, "error"));
	yaml_node_t *event = yamldoc_get(d, t, "event");
	yaml_node_t *over = yamldoc_get(d, t, "eventOverrides");
	struct event ev = { 0 };
	struct cesql_expr *e = NULL;
	struct cesql_result res;
	char errbuf[200], got[200], want[200];
	int r;

	cr_assert(name && expr, "%s: a case without name or expression", file);
	if (event) {
		event_apply(&ev, d, event);
	} else {
		event_set(&ev, "specversion",
			(struct cesql_value){ .type = CESQL_STRING, .s = "1.0", .len = 3 });
		event_set(&ev, "id",
			(struct cesql_value){ .type = CESQL_STRING, .s = "myId", .len = 4 });
		event_set(&ev, "source",
			(struct cesql_value){
				.type = CESQL_STRING, .s = "localhost.localdomain", .len = 21 });
		event_set(&ev, "type",
			(struct cesql_value){ .type = CESQL_STRING, .s = "myType", .len = 6 });
	}
	if (over)
		event_apply(&ev, d, over);

	r = cesql_parse(expr, &e, errbuf, sizeof(errbuf));
	if (error && strcmp(error, "parse") == 0) {
		cr_assert_eq(r, -EINVAL, "%s: %s: %s: expected a parse error", file, name, expr);
		cr_assert(strncmp(errbuf, "column ", 7) == 0, "%s: %s: message '%s'", file, name,
			errbuf);
		return 1;
	}
	cr_assert_eq(r, 0, "%s: %s: %s: parse failed: %s", file, name, expr, errbuf);
	r = cesql_eval(e, lookup, &ev, &res);
	cr_assert_eq(r, 0, "%s: %s: eval failed: %d", file, name, r);
	cr_assert_str_eq(cesql_error_name(res.error), error ? error : "",
		"%s: %s: %s: error '%s' (%s), expected '%s'", file, name, expr,
		cesql_error_name(res.error), res.message, error ? error : "");
	if (result) {
		struct cesql_value w = scalar_value(result);
		bool same = w.type == res.value.type &&
			(w.type == CESQL_BOOLEAN ? w.b == res.value.b
					: w.type == CESQL_INTEGER
					? w.i == res.value.i
					: (w.len == res.value.len &&
						  memcmp(w.s, res.value.s, w.len) == 0));
		cr_assert(same, "%s: %s: %s: got %s, expected %s", file, name, expr,
			value_str(&res.value, got, sizeof(got)), value_str(&w, want, sizeof(want)));
	}
	cesql_result_finish(&res);
	cesql_expr_free(e);
	return 1;
}

static int cmp_names(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(cesql, tck) {
	const char *dir = getenv("CESQL_TCK_DIR");
	char *names[64];
	size_t nfiles = 0;
	int cases = 0;
	DIR *dp;
	struct dirent *de;

	cr_assert(dir, "CESQL_TCK_DIR is not set");
	dp = opendir(dir);
	cr_assert(dp, "cannot open the TCK directory %s: %s", dir, strerror(errno));
	while ((de = readdir(dp))) {
		size_t len = strlen(de->d_name);
		if (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0) {
			cr_assert(nfiles < 64);
			names[nfiles++] = strdup(de->d_name);
		}
	}
	closedir(dp);
	qsort(names, nfiles, sizeof(names[0]), cmp_names);
	cr_assert_geq(nfiles, TCK_FILES, "only %zu TCK files in %s", nfiles, dir);

	for (size_t f = 0; f < nfiles; f++) {
		char path[4096], *text = NULL, *yerr = NULL;
		struct yamldoc *docs = NULL;
		size_t len, ndocs = 0;
		yaml_node_t *tests;

		snprintf(path, sizeof(path), "%s/%s", dir, names[f]);
		cr_assert_eq(file_read_all(path, 1 << 20, &text, &len), 0, "cannot read %s", path);
		cr_assert_geq(yamldoc_load_all(text, len, &docs, &ndocs, &yerr), 1, "%s: %s", path,
			yerr ? yerr : "no document");
		tests = yamldoc_get(&docs[0], yamldoc_root(&docs[0]), "tests");
		cr_assert(tests && tests->type == YAML_SEQUENCE_NODE, "%s: no tests list", path);
		for (size_t i = 0; i < yamldoc_len(tests); i++)
			cases += run_case(&docs[0], yamldoc_item(&docs[0], tests, i), names[f]);
		yamldoc_free_all(docs, ndocs);
		free(text);
		free(names[f]);
	}
	cr_assert_geq(cases, TCK_CASES, "only %d TCK cases ran, expected %d", cases, TCK_CASES);
	printf("cesql tck: %d cases passed\n", cases);
	no_leaks();
}

/* Parses and evaluates expr against the default event. */
static void eval_str(const char *expr, struct cesql_result *res) {
	struct event ev = { 0 };
	struct cesql_expr *e = NULL;
	char errbuf[200];

	event_set(&ev, "id", (struct cesql_value){ .type = CESQL_STRING, .s = "abc", .len = 3 });
	event_set(&ev, "seq", (struct cesql_value){ .type = CESQL_INTEGER, .i = 7 });
	cr_assert_eq(cesql_parse(expr, &e, errbuf, sizeof(errbuf)), 0, "%s: %s", expr, errbuf);
	cr_assert_eq(cesql_eval(e, lookup, &ev, res), 0);
	cesql_expr_free(e);
}

static void parse_fails(const char *expr, const char *msg) {
	struct cesql_expr *e = NULL;
	char errbuf[200];

	cr_assert_eq(cesql_parse(expr, &e, errbuf, sizeof(errbuf)), -EINVAL, "%s parsed", expr);
	cr_assert_null(e);
	cr_assert_str_eq(errbuf, msg, "%s: got '%s'", expr, errbuf);
}

Test(cesql, parse_error_messages) {
	parse_fails("ABC(", "column 5: unexpected end of expression");
	parse_fails("(a = 1))", "column 8: unexpected ')'");
	parse_fails("a = ", "column 5: unexpected end of expression");
	parse_fails("'abc", "column 1: unterminated string literal");
	parse_fails("a LIKE 123", "column 8: LIKE needs a string literal pattern");
	parse_fails("a IN ()", "column 7: unexpected ')'");
	parse_fails("a <> <> b", "column 6: unexpected '<>'");
	parse_fails("a AND", "column 6: unexpected end of expression");
	parse_fails("AND a", "column 1: unexpected AND");
	parse_fails("a b", "column 3: unexpected identifier 'b'");
	parse_fails("f1(2)", "column 1: invalid function name 'f1'");
	parse_fails("1_a", "column 1: invalid name '1_a'");
	parse_fails("2147483648", "column 1: integer literal out of 32-bit range");
	parse_fails("a ! b", "column 3: unexpected '!' (did you mean '!='?)");
	parse_fails("a # b", "column 3: unexpected character '#'");
	parse_fails("", "column 1: empty expression");
	parse_fails("my_attr = 1", "column 1: 'my_attr' is not a valid attribute name");
	parse_fails("EXISTS 'a'", "column 8: EXISTS needs an attribute name");
	/* Columns count characters, not bytes. */
	parse_fails("'é' = )", "column 7: unexpected ')'");
	no_leaks();
}

Test(cesql, deep_nesting_refused) {
	size_t n = 100000;
	char *s = malloc(2 * n + 2);
	struct cesql_expr *e = NULL;
	char errbuf[200];

	/* Parentheses, NOT chains and long left-associative chains all count. */
	memset(s, '(', n);
	s[n] = '1';
	memset(s + n + 1, ')', n);
	s[2 * n + 1] = '\0';
	cr_assert_eq(cesql_parse(s, &e, errbuf, sizeof(errbuf)), -EINVAL);
	for (size_t i = 0; i < 300; i++)
		memcpy(s + 4 * i, "NOT ", 4);
	strcpy(s + 1200, "true");
	cr_assert_eq(cesql_parse(s, &e, errbuf, sizeof(errbuf)), -EINVAL);
	cr_assert(strstr(errbuf, "nested too deeply"), "%s", errbuf);
	for (size_t i = 0; i < 1000; i++)
		memcpy(s + 4 * i, "1 + ", 4);
	strcpy(s + 4000, "1");
	cr_assert_eq(cesql_parse(s, &e, errbuf, sizeof(errbuf)), -EINVAL);
	cr_assert(strstr(errbuf, "nested too deeply"), "%s", errbuf);
	/* Just inside the limit parses and evaluates. */
	for (size_t i = 0; i < 200; i++)
		memcpy(s + 4 * i, "1 + ", 4);
	strcpy(s + 800, "1");
	cr_assert_eq(cesql_parse(s, &e, errbuf, sizeof(errbuf)), 0, "%s", errbuf);
	cesql_expr_free(e);
	free(s);
	no_leaks();
}

Test(cesql, long_input_refused) {
	size_t n = CESQL_MAX_EXPR_LEN + 10;
	char *s = malloc(n + 3);
	struct cesql_expr *e = NULL;
	char errbuf[200];

	s[0] = '\'';
	memset(s + 1, 'a', n);
	s[n + 1] = '\'';
	s[n + 2] = '\0';
	cr_assert_eq(cesql_parse(s, &e, errbuf, sizeof(errbuf)), -EINVAL);
	cr_assert(strstr(errbuf, "longer than"), "%s", errbuf);
	/* A long string just under the cap is fine. */
	s[CESQL_MAX_EXPR_LEN - 1] = '\'';
	s[CESQL_MAX_EXPR_LEN] = '\0';
	cr_assert_eq(cesql_parse(s, &e, errbuf, sizeof(errbuf)), 0, "%s", errbuf);
	cesql_expr_free(e);
	free(s);
	no_leaks();
}

Test(cesql, left_associative_logic) {
	struct cesql_result r;

	/* Left to right: (TRUE OR TRUE) AND FALSE is false; sdk-go's right
	 * associativity would give TRUE OR (TRUE AND FALSE), true. */
	eval_str("TRUE OR TRUE AND FALSE", &r);
	cr_assert_eq(r.value.type, CESQL_BOOLEAN);
	cr_assert(!r.value.b);
	eval_str("FALSE AND FALSE OR TRUE", &r);
	cr_assert(r.value.b);
	eval_str("10 - 4 - 3", &r);
	cr_assert_eq(r.value.i, 3);
	eval_str("100 / 10 / 5", &r);
	cr_assert_eq(r.value.i, 2);
	no_leaks();
}

Test(cesql, values_and_errors) {
	struct cesql_result r;

	eval_str("seq * 2 = 14 AND id = 'abc'", &r);
	cr_assert(cesql_result_passes(&r));
	eval_str("2147483647 + 1", &r);
	cr_assert_eq(r.error, CESQL_ERR_MATH);
	eval_str("-2147483648 / -1", &r);
	cr_assert_eq(r.error, CESQL_ERR_MATH);
	eval_str("-7 % 3", &r);
	cr_assert_eq(r.value.i, -1);
	eval_str("CONCAT(id, 1, TRUE)", &r);
	cr_assert_str_eq(r.value.s, "abc1true");
	cesql_result_finish(&r);
	eval_str("LENGTH('héllo')", &r);
	cr_assert_eq(r.value.i, 5);
	eval_str("SUBSTRING('héllo', 2, 2)", &r);
	cr_assert_str_eq(r.value.s, "él");
	cesql_result_finish(&r);
	eval_str("'héllo' LIKE 'h_llo'", &r);
	cr_assert(r.value.b);
	eval_str("TRIM('\xe3\x80\x80 x \t')", &r);
	cr_assert_str_eq(r.value.s, "x");
	cesql_result_finish(&r);
	eval_str("NOSUCH(1)", &r);
	cr_assert_eq(r.error, CESQL_ERR_MISSING_FUNCTION);
	cr_assert(!cesql_result_passes(&r));
	eval_str("IS_INT('12') AND NOT IS_INT('x') AND IS_BOOL('TRUE')", &r);
	cr_assert(cesql_result_passes(&r));
	eval_str("'a''b' = \"a'b\"", &r);
	cr_assert(cesql_result_passes(&r));
	eval_str("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab' LIKE '%a%a%a%a%a%a%a%a%a%c'", &r);
	cr_assert(!r.value.b);
	eval_str("5", &r);
	cr_assert(!cesql_result_passes(&r));
	no_leaks();
}

static uint32_t rnd(uint32_t *state) {
	*state = *state * 1664525u + 1013904223u;
	return *state >> 8;
}

/* Random token soup: whatever parses must evaluate, and nothing may crash or
 * leak (run under -Db_sanitize=address,undefined). */
Test(cesql, random_expressions_are_safe) {
	static const char *const frags[] = { "(", ")", ",", "NOT ", "-", "+", "*", "/", "%", "=",
		"!=", "<>", "<", "<=", ">", ">=", " AND ", " OR ", " XOR ", " LIKE ", " NOT LIKE ",
		" IN ", " NOT IN ", "EXISTS ", "TRUE", "false", "'a%_\\'b'", "\"x\\\"\"", "'%'",
		"0", "7", "-2147483648", "2147483647", "2147483648", "id", "seq", "missing",
		"LENGTH(", "SUBSTRING(", "CONCAT(", "CONCAT_WS(", "ABS(", "INT(", "BOOL(",
		"STRING(", "LEFT(", "RIGHT(", "TRIM(", "LOWER(", "UPPER(", "IS_INT(", "NOPE(", "'",
		"\\", " ", "'\xc3\xa9'", "\xff" };
	const size_t nfrags = sizeof(frags) / sizeof(frags[0]);
	struct event ev = { 0 };
	uint32_t seed = 12345;
	int parsed = 0, evaluated = 0;
	char buf[1024];

	event_set(&ev, "id", (struct cesql_value){ .type = CESQL_STRING, .s = "abc", .len = 3 });
	event_set(&ev, "seq", (struct cesql_value){ .type = CESQL_INTEGER, .i = 7 });
	for (int iter = 0; iter < 30000; iter++) {
		size_t o = 0, n = 1 + rnd(&seed) % 24;
		struct cesql_expr *e = NULL;
		struct cesql_result res;
		char errbuf[200];

		for (size_t k = 0; k < n; k++) {
			const char *f = frags[rnd(&seed) % nfrags];
			size_t len = strlen(f);
			if (o + len >= sizeof(buf))
				break;
			memcpy(buf + o, f, len);
			o += len;
		}
		buf[o] = '\0';
		if (cesql_parse(buf, &e, errbuf, sizeof(errbuf)) < 0) {
			cr_assert(strncmp(errbuf, "column ", 7) == 0, "%s: '%s'", buf, errbuf);
			continue;
		}
		parsed++;
		cr_assert_eq(cesql_eval(e, lookup, &ev, &res), 0, "%s", buf);
		cr_assert(res.value.type != CESQL_STRING || res.value.s, "%s", buf);
		cr_assert((res.error == CESQL_ERR_NONE) == (res.message[0] == '\0'), "%s", buf);
		evaluated++;
		cesql_result_finish(&res);
		cesql_expr_free(e);
	}
	cr_assert_gt(parsed, 300, "only %d of the random expressions parsed", parsed);
	cr_assert_eq(parsed, evaluated);
	no_leaks();
}

/* A random well-formed expression of at most depth levels. */
static void gen(uint32_t *seed, int depth, char *buf, size_t cap, size_t *o) {
	static const char *const atoms[] = { "TRUE", "false", "0", "7", "-3", "2147483647",
		"-2147483648", "'abc'", "'7'", "'true'", "\"\"", "'h\xc3\xa9llo'", "id", "seq",
		"missing", "EXISTS id", "EXISTS missing" };
	static const char *const binops[] = { " AND ", " OR ", " XOR ", " = ", " != ", " <> ",
		" < ", " <= ", " > ", " >= ", " + ", " - ", " * ", " / ", " % " };
	static const char *const funcs[] = { "LENGTH", "CONCAT", "CONCAT_WS", "LOWER", "UPPER",
		"TRIM", "LEFT", "RIGHT", "SUBSTRING", "ABS", "INT", "BOOL", "STRING", "IS_INT",
		"IS_BOOL", "NOPE" };
	uint32_t pick = depth <= 0 ? 0 : rnd(seed) % 7;
	int w;

	if (*o + 64 >= cap)
		pick = 0;
	switch (pick) {
	case 0:
		w = snprintf(buf + *o, cap - *o, "%s", atoms[rnd(seed) % 17]);
		*o += (size_t)w;
		return;
	case 1:
		w = snprintf(buf + *o, cap - *o, "%s", rnd(seed) % 2 ? "NOT " : "-");
		*o += (size_t)w;
		gen(seed, depth - 1, buf, cap, o);
		return;
	case 2:
	case 3:
		buf[(*o)++] = '(';
		gen(seed, depth - 1, buf, cap, o);
		w = snprintf(buf + *o, cap - *o, "%s", binops[rnd(seed) % 15]);
		*o += (size_t)w;
		gen(seed, depth - 1, buf, cap, o);
		buf[(*o)++] = ')';
		return;
	case 4:
		gen(seed, depth - 1, buf, cap, o);
		w = snprintf(buf + *o, cap - *o, "%s",
			rnd(seed) % 2 ? " LIKE 'a%_\\%'" : " NOT LIKE '%7'");
		*o += (size_t)w;
		return;
	case 5:
		gen(seed, depth - 1, buf, cap, o);
		w = snprintf(buf + *o, cap - *o, "%s", rnd(seed) % 2 ? " IN (" : " NOT IN (");
		*o += (size_t)w;
		gen(seed, depth - 1, buf, cap, o);
		buf[(*o)++] = ',';
		gen(seed, depth - 1, buf, cap, o);
		buf[(*o)++] = ')';
		return;
	default:
		w = snprintf(buf + *o, cap - *o, "%s(", funcs[rnd(seed) % 16]);
		*o += (size_t)w;
		for (uint32_t k = 0, n = rnd(seed) % 4; k < n; k++) {
			if (k)
				buf[(*o)++] = ',';
			gen(seed, depth - 1, buf, cap, o);
		}
		buf[(*o)++] = ')';
		return;
	}
}

/* Random well-formed expressions: all parse, all evaluate. */
Test(cesql, random_wellformed_expressions_evaluate) {
	struct event ev = { 0 };
	uint32_t seed = 4242;
	char buf[4096];

	event_set(&ev, "id", (struct cesql_value){ .type = CESQL_STRING, .s = "abc", .len = 3 });
	event_set(&ev, "seq", (struct cesql_value){ .type = CESQL_INTEGER, .i = 7 });
	for (int iter = 0; iter < 20000; iter++) {
		struct cesql_expr *e = NULL;
		struct cesql_result res;
		char errbuf[200];
		size_t o = 0;

		gen(&seed, 1 + (int)(rnd(&seed) % 6), buf, sizeof(buf), &o);
		buf[o] = '\0';
		cr_assert_eq(
			cesql_parse(buf, &e, errbuf, sizeof(errbuf)), 0, "%s: %s", buf, errbuf);
		cr_assert_eq(cesql_eval(e, lookup, &ev, &res), 0, "%s", buf);
		cr_assert((res.error == CESQL_ERR_NONE) == (res.message[0] == '\0'), "%s", buf);
		cesql_result_finish(&res);
		cesql_expr_free(e);
	}
	no_leaks();
}

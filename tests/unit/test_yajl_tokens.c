/* yajl's separators, as the adapter links it: with the lean build, the project's patched
 * yajl (scripts/lean-deps-patches/yajl-2.1-tokens.patch) takes a ':' ',' '}' or ']' that
 * is the very next byte without calling its lexer, unless a token is held over from an
 * earlier chunk. Each document is parsed whole, in two chunks split at every offset, and
 * one byte at a time: the callbacks, in order, and the error for a bad separator must be
 * the same every way, and what the JSON grammar says. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_parse.h>

struct trace {
	char s[1024];
	size_t len;
	int cancel_at_end_map; /* return 0 from the n'th end of map (1-based) */
	int end_maps;
};

static void add(struct trace *t, const char *what, const unsigned char *s, size_t n)
{
	int k = snprintf(t->s + t->len, sizeof t->s - t->len, "%s%.*s ", what, (int)n,
		s ? (const char *)s : "");
	cr_assert(k > 0 && (size_t)k < sizeof t->s - t->len);
	t->len += (size_t)k;
}

static int on_null(void *c) { add(c, "null", NULL, 0); return 1; }
static int on_bool(void *c, int b) { add(c, b ? "true" : "false", NULL, 0); return 1; }
static int on_number(void *c, const char *s, size_t n)
{
	add(c, "n:", (const unsigned char *)s, n);
	return 1;
}
static int on_string(void *c, const unsigned char *s, size_t n) { add(c, "s:", s, n); return 1; }
static int on_start_map(void *c) { add(c, "{", NULL, 0); return 1; }
static int on_key(void *c, const unsigned char *s, size_t n) { add(c, "k:", s, n); return 1; }
static int on_end_map(void *c)
{
	struct trace *t = c;
	add(c, "}", NULL, 0);
	return ++t->end_maps != t->cancel_at_end_map;
}
static int on_start_array(void *c) { add(c, "[", NULL, 0); return 1; }
static int on_end_array(void *c) { add(c, "]", NULL, 0); return 1; }

static const yajl_callbacks cbs = {
	.yajl_null = on_null, .yajl_boolean = on_bool, .yajl_number = on_number,
	.yajl_string = on_string, .yajl_start_map = on_start_map, .yajl_map_key = on_key,
	.yajl_end_map = on_end_map, .yajl_start_array = on_start_array,
	.yajl_end_array = on_end_array,
};

/* Feeds text in chunks of `chunk` bytes (0: whole) after `split` bytes (0: no split).
 * Returns the final status; the trace and, on error, yajl's message (not verbose). */
static yajl_status parse(const char *text, size_t split, size_t chunk, int cancel_at,
	struct trace *t, char *err, size_t errlen)
{
	size_t len = strlen(text), off = 0;
	yajl_status st = yajl_status_ok;
	yajl_handle h;

	memset(t, 0, sizeof *t);
	t->cancel_at_end_map = cancel_at;
	err[0] = '\0';
	h = yajl_alloc(&cbs, NULL, t);
	cr_assert_not_null(h);
	while (st == yajl_status_ok && off < len) {
		size_t n = len - off;
		if (split && off < split)
			n = split - off;
		else if (chunk && chunk < n)
			n = chunk;
		st = yajl_parse(h, (const unsigned char *)text + off, n);
		off += n;
	}
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (st == yajl_status_error) {
		unsigned char *e = yajl_get_error(h, 0, NULL, 0);
		snprintf(err, errlen, "%s", (const char *)e);
		yajl_free_error(h, e);
	}
	yajl_free(h);
	return st;
}

/* Every way of feeding text gives want (the trace) and, when an error is expected,
 * an error containing want_err. */
static void check(const char *text, const char *want, const char *want_err)
{
	size_t len = strlen(text);
	struct trace t;
	char err[256];

	for (size_t way = 0; way <= len + 1; way++) {
		/* way 0: whole; 1..len-1: split there; len: one byte at a time */
		size_t split = way > 0 && way < len ? way : 0, chunk = way == len ? 1 : 0;
		yajl_status st = parse(text, split, chunk, 0, &t, err, sizeof err);

		if (want_err) {
			cr_assert_eq(st, yajl_status_error, "%s (way %zu): accepted", text, way);
			cr_assert(strstr(err, want_err), "%s (way %zu): error '%s'", text, way, err);
		} else {
			cr_assert_eq(st, yajl_status_ok, "%s (way %zu): %s", text, way, err);
		}
		cr_assert_str_eq(t.s, want, "%s (way %zu)", text, way);
	}
}

Test(yajl_tokens, separators_in_maps_and_arrays)
{
	check("{\"a\":1,\"b\":\"x\",\"c\":{\"d\":[1,2,{\"e\":null}],\"f\":[]},\"g\":true}",
		"{ k:a n:1 k:b s:x k:c { k:d [ n:1 n:2 { k:e null } ] k:f [ ] } k:g true } ", NULL);
	/* whitespace before each separator: the lexer's way */
	check("{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }", "{ k:a n:1 k:b [ n:1 n:2 ] } ", NULL);
	check("[[],{},[{}],{\"a\":{}}]", "[ [ ] { } [ { } ] { k:a { } } ] ", NULL);
	check("{\"k\":\"v\\\"q\",\"n\":-1.5e3}", "{ k:k s:v\"q k:n n:-1.5e3 } ", NULL);
}

Test(yajl_tokens, bad_separators_are_the_grammar_errors)
{
	check("{\"a\" 1}", "{ k:a ", "object key and value must be separated by a colon");
	check("{\"a\",1}", "{ k:a ", "object key and value must be separated by a colon");
	check("{\"a\":1 \"b\":2}", "{ k:a n:1 ", "after key and value, inside map, I expect ',' or '}'");
	check("{\"a\":1]", "{ k:a n:1 ", "after key and value, inside map, I expect ',' or '}'");
	check("[1 2]", "[ n:1 ", "after array element, I expect ',' or ']'");
	check("[1}", "[ n:1 ", "after array element, I expect ',' or ']'");
	check("{\"a\":1,}", "{ k:a n:1 ", "invalid object key");
}

/* An end-of-map callback that returns 0 stops the parse there, by the fast path ('}'
 * after a value) as by the lexer's (whitespace before it). */
Test(yajl_tokens, end_of_map_callback_cancels)
{
	const char *texts[] = { "{\"a\":{\"b\":1},\"c\":2}", "{\"a\":{\"b\":1 },\"c\":2}" };
	struct trace t;
	char err[256];

	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(parse(texts[i], 0, 0, 1, &t, err, sizeof err), yajl_status_client_canceled);
		cr_assert_str_eq(t.s, "{ k:a { k:b n:1 } ");
		cr_assert_eq(parse(texts[i], 0, 1, 1, &t, err, sizeof err), yajl_status_client_canceled);
		cr_assert_str_eq(t.s, "{ k:a { k:b n:1 } ");
	}
}

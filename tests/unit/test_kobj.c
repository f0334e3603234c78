#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/kobj.h"

Test(kobj, parse_event_keeps_object_bytes) {
	const char *line = "{\"type\":\"MODIFIED\",\"object\":{\"apiVersion\":\"kool.karmalabs.local/v1\","
			   "\"kind\":\"Guitar\",\"metadata\":{\"name\":\"d15\",\"namespace\":\"guitar-eventing\","
			   "\"uid\":\"abc\",\"resourceVersion\":\"42\",\"labels\":{\"helloknative\":\"\"},"
			   "\"ownerReferences\":[{\"apiVersion\":\"a/v1\",\"kind\":\"X\",\"name\":\"x\"},"
			   "{\"apiVersion\":\"custom/v1\",\"kind\":\"Parent\",\"name\":\"p\",\"controller\":true}]},"
			   "\"spec\":{\"brand\":\"martin\",\"name\":\"not-me\"}}}";
	struct kobj_event ev;

	cr_assert_eq(kobj_parse_event(line, strlen(line), &ev), 0);
	cr_assert_eq(ev.type, KOBJ_MODIFIED);
	cr_assert_str_eq(ev.obj.kind, "Guitar");
	cr_assert_str_eq(ev.obj.api_version, "kool.karmalabs.local/v1");
	cr_assert_str_eq(ev.obj.name, "d15");
	cr_assert_str_eq(ev.obj.namespace, "guitar-eventing");
	cr_assert_str_eq(ev.obj.uid, "abc");
	cr_assert_str_eq(ev.obj.resource_version, "42");
	cr_assert(ev.obj.has_controller);
	cr_assert_str_eq(ev.obj.controller_kind, "Parent");
	cr_assert_str_eq(ev.obj.controller_api_version, "custom/v1");
	cr_assert_eq(ev.obj.json[0], '{');
	cr_assert_eq(ev.obj.json[ev.obj.json_len - 1], '}');
	cr_assert_eq(ev.obj.json + ev.obj.json_len, line + strlen(line) - 1);
	cr_assert_eq(strncmp(ev.obj.json, "{\"apiVersion\"", 13), 0);
}

Test(kobj, parse_error_event_and_bookmark) {
	const char *err = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
			  "\"status\":\"Failure\",\"message\":\"too old resource version: 5 (9)\","
			  "\"reason\":\"Expired\",\"code\":410}}";
	const char *bm = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Guitar\",\"apiVersion\":\"v\","
			 "\"metadata\":{\"resourceVersion\":\"99\"}}}";
	struct kobj_event ev;

	cr_assert_eq(kobj_parse_event(err, strlen(err), &ev), 0);
	cr_assert_eq(ev.type, KOBJ_ERROR);
	cr_assert_eq(ev.obj.code, 410);
	cr_assert_str_eq(ev.obj.reason, "Expired");
	cr_assert_str_eq(ev.obj.message, "too old resource version: 5 (9)");
	cr_assert_eq(kobj_parse_event(bm, strlen(bm), &ev), 0);
	cr_assert_eq(ev.type, KOBJ_BOOKMARK);
	cr_assert_str_eq(ev.obj.resource_version, "99");
}

Test(kobj, bad_lines_are_rejected) {
	struct kobj_event ev;
	const char *cases[] = {
		"not json",
		"{\"type\":\"ADDED\"}",
		"{\"object\":{}}",
		"{\"type\":\"ADDED\",\"object\":{}",
		"[1,2,3]",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(kobj_parse_event(cases[i], strlen(cases[i]), &ev), -EBADMSG, "%s",
			cases[i]);
	cr_assert_eq(kobj_parse_event("{\"type\":\"FOO\",\"object\":{}}", 26, &ev), 0);
	cr_assert_eq(ev.type, KOBJ_UNKNOWN);
}

Test(kobj, big_object_parses) {
	size_t n = 5 * 1024 * 1024;
	char *line = malloc(n + 200);
	struct kobj_event ev;
	int len;

	len = sprintf(line, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"big\"},\"data\":\"");
	memset(line + len, 'x', n);
	len += (int)n;
	len += sprintf(line + len, "\"}}");
	cr_assert_eq(kobj_parse_event(line, (size_t)len, &ev), 0);
	cr_assert_str_eq(ev.obj.name, "big");
	cr_assert_eq(ev.obj.json_len, (size_t)len - 26);
	free(line);
}

struct items {
	int n;
	char names[8][KOBJ_NAME_MAX];
	char raw[8][256];
};

static int collect_item(const struct kobj *o, void *ud) {
	struct items *it = ud;

	snprintf(it->names[it->n], KOBJ_NAME_MAX, "%s", o->name);
	snprintf(it->raw[it->n], 256, "%.*s", (int)o->json_len, o->json);
	it->n++;
	return 0;
}

Test(kobj, list_in_small_chunks) {
	const char *body = "{\"kind\":\"GuitarList\",\"apiVersion\":\"kool.karmalabs.local/v1\","
			   "\"metadata\":{\"resourceVersion\":\"120\",\"continue\":\"tok\"},\"items\":["
			   "{\"metadata\":{\"name\":\"a\",\"uid\":\"1\",\"resourceVersion\":\"100\"}},"
			   "{\"metadata\":{\"name\":\"b\",\"uid\":\"2\",\"resourceVersion\":\"110\"},\"spec\":{\"x\":[1,{\"y\":2}]}}]}";
	struct kobj_list *l;
	struct items it = { 0 };
	const char *rv, *cont, *msg;
	long long code;

	cr_assert_eq(kobj_list_create(4096, collect_item, &it, &l), 0);
	for (size_t i = 0; i < strlen(body); i += 7)
		cr_assert_eq(kobj_list_feed(l, body + i, strlen(body) - i < 7 ? strlen(body) - i : 7), 0);
	cr_assert_eq(kobj_list_end(l, &rv, &cont, &code, &msg), 0);
	cr_assert_eq(it.n, 2);
	cr_assert_str_eq(it.names[1], "b");
	cr_assert_str_eq(it.raw[1],
		"{\"metadata\":{\"name\":\"b\",\"uid\":\"2\",\"resourceVersion\":\"110\"},\"spec\":{\"x\":[1,{\"y\":2}]}}");
	cr_assert_str_eq(rv, "120");
	cr_assert_str_eq(cont, "tok");
	cr_assert_eq(code, 0);
	kobj_list_destroy(l);
}

Test(kobj, list_item_cap) {
	const char *body = "{\"items\":[{\"metadata\":{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}]}";
	struct kobj_list *l;
	struct items it = { 0 };

	cr_assert_eq(kobj_list_create(16, collect_item, &it, &l), 0);
	cr_assert_eq(kobj_list_feed(l, body, 30), -E2BIG);
	kobj_list_destroy(l);
}

Test(kobj, list_status_body) {
	const char *body = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
			   "\"message\":\"forbidden\",\"code\":403}";
	struct kobj_list *l;
	struct items it = { 0 };
	const char *rv, *cont, *msg;
	long long code;

	cr_assert_eq(kobj_list_create(4096, collect_item, &it, &l), 0);
	cr_assert_eq(kobj_list_feed(l, body, strlen(body)), 0);
	cr_assert_eq(kobj_list_end(l, &rv, &cont, &code, &msg), 0);
	cr_assert_eq(code, 403);
	cr_assert_str_eq(msg, "forbidden");
	kobj_list_destroy(l);
}

/* ---------------- hostile input (issue 9) ---------------- */

#define CHUNK (16 * 1024)
/* What a list may hold of a value outside items while it arrives: its raw
 * form, escapes and all (kobj.c's RAW_PER_DECODED), plus a chunk. */
#define HELD_MAX (6 * KOBJ_LIST_VALUE_MAX + 2 * CHUNK)

/* Feeds body in CHUNK-byte pieces; returns the first error (and how many
 * bytes had been fed when it came), or kobj_list_end's result. */
static int feed_all(struct kobj_list *l, const char *body, size_t len, size_t *ret_fed,
	const char **ret_cont) {
	const char *rv, *cont = "", *msg;
	long long code;
	size_t off = 0;
	int r = 0;

	while (off < len) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;

		off += n;
		r = kobj_list_feed(l, body + off - n, n);
		if (r < 0)
			break;
	}
	if (ret_fed)
		*ret_fed = off;
	if (r == 0)
		r = kobj_list_end(l, &rv, &cont, &code, &msg);
	if (ret_cont)
		*ret_cont = cont;
	return r;
}

/* A list page: metadata with a continue token of n bytes, then one item. */
static char *list_with_continue(size_t n, size_t *ret_len) {
	char *body = malloc(n + 256);
	int len;

	len = sprintf(body, "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"7\",\"continue\":\"");
	memset(body + len, 'c', n);
	len += (int)n;
	len += sprintf(body + len, "\"},\"items\":[{\"metadata\":{\"name\":\"a\",\"uid\":\"1\"}}]}");
	*ret_len = (size_t)len;
	return body;
}

Test(kobj, list_continue_token_over_8kib_is_an_error_not_truncated) {
	struct items it = { 0 };
	struct kobj_list *l;
	size_t len;
	char *body = list_with_continue(KOBJ_CONTINUE_MAX + 1, &len);
	int r;

	/* Truncated, the token would ask the server for a page it never gave
	 * (or, cut to nothing, end the list early and sweep every later object). */
	cr_assert_eq(kobj_list_create(4096, collect_item, &it, &l), 0);
	r = feed_all(l, body, len, NULL, NULL);
	cr_assert_eq(r, -EOVERFLOW, "%d", r);
	cr_assert(strstr(kobj_strerror(r), "metadata.continue") != NULL, "%s", kobj_strerror(r));
	kobj_list_destroy(l);
	free(body);
}

Test(kobj, list_continue_token_of_8kib_is_kept_whole) {
	struct items it = { 0 };
	struct kobj_list *l;
	const char *cont;
	size_t len;
	char *body = list_with_continue(KOBJ_CONTINUE_MAX, &len);

	cr_assert_eq(kobj_list_create(4096, collect_item, &it, &l), 0);
	cr_assert_eq(feed_all(l, body, len, NULL, &cont), 0);
	cr_assert_eq(strlen(cont), KOBJ_CONTINUE_MAX);
	cr_assert_eq(strspn(cont, "c"), KOBJ_CONTINUE_MAX);
	cr_assert_eq(it.n, 1);
	kobj_list_destroy(l);
	free(body);
}

/* Found by fuzz_list's oracle: a list's metadata.resourceVersion over 63
 * bytes was cut to 63, and the watch would start from a version the server
 * never sent. It is refused; 63 bytes are kept whole. */
Test(kobj, list_resource_version_over_63_bytes_is_refused_not_cut) {
	char body[512], rv[101];

	for (size_t n = 63; n <= 100; n += 37) {
		struct items it = { 0 };
		struct kobj_list *l;
		const char *got = NULL, *cont, *msg;
		long long code;
		int r;

		memset(rv, '7', n);
		rv[n] = '\0';
		snprintf(body, sizeof(body),
			"{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"%s\"},"
			"\"items\":[{\"metadata\":{\"name\":\"a\"}}]}", rv);
		cr_assert_eq(kobj_list_create(4096, collect_item, &it, &l), 0);
		r = kobj_list_feed(l, body, strlen(body));
		if (r == 0)
			r = kobj_list_end(l, &got, &cont, &code, &msg);
		if (n == 63) {
			cr_assert_eq(r, 0);
			cr_assert_str_eq(got, rv);
		} else {
			cr_assert_eq(r, -ERANGE, "%d", r);
			cr_assert(strstr(kobj_strerror(r), "resourceVersion longer than 63"));
		}
		kobj_list_destroy(l);
	}
}

/* {"kind":"List",<before>"<16 MiB of x>"<after>,"items":[...]} */
static char *list_with_big_string(const char *before, const char *after, size_t n,
	size_t *ret_len) {
	char *body = malloc(n + 512);
	int len;

	len = sprintf(body, "{\"kind\":\"List\",%s\"", before);
	memset(body + len, 'x', n);
	len += (int)n;
	len += sprintf(body + len, "\"%s,\"items\":[{\"metadata\":{\"name\":\"a\"}}]}", after);
	*ret_len = (size_t)len;
	return body;
}

static void refuse_big_string(const char *before, const char *after) {
	struct items it = { 0 };
	struct kobj_list *l;
	size_t len, fed;
	char *body = list_with_big_string(before, after, 16 << 20, &len);
	int r;

	/* max_item as --max-event-bytes=1024 makes it. */
	cr_assert_eq(kobj_list_create(1024, collect_item, &it, &l), 0);
	r = feed_all(l, body, len, &fed, NULL);
	cr_assert_eq(r, -EMSGSIZE, "%s%s: %d", before, after, r);
	cr_assert(strstr(kobj_strerror(r), "outside the list's items") != NULL);
	/* Refused once the bound is passed, not after reading all 16 MiB. */
	cr_assert_leq(fed, HELD_MAX, "fed %zu", fed);
	cr_assert_eq(it.n, 0);
	kobj_list_destroy(l);
	free(body);
}

Test(kobj, list_16mib_string_outside_items_is_refused, .timeout = 30) {
	refuse_big_string("\"metadata\":{\"resourceVersion\":\"1\",\"selfLink\":", "}");
	refuse_big_string("\"metadata\":{\"annotations\":{\"a\":", "}}");
	refuse_big_string("\"unknownField\":", "");
	refuse_big_string("\"unknown\":[1,2,{\"deep\":", "}]");
	/* A key is a token too. */
	refuse_big_string("\"metadata\":{", ":1}");
}

Test(kobj, list_16mib_number_outside_items_is_refused, .timeout = 30) {
	struct items it = { 0 };
	struct kobj_list *l;
	size_t n = 16 << 20, len, fed;
	char *body = malloc(n + 64);
	int r;

	len = (size_t)sprintf(body, "{\"metadata\":{\"remainingItemCount\":");
	memset(body + len, '9', n);
	len += n;
	len += (size_t)sprintf(body + len, "},\"items\":[]}");
	cr_assert_eq(kobj_list_create(1024, collect_item, &it, &l), 0);
	r = feed_all(l, body, len, &fed, NULL);
	cr_assert_eq(r, -EMSGSIZE, "%d", r);
	cr_assert_leq(fed, HELD_MAX);
	kobj_list_destroy(l);
	free(body);
}

static int value_of_size(size_t n, size_t chunk) {
	struct items it = { 0 };
	struct kobj_list *l;
	size_t len;
	char *body = list_with_big_string("\"metadata\":{\"selfLink\":", "}", n, &len);
	int r = 0;

	cr_assert_eq(kobj_list_create(1024, collect_item, &it, &l), 0);
	for (size_t off = 0; r == 0 && off < len; off += chunk)
		r = kobj_list_feed(l, body + off, len - off < chunk ? len - off : chunk);
	if (r == 0) {
		const char *rv, *cont, *msg;
		long long code;

		r = kobj_list_end(l, &rv, &cont, &code, &msg);
		cr_assert(r < 0 || it.n == 1);
	}
	kobj_list_destroy(l);
	free(body);
	return r;
}

Test(kobj, list_value_outside_items_bound_is_exact) {
	/* With its quotes, KOBJ_LIST_VALUE_MAX bytes pass and one more does not,
	 * whether the value comes in one chunk or cut across many. */
	size_t chunks[] = { 1 << 20, CHUNK, 1000 };

	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(value_of_size(KOBJ_LIST_VALUE_MAX - 2, chunks[i]), 0);
		cr_assert_eq(value_of_size(KOBJ_LIST_VALUE_MAX - 1, chunks[i]), -EMSGSIZE);
	}
}

/* The linear-time check, benchmark-free: a 64 MiB string inside one item
 * (allowed by a large max_item), fed in 16 KiB chunks. A parser that hands
 * yajl the partial token with each chunk re-scans it every time: 4,096 chunks
 * of up to 64 MiB, about 128 GiB of reads, far past the timeout. */
Test(kobj, list_64mib_item_in_16kib_chunks_is_linear, .timeout = 60) {
	struct items it = { 0 };
	struct kobj_list *l;
	size_t n = 64 << 20, len;
	char *body = malloc(n + 256);

	len = (size_t)sprintf(body, "{\"metadata\":{\"resourceVersion\":\"5\"},\"items\":["
				    "{\"metadata\":{\"name\":\"big\"},\"data\":\"");
	memset(body + len, 'x', n);
	len += n;
	len += (size_t)sprintf(body + len, "\"},{\"metadata\":{\"name\":\"small\"}}]}");
	cr_assert_eq(kobj_list_create(n + 1024, collect_item, &it, &l), 0);
	cr_assert_eq(feed_all(l, body, len, NULL, NULL), 0);
	cr_assert_eq(it.n, 2);
	cr_assert_str_eq(it.names[0], "big");
	cr_assert_str_eq(it.names[1], "small");
	kobj_list_destroy(l);
	free(body);
}

/* The same item against max_item 1024: refused within the first chunks. */
Test(kobj, list_16mib_string_in_an_item_is_refused_early) {
	struct items it = { 0 };
	struct kobj_list *l;
	size_t n = 16 << 20, len, fed;
	char *body = malloc(n + 256);
	int r;

	len = (size_t)sprintf(body, "{\"items\":[{\"metadata\":{\"name\":\"big\"},\"data\":\"");
	memset(body + len, 'x', n);
	len += n;
	len += (size_t)sprintf(body + len, "\"}]}");
	cr_assert_eq(kobj_list_create(1024, collect_item, &it, &l), 0);
	r = feed_all(l, body, len, &fed, NULL);
	cr_assert_eq(r, -E2BIG, "%d", r);
	cr_assert_leq(fed, CHUNK);
	kobj_list_destroy(l);
	free(body);
}

/* depth levels of arrays (with an object at the innermost level) at json. */
static char *nested(const char *prefix, size_t depth, const char *suffix, size_t *ret_len) {
	size_t p = strlen(prefix), s = strlen(suffix);
	char *b = malloc(p + 2 * depth + s + 1);

	memcpy(b, prefix, p);
	memset(b + p, '[', depth);
	memset(b + p + depth, ']', depth);
	memcpy(b + p + 2 * depth, suffix, s + 1);
	*ret_len = p + 2 * depth + s;
	return b;
}

Test(kobj, event_nested_400k_deep_is_refused) {
	struct kobj_event ev;
	size_t len;
	char *line = nested("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"},\"x\":", 400000,
		"}}", &len);
	int r = kobj_parse_event(line, len, &ev);

	cr_assert_eq(r, -ELOOP, "%d", r);
	cr_assert(strstr(kobj_strerror(r), "nested deeper than 128 levels") != NULL, "%s",
		kobj_strerror(r));
	free(line);
}

Test(kobj, list_item_nested_400k_deep_is_refused) {
	struct items it = { 0 };
	struct kobj_list *l;
	size_t len;
	char *body = nested("{\"items\":[{\"metadata\":{\"name\":\"a\"},\"x\":", 400000, "}]}", &len);
	int r;

	cr_assert_eq(kobj_list_create(4 << 20, collect_item, &it, &l), 0);
	r = feed_all(l, body, len, NULL, NULL);
	cr_assert_eq(r, -ELOOP, "%d", r);
	cr_assert_eq(it.n, 0);
	kobj_list_destroy(l);
	free(body);
}

Test(kobj, list_nested_400k_deep_outside_items_is_refused) {
	struct items it = { 0 };
	struct kobj_list *l;
	size_t len;
	char *body = nested("{\"metadata\":{\"x\":", 400000, "},\"items\":[]}", &len);
	int r;

	cr_assert_eq(kobj_list_create(1024, collect_item, &it, &l), 0);
	r = feed_all(l, body, len, NULL, NULL);
	cr_assert_eq(r, -ELOOP, "%d", r);
	kobj_list_destroy(l);
	free(body);
}

Test(kobj, nesting_at_the_depth_bound_is_accepted) {
	struct kobj_event ev;
	size_t len;
	/* The line's map and the object are two levels. */
	char *line = nested("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"},\"x\":",
		KOBJ_MAX_DEPTH - 2, "}}", &len);
	char *over = nested("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"},\"x\":",
		KOBJ_MAX_DEPTH - 1, "}}", &len);

	cr_assert_eq(kobj_parse_event(line, strlen(line), &ev), 0);
	cr_assert_str_eq(ev.obj.name, "a");
	cr_assert_eq(kobj_parse_event(over, strlen(over), &ev), -ELOOP);
	free(line);
	free(over);
}

Test(kobj, list_escapes_and_numbers_in_one_byte_chunks) {
	const char *body = "{\"metadata\":{\"continue\":\"a\\\"b\\\\\",\"resourceVersion\":\"9\","
			   "\"remainingItemCount\":12345},\"x\":[true,false,null,-1.5e3],\"items\":["
			   "{\"metadata\":{\"name\":\"q\\\"\\\\\\u0041\",\"uid\":\"1\"},\"n\":[1,23]}\t\r\n]}";
	struct items it = { 0 };
	struct kobj_list *l;
	const char *rv, *cont, *msg;
	long long code;

	cr_assert_eq(kobj_list_create(4096, collect_item, &it, &l), 0);
	for (size_t i = 0; i < strlen(body); i++)
		cr_assert_eq(kobj_list_feed(l, body + i, 1), 0, "at %zu", i);
	cr_assert_eq(kobj_list_end(l, &rv, &cont, &code, &msg), 0);
	cr_assert_str_eq(cont, "a\"b\\");
	cr_assert_str_eq(rv, "9");
	cr_assert_eq(it.n, 1);
	cr_assert_str_eq(it.names[0], "q\"\\A");
	cr_assert_str_eq(it.raw[0],
		"{\"metadata\":{\"name\":\"q\\\"\\\\\\u0041\",\"uid\":\"1\"},\"n\":[1,23]}");
	kobj_list_destroy(l);
}

Test(kobj, list_bad_json_is_refused) {
	const char *cases[] = {
		"{\"items\":[}",
		"{\"items\":[{\"a\":tru}]}",
		"{\"metadata\":{\"continue\":\"\\q\"},\"items\":[]}",
		"{\"items\":[]}}",
		"{\"items\":[] \"x\":1}",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct items it = { 0 };
		struct kobj_list *l;
		const char *rv, *cont, *msg;
		long long code;
		int r;

		cr_assert_eq(kobj_list_create(4096, collect_item, &it, &l), 0);
		r = kobj_list_feed(l, cases[i], strlen(cases[i]));
		if (r == 0)
			r = kobj_list_end(l, &rv, &cont, &code, &msg);
		cr_assert_eq(r, -EBADMSG, "%s: %d", cases[i], r);
		kobj_list_destroy(l);
	}
}

/* What the stack held before the parse: kobj_parse_event keeps its state on
 * the stack, clearing only what it must, so any field left out of the clear
 * shows this pattern. */
static __attribute__((noinline)) void dirty_stack(void) {
	volatile unsigned char junk[64 * 1024];

	memset((void *)junk, 0xa5, sizeof(junk));
}

/* The sanitizer tier's crash in cevent_create: changed_paths (added for
 * --with-changes) was not cleared, so an event parsed after other stack use
 * carried a garbage pointer to strdup. */
Test(kobj, parse_event_clears_changed_paths) {
	const char *line = "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Guitar\",\"apiVersion\":"
			   "\"kool.karmalabs.local/v1\",\"metadata\":{\"name\":\"d15\"}}}";
	struct kobj_event ev;

	memset(&ev, 0xa5, sizeof(ev));
	dirty_stack();
	cr_assert_eq(kobj_parse_event(line, strlen(line), &ev), 0);
	cr_assert_null(ev.obj.changed_paths);
	cr_assert_str_eq(ev.obj.name, "d15");
}

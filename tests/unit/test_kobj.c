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

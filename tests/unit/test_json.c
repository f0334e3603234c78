#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/util/json.h"

/* "[[[...]]]" (or with objects) n levels deep; free() it. */
static char *nested(size_t n, bool objects) {
	char *s = malloc(n * (objects ? 6 : 2) + 16), *p = s;

	cr_assert_not_null(s);
	for (size_t i = 0; i < n; i++)
		p = objects ? memcpy(p, "{\"a\":", 5) + 5 : memcpy(p, "[", 1) + 1;
	if (objects)
		*p++ = '1';
	for (size_t i = 0; i < n; i++)
		*p++ = objects ? '}' : ']';
	*p = '\0';
	return s;
}

Test(json, depth_limit_is_exact) {
	char err[128];
	char *ok = nested(JSON_MAX_DEPTH, true), *deep = nested(JSON_MAX_DEPTH + 1, true);
	yajl_val v = json_parse(ok, err, sizeof(err));

	cr_assert_not_null(v, "%s", err);
	yajl_tree_free(v);
	cr_assert_null(json_parse(deep, err, sizeof(err)));
	cr_assert(strstr(err, "nested deeper than 64 levels"), "%s", err);
	free(ok);
	free(deep);
}

/* The finding: an answer nested ~400k levels deep (800 KB) overflowed the
 * stack in yajl_tree_free(). It is refused, quickly, without recursion. */
Test(json, deeply_nested_400k_is_refused) {
	char err[128];
	char *deep = nested(400000, false);

	cr_assert_null(json_parse_bounded(deep, strlen(deep), JSON_MAX_DEPTH, err, sizeof(err)));
	cr_assert(strstr(err, "nested deeper than"), "%s", err);
	free(deep);
}

Test(json, nul_in_string_is_refused) {
	static const char *bad[] = {
		"{\"namespaces\":[\"a\\u0000b\"]}",
		"{\"a\\u0000\":1}",
		"[\"\\u0000\"]",
	};
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_null(json_parse(bad[i], err, sizeof(err)), "%s", bad[i]);
		cr_assert(strstr(err, "\\u0000"), "%s", err);
	}
}

Test(json, raw_nul_byte_within_len_is_refused) {
	static const char text[] = "{\"a\":\"x\0y\"}";
	char err[128];

	cr_assert_null(json_parse_bounded(text, sizeof(text) - 1, JSON_MAX_DEPTH, err, sizeof(err)));
	cr_assert(strstr(err, "not valid JSON"), "%s", err);
}

Test(json, invalid_json_message_is_one_line) {
	char err[256];

	cr_assert_null(json_parse("{not json", err, sizeof(err)));
	cr_assert(strstr(err, "not valid JSON"), "%s", err);
	cr_assert_null(strchr(err, '\n'), "%s", err);
	cr_assert_null(json_parse_bounded("{} x", 4, JSON_MAX_DEPTH, NULL, 0));
}

Test(json, only_len_bytes_are_read) {
	char err[128];
	yajl_val v = json_parse_bounded("{\"a\":\"b\"}garbage", 9, JSON_MAX_DEPTH, err, sizeof(err));

	cr_assert_not_null(v, "%s", err);
	cr_assert_str_eq(json_get_str(v, "a"), "b");
	yajl_tree_free(v);
}

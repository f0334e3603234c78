#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "adapter/util/buf.h"

Test(buf, append_printf_consume) {
	struct buf b;

	buf_init(&b, 0);
	cr_assert_eq(buf_append_str(&b, "hello"), 0);
	cr_assert_eq(buf_printf(&b, " %d", 42), 0);
	cr_assert_str_eq(b.data, "hello 42");
	buf_consume(&b, 6);
	cr_assert_str_eq(b.data, "42");
	cr_assert_eq(b.len, 2);
	buf_finish(&b);
}

Test(buf, cap_is_enforced) {
	struct buf b;

	buf_init(&b, 4);
	cr_assert_eq(buf_append(&b, "abcd", 4), 0);
	cr_assert_eq(buf_append(&b, "e", 1), -E2BIG);
	cr_assert_eq(b.len, 4);
	buf_finish(&b);
}

Test(buf, steal_hands_over) {
	struct buf b;
	size_t len;
	char *s;

	buf_init(&b, 0);
	s = buf_steal(&b, &len);
	cr_assert_str_eq(s, "");
	free(s);
	buf_append_str(&b, "xyz");
	s = buf_steal(&b, &len);
	cr_assert_str_eq(s, "xyz");
	cr_assert_eq(len, 3);
	cr_assert_null(b.data);
	free(s);
}

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/util/base64.h"

static int dec(const char *in, char **out, size_t *len, size_t *pos) {
	*out = NULL;
	return base64_decode(in, strlen(in), out, len, pos);
}

Test(base64, valid_forms) {
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "Y2VydA==", "cert" }, { "a2V5", "key" }, { "YWI=", "ab" }, { "", "" },
		{ "Y2Vy\ndA==\r\n", "cert" },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *out;
		size_t len, pos;

		cr_assert_eq(dec(ok[i].in, &out, &len, &pos), 0, "%s", ok[i].in);
		cr_assert_eq(len, strlen(ok[i].out));
		cr_assert_str_eq(out, ok[i].out);
		free(out);
	}
}

Test(base64, strict_padding_and_alphabet) {
	static const struct {
		const char *in;
		size_t pos;
	} bad[] = {
		{ "====", 2 }, { "A===", 3 }, { "Y2VydA=x", 7 }, { "Y2Vy dA==", 4 },
		{ "Y2VydA", 6 }, { "a2V5*", 4 }, { "Y2V-dA==", 3 }, { "YW=I", 3 },
		{ "YWI=YWI=", 4 }, { "Y2VydA=", 7 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out;
		size_t len, pos = 99;

		cr_assert_eq(dec(bad[i].in, &out, &len, &pos), -EINVAL, "%s", bad[i].in);
		cr_assert_eq(pos, bad[i].pos, "%s: %zu", bad[i].in, pos);
		cr_assert_null(out);
	}
}

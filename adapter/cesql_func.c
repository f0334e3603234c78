#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter/cesql_internal.h"

/* The built-in functions. Arguments arrive already cast to the declared
 * parameter types. A string result is always a fresh allocation (or a static
 * ""), never a pointer into an argument, which the caller frees right after. */

static int set_string(struct cesql_value *ret, const char *s, size_t len) {
	char *buf = malloc(len + 1);

	if (!buf)
		return -ENOMEM;
	if (len)
		memcpy(buf, s, len);
	buf[len] = '\0';
	*ret = (struct cesql_value){ 0 };
	cesql_value_take(ret, buf, len);
	return 0;
}

static int fn_length(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	size_t len = cesql_utf8_len(a[0].s, a[0].len);

	*ret = cesql_zero(CESQL_INTEGER);
	ret->i = len > INT32_MAX ? INT32_MAX : (int32_t)len;
	return 0;
}

/* CONCAT(x...) and CONCAT_WS(sep, x...): sep is a[0] when with_sep. */
static int concat(struct cesql_value *a, size_t n, bool with_sep, struct cesql_value *ret) {
	size_t first = with_sep ? 1 : 0, total = 0, o = 0;
	char *buf;

	for (size_t k = first; k < n; k++)
		total += a[k].len + (with_sep && k > first ? a[0].len : 0);
	buf = malloc(total + 1);
	if (!buf)
		return -ENOMEM;
	for (size_t k = first; k < n; k++) {
		if (with_sep && k > first) {
			memcpy(buf + o, a[0].s, a[0].len);
			o += a[0].len;
		}
		memcpy(buf + o, a[k].s, a[k].len);
		o += a[k].len;
	}
	buf[o] = '\0';
	*ret = (struct cesql_value){ 0 };
	cesql_value_take(ret, buf, o);
	return 0;
}

static int fn_concat(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	return concat(a, n, false, ret);
}

static int fn_concat_ws(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	return concat(a, n, true, ret);
}

/* ASCII case mapping; other characters pass through unchanged. */
static int change_case(struct cesql_value *a, bool upper, struct cesql_value *ret) {
	int r = set_string(ret, a[0].s, a[0].len);

	if (r < 0)
		return r;
	for (size_t k = 0; k < ret->len; k++) {
		char c = ret->owned[k];
		if (upper && c >= 'a' && c <= 'z')
			ret->owned[k] = (char)(c - 'a' + 'A');
		else if (!upper && c >= 'A' && c <= 'Z')
			ret->owned[k] = (char)(c - 'A' + 'a');
	}
	return 0;
}

static int fn_lower(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	return change_case(a, false, ret);
}

static int fn_upper(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	return change_case(a, true, ret);
}

/* Decodes one UTF-8 character at s; returns its code point (or -1). */
static long decode(const char *s, size_t len, size_t *ret_n) {
	const unsigned char *u = (const unsigned char *)s;
	size_t n = 1;
	long cp;

	if (u[0] < 0x80) {
		*ret_n = 1;
		return u[0];
	}
	if (u[0] >= 0xc0 && u[0] < 0xe0) {
		n = 2;
		cp = u[0] & 0x1f;
	} else if (u[0] >= 0xe0 && u[0] < 0xf0) {
		n = 3;
		cp = u[0] & 0x0f;
	} else if (u[0] >= 0xf0 && u[0] < 0xf8) {
		n = 4;
		cp = u[0] & 0x07;
	} else {
		*ret_n = 1;
		return -1;
	}
	if (n > len) {
		*ret_n = 1;
		return -1;
	}
	for (size_t k = 1; k < n; k++) {
		if ((u[k] & 0xc0) != 0x80) {
			*ret_n = 1;
			return -1;
		}
		cp = (cp << 6) | (u[k] & 0x3f);
	}
	*ret_n = n;
	return cp;
}

/* Unicode White_Space. */
static bool is_space(long cp) {
	return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 ||
		cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
		cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

static int fn_trim(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	size_t start = 0, end = 0, k = 0, cl;
	bool seen = false;

	while (k < a[0].len) {
		long cp = decode(a[0].s + k, a[0].len - k, &cl);
		if (!is_space(cp)) {
			if (!seen)
				start = k;
			seen = true;
			end = k + cl;
		}
		k += cl;
	}
	return set_string(ret, a[0].s + start, end - start);
}

static int left_right(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, bool left, struct cesql_value *ret) {
	size_t chars = cesql_utf8_len(a[0].s, a[0].len), off;

	if (a[1].i < 0) {
		cesql_set_error(ctx, CESQL_ERR_FUNCTION_EVALUATION, "%s: negative length %d",
			left ? "LEFT" : "RIGHT", a[1].i);
		return set_string(ret, a[0].s, a[0].len) < 0 ? -ENOMEM : 1;
	}
	if ((size_t)a[1].i >= chars)
		return set_string(ret, a[0].s, a[0].len);
	if (left)
		return set_string(ret, a[0].s, cesql_utf8_offset(a[0].s, a[0].len, (size_t)a[1].i));
	off = cesql_utf8_offset(a[0].s, a[0].len, chars - (size_t)a[1].i);
	return set_string(ret, a[0].s + off, a[0].len - off);
}

static int fn_left(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	return left_right(ctx, a, true, ret);
}

static int fn_right(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	return left_right(ctx, a, false, ret);
}

static int fn_substring(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	int64_t chars = (int64_t)cesql_utf8_len(a[0].s, a[0].len), pos = a[1].i, start, count;
	size_t from, to;

	if (pos > chars || pos < -chars || (n == 3 && a[2].i < 0)) {
		cesql_set_error(ctx, CESQL_ERR_FUNCTION_EVALUATION,
			"SUBSTRING: position %d or length out of range", a[1].i);
		*ret = cesql_zero(CESQL_STRING);
		return 1;
	}
	if (pos == 0) {
		*ret = cesql_zero(CESQL_STRING);
		return 0;
	}
	start = pos > 0 ? pos - 1 : chars + pos;
	count = n == 3 ? a[2].i : chars - start;
	if (count > chars - start)
		count = chars - start;
	from = cesql_utf8_offset(a[0].s, a[0].len, (size_t)start);
	to = from + cesql_utf8_offset(a[0].s + from, a[0].len - from, (size_t)count);
	return set_string(ret, a[0].s + from, to - from);
}

static int fn_abs(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	*ret = cesql_zero(CESQL_INTEGER);
	if (a[0].i == INT32_MIN) {
		cesql_set_error(ctx, CESQL_ERR_MATH, "ABS: integer overflow");
		ret->i = INT32_MAX;
		return 1;
	}
	ret->i = a[0].i < 0 ? -a[0].i : a[0].i;
	return 0;
}

/* The casting functions: explicit casts with the semantics of spec 3.7. */
static int explicit_cast(struct cesql_eval_ctx *ctx, struct cesql_value *a, enum cesql_type t,
	struct cesql_value *ret) {
	int r;

	*ret = a[0];
	a[0].owned = NULL; /* moved to ret */
	r = cesql_cast(ctx, ret, t);
	if (r >= 0 && ret->type == CESQL_STRING && !ret->owned)
		return set_string(ret, ret->s, ret->len) < 0 ? -ENOMEM : r;
	return r;
}

static int fn_int(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	return explicit_cast(ctx, a, CESQL_INTEGER, ret);
}

static int fn_bool(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	return explicit_cast(ctx, a, CESQL_BOOLEAN, ret);
}

static int fn_string(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	return explicit_cast(ctx, a, CESQL_STRING, ret);
}

static int fn_is_int(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	*ret = cesql_zero(CESQL_BOOLEAN);
	ret->b = cesql_can_cast(&a[0], CESQL_INTEGER);
	return 0;
}

static int fn_is_bool(
	struct cesql_eval_ctx *ctx, struct cesql_value *a, size_t n, struct cesql_value *ret) {
	*ret = cesql_zero(CESQL_BOOLEAN);
	ret->b = cesql_can_cast(&a[0], CESQL_BOOLEAN);
	return 0;
}

#define S CESQL_STRING
#define I CESQL_INTEGER
#define B CESQL_BOOLEAN
#define ANY CESQL_ANY_TYPE
static const struct cesql_func funcs[] = {
	{ "LENGTH", 1, false, { S }, S, I, fn_length },
	{ "CONCAT", 0, true, { S }, S, S, fn_concat },
	{ "CONCAT_WS", 1, true, { S }, S, S, fn_concat_ws },
	{ "LOWER", 1, false, { S }, S, S, fn_lower },
	{ "UPPER", 1, false, { S }, S, S, fn_upper },
	{ "TRIM", 1, false, { S }, S, S, fn_trim },
	{ "LEFT", 2, false, { S, I }, S, S, fn_left },
	{ "RIGHT", 2, false, { S, I }, S, S, fn_right },
	{ "SUBSTRING", 2, false, { S, I }, S, S, fn_substring },
	{ "SUBSTRING", 3, false, { S, I, I }, S, S, fn_substring },
	{ "ABS", 1, false, { I }, I, I, fn_abs },
	{ "INT", 1, false, { ANY }, S, I, fn_int },
	{ "BOOL", 1, false, { ANY }, S, B, fn_bool },
	{ "STRING", 1, false, { ANY }, S, S, fn_string },
	{ "IS_INT", 1, false, { ANY }, S, B, fn_is_int },
	{ "IS_BOOL", 1, false, { ANY }, S, B, fn_is_bool },
};
#undef S
#undef I
#undef B
#undef ANY

const struct cesql_func *cesql_func_lookup(const char *name, size_t nargs) {
	for (size_t k = 0; k < sizeof(funcs) / sizeof(funcs[0]); k++) {
		const struct cesql_func *f = &funcs[k];
		if (strcasecmp(f->name, name) != 0)
			continue;
		if (nargs == f->nfixed || (f->variadic && nargs > f->nfixed))
			return f;
	}
	return NULL;
}

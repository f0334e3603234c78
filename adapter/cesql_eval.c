#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter/cesql_internal.h"

/* Evaluation follows one rule for errors, the spec's rule for missing
 * attributes (3.2) applied to every error, which is what the TCK expects
 * ("true AND (1 != 1 / 0)" is false with a math error): an operator or function
 * whose operand carries an error does not compute; it returns the zero value
 * of its own return type and passes the error up. An error the operator itself
 * raises (a failed implicit cast, division by zero, LEFT('abc', -2)) comes with
 * the value the spec defines for it. Only the first error is kept. */

void cesql_value_finish(struct cesql_value *v) {
	if (!v)
		return;
	free(v->owned);
	v->owned = NULL;
}

void cesql_value_take(struct cesql_value *v, char *buf, size_t len) {
	cesql_value_finish(v);
	*v = (struct cesql_value){ .type = CESQL_STRING, .s = buf, .len = len, .owned = buf };
}

struct cesql_value cesql_zero(enum cesql_type t) {
	if (t == CESQL_STRING)
		return (struct cesql_value){ .type = CESQL_STRING, .s = "" };
	return (struct cesql_value){ .type = t == CESQL_INTEGER ? CESQL_INTEGER : CESQL_BOOLEAN };
}

const char *cesql_error_name(enum cesql_error e) {
	static const char *const names[] = {
		[CESQL_ERR_NONE] = "",
		[CESQL_ERR_PARSE] = "parse",
		[CESQL_ERR_MATH] = "math",
		[CESQL_ERR_CAST] = "cast",
		[CESQL_ERR_MISSING_FUNCTION] = "missingFunction",
		[CESQL_ERR_FUNCTION_EVALUATION] = "functionEvaluation",
		[CESQL_ERR_MISSING_ATTRIBUTE] = "missingAttribute",
		[CESQL_ERR_GENERIC] = "generic",
	};

	return (size_t)e < sizeof(names) / sizeof(names[0]) ? names[e] : "generic";
}

void cesql_set_error(struct cesql_eval_ctx *ctx, enum cesql_error err, const char *fmt, ...) {
	va_list ap;

	if (ctx->error != CESQL_ERR_NONE)
		return;
	ctx->error = err;
	va_start(ap, fmt);
	vsnprintf(ctx->message, sizeof(ctx->message), fmt, ap);
	va_end(ap);
}

size_t cesql_utf8_len(const char *s, size_t len) {
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

size_t cesql_utf8_offset(const char *s, size_t len, size_t cp) {
	size_t i = 0;

	while (i < len && cp > 0) {
		i++;
		while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		cp--;
	}
	return i;
}

/* Bytes of the character at s (1 for a stray or truncated byte). */
static size_t char_len(const char *s, size_t len) {
	return cesql_utf8_offset(s, len, 1);
}

static bool parse_int32(const char *s, size_t len, int32_t *ret) {
	int64_t v = 0;
	size_t i = 0;
	bool neg = false;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (i == len)
		return false;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
		if (v > (int64_t)INT32_MAX + 1)
			return false;
	}
	if (neg)
		v = -v;
	if (v > INT32_MAX)
		return false;
	*ret = (int32_t)v;
	return true;
}

static int parse_bool(const char *s, size_t len) {
	if (len == 4 && strncasecmp(s, "true", 4) == 0)
		return 1;
	if (len == 5 && strncasecmp(s, "false", 5) == 0)
		return 0;
	return -1;
}

bool cesql_can_cast(const struct cesql_value *v, enum cesql_type t) {
	int32_t i;

	if (v->type == t || t == CESQL_STRING || v->type != CESQL_STRING)
		return true;
	if (t == CESQL_INTEGER)
		return parse_int32(v->s, v->len, &i);
	return parse_bool(v->s, v->len) >= 0;
}

static const char *type_name(enum cesql_type t) {
	return t == CESQL_BOOLEAN ? "Boolean" : t == CESQL_INTEGER ? "Integer" : "String";
}

int cesql_cast(struct cesql_eval_ctx *ctx, struct cesql_value *v, enum cesql_type t) {
	struct cesql_value out;
	int32_t i;
	int b;

	if (t == CESQL_ANY_TYPE || v->type == t)
		return 0;
	if (t == CESQL_STRING) {
		if (v->type == CESQL_BOOLEAN) {
			*v = (struct cesql_value){ .type = CESQL_STRING,
				.s = v->b ? "true" : "false",
				.len = v->b ? 4 : 5 };
		} else {
			char *buf = malloc(12);
			if (!buf)
				return -ENOMEM;
			cesql_value_take(v, buf, (size_t)snprintf(buf, 12, "%" PRId32, v->i));
		}
		return 0;
	}
	out = cesql_zero(t);
	if (v->type != CESQL_STRING) {
		/* Boolean -> Integer and Integer -> Boolean never fail. */
		if (t == CESQL_INTEGER)
			out.i = v->b ? 1 : 0;
		else
			out.b = v->i != 0;
		*v = out;
		return 0;
	}
	if (t == CESQL_INTEGER && parse_int32(v->s, v->len, &i)) {
		out.i = i;
	} else if (t == CESQL_BOOLEAN && (b = parse_bool(v->s, v->len)) >= 0) {
		out.b = b;
	} else {
		cesql_set_error(ctx, CESQL_ERR_CAST, "cannot cast '%.*s' to %s",
			(int)(v->len > 40 ? 40 : v->len), v->s, type_name(t));
		cesql_value_finish(v);
		*v = out;
		return 1;
	}
	cesql_value_finish(v);
	*v = out;
	return 0;
}

static bool like_match(const struct like_elem *pat, size_t np, const char *s, size_t len) {
	size_t si = 0, pi = 0, star_p = SIZE_MAX, star_s = 0;

	/* Wildcard matching with backtracking to the last '%' only: linear in
	 * practice, O(len * np) at worst, never exponential. */
	while (si < len) {
		if (pi < np && pat[pi].kind == LIKE_BYTE && (unsigned char)s[si] == pat[pi].c) {
			si++;
			pi++;
		} else if (pi < np && pat[pi].kind == LIKE_ONE) {
			si += char_len(s + si, len - si);
			pi++;
		} else if (pi < np && pat[pi].kind == LIKE_ANY) {
			star_p = pi++;
			star_s = si;
		} else if (star_p != SIZE_MAX) {
			pi = star_p + 1;
			star_s += char_len(s + star_s, len - star_s);
			si = star_s;
		} else {
			return false;
		}
	}
	while (pi < np && pat[pi].kind == LIKE_ANY)
		pi++;
	return pi == np;
}

static enum cesql_type node_type(const struct cesql_node *n) {
	switch (n->kind) {
	case N_LIT:
		return n->lit.type;
	case N_NEG:
		return CESQL_INTEGER;
	case N_BINARY:
		return n->op == TOK_PLUS || n->op == TOK_MINUS || n->op == TOK_STAR ||
				n->op == TOK_SLASH || n->op == TOK_PERCENT
			? CESQL_INTEGER
			: CESQL_BOOLEAN;
	case N_CALL:
		return n->fn ? n->fn->ret : CESQL_BOOLEAN;
	default:
		/* Including a missing attribute: "MUST assume Boolean". */
		return CESQL_BOOLEAN;
	}
}

/* The operand carried an error: the zero value of n's type, error kept. */
static int zero_err(const struct cesql_node *n, struct cesql_value *ret) {
	*ret = cesql_zero(node_type(n));
	return 1;
}

static bool equal(const struct cesql_value *a, const struct cesql_value *b) {
	if (a->type == CESQL_BOOLEAN)
		return a->b == b->b;
	if (a->type == CESQL_INTEGER)
		return a->i == b->i;
	return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

static int eval(struct cesql_eval_ctx *ctx, const struct cesql_node *n, struct cesql_value *ret);

/* An operand: when it carries an error its value is not used (the caller
 * returns its own zero value), so it is released here. */
static int eval_operand(
	struct cesql_eval_ctx *ctx, const struct cesql_node *n, struct cesql_value *ret) {
	int e = eval(ctx, n, ret);

	if (e > 0)
		cesql_value_finish(ret);
	return e;
}

/* Evaluates both operands; returns 1 (ret set to the zero value) if either
 * carried an error. */
static int eval_pair(struct cesql_eval_ctx *ctx, const struct cesql_node *n, struct cesql_value *l,
	struct cesql_value *r, struct cesql_value *ret) {
	int e = eval_operand(ctx, n->kids[0], l);

	if (e != 0)
		return e < 0 ? e : zero_err(n, ret);
	e = eval_operand(ctx, n->kids[1], r);
	if (e != 0) {
		cesql_value_finish(l);
		return e < 0 ? e : zero_err(n, ret);
	}
	return 0;
}

static int eval_arith(struct cesql_eval_ctx *ctx, const struct cesql_node *n, struct cesql_value *l,
	struct cesql_value *r, struct cesql_value *ret) {
	int64_t a, b, v = 0;
	int flag = 0;

	flag |= cesql_cast(ctx, l, CESQL_INTEGER);
	flag |= cesql_cast(ctx, r, CESQL_INTEGER);
	if (flag < 0)
		return flag;
	a = l->i;
	b = r->i;
	switch (n->op) {
	case TOK_PLUS:
		v = a + b;
		break;
	case TOK_MINUS:
		v = a - b;
		break;
	case TOK_STAR:
		v = a * b;
		break;
	case TOK_SLASH:
	case TOK_PERCENT:
		if (b == 0) {
			cesql_set_error(ctx, CESQL_ERR_MATH, "division by zero");
			*ret = cesql_zero(CESQL_INTEGER);
			return 1;
		}
		v = n->op == TOK_SLASH ? a / b : a % b;
		break;
	default:
		break;
	}
	*ret = cesql_zero(CESQL_INTEGER);
	if (v < INT32_MIN || v > INT32_MAX) {
		cesql_set_error(ctx, CESQL_ERR_MATH, "integer overflow");
		return 1;
	}
	ret->i = (int32_t)v;
	return flag;
}

static int eval_compare(struct cesql_eval_ctx *ctx, const struct cesql_node *n,
	struct cesql_value *l, struct cesql_value *r, struct cesql_value *ret) {
	int flag = 0;

	*ret = cesql_zero(CESQL_BOOLEAN);
	if (n->op == TOK_EQ || n->op == TOK_NE) {
		/* Ambiguous operator: the right operand's type picks the definition
		 * and the left one is cast to it (spec 3.7). */
		flag = cesql_cast(ctx, l, r->type);
		if (flag < 0)
			return flag;
		ret->b = equal(l, r) == (n->op == TOK_EQ);
		return flag;
	}
	flag |= cesql_cast(ctx, l, CESQL_INTEGER);
	flag |= cesql_cast(ctx, r, CESQL_INTEGER);
	if (flag < 0)
		return flag;
	switch (n->op) {
	case TOK_LT:
		ret->b = l->i < r->i;
		break;
	case TOK_LE:
		ret->b = l->i <= r->i;
		break;
	case TOK_GT:
		ret->b = l->i > r->i;
		break;
	default:
		ret->b = l->i >= r->i;
		break;
	}
	return flag;
}

static int eval_logic(
	struct cesql_eval_ctx *ctx, const struct cesql_node *n, struct cesql_value *ret) {
	struct cesql_value l = { 0 }, r = { 0 };
	int e, flag;

	e = eval_operand(ctx, n->kids[0], &l);
	if (e != 0)
		return e < 0 ? e : zero_err(n, ret);
	flag = cesql_cast(ctx, &l, CESQL_BOOLEAN);
	if (flag < 0)
		return flag;
	/* Short circuit: the right operand is not evaluated at all. */
	if ((n->op == TOK_AND && !l.b) || (n->op == TOK_OR && l.b)) {
		*ret = l;
		return flag;
	}
	e = eval_operand(ctx, n->kids[1], &r);
	if (e != 0)
		return e < 0 ? e : zero_err(n, ret);
	e = cesql_cast(ctx, &r, CESQL_BOOLEAN);
	if (e < 0)
		return e;
	*ret = cesql_zero(CESQL_BOOLEAN);
	ret->b = n->op == TOK_XOR ? l.b != r.b : r.b;
	return flag | e;
}

static int eval_in(
	struct cesql_eval_ctx *ctx, const struct cesql_node *n, struct cesql_value *ret) {
	struct cesql_value x = { 0 };
	bool found = false;
	int e, flag = 0;

	e = eval_operand(ctx, n->kids[0], &x);
	if (e != 0)
		return e < 0 ? e : zero_err(n, ret);
	for (size_t k = 1; k < n->nkids && !found; k++) {
		struct cesql_value y = { 0 };
		e = eval_operand(ctx, n->kids[k], &y);
		if (e != 0) {
			cesql_value_finish(&x);
			return e < 0 ? e : zero_err(n, ret);
		}
		/* The left operand's type is the target type (spec 3.7). */
		e = cesql_cast(ctx, &y, x.type);
		if (e < 0) {
			cesql_value_finish(&x);
			return e;
		}
		flag |= e;
		found = equal(&x, &y);
		cesql_value_finish(&y);
	}
	cesql_value_finish(&x);
	*ret = cesql_zero(CESQL_BOOLEAN);
	ret->b = found != n->negate;
	return flag;
}

static int eval_call(
	struct cesql_eval_ctx *ctx, const struct cesql_node *n, struct cesql_value *ret) {
	struct cesql_value *args = NULL;
	size_t done = 0;
	int e = 0, flag = 0;

	if (!n->fn) {
		cesql_set_error(ctx, CESQL_ERR_MISSING_FUNCTION,
			"no function %s with %zu argument%s", n->name, n->nkids,
			n->nkids == 1 ? "" : "s");
		return zero_err(n, ret);
	}
	args = calloc(n->nkids ? n->nkids : 1, sizeof(*args));
	if (!args)
		return -ENOMEM;
	for (; done < n->nkids; done++) {
		enum cesql_type t = done < n->fn->nfixed ? n->fn->params[done] : n->fn->rest;
		e = eval_operand(ctx, n->kids[done], &args[done]);
		if (e != 0) {
			if (e > 0)
				e = zero_err(n, ret);
			goto out;
		}
		e = cesql_cast(ctx, &args[done], t);
		if (e < 0) {
			done++;
			goto out;
		}
		flag |= e;
	}
	e = n->fn->impl(ctx, args, n->nkids, ret);
	if (e >= 0)
		e |= flag;
out:
	for (size_t k = 0; k < done; k++)
		cesql_value_finish(&args[k]);
	free(args);
	return e;
}

static int eval(struct cesql_eval_ctx *ctx, const struct cesql_node *n, struct cesql_value *ret) {
	struct cesql_value v = { 0 }, w = { 0 };
	int e, flag;

	switch (n->kind) {
	case N_LIT:
		*ret = n->lit;
		ret->owned = NULL; /* borrowed from the tree */
		return 0;
	case N_ATTR:
	case N_EXISTS:
		e = ctx->get(n->name, &v, ctx->userdata);
		if (e < 0)
			return e;
		if (n->kind == N_EXISTS) {
			if (e > 0)
				cesql_value_finish(&v);
			*ret = cesql_zero(CESQL_BOOLEAN);
			ret->b = e > 0;
			return 0;
		}
		if (e == 0) {
			cesql_set_error(ctx, CESQL_ERR_MISSING_ATTRIBUTE, "missing attribute '%s'",
				n->name);
			return zero_err(n, ret);
		}
		*ret = v;
		return 0;
	case N_NOT:
		e = eval_operand(ctx, n->kids[0], &v);
		if (e != 0)
			return e < 0 ? e : zero_err(n, ret);
		if (v.type == CESQL_INTEGER) {
			/* The TCK's "NOT 10": true with a CastError. NOT of an
			 * Integer is the spec's ambiguous unary case: the cast
			 * result is false (3.7, rule 1). */
			cesql_set_error(ctx, CESQL_ERR_CAST, "NOT needs a Boolean, got an Integer");
			v = cesql_zero(CESQL_BOOLEAN);
			flag = 1;
		} else {
			flag = cesql_cast(ctx, &v, CESQL_BOOLEAN);
			if (flag < 0)
				return flag;
		}
		*ret = cesql_zero(CESQL_BOOLEAN);
		ret->b = !v.b;
		return flag;
	case N_NEG:
		e = eval_operand(ctx, n->kids[0], &v);
		if (e != 0)
			return e < 0 ? e : zero_err(n, ret);
		flag = cesql_cast(ctx, &v, CESQL_INTEGER);
		if (flag < 0)
			return flag;
		*ret = cesql_zero(CESQL_INTEGER);
		if (v.i == INT32_MIN) {
			/* As ABS() does for the same value. */
			cesql_set_error(ctx, CESQL_ERR_MATH, "integer overflow");
			ret->i = INT32_MAX;
			return 1;
		}
		ret->i = -v.i;
		return flag;
	case N_BINARY:
		if (n->op == TOK_AND || n->op == TOK_OR || n->op == TOK_XOR)
			return eval_logic(ctx, n, ret);
		e = eval_pair(ctx, n, &v, &w, ret);
		if (e != 0)
			return e;
		if (node_type(n) == CESQL_INTEGER)
			e = eval_arith(ctx, n, &v, &w, ret);
		else
			e = eval_compare(ctx, n, &v, &w, ret);
		cesql_value_finish(&v);
		cesql_value_finish(&w);
		return e;
	case N_LIKE:
		e = eval_operand(ctx, n->kids[0], &v);
		if (e != 0)
			return e < 0 ? e : zero_err(n, ret);
		flag = cesql_cast(ctx, &v, CESQL_STRING);
		if (flag < 0)
			return flag;
		*ret = cesql_zero(CESQL_BOOLEAN);
		ret->b = like_match(n->pat, n->npat, v.s, v.len) != n->negate;
		cesql_value_finish(&v);
		return flag;
	case N_IN:
		return eval_in(ctx, n, ret);
	case N_CALL:
		return eval_call(ctx, n, ret);
	}
	return -EINVAL;
}

int cesql_eval(
	const struct cesql_expr *e, cesql_attr_fn get, void *userdata, struct cesql_result *ret) {
	struct cesql_eval_ctx ctx = { .get = get, .userdata = userdata };
	struct cesql_value v = { 0 };
	int r;

	r = eval(&ctx, e->root, &v);
	if (r < 0)
		return r;
	if (v.type == CESQL_STRING && !v.owned) {
		/* Borrowed from the tree or the event: the result owns a copy. */
		char *copy = malloc(v.len + 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, v.s, v.len);
		copy[v.len] = '\0';
		v.s = copy;
		v.owned = copy;
	}
	*ret = (struct cesql_result){ .value = v, .error = ctx.error };
	memcpy(ret->message, ctx.message, sizeof(ret->message));
	return 0;
}

void cesql_result_finish(struct cesql_result *r) {
	if (!r)
		return;
	cesql_value_finish(&r->value);
}

bool cesql_result_passes(const struct cesql_result *r) {
	return r->error == CESQL_ERR_NONE && r->value.type == CESQL_BOOLEAN && r->value.b;
}

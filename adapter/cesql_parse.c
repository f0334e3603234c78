#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/cesql_internal.h"

/* Recursive descent over the token array. Precedence, highest first, as the
 * spec's section 3.6 orders it (all binary levels are left-associative, which
 * is where this parser departs from sdk-go's right-associative AND/OR/XOR):
 *   primary:  literal, attribute, EXISTS attr, f(args), ( expr )
 *   unary:    NOT x, -x
 *   postfix:  x [NOT] LIKE 'pattern', x [NOT] IN (set)   (left to right)
 *   mul:      * / %
 *   add:      + -
 *   compare:  = != <> < <= > >=
 *   logic:    AND OR XOR (one level) */

struct parser {
	const char *expr;
	struct cesql_lexer lx;
	size_t i;
	unsigned depth; /* current recursion depth */
	int r;          /* first failure: -EINVAL or -ENOMEM */
	char *errbuf;
	size_t errlen;
};

static void node_free(struct cesql_node *n) {
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->name);
	free(n->pat);
	free(n->lit.owned);
	free(n);
}

void cesql_expr_free(struct cesql_expr *e) {
	if (!e)
		return;
	node_free(e->root);
	free(e);
}

static void fail(struct parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct parser *p, size_t pos, const char *fmt, ...) {
	char msg[120];
	va_list ap;

	if (p->r < 0)
		return;
	p->r = -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->errbuf && p->errlen)
		snprintf(p->errbuf, p->errlen, "column %zu: %s", cesql_utf8_len(p->expr, pos) + 1,
			msg);
}

static void oom(struct parser *p) {
	if (p->r == 0)
		p->r = -ENOMEM;
	if (p->errbuf && p->errlen)
		snprintf(p->errbuf, p->errlen, "out of memory");
}

static const struct cesql_token *peek(struct parser *p, size_t ahead) {
	size_t k = p->i + ahead;

	return &p->lx.toks[k < p->lx.n ? k : p->lx.n - 1];
}

static void unexpected(struct parser *p, const struct cesql_token *t) {
	if (t->type == TOK_EOF)
		fail(p, t->pos, "unexpected end of expression");
	else if (t->type == TOK_STRING || t->type == TOK_INT || t->type == TOK_IDENT ||
		t->type == TOK_FUNCNAME)
		fail(p, t->pos, "unexpected %s '%.*s'", cesql_tok_name(t->type),
			(int)(t->len > 40 ? 40 : t->len), p->expr + t->pos);
	else if (cesql_tok_name(t->type)[0] == '\'')
		fail(p, t->pos, "unexpected '%.*s'", (int)t->len,
			p->expr + t->pos); /* as written */
	else
		fail(p, t->pos, "unexpected %s", cesql_tok_name(t->type));
}

static struct cesql_node *node_new(struct parser *p, enum node_kind kind) {
	struct cesql_node *n = calloc(1, sizeof(*n));

	if (!n)
		oom(p);
	else
		n->kind = kind;
	return n;
}

/* Adds kid to n (taking it, also on failure) and keeps n's depth. */
static int add_kid(struct parser *p, struct cesql_node *n, struct cesql_node *kid, size_t pos) {
	struct cesql_node **nk = realloc(n->kids, (n->nkids + 1) * sizeof(*nk));

	if (!nk) {
		node_free(kid);
		oom(p);
		return -ENOMEM;
	}
	n->kids = nk;
	n->kids[n->nkids++] = kid;
	if (kid->depth + 1 > n->depth)
		n->depth = kid->depth + 1;
	if (n->depth > CESQL_MAX_DEPTH) {
		fail(p, pos, "expression nested too deeply (more than %d levels)", CESQL_MAX_DEPTH);
		return -EINVAL;
	}
	return 0;
}

static struct cesql_node *parse_expr(struct parser *p);

static bool enter(struct parser *p) {
	if (++p->depth > CESQL_MAX_DEPTH) {
		fail(p, peek(p, 0)->pos, "expression nested too deeply (more than %d levels)",
			CESQL_MAX_DEPTH);
		return false;
	}
	return true;
}

static char *lower_dup(const char *s, size_t len) {
	char *d = malloc(len + 1);

	if (!d)
		return NULL;
	for (size_t i = 0; i < len; i++)
		d[i] = (char)tolower((unsigned char)s[i]);
	d[len] = '\0';
	return d;
}

static bool expect(struct parser *p, enum cesql_tok t) {
	if (peek(p, 0)->type != t) {
		const struct cesql_token *got = peek(p, 0);
		if (got->type == TOK_EOF)
			fail(p, got->pos, "expected %s, got end of expression", cesql_tok_name(t));
		else
			unexpected(p, got);
		return false;
	}
	p->i++;
	return true;
}

/* "(" expr ("," expr)* ")" into n's kids; empty allowed only when allow_empty. */
static int parse_list(struct parser *p, struct cesql_node *n, bool allow_empty) {
	if (!expect(p, TOK_LPAREN))
		return -EINVAL;
	if (allow_empty && peek(p, 0)->type == TOK_RPAREN) {
		p->i++;
		return 0;
	}
	for (;;) {
		size_t pos = peek(p, 0)->pos;
		struct cesql_node *kid = parse_expr(p);
		if (!kid || add_kid(p, n, kid, pos) < 0)
			return p->r;
		if (peek(p, 0)->type == TOK_COMMA) {
			p->i++;
			continue;
		}
		return expect(p, TOK_RPAREN) ? 0 : -EINVAL;
	}
}

static struct cesql_node *parse_call(struct parser *p) {
	const struct cesql_token *t = peek(p, 0);
	struct cesql_node *n;

	for (size_t k = 0; k < t->len; k++)
		if (p->expr[t->pos + k] >= '0' && p->expr[t->pos + k] <= '9') {
			fail(p, t->pos, "invalid function name '%.*s'",
				(int)(t->len > 40 ? 40 : t->len), p->expr + t->pos);
			return NULL;
		}
	n = node_new(p, N_CALL);
	if (!n)
		return NULL;
	n->name = strndup(p->expr + t->pos, t->len);
	if (!n->name) {
		oom(p);
		goto err;
	}
	p->i++;
	if (parse_list(p, n, true) < 0)
		goto err;
	/* Resolved now; an unknown name or arity is a MissingFunctionError at
	 * evaluation, as the spec and TCK want, not a parse error. */
	n->fn = cesql_func_lookup(n->name, n->nkids);
	return n;
err:
	node_free(n);
	return NULL;
}

/* Attribute names are case-insensitive (the TCK's "EXISTS SOURCE"): stored
 * lower-case, as CloudEvents names are. */
static struct cesql_node *parse_attr(struct parser *p, enum node_kind kind) {
	const struct cesql_token *t = peek(p, 0);
	struct cesql_node *n = node_new(p, kind);

	if (!n)
		return NULL;
	n->name = lower_dup(p->expr + t->pos, t->len);
	if (!n->name) {
		oom(p);
		node_free(n);
		return NULL;
	}
	p->i++;
	return n;
}

static struct cesql_node *parse_primary(struct parser *p) {
	const struct cesql_token *t = peek(p, 0);
	struct cesql_node *n = NULL;

	switch (t->type) {
	case TOK_LPAREN:
		p->i++;
		n = parse_expr(p);
		if (n && !expect(p, TOK_RPAREN)) {
			node_free(n);
			return NULL;
		}
		return n;
	case TOK_TRUE:
	case TOK_FALSE:
		n = node_new(p, N_LIT);
		if (n)
			n->lit = (struct cesql_value){ .type = CESQL_BOOLEAN,
				.b = t->type == TOK_TRUE };
		p->i++;
		return n;
	case TOK_INT:
		if (t->num > INT32_MAX) {
			fail(p, t->pos, "integer literal out of 32-bit range");
			return NULL;
		}
		n = node_new(p, N_LIT);
		if (n)
			n->lit =
				(struct cesql_value){ .type = CESQL_INTEGER, .i = (int32_t)t->num };
		p->i++;
		return n;
	case TOK_STRING:
		n = node_new(p, N_LIT);
		if (!n)
			return NULL;
		n->lit = (struct cesql_value){
			.type = CESQL_STRING, .s = t->str, .len = t->slen, .owned = t->str
		};
		p->lx.toks[p->i].str = NULL; /* handed to the node */
		p->i++;
		return n;
	case TOK_EXISTS:
		if (peek(p, 1)->type != TOK_IDENT) {
			fail(p, peek(p, 1)->pos, "EXISTS needs an attribute name");
			return NULL;
		}
		p->i++;
		return parse_attr(p, N_EXISTS);
	case TOK_IDENT:
		if (peek(p, 1)->type == TOK_LPAREN)
			return parse_call(p);
		return parse_attr(p, N_ATTR);
	case TOK_FUNCNAME:
		if (peek(p, 1)->type != TOK_LPAREN) {
			fail(p, t->pos, "'%.*s' is not a valid attribute name",
				(int)(t->len > 40 ? 40 : t->len), p->expr + t->pos);
			return NULL;
		}
		return parse_call(p);
	default:
		unexpected(p, t);
		return NULL;
	}
}

static struct cesql_node *parse_unary(struct parser *p) {
	const struct cesql_token *t = peek(p, 0), *next = peek(p, 1);
	struct cesql_node *n, *kid;

	if ((t->type == TOK_MINUS || t->type == TOK_PLUS) && next->type == TOK_INT) {
		/* A signed integer literal: -2147483648 must be representable. */
		uint64_t limit = t->type == TOK_MINUS ? (uint64_t)INT32_MAX + 1 : INT32_MAX;
		if (next->num > limit) {
			fail(p, t->pos, "integer literal out of 32-bit range");
			return NULL;
		}
		n = node_new(p, N_LIT);
		if (n)
			n->lit = (struct cesql_value){ .type = CESQL_INTEGER,
				.i = t->type == TOK_MINUS ? (int32_t)(-(int64_t)next->num)
							  : (int32_t)next->num };
		p->i += 2;
		return n;
	}
	if (t->type != TOK_NOT && t->type != TOK_MINUS)
		return parse_primary(p);
	if (!enter(p))
		return NULL;
	p->i++;
	n = node_new(p, t->type == TOK_NOT ? N_NOT : N_NEG);
	kid = n ? parse_unary(p) : NULL;
	p->depth--;
	if (!kid || add_kid(p, n, kid, t->pos) < 0) {
		node_free(n);
		return NULL;
	}
	return n;
}

static int compile_like(struct parser *p, struct cesql_node *n, const struct cesql_token *t) {
	n->pat = calloc(t->slen + 1, sizeof(*n->pat));
	if (!n->pat) {
		oom(p);
		return -ENOMEM;
	}
	for (size_t k = 0; k < t->slen; k++) {
		char c = t->str[k];
		if (c == '\\' && k + 1 < t->slen && (t->str[k + 1] == '%' || t->str[k + 1] == '_'))
			n->pat[n->npat++] =
				(struct like_elem){ LIKE_BYTE, (unsigned char)t->str[++k] };
		else if (c == '%') {
			if (!n->npat || n->pat[n->npat - 1].kind != LIKE_ANY)
				n->pat[n->npat++] = (struct like_elem){ LIKE_ANY, 0 };
		} else if (c == '_')
			n->pat[n->npat++] = (struct like_elem){ LIKE_ONE, 0 };
		else
			n->pat[n->npat++] = (struct like_elem){ LIKE_BYTE, (unsigned char)c };
	}
	return 0;
}

static struct cesql_node *parse_postfix(struct parser *p) {
	struct cesql_node *left = parse_unary(p);

	while (left) {
		const struct cesql_token *t = peek(p, 0);
		bool negate = false;
		struct cesql_node *n;

		if (t->type == TOK_NOT &&
			(peek(p, 1)->type == TOK_LIKE || peek(p, 1)->type == TOK_IN)) {
			negate = true;
			p->i++;
			t = peek(p, 0);
		}
		if (t->type != TOK_LIKE && t->type != TOK_IN)
			break;
		p->i++;
		n = node_new(p, t->type == TOK_LIKE ? N_LIKE : N_IN);
		if (!n || add_kid(p, n, left, t->pos) < 0) {
			if (!n)
				node_free(left);
			node_free(n);
			return NULL;
		}
		n->negate = negate;
		left = n;
		if (n->kind == N_LIKE) {
			const struct cesql_token *pt = peek(p, 0);
			if (pt->type != TOK_STRING) {
				fail(p, pt->pos, "LIKE needs a string literal pattern");
				goto err;
			}
			if (compile_like(p, n, pt) < 0)
				goto err;
			p->i++;
		} else {
			if (!enter(p))
				goto err;
			parse_list(p, n, false);
			p->depth--;
			if (p->r < 0)
				goto err;
		}
	}
	return left;
err:
	node_free(left);
	return NULL;
}

static bool is_level(enum cesql_tok t, int level) {
	switch (level) {
	case 0:
		return t == TOK_AND || t == TOK_OR || t == TOK_XOR;
	case 1:
		return t == TOK_EQ || t == TOK_NE || t == TOK_LT || t == TOK_LE || t == TOK_GT ||
			t == TOK_GE;
	case 2:
		return t == TOK_PLUS || t == TOK_MINUS;
	default:
		return t == TOK_STAR || t == TOK_SLASH || t == TOK_PERCENT;
	}
}

/* One left-associative binary level; level 3 sits on the postfix operators. */
static struct cesql_node *parse_binary(struct parser *p, int level) {
	struct cesql_node *left = level == 3 ? parse_postfix(p) : parse_binary(p, level + 1);

	while (left && is_level(peek(p, 0)->type, level)) {
		const struct cesql_token *t = peek(p, 0);
		struct cesql_node *n, *right;

		p->i++;
		n = node_new(p, N_BINARY);
		if (!n || add_kid(p, n, left, t->pos) < 0) {
			if (!n)
				node_free(left);
			node_free(n);
			return NULL;
		}
		n->op = t->type;
		left = n;
		right = level == 3 ? parse_postfix(p) : parse_binary(p, level + 1);
		if (!right || add_kid(p, n, right, t->pos) < 0) {
			node_free(left);
			return NULL;
		}
	}
	return left;
}

static struct cesql_node *parse_expr(struct parser *p) {
	struct cesql_node *n;

	if (!enter(p))
		return NULL;
	n = parse_binary(p, 0);
	p->depth--;
	return n;
}

int cesql_parse(const char *expr, struct cesql_expr **ret_expr, char *errbuf, size_t errlen) {
	struct parser p = { .expr = expr, .errbuf = errbuf, .errlen = errlen };
	struct cesql_expr *e = NULL;
	size_t len = strnlen(expr, CESQL_MAX_EXPR_LEN + 1), pos = 0;
	struct cesql_node *root = NULL;
	int r;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (len > CESQL_MAX_EXPR_LEN) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "expression longer than %d bytes",
				CESQL_MAX_EXPR_LEN);
		return -EINVAL;
	}
	r = cesql_lex(expr, len, &p.lx, &pos, errbuf, errlen);
	if (r == -EINVAL && errbuf && errlen) {
		char msg[120];
		snprintf(msg, sizeof(msg), "%s", errbuf);
		snprintf(errbuf, errlen, "column %zu: %s", cesql_utf8_len(expr, pos) + 1, msg);
	}
	if (r < 0)
		goto out;
	if (peek(&p, 0)->type == TOK_EOF) {
		fail(&p, 0, "empty expression");
		r = p.r;
		goto out;
	}
	root = parse_expr(&p);
	if (root && peek(&p, 0)->type != TOK_EOF)
		unexpected(&p, peek(&p, 0));
	r = p.r;
	if (r < 0)
		goto out;
	e = calloc(1, sizeof(*e));
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	e->root = root;
	root = NULL;
	*ret_expr = e;
out:
	node_free(root);
	cesql_lex_finish(&p.lx);
	return r;
}

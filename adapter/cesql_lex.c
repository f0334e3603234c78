#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter/cesql_internal.h"

static const struct {
	const char *word;
	enum cesql_tok tok;
} keywords[] = {
	{ "AND", TOK_AND },
	{ "OR", TOK_OR },
	{ "XOR", TOK_XOR },
	{ "NOT", TOK_NOT },
	{ "LIKE", TOK_LIKE },
	{ "EXISTS", TOK_EXISTS },
	{ "IN", TOK_IN },
	{ "TRUE", TOK_TRUE },
	{ "FALSE", TOK_FALSE },
};

const char *cesql_tok_name(enum cesql_tok t) {
	static const char *const names[] = {
		[TOK_EOF] = "end of expression",
		[TOK_LPAREN] = "'('",
		[TOK_RPAREN] = "')'",
		[TOK_COMMA] = "','",
		[TOK_PLUS] = "'+'",
		[TOK_MINUS] = "'-'",
		[TOK_STAR] = "'*'",
		[TOK_SLASH] = "'/'",
		[TOK_PERCENT] = "'%'",
		[TOK_EQ] = "'='",
		[TOK_NE] = "'!='",
		[TOK_LT] = "'<'",
		[TOK_LE] = "'<='",
		[TOK_GT] = "'>'",
		[TOK_GE] = "'>='",
		[TOK_AND] = "AND",
		[TOK_OR] = "OR",
		[TOK_XOR] = "XOR",
		[TOK_NOT] = "NOT",
		[TOK_LIKE] = "LIKE",
		[TOK_EXISTS] = "EXISTS",
		[TOK_IN] = "IN",
		[TOK_TRUE] = "TRUE",
		[TOK_FALSE] = "FALSE",
		[TOK_STRING] = "string literal",
		[TOK_INT] = "integer literal",
		[TOK_IDENT] = "identifier",
		[TOK_FUNCNAME] = "function name",
	};

	return (size_t)t < sizeof(names) / sizeof(names[0]) ? names[t] : "token";
}

void cesql_lex_finish(struct cesql_lexer *lx) {
	if (!lx)
		return;
	for (size_t i = 0; i < lx->n; i++)
		free(lx->toks[i].str);
	free(lx->toks);
	*lx = (struct cesql_lexer){ 0 };
}

static bool is_word(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '_';
}

static bool is_alpha(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A quoted string starting at expr[*i]. Inside, a backslash and the next
 * character form a pair, as in the TCK grammar: a backslash before the
 * delimiter yields the delimiter, any other pair is kept as written (so LIKE
 * sees "\%" and "\_"). A doubled delimiter ('' or "") yields one, as the
 * grammar allows. */
static int lex_string(const char *expr, size_t len, size_t *i, struct cesql_token *t, char *errbuf,
	size_t errlen) {
	char q = expr[*i];
	size_t j = *i + 1, o = 0;
	char *out = malloc(len - *i + 1);

	if (!out)
		return -ENOMEM;
	for (;;) {
		if (j >= len) {
			free(out);
			snprintf(errbuf, errlen, "unterminated string literal");
			return -EINVAL;
		}
		if (expr[j] == '\\' && j + 1 < len) {
			if (expr[j + 1] != q)
				out[o++] = '\\';
			out[o++] = expr[j + 1];
			j += 2;
		} else if (expr[j] == q) {
			if (j + 1 < len && expr[j + 1] == q) {
				out[o++] = q;
				j += 2;
			} else {
				j++;
				break;
			}
		} else {
			out[o++] = expr[j++];
		}
	}
	out[o] = '\0';
	t->type = TOK_STRING;
	t->str = out;
	t->slen = o;
	t->len = j - *i;
	*i = j;
	return 0;
}

static int lex_word(const char *expr, size_t len, size_t *i, struct cesql_token *t, char *errbuf,
	size_t errlen) {
	size_t j = *i;
	bool digits_only = true, underscore = false;

	while (j < len && is_word(expr[j])) {
		if (expr[j] == '_')
			underscore = true;
		if (expr[j] < '0' || expr[j] > '9')
			digits_only = false;
		j++;
	}
	t->len = j - *i;
	if (digits_only) {
		uint64_t v = 0;
		for (size_t k = *i; k < j; k++) {
			v = v * 10 + (uint64_t)(expr[k] - '0');
			if (v > (uint64_t)INT32_MAX + 1)
				v = (uint64_t)INT32_MAX + 2; /* saturate: too large either way */
		}
		t->type = TOK_INT;
		t->num = v;
	} else if (underscore) {
		if (!is_alpha(expr[*i])) {
			snprintf(errbuf, errlen, "invalid name '%.*s'",
				(int)(t->len > 40 ? 40 : t->len), expr + *i);
			return -EINVAL;
		}
		for (size_t k = *i; k < j; k++)
			if (expr[k] >= '0' && expr[k] <= '9') {
				snprintf(errbuf, errlen, "invalid name '%.*s'",
					(int)(t->len > 40 ? 40 : t->len), expr + *i);
				return -EINVAL;
			}
		t->type = TOK_FUNCNAME;
	} else {
		t->type = TOK_IDENT;
		for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++)
			if (strlen(keywords[k].word) == t->len &&
				strncasecmp(keywords[k].word, expr + *i, t->len) == 0) {
				t->type = keywords[k].tok;
				break;
			}
	}
	*i = j;
	return 0;
}

static int lex_symbol(const char *expr, size_t len, size_t *i, struct cesql_token *t, char *errbuf,
	size_t errlen) {
	char c = expr[*i], n = *i + 1 < len ? expr[*i + 1] : '\0';

	t->len = 1;
	switch (c) {
	case '(':
		t->type = TOK_LPAREN;
		break;
	case ')':
		t->type = TOK_RPAREN;
		break;
	case ',':
		t->type = TOK_COMMA;
		break;
	case '+':
		t->type = TOK_PLUS;
		break;
	case '-':
		t->type = TOK_MINUS;
		break;
	case '*':
		t->type = TOK_STAR;
		break;
	case '/':
		t->type = TOK_SLASH;
		break;
	case '%':
		t->type = TOK_PERCENT;
		break;
	case '=':
		t->type = TOK_EQ;
		break;
	case '!':
		if (n != '=') {
			snprintf(errbuf, errlen, "unexpected '!' (did you mean '!='?)");
			return -EINVAL;
		}
		t->type = TOK_NE;
		t->len = 2;
		break;
	case '<':
		t->type = n == '=' ? TOK_LE : n == '>' ? TOK_NE : TOK_LT;
		t->len = (n == '=' || n == '>') ? 2 : 1;
		break;
	case '>':
		t->type = n == '=' ? TOK_GE : TOK_GT;
		t->len = n == '=' ? 2 : 1;
		break;
	default:
		if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
			snprintf(errbuf, errlen, "unexpected character '%c'", c);
		else
			snprintf(errbuf, errlen, "unexpected byte 0x%02x", (unsigned char)c);
		return -EINVAL;
	}
	*i += t->len;
	return 0;
}

int cesql_lex(const char *expr, size_t len, struct cesql_lexer *lx, size_t *ret_pos, char *errbuf,
	size_t errlen) {
	size_t i = 0, cap = 0;
	int r = 0;

	*lx = (struct cesql_lexer){ 0 };
	for (;;) {
		struct cesql_token t = { 0 };

		while (i < len &&
			(expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\r' || expr[i] == '\n'))
			i++;
		if (lx->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct cesql_token *nt = realloc(lx->toks, ncap * sizeof(*nt));
			if (!nt) {
				r = -ENOMEM;
				goto out;
			}
			lx->toks = nt;
			cap = ncap;
		}
		t.pos = i;
		if (i >= len) {
			t.type = TOK_EOF;
			lx->toks[lx->n++] = t;
			break;
		}
		if (expr[i] == '\'' || expr[i] == '"')
			r = lex_string(expr, len, &i, &t, errbuf, errlen);
		else if (is_word(expr[i]))
			r = lex_word(expr, len, &i, &t, errbuf, errlen);
		else
			r = lex_symbol(expr, len, &i, &t, errbuf, errlen);
		if (r < 0) {
			*ret_pos = t.pos;
			goto out;
		}
		lx->toks[lx->n++] = t;
	}
	return 0;
out:
	cesql_lex_finish(lx);
	return r;
}

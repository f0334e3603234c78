#ifndef ADAPTER_CESQL_INTERNAL_H
#define ADAPTER_CESQL_INTERNAL_H

/* Shared between cesql_lex.c, cesql_parse.c, cesql_eval.c and cesql_func.c;
 * not part of the public API. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/cesql.h"

enum cesql_tok {
	TOK_EOF,
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_COMMA,
	TOK_PLUS,
	TOK_MINUS,
	TOK_STAR,
	TOK_SLASH,
	TOK_PERCENT,
	TOK_EQ,
	TOK_NE, /* != and <> */
	TOK_LT,
	TOK_LE,
	TOK_GT,
	TOK_GE,
	TOK_AND,
	TOK_OR,
	TOK_XOR,
	TOK_NOT,
	TOK_LIKE,
	TOK_EXISTS,
	TOK_IN,
	TOK_TRUE,
	TOK_FALSE,
	TOK_STRING,
	TOK_INT,      /* digits only; the sign is an operator */
	TOK_IDENT,    /* [A-Za-z0-9]+ with a letter: attribute or function name */
	TOK_FUNCNAME, /* [A-Za-z][A-Za-z_]* with an underscore: function name only */
};

struct cesql_token {
	enum cesql_tok type;
	size_t pos; /* byte offset in the expression */
	size_t len; /* bytes of source text */
	char *str;  /* TOK_STRING: unescaped text (malloc'd); NUL-terminated */
	size_t slen;
	uint64_t num; /* TOK_INT: value, saturated above 2^31 */
};

struct cesql_lexer {
	struct cesql_token *toks;
	size_t n;
};

/* Splits expr into tokens (the last is TOK_EOF). Returns 0, -EINVAL with
 * *ret_pos at the offending byte and a message in errbuf, or -ENOMEM. */
int cesql_lex(const char *expr, size_t len, struct cesql_lexer *lx, size_t *ret_pos, char *errbuf,
	size_t errlen);
void cesql_lex_finish(struct cesql_lexer *lx);
const char *cesql_tok_name(enum cesql_tok t);

/* One element of a compiled LIKE pattern. */
enum like_kind { LIKE_BYTE, LIKE_ONE, LIKE_ANY };
struct like_elem {
	enum like_kind kind;
	unsigned char c;
};

enum node_kind { N_LIT, N_ATTR, N_EXISTS, N_NOT, N_NEG, N_BINARY, N_LIKE, N_IN, N_CALL };

struct cesql_func;

struct cesql_node {
	enum node_kind kind;
	enum cesql_tok op;      /* N_BINARY */
	bool negate;            /* NOT LIKE, NOT IN */
	struct cesql_value lit; /* N_LIT; a string's bytes are in owned */
	char *name;             /* N_ATTR, N_EXISTS: lower-cased; N_CALL: as written */
	struct like_elem *pat;  /* N_LIKE */
	size_t npat;
	const struct cesql_func *fn; /* N_CALL; NULL: no such function/arity */
	struct cesql_node **kids;    /* operands, set elements, arguments */
	size_t nkids;
	unsigned depth;
};

struct cesql_expr {
	struct cesql_node *root;
};

/* Evaluation state: the callback and the first error met. */
struct cesql_eval_ctx {
	cesql_attr_fn get;
	void *userdata;
	enum cesql_error error;
	char message[160];
};

typedef int (*cesql_impl_fn)(
	struct cesql_eval_ctx *ctx, struct cesql_value *args, size_t n, struct cesql_value *ret);

/* A built-in function: a fixed part and, when variadic, a repeated type.
 * CESQL_ANY_TYPE as a parameter type means "take the value as it is". */
#define CESQL_ANY_TYPE ((enum cesql_type)3)
struct cesql_func {
	const char *name;
	size_t nfixed;
	bool variadic;
	enum cesql_type params[3];
	enum cesql_type rest;
	enum cesql_type ret;
	cesql_impl_fn impl;
};

/* The function of that name (case-insensitive) taking nargs arguments, or NULL. */
const struct cesql_func *cesql_func_lookup(const char *name, size_t nargs);

/* Records err (if it is the first) with a printf-style message. */
void cesql_set_error(struct cesql_eval_ctx *ctx, enum cesql_error err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Casts *v in place to type t. explicit_ selects the casting functions'
 * semantics. Returns 0, 1 when the cast failed (error recorded, *v is the zero
 * value of t), or -ENOMEM. */
int cesql_cast(struct cesql_eval_ctx *ctx, struct cesql_value *v, enum cesql_type t);
/* Whether v can be cast to t without error (IS_INT, IS_BOOL). */
bool cesql_can_cast(const struct cesql_value *v, enum cesql_type t);
/* Sets *v to a string that it owns (takes ownership of buf). */
void cesql_value_take(struct cesql_value *v, char *buf, size_t len);
struct cesql_value cesql_zero(enum cesql_type t);
/* Number of UTF-8 code points in s. */
size_t cesql_utf8_len(const char *s, size_t len);
/* Byte offset of code point index cp (clamped to len). */
size_t cesql_utf8_offset(const char *s, size_t len, size_t cp);

#endif

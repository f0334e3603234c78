#ifndef ADAPTER_CESQL_H
#define ADAPTER_CESQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CloudEvents SQL (CESQL v1): a lexer and recursive-descent parser to an AST,
 * and an evaluator over one event reached through a lookup callback. Parsing
 * and evaluation are quiet (no logging) and total: evaluation always yields a
 * value, plus the first error it met (the spec's "complete evaluation" mode,
 * as its conformance suite expects). No global state; an expression may be
 * evaluated from several threads at once. */

/* Caps against hostile input: expression length in bytes, and depth of the
 * syntax tree (nesting of operators, parentheses and calls). */
#define CESQL_MAX_EXPR_LEN 65536
#define CESQL_MAX_DEPTH 256

enum cesql_type { CESQL_BOOLEAN, CESQL_INTEGER, CESQL_STRING };

/* The error kinds of the spec (and the TCK's names, see cesql_error_name()). */
enum cesql_error {
	CESQL_ERR_NONE,
	CESQL_ERR_PARSE,
	CESQL_ERR_MATH,
	CESQL_ERR_CAST,
	CESQL_ERR_MISSING_FUNCTION,
	CESQL_ERR_FUNCTION_EVALUATION,
	CESQL_ERR_MISSING_ATTRIBUTE,
	CESQL_ERR_GENERIC,
};

/* A value. Strings are s/len (not NUL-terminated in general, may hold any
 * byte); owned, when set, is a malloc'd block s points into, released by
 * cesql_value_finish(). */
struct cesql_value {
	enum cesql_type type;
	bool b;
	int32_t i;
	const char *s;
	size_t len;
	char *owned;
};

struct cesql_result {
	struct cesql_value value; /* always set; owned by the result */
	enum cesql_error error;   /* the first error, or CESQL_ERR_NONE */
	char message[160];        /* what went wrong, "" when no error */
};

struct cesql_expr;

/* Looks an attribute up by name (lower-case, as CloudEvents names are). Returns
 * 1 and fills *ret_value when the event has it, 0 when missing, or -errno to
 * abort the evaluation. *ret_value arrives zeroed. A string value is borrowed
 * (owned left NULL) and must stay valid until cesql_eval() returns, or handed
 * over by setting owned to a malloc'd block that s points into. Context
 * attributes are strings; extensions may be integers or booleans when the
 * event gives them so. For EXISTS only the return value counts. */
typedef int (*cesql_attr_fn)(const char *name, struct cesql_value *ret_value, void *userdata);

/* Parses expr (NUL-terminated). Returns 0, -EINVAL with "column N: problem"
 * in errbuf for a syntax error (also for over-long or too deeply nested
 * input), or -ENOMEM. The caller frees *ret_expr with cesql_expr_free(). */
int cesql_parse(const char *expr, struct cesql_expr **ret_expr, char *errbuf, size_t errlen);
void cesql_expr_free(struct cesql_expr *e);

/* Evaluates e against one event. Returns 0 with *ret filled (release it with
 * cesql_result_finish()), or -errno if allocation or the callback failed.
 * Evaluation errors are not failures: they are in ret->error. */
int cesql_eval(
	const struct cesql_expr *e, cesql_attr_fn get, void *userdata, struct cesql_result *ret);
void cesql_result_finish(struct cesql_result *r);
/* True only for a Boolean true without error: the spec's rule for filters. */
bool cesql_result_passes(const struct cesql_result *r);

void cesql_value_finish(struct cesql_value *v);
/* The TCK's name of an error kind: "parse", "math", "cast", "missingFunction",
 * "functionEvaluation", "missingAttribute", "generic"; "" for none. */
const char *cesql_error_name(enum cesql_error e);

#endif

#include "adapter/filter.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/filter_internal.h"
#include "adapter/util/buf.h"

enum filter_kind { F_EXACT, F_PREFIX, F_SUFFIX, F_ALL, F_ANY, F_NOT, F_CESQL };

static const char *const dialects[] = { "exact", "prefix", "suffix", "all", "any", "not", "cesql" };
#define N_DIALECTS (sizeof(dialects) / sizeof(dialects[0]))

struct filter_attr {
	char *name;
	char *value;
	size_t len;
};

struct filter {
	enum filter_kind kind;
	struct filter_attr *attrs; /* exact, prefix, suffix */
	size_t nattrs;
	struct filter **kids; /* all, any (and the top-level list), not: 0 or 1 */
	size_t nkids, cap;
	struct cesql_expr *expr; /* cesql */
};

/* Knative's three outcomes: a NOT of a dropped filter, or an empty all/any,
 * neither passes nor fails, and only a failure drops the event. */
enum outcome { NO_FILTER, PASS, FAIL };

void filter_free(struct filter *f) {
	if (!f)
		return;
	for (size_t i = 0; i < f->nattrs; i++) {
		free(f->attrs[i].name);
		free(f->attrs[i].value);
	}
	free(f->attrs);
	for (size_t i = 0; i < f->nkids; i++)
		filter_free(f->kids[i]);
	free(f->kids);
	cesql_expr_free(f->expr);
	free(f);
}

/* Adds kid (taken, also on failure) to f's list. */
static int add_kid(struct filter *f, struct filter *kid) {
	if (f->nkids == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 4;
		struct filter **nk = realloc(f->kids, ncap * sizeof(*nk));
		if (!nk) {
			filter_free(kid);
			return -ENOMEM;
		}
		f->kids = nk;
		f->cap = ncap;
	}
	f->kids[f->nkids++] = kid;
	return 0;
}

/* The attribute's value as text, as Knative formats a non-string with %v. */
static int attr_text(
	cesql_attr_fn get, void *ud, const char *name, char num[16], struct cesql_value *v) {
	int r;

	*v = (struct cesql_value){ 0 };
	r = get(name, v, ud);
	if (r <= 0)
		return r;
	if (v->type == CESQL_BOOLEAN) {
		v->s = v->b ? "true" : "false";
		v->len = strlen(v->s);
	} else if (v->type == CESQL_INTEGER) {
		v->len = (size_t)snprintf(num, 16, "%" PRId32, v->i);
		v->s = num;
	}
	return 1;
}

static enum outcome match_attrs(const struct filter *f, cesql_attr_fn get, void *ud) {
	for (size_t i = 0; i < f->nattrs; i++) {
		const struct filter_attr *a = &f->attrs[i];
		struct cesql_value v;
		char num[16];
		bool ok;

		if (attr_text(get, ud, a->name, num, &v) <= 0)
			return FAIL; /* missing (or the lookup failed) */
		if (f->kind == F_EXACT)
			ok = v.len == a->len && memcmp(v.s, a->value, a->len) == 0;
		else if (f->kind == F_PREFIX)
			ok = v.len >= a->len && memcmp(v.s, a->value, a->len) == 0;
		else
			ok = v.len >= a->len && memcmp(v.s + v.len - a->len, a->value, a->len) == 0;
		cesql_value_finish(&v);
		if (!ok)
			return FAIL;
	}
	return PASS;
}

static enum outcome match(const struct filter *f, cesql_attr_fn get, void *ud) {
	enum outcome res = NO_FILTER;
	struct cesql_result r;

	switch (f->kind) {
	case F_EXACT:
	case F_PREFIX:
	case F_SUFFIX:
		return match_attrs(f, get, ud);
	case F_ALL:
		for (size_t i = 0; i < f->nkids; i++) {
			res = match(f->kids[i], get, ud);
			if (res == FAIL)
				return FAIL;
		}
		return res;
	case F_ANY:
		for (size_t i = 0; i < f->nkids; i++) {
			res = match(f->kids[i], get, ud);
			if (res == PASS)
				return PASS;
		}
		return res;
	case F_NOT:
		if (!f->nkids)
			return NO_FILTER;
		res = match(f->kids[0], get, ud);
		return res == PASS ? FAIL : res == FAIL ? PASS : NO_FILTER;
	case F_CESQL:
		/* An error, or anything but a Boolean true, drops the event. */
		if (cesql_eval(f->expr, get, ud, &r) < 0)
			return FAIL;
		res = cesql_result_passes(&r) ? PASS : FAIL;
		cesql_result_finish(&r);
		return res;
	}
	return FAIL;
}

bool filter_match(const struct filter *f, cesql_attr_fn get, void *userdata) {
	return !f || match(f, get, userdata) != FAIL;
}

size_t filter_count(const struct filter *f) {
	return f ? f->nkids : 0;
}

int filter_append(struct filter **dst, struct filter *src) {
	int r = 0;

	if (!src)
		return 0;
	if (!*dst) {
		*dst = src;
		return 0;
	}
	for (size_t i = 0; i < src->nkids && r == 0; i++) {
		r = add_kid(*dst, src->kids[i]);
		src->kids[i] = NULL;
	}
	filter_free(src);
	return r;
}

/* Turning a document tree into filters: the path of the node at hand, for
 * messages, and the warnings so far. */
struct build {
	char path[1024];
	size_t plen;
	bool yaml;
	struct buf warnings;
	char *errbuf;
	size_t errlen;
};

static size_t path_push(struct build *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static size_t path_push(struct build *b, const char *fmt, ...) {
	size_t mark = b->plen;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->path + b->plen, sizeof(b->path) - b->plen, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->plen += (size_t)n < sizeof(b->path) - b->plen ? (size_t)n
								 : sizeof(b->path) - b->plen - 1;
	return mark;
}

static void path_pop(struct build *b, size_t mark) {
	b->plen = mark;
	b->path[mark] = '\0';
}

static int fail(struct build *b, const struct gnode *g, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct build *b, const struct gnode *g, const char *fmt, ...) {
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (b->yaml && g && g->line)
		snprintf(b->errbuf, b->errlen, "%zu:%zu: %s: %s", g->line, g->col, b->path, msg);
	else
		snprintf(b->errbuf, b->errlen, "%s: %s", b->path, msg);
	return -EINVAL;
}

static int warn(struct build *b, const struct gnode *g, const char *what) {
	int r = 0;

	if (b->yaml && g && g->line)
		r = buf_printf(&b->warnings, "%zu:%zu: ", g->line, g->col);
	if (r == 0)
		r = buf_printf(&b->warnings,
			"%s: %s; Knative's adapter skips this filter, so do we\n", b->path, what);
	return r == -E2BIG ? 0 : r; /* enough warnings: drop the rest */
}

/* Knative's webhook: ^[a-z][a-z0-9]*$. */
static bool valid_attr_name(const char *s) {
	if (!(*s >= 'a' && *s <= 'z'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static int build_one(struct build *b, const struct gnode *g, unsigned depth, struct filter **ret);

static int build_attrs(struct build *b, const struct gnode *g, struct filter *f) {
	const char *empty = NULL;

	if (g->type != GNODE_MAP)
		return fail(b, g, "expected a map of attribute names to values");
	f->attrs = calloc(g->n ? g->n : 1, sizeof(*f->attrs));
	if (!f->attrs)
		return -ENOMEM;
	for (size_t i = 0; i < g->n; i++) {
		struct filter_attr *a = NULL;
		if (!valid_attr_name(g->keys[i]))
			return fail(b, g,
				"invalid attribute name \"%.64s\": it must start with a letter and "
				"contain only lower-case letters and digits",
				g->keys[i]);
		if (g->kids[i]->type != GNODE_STRING)
			return fail(
				b, g->kids[i], "the value of \"%s\" must be a string", g->keys[i]);
		if (!g->kids[i]->len && !empty)
			empty = g->keys[i];
		for (size_t k = 0; k < f->nattrs; k++)
			if (strcmp(f->attrs[k].name, g->keys[i]) == 0)
				a = &f->attrs[k]; /* a repeated key: the last one wins */
		if (!a) {
			a = &f->attrs[f->nattrs++];
			a->name = strdup(g->keys[i]);
			if (!a->name)
				return -ENOMEM;
		}
		free(a->value);
		a->value = strdup(g->kids[i]->text);
		if (!a->value)
			return -ENOMEM;
		a->len = g->kids[i]->len;
	}
	if (empty) {
		char what[128];
		snprintf(what, sizeof(what), "empty value for \"%.64s\"", empty);
		return warn(b, g, what) < 0 ? -ENOMEM : 1;
	}
	return 0;
}

/* Fills f's list from a sequence (null: empty); dropped items are left out. */
static int build_list(struct build *b, const struct gnode *g, unsigned depth, struct filter *f) {
	if (g->type == GNODE_NULL)
		return 0;
	if (g->type != GNODE_SEQ)
		return fail(b, g, "expected a list of filters");
	for (size_t i = 0; i < g->n; i++) {
		struct filter *kid = NULL;
		size_t mark = path_push(b, "[%zu]", i);
		int r = build_one(b, g->kids[i], depth, &kid);
		if (r < 0)
			return r;
		path_pop(b, mark);
		if (kid && (r = add_kid(f, kid)) < 0)
			return r;
	}
	return 0;
}

/* Returns 0 with *ret set, or 0 with *ret NULL for a dropped filter. */
static int build_dialect(struct build *b, const struct gnode *v, enum filter_kind kind,
	unsigned depth, struct filter **ret) {
	struct filter *f = calloc(1, sizeof(*f)), *kid = NULL;
	char errbuf[200];
	int r = 0;

	if (!f)
		return -ENOMEM;
	f->kind = kind;
	switch (kind) {
	case F_EXACT:
	case F_PREFIX:
	case F_SUFFIX:
		if (v->type == GNODE_NULL || (v->type == GNODE_MAP && !v->n))
			r = warn(b, v, "no attributes") < 0 ? -ENOMEM : 1;
		else
			r = build_attrs(b, v, f);
		break;
	case F_ALL:
	case F_ANY:
		if (v->type == GNODE_NULL || (v->type == GNODE_SEQ && !v->n))
			r = warn(b, v, "empty list") < 0 ? -ENOMEM : 1;
		else
			r = build_list(b, v, depth + 1, f);
		break;
	case F_NOT:
		if (v->type != GNODE_MAP) {
			r = fail(b, v, "expected one filter");
			break;
		}
		/* A dropped inner filter leaves a NOT that neither passes nor
		 * fails, as in Knative. */
		r = build_one(b, v, depth + 1, &kid);
		if (r == 0 && kid)
			r = add_kid(f, kid);
		break;
	case F_CESQL:
		if (v->type != GNODE_STRING)
			r = fail(b, v, "expected a CESQL expression string");
		else if (!v->len)
			r = warn(b, v, "empty expression") < 0 ? -ENOMEM : 1;
		else if ((r = cesql_parse(v->text, &f->expr, errbuf, sizeof(errbuf))) == -EINVAL)
			r = fail(b, v, "%s", errbuf);
		break;
	}
	if (r == 0)
		*ret = f;
	else
		filter_free(f);
	return r > 0 ? 0 : r;
}

static int build_one(struct build *b, const struct gnode *g, unsigned depth, struct filter **ret) {
	int found = -1;
	size_t mark;
	int r;

	*ret = NULL;
	if (depth > FILTER_MAX_DEPTH)
		return fail(b, g, "filters nested more than %d levels", FILTER_MAX_DEPTH);
	if (g->type != GNODE_MAP)
		return fail(b, g,
			"a filter must be an object with one of exact, prefix, suffix, "
			"all, any, not, cesql");
	for (size_t i = 0; i < g->n; i++) {
		size_t k;
		for (k = 0; k < N_DIALECTS; k++)
			if (strcmp(g->keys[i], dialects[k]) == 0)
				break;
		if (k == N_DIALECTS)
			return fail(b, g,
				"unknown filter dialect \"%.64s\" (expected exact, prefix, "
				"suffix, all, any, not or cesql)",
				g->keys[i]);
		if (found >= 0)
			return fail(b, g,
				"more than one dialect (\"%s\" and \"%s\"); a filter has "
				"exactly one",
				g->keys[found], g->keys[i]);
		found = (int)i;
	}
	if (found < 0)
		return fail(b, g,
			"empty filter: expected one of exact, prefix, suffix, all, any, "
			"not, cesql");
	for (size_t k = 0; k < N_DIALECTS; k++)
		if (strcmp(g->keys[found], dialects[k]) == 0) {
			mark = path_push(b, ".%s", dialects[k]);
			r = build_dialect(b, g->kids[found], (enum filter_kind)k, depth, ret);
			if (r == 0)
				path_pop(b, mark);
			return r;
		}
	return -EINVAL;
}

static int finish(
	struct build *b, int r, struct filter *top, struct filter **ret, char **ret_warnings) {
	if (r == -ENOMEM && b->errbuf && b->errlen)
		snprintf(b->errbuf, b->errlen, "out of memory");
	if (r == 0) {
		if (ret_warnings)
			*ret_warnings = b->warnings.len ? buf_steal(&b->warnings, NULL) : NULL;
		*ret = top;
		top = NULL;
	}
	buf_finish(&b->warnings);
	filter_free(top);
	return r;
}

static int build_init(struct build *b, const char *path, bool yaml, char *errbuf, size_t errlen,
	struct filter **ret_top) {
	*b = (struct build){ .yaml = yaml, .errbuf = errbuf, .errlen = errlen };
	buf_init(&b->warnings, 65536);
	path_push(b, "%s", path);
	if (errbuf && errlen)
		errbuf[0] = '\0';
	*ret_top = calloc(1, sizeof(**ret_top));
	if (!*ret_top)
		return -ENOMEM;
	(*ret_top)->kind = F_ALL;
	return 0;
}

int filter_parse_json(const char *json, size_t len, struct filter **ret, char **ret_warnings,
	char *errbuf, size_t errlen) {
	struct filter *top = NULL;
	struct gnode *g = NULL;
	struct build b;
	char jerr[200];
	int r;

	r = build_init(&b, "filters", false, errbuf, errlen, &top);
	if (r == 0) {
		r = gnode_from_json(json, len, &g, jerr, sizeof(jerr));
		if (r == -EINVAL)
			fail(&b, NULL, "%s", jerr);
	}
	if (r == 0)
		r = build_list(&b, g, 0, top);
	gnode_free(g);
	return finish(&b, r, top, ret, ret_warnings);
}

int filter_parse_yaml(struct yamldoc *d, yaml_node_t *seq, struct filter **ret, char **ret_warnings,
	char *errbuf, size_t errlen) {
	struct filter *top = NULL;
	struct gnode *g = NULL;
	struct build b;
	int r;

	r = build_init(&b, "filters", true, errbuf, errlen, &top);
	if (r == 0 && !seq)
		return finish(&b, 0, top, ret, ret_warnings);
	if (r == 0)
		r = gnode_from_yaml(d, seq, &g, errbuf, errlen);
	if (r == 0)
		r = build_list(&b, g, 0, top);
	gnode_free(g);
	return finish(&b, r, top, ret, ret_warnings);
}

int filter_parse_one(
	const char *text, struct filter **ret, char **ret_warnings, char *errbuf, size_t errlen) {
	struct filter *top = NULL, *f = NULL;
	struct gnode *g = NULL;
	struct build b;
	char jerr[200];
	int r;

	r = build_init(&b, "filter", false, errbuf, errlen, &top);
	text += strspn(text, " \t\r\n");
	if (r == 0 && *text == '{') {
		r = gnode_from_json(text, strlen(text), &g, jerr, sizeof(jerr));
		if (r == -EINVAL)
			fail(&b, NULL, "%s", jerr);
		if (r == 0)
			r = build_one(&b, g, 0, &f);
	} else if (r == 0) {
		f = calloc(1, sizeof(*f));
		r = f ? 0 : -ENOMEM;
		if (f)
			f->kind = F_CESQL;
		if (r == 0)
			r = cesql_parse(text, &f->expr, errbuf, errlen);
	}
	if (r == 0 && f) {
		r = add_kid(top, f);
		f = NULL;
	}
	filter_free(f);
	gnode_free(g);
	return finish(&b, r, top, ret, ret_warnings);
}

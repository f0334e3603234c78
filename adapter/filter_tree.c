#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "adapter/filter_internal.h"

void gnode_free(struct gnode *g) {
	if (!g)
		return;
	/* Depth is capped while building, so this recursion is bounded. */
	for (size_t i = 0; i < g->n; i++) {
		gnode_free(g->kids[i]);
		if (g->keys)
			free(g->keys[i]);
	}
	free(g->kids);
	free(g->keys);
	free(g->text);
	free(g);
}

static struct gnode *gnode_new(enum gnode_type t, const char *text, size_t len) {
	struct gnode *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->type = t;
	if (text) {
		g->text = strndup(text, len);
		if (!g->text) {
			free(g);
			return NULL;
		}
		g->len = strlen(g->text); /* a NUL inside a JSON string ends it */
	}
	return g;
}

/* Adds kid (taken, also on failure) to a map or list. */
static int gnode_add(struct gnode *parent, char *key, struct gnode *kid) {
	if (parent->n == parent->cap) {
		size_t ncap = parent->cap ? parent->cap * 2 : 4;
		struct gnode **nk = realloc(parent->kids, ncap * sizeof(*nk));
		if (nk)
			parent->kids = nk;
		if (nk && parent->type == GNODE_MAP) {
			char **nkeys = realloc(parent->keys, ncap * sizeof(*nkeys));
			if (!nkeys)
				nk = NULL;
			else
				parent->keys = nkeys;
		}
		if (!nk) {
			free(key);
			gnode_free(kid);
			return -ENOMEM;
		}
		parent->cap = ncap;
	}
	if (parent->type == GNODE_MAP)
		parent->keys[parent->n] = key;
	else
		free(key);
	parent->kids[parent->n++] = kid;
	return 0;
}

struct jstate {
	struct gnode *root;
	struct gnode *stack[GNODE_MAX_DEPTH];
	size_t depth;
	char *key;
	size_t nodes;
	int r;
	char msg[96];
};

static int j_add(struct jstate *st, struct gnode *g, bool container) {
	if (!g) {
		st->r = -ENOMEM;
		return 0;
	}
	if (++st->nodes > FILTER_MAX_NODES) {
		gnode_free(g);
		st->r = -EINVAL;
		snprintf(st->msg, sizeof(st->msg), "more than %d JSON values", FILTER_MAX_NODES);
		return 0;
	}
	if (container && st->depth >= GNODE_MAX_DEPTH) {
		gnode_free(g);
		st->r = -EINVAL;
		snprintf(st->msg, sizeof(st->msg), "JSON nested more than %d levels",
			GNODE_MAX_DEPTH);
		return 0;
	}
	if (st->depth == 0) {
		st->root = g;
	} else {
		int r = gnode_add(st->stack[st->depth - 1], st->key, g);
		st->key = NULL;
		if (r < 0) {
			st->r = r;
			return 0;
		}
	}
	if (container)
		st->stack[st->depth++] = g;
	return 1;
}

static int handle_null(void *ctx) {
	return j_add(ctx, gnode_new(GNODE_NULL, NULL, 0), false);
}

static int handle_boolean(void *ctx, int v) {
	return j_add(ctx, gnode_new(GNODE_BOOL, v ? "true" : "false", v ? 4 : 5), false);
}

static int handle_number(void *ctx, const char *s, size_t len) {
	return j_add(ctx, gnode_new(GNODE_NUMBER, s, len), false);
}

static int handle_string(void *ctx, const unsigned char *s, size_t len) {
	struct jstate *st = ctx;

	/* "\u0000" would cut the text short and change its meaning. */
	if (memchr(s, '\0', len)) {
		st->r = -EINVAL;
		snprintf(st->msg, sizeof(st->msg), "a string contains a NUL character");
		return 0;
	}
	return j_add(ctx, gnode_new(GNODE_STRING, (const char *)s, len), false);
}

static int handle_start_map(void *ctx) {
	return j_add(ctx, gnode_new(GNODE_MAP, NULL, 0), true);
}

static int handle_start_array(void *ctx) {
	return j_add(ctx, gnode_new(GNODE_SEQ, NULL, 0), true);
}

static int handle_map_key(void *ctx, const unsigned char *s, size_t len) {
	struct jstate *st = ctx;

	free(st->key);
	st->key = strndup((const char *)s, len);
	if (!st->key) {
		st->r = -ENOMEM;
		return 0;
	}
	return 1;
}

static int handle_end(void *ctx) {
	struct jstate *st = ctx;

	st->depth--;
	return 1;
}

static const yajl_callbacks json_callbacks = {
	.yajl_null = handle_null,
	.yajl_boolean = handle_boolean,
	.yajl_number = handle_number,
	.yajl_string = handle_string,
	.yajl_start_map = handle_start_map,
	.yajl_map_key = handle_map_key,
	.yajl_end_map = handle_end,
	.yajl_start_array = handle_start_array,
	.yajl_end_array = handle_end,
};

int gnode_from_json(const char *json, size_t len, struct gnode **ret, char *errbuf, size_t errlen) {
	struct jstate st = { 0 };
	yajl_handle h = NULL;
	yajl_status s;
	int r = -ENOMEM;

	if (len > FILTER_MAX_INPUT) {
		snprintf(errbuf, errlen, "JSON longer than %d bytes", FILTER_MAX_INPUT);
		return -EINVAL;
	}
	h = yajl_alloc(&json_callbacks, NULL, &st);
	if (!h)
		goto out;
	s = yajl_parse(h, (const unsigned char *)json, len);
	if (s == yajl_status_ok)
		s = yajl_complete_parse(h);
	if (s != yajl_status_ok) {
		if (st.r == -ENOMEM)
			goto out;
		r = -EINVAL;
		if (st.r == -EINVAL) {
			snprintf(errbuf, errlen, "%s", st.msg);
		} else {
			unsigned char *e = yajl_get_error(h, 0, (const unsigned char *)json, len);
			/* yajl's text ends with a newline; keep one line. */
			snprintf(errbuf, errlen, "invalid JSON: %s",
				e ? (const char *)e : "parse error");
			errbuf[strcspn(errbuf, "\n")] = '\0';
			if (e)
				yajl_free_error(h, e);
		}
		goto out;
	}
	if (!st.root) {
		r = -EINVAL;
		snprintf(errbuf, errlen, "invalid JSON: empty input");
		goto out;
	}
	*ret = st.root;
	st.root = NULL;
	r = 0;
out:
	free(st.key);
	gnode_free(st.root);
	if (h)
		yajl_free(h);
	return r;
}

struct ystate {
	struct yamldoc *d;
	size_t nodes;
	char *errbuf;
	size_t errlen;
};

static int y_copy(struct ystate *st, yaml_node_t *n, size_t depth, struct gnode **ret) {
	struct gnode *g = NULL;
	size_t line, col;
	int r;

	yamldoc_mark(n, &line, &col);
	if (!n) {
		snprintf(st->errbuf, st->errlen, "invalid YAML node");
		return -EINVAL;
	}
	if (++st->nodes > FILTER_MAX_NODES || depth > GNODE_MAX_DEPTH) {
		snprintf(st->errbuf, st->errlen, "%zu:%zu: %s", line, col,
			depth > GNODE_MAX_DEPTH ? "YAML nested too deeply"
						: "too many YAML nodes (aliases included)");
		return -EINVAL;
	}
	if (n->type == YAML_SCALAR_NODE) {
		const char *s = yamldoc_str(n);
		if (strlen(s) != n->data.scalar.length) {
			snprintf(st->errbuf, st->errlen,
				"%zu:%zu: a string contains a NUL character", line, col);
			return -EINVAL;
		}
		g = gnode_new(yamldoc_is_null(n) ? GNODE_NULL : GNODE_STRING, s, strlen(s));
	} else {
		g = gnode_new(n->type == YAML_MAPPING_NODE ? GNODE_MAP : GNODE_SEQ, NULL, 0);
	}
	if (!g)
		return -ENOMEM;
	g->line = line;
	g->col = col;
	if (n->type == YAML_SEQUENCE_NODE) {
		for (size_t i = 0; i < yamldoc_len(n); i++) {
			struct gnode *kid = NULL;
			r = y_copy(st, yamldoc_item(st->d, n, i), depth + 1, &kid);
			if (r == 0)
				r = gnode_add(g, NULL, kid);
			if (r < 0)
				goto fail;
		}
	} else if (n->type == YAML_MAPPING_NODE) {
		yaml_node_t *k, *v;
		for (size_t i = 0; yamldoc_pair(st->d, n, i, &k, &v); i++) {
			struct gnode *kid = NULL;
			const char *ks = yamldoc_str(k);
			char *key;
			if (!ks) {
				yamldoc_mark(k, &line, &col);
				snprintf(st->errbuf, st->errlen, "%zu:%zu: a key must be a string",
					line, col);
				r = -EINVAL;
				goto fail;
			}
			r = y_copy(st, v, depth + 1, &kid);
			if (r < 0)
				goto fail;
			key = strdup(ks);
			if (!key) {
				gnode_free(kid);
				r = -ENOMEM;
				goto fail;
			}
			r = gnode_add(g, key, kid);
			if (r < 0)
				goto fail;
		}
	}
	*ret = g;
	return 0;
fail:
	gnode_free(g);
	return r;
}

int gnode_from_yaml(
	struct yamldoc *d, yaml_node_t *n, struct gnode **ret, char *errbuf, size_t errlen) {
	struct ystate st = { .d = d, .errbuf = errbuf, .errlen = errlen };

	return y_copy(&st, n, 0, ret);
}

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/util/yamldoc.h"

/* "line:column: problem context" for a syntax error (malloc'd, or NULL). */
static char *syntax_error(const yaml_parser_t *parser) {
	char *msg = NULL;

	if (asprintf(&msg, "%zu:%zu: %s%s%s", parser->problem_mark.line + 1,
		    parser->problem_mark.column + 1,
		    parser->problem ? parser->problem : "invalid YAML", parser->context ? " " : "",
		    parser->context ? parser->context : "") < 0)
		msg = NULL;
	return msg;
}

void yamldoc_free_all(struct yamldoc *docs, size_t n) {
	if (!docs)
		return;
	for (size_t i = 0; i < n; i++)
		if (docs[i].loaded)
			yaml_document_delete(&docs[i].doc);
	free(docs);
}

/* ---- the pre-pass: libyaml's event parser, checked before anything is loaded ---- */

struct anchor {
	char *name;
	uint64_t hash;
	size_t nodes, bytes; /* the anchored node's size with its own aliases expanded */
	bool open;	     /* a collection not ended yet: an alias to it would be a cycle */
};

struct frame {
	size_t nodes, bytes; /* the totals when the collection started */
	struct anchor *anchor;
};

struct check {
	struct anchor anchors[YAMLDOC_MAX_ANCHORS];
	size_t n_anchors, n_aliases, depth;
	struct frame frames[YAMLDOC_MAX_DEPTH];
	size_t nodes, bytes; /* so far, with aliases expanded */
	char *error;
};

static uint64_t hash_name(const char *s) {
	uint64_t h = UINT64_C(1469598103934665603);

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static void fail(struct check *c, const yaml_mark_t *mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct check *c, const yaml_mark_t *mark, const char *fmt, ...) {
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&c->error, "%zu:%zu: %s", mark->line + 1, mark->column + 1, msg) < 0)
		c->error = NULL;
}

static void forget_anchors(struct check *c) {
	for (size_t i = 0; i < c->n_anchors; i++)
		free(c->anchors[i].name);
	c->n_anchors = 0;
}

/* Anchors are per document. Returns the new anchor, or NULL (c->error set). */
static struct anchor *define(struct check *c, const yaml_event_t *ev, const unsigned char *name) {
	struct anchor *a;

	if (c->n_anchors == YAMLDOC_MAX_ANCHORS) {
		fail(c, &ev->start_mark, "more than %d anchors", YAMLDOC_MAX_ANCHORS);
		return NULL;
	}
	a = &c->anchors[c->n_anchors];
	*a = (struct anchor){ .name = strdup((const char *)name), .open = true };
	if (!a->name)
		return NULL;
	a->hash = hash_name(a->name);
	c->n_anchors++;
	return a;
}

static int alias(struct check *c, const yaml_event_t *ev) {
	const char *name = (const char *)ev->data.alias.anchor;
	uint64_t h = hash_name(name);

	if (++c->n_aliases > YAMLDOC_MAX_ALIASES) {
		fail(c, &ev->start_mark, "more than %d aliases", YAMLDOC_MAX_ALIASES);
		return -EBADMSG;
	}
	/* The latest definition wins. An undefined alias is left to the loader,
	 * which reports it. */
	for (size_t i = c->n_anchors; i-- > 0;) {
		struct anchor *a = &c->anchors[i];
		if (a->hash != h || strcmp(a->name, name) != 0)
			continue;
		if (a->open) {
			fail(c, &ev->start_mark, "alias *%.64s refers to a node that contains it", name);
			return -EBADMSG;
		}
		c->nodes += a->nodes;
		c->bytes += a->bytes;
		break;
	}
	return 0;
}

static int open_collection(struct check *c, const yaml_event_t *ev, const yaml_char_t *anchor) {
	struct frame *f;

	if (c->depth == YAMLDOC_MAX_DEPTH) {
		fail(c, &ev->start_mark, "nested deeper than %d levels", YAMLDOC_MAX_DEPTH);
		return -EBADMSG;
	}
	f = &c->frames[c->depth++];
	*f = (struct frame){ .nodes = c->nodes, .bytes = c->bytes };
	if (anchor && !(f->anchor = define(c, ev, anchor)))
		return c->error ? -EBADMSG : -ENOMEM;
	c->nodes++;
	return 0;
}

static void close_collection(struct check *c) {
	struct frame *f = &c->frames[--c->depth];

	if (f->anchor) {
		f->anchor->nodes = c->nodes - f->nodes;
		f->anchor->bytes = c->bytes - f->bytes;
		f->anchor->open = false;
	}
}

static int check_event(struct check *c, const yaml_event_t *ev) {
	struct anchor *a;

	switch (ev->type) {
	case YAML_DOCUMENT_END_EVENT:
		forget_anchors(c);
		break;
	case YAML_SCALAR_EVENT:
		c->nodes++;
		c->bytes += ev->data.scalar.length;
		if (ev->data.scalar.anchor) {
			if (!(a = define(c, ev, ev->data.scalar.anchor)))
				return c->error ? -EBADMSG : -ENOMEM;
			*a = (struct anchor){ .name = a->name, .hash = a->hash, .nodes = 1,
				.bytes = ev->data.scalar.length };
		}
		break;
	case YAML_SEQUENCE_START_EVENT:
		return open_collection(c, ev, ev->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT:
		return open_collection(c, ev, ev->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		close_collection(c);
		break;
	case YAML_ALIAS_EVENT:
		return alias(c, ev);
	default:
		break;
	}
	return 0;
}

/* Walks the event stream once, stopping at the first event past a limit: the
 * scanner then never reads far beyond it (it looks ahead a line at most, or
 * 1024 characters for a flow key), so deep nesting costs nothing, and no
 * alias is ever expanded. */
static int check(const char *text, size_t len, char **ret_error) {
	struct check *c = calloc(1, sizeof(*c));
	yaml_parser_t parser;
	bool done = false;
	int r = 0;

	if (!c)
		return -ENOMEM;
	if (!yaml_parser_initialize(&parser)) {
		free(c);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && r == 0) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&parser, &ev)) {
			r = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
			*ret_error = syntax_error(&parser);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		r = check_event(c, &ev);
		if (r == 0 && c->nodes > YAMLDOC_MAX_NODES) {
			fail(c, &ev.start_mark, "more than %d nodes with aliases expanded",
				YAMLDOC_MAX_NODES);
			r = -EBADMSG;
		} else if (r == 0 && c->bytes > YAMLDOC_MAX_EXPANDED_BYTES) {
			fail(c, &ev.start_mark, "more than %u MiB of text with aliases expanded",
				YAMLDOC_MAX_EXPANDED_BYTES >> 20);
			r = -EBADMSG;
		}
		yaml_event_delete(&ev);
	}
	if (c->error)
		*ret_error = c->error;
	forget_anchors(c);
	free(c);
	yaml_parser_delete(&parser);
	return r;
}

int yamldoc_load_all(const char *text, size_t len, struct yamldoc **ret_docs, size_t *ret_n,
	char **ret_error) {
	yaml_parser_t parser;
	struct yamldoc *docs = NULL;
	size_t n = 0;
	int r = 0;

	*ret_error = NULL;
	if (len > YAMLDOC_MAX_BYTES) {
		if (asprintf(ret_error, "1:1: %zu bytes, more than the limit of %u MiB", len,
			    YAMLDOC_MAX_BYTES >> 20) < 0)
			*ret_error = NULL;
		return -E2BIG;
	}
	r = check(text, len, ret_error);
	if (r < 0)
		return r;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		struct yamldoc *nd;
		yaml_document_t doc;

		if (!yaml_parser_load(&parser, &doc)) {
			*ret_error = syntax_error(&parser);
			r = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
			goto out;
		}
		if (!yaml_document_get_root_node(&doc)) {
			yaml_document_delete(&doc);
			break;
		}
		nd = realloc(docs, (n + 1) * sizeof(*docs));
		if (!nd) {
			yaml_document_delete(&doc);
			r = -ENOMEM;
			goto out;
		}
		docs = nd;
		docs[n].doc = doc;
		docs[n].loaded = true;
		n++;
	}
	*ret_docs = docs;
	*ret_n = n;
	docs = NULL;
	r = (int)n;
out:
	yamldoc_free_all(docs, n);
	yaml_parser_delete(&parser);
	return r;
}

yaml_node_t *yamldoc_root(struct yamldoc *d) {
	return yaml_document_get_root_node(&d->doc);
}

yaml_node_t *yamldoc_get(struct yamldoc *d, yaml_node_t *map, const char *key) {
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
		p++) {
		yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(&d->doc, p->value);
	}
	return NULL;
}

yaml_node_t *yamldoc_path(struct yamldoc *d, yaml_node_t *map, const char *path) {
	char part[128];
	const char *p = path;

	while (map && *p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (len >= sizeof(part))
			return NULL;
		memcpy(part, p, len);
		part[len] = '\0';
		map = yamldoc_get(d, map, part);
		p += len + (dot ? 1 : 0);
	}
	return map;
}

const char *yamldoc_str(yaml_node_t *n) {
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

bool yamldoc_is_null(yaml_node_t *n) {
	const char *s;

	if (!n)
		return true;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = (const char *)n->data.scalar.value;
	return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
		strcmp(s, "NULL") == 0;
}

size_t yamldoc_len(yaml_node_t *seq) {
	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *yamldoc_item(struct yamldoc *d, yaml_node_t *seq, size_t i) {
	if (i >= yamldoc_len(seq))
		return NULL;
	return yaml_document_get_node(&d->doc, seq->data.sequence.items.start[i]);
}

bool yamldoc_pair(struct yamldoc *d, yaml_node_t *map, size_t i, yaml_node_t **ret_key,
	yaml_node_t **ret_value) {
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return false;
	p = map->data.mapping.pairs.start + i;
	if (p >= map->data.mapping.pairs.top)
		return false;
	*ret_key = yaml_document_get_node(&d->doc, p->key);
	*ret_value = yaml_document_get_node(&d->doc, p->value);
	return true;
}

void yamldoc_mark(yaml_node_t *n, size_t *ret_line, size_t *ret_col) {
	*ret_line = n ? n->start_mark.line + 1 : 0;
	*ret_col = n ? n->start_mark.column + 1 : 0;
}

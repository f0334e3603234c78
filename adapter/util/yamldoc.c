#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/util/yamldoc.h"

void yamldoc_free_all(struct yamldoc *docs, size_t n) {
	if (!docs)
		return;
	for (size_t i = 0; i < n; i++)
		if (docs[i].loaded)
			yaml_document_delete(&docs[i].doc);
	free(docs);
}

int yamldoc_load_all(const char *text, size_t len, struct yamldoc **ret_docs, size_t *ret_n,
	char **ret_error) {
	yaml_parser_t parser;
	struct yamldoc *docs = NULL;
	size_t n = 0;
	int r = 0;

	*ret_error = NULL;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		struct yamldoc *nd;
		yaml_document_t doc;

		if (!yaml_parser_load(&parser, &doc)) {
			char *msg = NULL;
			if (asprintf(&msg, "%zu:%zu: %s%s%s", parser.problem_mark.line + 1,
				    parser.problem_mark.column + 1,
				    parser.problem ? parser.problem : "invalid YAML",
				    parser.context ? " " : "", parser.context ? parser.context : "") < 0)
				msg = NULL;
			*ret_error = msg;
			r = -EBADMSG;
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

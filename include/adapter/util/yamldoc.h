#ifndef ADAPTER_UTIL_YAMLDOC_H
#define ADAPTER_UTIL_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* Thin helpers over libyaml's document API for reading config files: lookups
 * by key, scalars as strings, and "file:line:column" for error messages. */

struct yamldoc {
	yaml_document_t doc;
	bool loaded;
};

/* Loads every document of a file (or a string when path is NULL-named input).
 * Returns the number of documents (>= 0), or -errno / -EBADMSG with *ret_error
 * set to a malloc'd "line:column: problem" text for a syntax error. */
int yamldoc_load_all(const char *text, size_t len, struct yamldoc **ret_docs, size_t *ret_n,
	char **ret_error);
void yamldoc_free_all(struct yamldoc *docs, size_t n);

yaml_node_t *yamldoc_root(struct yamldoc *d);
/* Returns the value node for key in a mapping node, or NULL. */
yaml_node_t *yamldoc_get(struct yamldoc *d, yaml_node_t *map, const char *key);
/* Follows a dotted path of mapping keys ("spec.sink.uri"). */
yaml_node_t *yamldoc_path(struct yamldoc *d, yaml_node_t *map, const char *path);
/* The scalar's text (NUL-terminated by libyaml), or NULL if not a scalar. */
const char *yamldoc_str(yaml_node_t *n);
bool yamldoc_is_null(yaml_node_t *n);
/* Sequence item i, or NULL. */
yaml_node_t *yamldoc_item(struct yamldoc *d, yaml_node_t *seq, size_t i);
size_t yamldoc_len(yaml_node_t *seq);
/* Mapping pair i: key and value nodes. Returns false past the end. */
bool yamldoc_pair(struct yamldoc *d, yaml_node_t *map, size_t i, yaml_node_t **ret_key,
	yaml_node_t **ret_value);
/* 1-based line and column of a node. */
void yamldoc_mark(yaml_node_t *n, size_t *ret_line, size_t *ret_col);

#endif

#ifndef ADAPTER_UTIL_YAMLDOC_H
#define ADAPTER_UTIL_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* Thin helpers over libyaml's document API for reading config files: lookups
 * by key, scalars as strings, and "file:line:column" for error messages. */

/* What a YAML file (an ApiServerSource manifest, a kubeconfig) may ask of
 * the loader and of the code that walks what it loaded. libyaml's loader
 * shares an aliased node instead of copying it, but everything that walks the
 * document expands it, so 30 lines of nested aliases are a billion nodes;
 * its scanner is quadratic in nesting depth (100,000 levels in 200 KB took
 * minutes). These documents are small and shallow: a manifest is about 10
 * levels and 100 nodes, a kubeconfig with a thousand clusters, users and contexts about 30,000,
 * and neither needs anchors. */
#define YAMLDOC_MAX_BYTES (4u * 1024u * 1024u) /* the file */
#define YAMLDOC_MAX_DEPTH 64			 /* nested sequences and mappings */
#define YAMLDOC_MAX_ANCHORS 1000		 /* per document */
#define YAMLDOC_MAX_ALIASES 1000		 /* in the file */
#define YAMLDOC_MAX_NODES 100000		 /* in the file, aliases expanded */
#define YAMLDOC_MAX_EXPANDED_BYTES (16u * 1024u * 1024u) /* scalar text, aliases expanded */

struct yamldoc {
	yaml_document_t doc;
	bool loaded;
};

/* Loads every document of len bytes of YAML. The event stream is checked
 * first against the limits above, stopping at the first event past one (so
 * neither the scanner nor the loader ever goes deep or expands anything), and
 * an alias to a node that contains it (a cycle) is refused. Returns the number
 * of documents (>= 0); -EBADMSG (syntax error or a limit), -E2BIG (more than
 * YAMLDOC_MAX_BYTES) or -ENOMEM with *ret_error set to a malloc'd one-line
 * "line:column: problem" (or NULL when out of memory). Borrows text. */
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

#ifndef ADAPTER_FILTER_INTERNAL_H
#define ADAPTER_FILTER_INTERNAL_H

/* A small generic document tree that both JSON (yajl callbacks) and YAML
 * (libyaml documents) are read into, with depth and size bounded while
 * reading, so the filter builder in filter.c has one input shape. Internal to
 * filter.c and filter_tree.c. */

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "adapter/filter.h"
#include "adapter/util/yamldoc.h"

enum gnode_type { GNODE_NULL, GNODE_BOOL, GNODE_NUMBER, GNODE_STRING, GNODE_MAP, GNODE_SEQ };

struct gnode {
	enum gnode_type type;
	char *text; /* scalars: the text (NUL-terminated) */
	size_t len;
	char **keys; /* GNODE_MAP: one per kid */
	struct gnode **kids;
	size_t n, cap;
	size_t line, col; /* YAML only: 1-based; 0 for JSON */
};

/* Generic nesting allowed: two levels (a map and a list) per filter level. */
#define GNODE_MAX_DEPTH (2 * FILTER_MAX_DEPTH + 4)

void gnode_free(struct gnode *g);
/* Reads JSON text. Returns 0, -EINVAL with a message in errbuf, -ENOMEM. */
int gnode_from_json(const char *json, size_t len, struct gnode **ret, char *errbuf, size_t errlen);
/* Copies a YAML node (aliases followed, within the same caps). */
int gnode_from_yaml(
	struct yamldoc *d, yaml_node_t *n, struct gnode **ret, char *errbuf, size_t errlen);

#endif

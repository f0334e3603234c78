#ifndef ADAPTER_FILTER_H
#define ADAPTER_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "adapter/cesql.h"
#include "adapter/util/yamldoc.h"

/* Knative's Subscriptions API filters (pkg/eventfilter/subscriptionsapi), as
 * ApiServerSource's spec.filters carries them:
 *   {"exact": {"type": "x"}}   every attribute present and equal
 *   {"prefix": {...}}, {"suffix": {...}}
 *   {"all": [f, ...]}, {"any": [f, ...]}, {"not": f}
 *   {"cesql": "expression"}    passes only on a Boolean true without error
 * A list of filters is ANDed; an empty list passes everything. Attribute
 * names are case-sensitive and must match ^[a-z][a-z0-9]*$ (Knative's webhook
 * refuses other names, so they are errors here). Filters that Knative's
 * webhook accepts but its adapter drops (an empty value in exact/prefix/
 * suffix, an empty map or list, an empty cesql) are dropped here too, with a
 * warning for the caller to log. Parsing is quiet: no logging. */

/* Caps against hostile input: nesting of all/any/not, input bytes, and the
 * number of JSON/YAML nodes read (YAML aliases included). */
#define FILTER_MAX_DEPTH 64
#define FILTER_MAX_INPUT 262144
#define FILTER_MAX_NODES 20000

/* A top-level (ANDed) list of filters. */
struct filter;

/* Parses a JSON array of filters, as in K_SOURCE_CONFIG's "filters". Returns 0
 * or -EINVAL with a message naming the path in errbuf ("filters[2].cesql:
 * column 7: unexpected ')'"), or -ENOMEM. *ret_warnings (may be NULL) gets a
 * malloc'd text of one warning per line, or NULL when there are none. */
int filter_parse_json(const char *json, size_t len, struct filter **ret, char **ret_warnings,
	char *errbuf, size_t errlen);
/* One filter from the command line (--filter): a JSON object when text starts
 * with '{', else a bare CESQL expression. */
int filter_parse_one(
	const char *text, struct filter **ret, char **ret_warnings, char *errbuf, size_t errlen);
/* A YAML sequence of filters (a manifest's spec.filters); errors start with
 * "line:column: ". Borrows d and seq only during the call. */
int filter_parse_yaml(struct yamldoc *d, yaml_node_t *seq, struct filter **ret, char **ret_warnings,
	char *errbuf, size_t errlen);

/* ANDs src's filters into *dst (which may be NULL: then *dst becomes src).
 * Takes ownership of src, also on failure. Returns 0 or -ENOMEM. */
int filter_append(struct filter **dst, struct filter *src);
/* Number of filters in the top-level list (0 for NULL). */
size_t filter_count(const struct filter *f);

/* Whether the event passes. NULL passes everything. Borrows everything. */
bool filter_match(const struct filter *f, cesql_attr_fn get, void *userdata);
void filter_free(struct filter *f);

#endif

#ifndef ADAPTER_UTIL_JSON_H
#define ADAPTER_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

/* The deepest nesting of arrays and objects accepted from outside input.
 * yajl_tree_free() and json_write() recurse once per level, so without a
 * bound an 800 KB discovery answer nested 400,000 levels deep overflows the
 * stack. What the adapter reads is shallow: a discovery document or a Status
 * is 4 levels, K_SOURCE_CONFIG with filters about 10, a Kubernetes object
 * rarely over 20; 64 leaves room and keeps the recursion a few KB. */
#define JSON_MAX_DEPTH 64

/* Parses len bytes of outside input into a yajl tree, bounded: a first pass
 * with yajl's callback parser (iterative) refuses nesting deeper than
 * max_depth and any string or key holding a NUL character (\u0000, which
 * would silently cut the C string short), then yajl_tree_parse() builds the
 * tree. Returns the tree (free with yajl_tree_free()), or NULL with a one-line
 * message in errbuf (which may be NULL) when too deep, holding \u0000, not
 * valid JSON or out of memory; errno then says which (ENOMEM for memory,
 * EBADMSG for the input). Borrows text. */
yajl_val json_parse_bounded(const char *text, size_t len, unsigned max_depth, char *errbuf,
	size_t errlen);
/* json_parse_bounded(text, strlen(text), JSON_MAX_DEPTH, ...). */
yajl_val json_parse(const char *text, char *errbuf, size_t errlen);
/* The member of an object, or NULL. */
yajl_val json_get(yajl_val obj, const char *key);
/* The member as a string, or NULL when absent or not a string. */
const char *json_get_str(yajl_val obj, const char *key);

/* Writes v back out as JSON text (appended to out). Returns 0, -ENOMEM or
 * -E2BIG (out's cap). */
struct buf;
int json_write(yajl_val v, struct buf *out);

#endif

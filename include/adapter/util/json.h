#ifndef ADAPTER_UTIL_JSON_H
#define ADAPTER_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

/* Guards for yajl_tree, whose parser and free recurse once per nesting
 * level: outside input is parsed only when its nesting stays within max_depth. */
#define JSON_MAX_DEPTH 64

/* True when no array or object in text nests deeper than max_depth (strings
 * are skipped, escapes honoured). Says nothing about validity. */
bool json_depth_ok(const char *text, size_t len, unsigned max_depth);
/* yajl_tree_parse() behind json_depth_ok(text, JSON_MAX_DEPTH); NULL and a
 * message in errbuf when too deep or invalid. */
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

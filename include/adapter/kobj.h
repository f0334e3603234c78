#ifndef ADAPTER_KOBJ_H
#define ADAPTER_KOBJ_H

#include <stdbool.h>
#include <stddef.h>

/* What the adapter reads out of Kubernetes JSON, without I/O or logging:
 * - kobj_parse_event(): one watch line -> event type and the object's
 *   fields, with the object's raw bytes (never re-serialised);
 * - kobj_list_*: a list response, fed in chunks, -> one callback per item
 *   with its raw bytes, then the list's resourceVersion and continue token.
 * Memory stays bounded by the longest line or item, not the whole response. */

#define KOBJ_NAME_MAX 512

/* Bounds on outside input, each an error for that line or list, never a
 * silent truncation:
 * - KOBJ_MAX_DEPTH: nesting of objects and arrays anywhere in a watch line or
 *   list response (-ELOOP). Kubernetes objects nest a few levels, CRD schemas
 *   two per schema level; the parse itself is iterative, the bound protects
 *   whatever later walks the object.
 * - KOBJ_CONTINUE_MAX: a list's metadata.continue token (-EOVERFLOW). The API
 *   server's tokens encode a resourceVersion and an etcd key, well under 2 KiB.
 * - KOBJ_LIST_VALUE_MAX: any one key or value outside the list's items, as in
 *   metadata or an unknown top-level field (-EMSGSIZE), counted with its
 *   quotes and escapes decoded. Items are bounded by max_item instead (-E2BIG),
 *   counted raw. */
#define KOBJ_MAX_DEPTH 128
#define KOBJ_CONTINUE_MAX 8192
#define KOBJ_LIST_VALUE_MAX 65536

/* The fields of a Kubernetes object the adapter needs. The strings are
 * NUL-terminated copies; json points into the caller's buffer. */
struct kobj {
	const char *json;
	size_t json_len;
	char kind[256];
	char api_version[KOBJ_NAME_MAX];
	char name[KOBJ_NAME_MAX];
	char namespace[KOBJ_NAME_MAX];
	char uid[64];
	char resource_version[64];
	/* The controller owner reference (controller: true), if any. */
	bool has_controller;
	char controller_api_version[KOBJ_NAME_MAX];
	char controller_kind[256];
	/* For Status objects in ERROR events. */
	long long code;
	char reason[64];
	char message[512];
	bool truncated; /* a needed field did not fit */
	/* --with-changes: the paths an update changed (changes.h), set by
	 * ingest.c on the way to cevent_create(); NULL: not known. Borrowed. */
	const char *changed_paths;
};

enum kobj_type {
	KOBJ_ADDED,
	KOBJ_MODIFIED,
	KOBJ_DELETED,
	KOBJ_BOOKMARK,
	KOBJ_ERROR,
	KOBJ_UNKNOWN,
};

struct kobj_event {
	enum kobj_type type;
	char type_name[32];
	/* Top-level "id", "time" and "data", which only checkpoint lines carry;
	 * data points into the line (NULL when absent). */
	char id[40];
	char time[64];
	const char *data;
	size_t data_len;
	struct kobj obj;
};

/* Parses one watch event line. Returns 0, -EBADMSG for invalid JSON, a
 * missing type or object, or a field too long, or -ELOOP (nested deeper than
 * KOBJ_MAX_DEPTH). ret->obj.json points into line. */
int kobj_parse_event(const char *line, size_t len, struct kobj_event *ret);

/* Receives each item of a list; the object is only valid during the call. A
 * negative return stops the parse and is returned by kobj_list_feed(). */
typedef int (*kobj_item_fn)(const struct kobj *obj, void *userdata);

struct kobj_list;
int kobj_list_create(size_t max_item, kobj_item_fn fn, void *userdata,
	struct kobj_list **ret_list);
void kobj_list_destroy(struct kobj_list *l);
/* Returns 0, -EBADMSG, -E2BIG (an item larger than max_item), -EMSGSIZE (a
 * value outside items longer than KOBJ_LIST_VALUE_MAX), -EOVERFLOW (a continue
 * token longer than KOBJ_CONTINUE_MAX), -ELOOP (nested deeper than
 * KOBJ_MAX_DEPTH), or fn's error. Each byte is scanned a bounded number of
 * times however the response is cut into chunks, and the memory held is
 * bounded by max_item (or KOBJ_LIST_VALUE_MAX outside items) plus one chunk. */
int kobj_list_feed(struct kobj_list *l, const char *data, size_t len);
/* Completes the parse and returns the list's metadata.resourceVersion and
 * metadata.continue (empty when absent); both borrowed from l. For a Status
 * body (kind: Status), ret_status gets its code (0 otherwise). */
int kobj_list_end(struct kobj_list *l, const char **ret_resource_version,
	const char **ret_continue, long long *ret_status_code, const char **ret_message);
/* Items seen so far. */
size_t kobj_list_items(const struct kobj_list *l);

/* A one-line description of an error returned above, naming the bound for
 * the kobj-specific ones (strerror() for the others). Static storage. */
const char *kobj_strerror(int err);

#endif

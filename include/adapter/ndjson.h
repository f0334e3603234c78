#ifndef ADAPTER_NDJSON_H
#define ADAPTER_NDJSON_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/util/buf.h"

/* Parsing what the API server streams, without I/O or logging:
 * - ndjson_feed(): byte chunks of a watch stream -> complete lines (LF or
 *   CRLF), with a cap on line length;
 * - ndjson_parse_event(): one watch line -> event type and the object's
 *   fields, with the object's raw bytes (never re-serialised);
 * - ndjson_list_*: a list response, fed in chunks, -> one callback per item
 *   with its raw bytes, then the list's resourceVersion and continue token.
 * Memory stays bounded by the longest line or item, not the whole response. */

#define NDJSON_NAME_MAX 512

/* The fields of a Kubernetes object the adapter needs. The strings are
 * NUL-terminated copies; json points into the caller's buffer. */
struct kobj {
	const char *json;
	size_t json_len;
	char kind[256];
	char api_version[NDJSON_NAME_MAX];
	char name[NDJSON_NAME_MAX];
	char namespace[NDJSON_NAME_MAX];
	char uid[64];
	char resource_version[64];
	/* The controller owner reference (controller: true), if any. */
	bool has_controller;
	char controller_api_version[NDJSON_NAME_MAX];
	char controller_kind[256];
	/* For Status objects in ERROR events. */
	long long code;
	char reason[64];
	char message[512];
	bool truncated; /* a needed field did not fit */
};

enum ndjson_type {
	NDJSON_ADDED,
	NDJSON_MODIFIED,
	NDJSON_DELETED,
	NDJSON_BOOKMARK,
	NDJSON_ERROR,
	NDJSON_UNKNOWN,
};

struct ndjson_event {
	enum ndjson_type type;
	char type_name[32];
	/* Top-level "id", "time" and "data", which only checkpoint lines carry;
	 * data points into the line (NULL when absent). */
	char id[40];
	char time[64];
	const char *data;
	size_t data_len;
	struct kobj obj;
};

typedef int (*ndjson_line_fn)(const char *line, size_t len, void *userdata);

struct ndjson {
	struct buf line;
	size_t max_line;
	bool discarding; /* inside a line that was already too long */
};

void ndjson_init(struct ndjson *p, size_t max_line);
void ndjson_finish(struct ndjson *p);
void ndjson_reset(struct ndjson *p);
/* Calls fn for each complete non-empty line (line ending removed). Returns
 * the number of lines, -E2BIG when a line is longer than max_line (the rest of
 * that line is then skipped), or the first negative value fn returns. */
int ndjson_feed(struct ndjson *p, const char *data, size_t len, ndjson_line_fn fn,
	void *userdata);
/* Bytes of an incomplete line held. */
size_t ndjson_pending(const struct ndjson *p);

/* Parses one watch event line. Returns 0, or -EBADMSG for invalid JSON, a
 * missing type or object, or a field too long. ret->obj.json points into line. */
int ndjson_parse_event(const char *line, size_t len, struct ndjson_event *ret);

/* Receives each item of a list; the object is only valid during the call. A
 * negative return stops the parse and is returned by ndjson_list_feed(). */
typedef int (*ndjson_item_fn)(const struct kobj *obj, void *userdata);

struct ndjson_list;
int ndjson_list_create(size_t max_item, ndjson_item_fn fn, void *userdata,
	struct ndjson_list **ret_list);
void ndjson_list_destroy(struct ndjson_list *l);
/* Returns 0, -EBADMSG, -E2BIG (an item larger than max_item), or fn's error. */
int ndjson_list_feed(struct ndjson_list *l, const char *data, size_t len);
/* Completes the parse and returns the list's metadata.resourceVersion and
 * metadata.continue (empty when absent); both borrowed from l. For a Status
 * body (kind: Status), ret_status gets its code (0 otherwise). */
int ndjson_list_end(struct ndjson_list *l, const char **ret_resource_version,
	const char **ret_continue, long long *ret_status_code, const char **ret_message);
/* Items seen so far. */
size_t ndjson_list_items(const struct ndjson_list *l);

#endif

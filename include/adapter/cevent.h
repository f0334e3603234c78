#ifndef ADAPTER_CEVENT_H
#define ADAPTER_CEVENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/cesql.h"
#include "adapter/config.h"
#include "adapter/kobj.h"
#include "adapter/util/buf.h"

/* Watch events -> CloudEvents exactly as Knative's ApiServerSource adapter
 * builds them (type, source, subject, extensions, data), with ids derived from
 * the change (uid, resourceVersion, operation) so a retried or re-sent change
 * carries the same id. No I/O, no logging. */

enum cevent_op { CEVENT_ADD, CEVENT_UPDATE, CEVENT_DELETE };

struct cevent {
	enum cevent_op op;
	enum config_mode mode;
	char id[40];
	const char *type;   /* static */
	char *source;
	char *subject;
	char time[64];
	char *kind, *name, *namespace, *api_version;
	const struct config_extension *overrides; /* borrowed from the config */
	size_t n_overrides;
	char *data;
	size_t data_len;
	char *key; /* per-object ordering key: the uid, or namespace/name */
	char *changed_paths; /* --with-changes: the changedpaths extension; NULL: none */
	size_t bytes; /* approximate memory held, for queue accounting */
	size_t strs_len; /* cevent_create(): the strings after the struct, in its allocation */
	uint64_t arrival_usec; /* when its watch event arrived (monotonic); 0: unknown */
};

/* What every event of one watch shares; borrowed by cevent_create(). */
struct cevent_params {
	enum config_mode mode;
	const char *source;
	const struct config_extension *overrides;
	size_t n_overrides;
	/* Filled in when a list item lacks them (lists omit them for built-ins). */
	const char *default_kind;
	const char *default_api_version;
};

int cevent_create(const struct cevent_params *params, const struct kobj *obj, enum cevent_op op,
	struct cevent **ret_event);
void cevent_destroy(struct cevent *ev);

/* Binary content mode headers (ce-*, Content-Type), percent-encoded as the
 * CloudEvents HTTP binding 1.0.2 requires, appended to out, each line
 * followed by its NUL (no CRLF): struct http_headers' lines (http.h). */
int cevent_http_header_lines(const struct cevent *ev, struct buf *out);
/* Appends a corev1.ObjectReference (kind, namespace unless empty, name,
 * apiVersion) from yajl's generator: whatever the strings hold is escaped. */
int cevent_reference_json(const char *kind, const char *ns, const char *name,
	const char *api_version, struct buf *out);
/* One structured-mode JSON object (no newline: raw newlines in the data,
 * whitespace in JSON, became spaces in cevent_create()), data embedded as
 * sent. In cevent_json.c, with the other structured encoders. */
int cevent_structured(const struct cevent *ev, struct buf *out);
/* The context attributes (datacontenttype aside) and extensions, as binary
 * mode sends them; the strings are borrowed from ev. Returns how many. */
struct cevent_attr {
	const char *name;
	const char *value;
};
#define CEVENT_MAX_ATTRIBUTES 64
size_t cevent_attributes(const struct cevent *ev, struct cevent_attr *out, size_t max);

/* Knative's subject: /apis/<apiVersion>/namespaces/<ns>/<guessed plural>/<name>. */
int cevent_subject(const char *api_version, const char *namespace, const char *kind,
	const char *name, struct buf *out);
/* Knative's plural guess from a Kind: lower-case; "s" -> "ses", "y" -> "ies",
 * else + "s". */
int cevent_plural_guess(const char *kind, struct buf *out);
/* Percent-encodes a header value per the HTTP binding. */
int cevent_percent_encode(const char *value, struct buf *out);
/* A name-based (v5) UUID of uid/resourceVersion/op. */
void cevent_make_id(const char *uid, const char *resource_version, enum cevent_op op,
	char ret_id[40]);
const char *cevent_type(enum config_mode mode, enum cevent_op op);
/* The event's attributes as the source's filters see them (a cesql_attr_fn;
 * userdata is the cevent): as in Knative's adapter, the filters run before
 * the id, time and ceOverrides are set, so those are missing. */
int cevent_filter_attr(const char *name, struct cesql_value *ret_value, void *userdata);

#endif

#ifndef ADAPTER_CEVENT_JSON_H
#define ADAPTER_CEVENT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "adapter/cevent.h"
#include "adapter/util/buf.h"

/* CloudEvents JSON format 1.0.2 for the structured and batched content
 * modes, written with yajl's generator. No I/O, no logging. */

#define CEVENT_JSON_STRUCTURED_TYPE "application/cloudevents+json"
#define CEVENT_JSON_BATCH_TYPE "application/cloudevents-batch+json"

/* Knative's dead-letter extensions, for an event going to the dead-letter
 * sink: where it was going, what the sink answered, and the start of the
 * sink's body (base64-encoded here). Borrowed. */
struct cevent_json_error {
	const char *dest;
	long code;
	const char *data; /* NULL or "": no knativeerrordata */
};

/* True for a JSON media type: application/json, text/json or any
 * "+json" suffix, parameters aside (case-insensitive). */
bool cevent_json_media_type(const char *content_type);
/* Writes the data member of an event object open in g: "data" holding the
 * bytes as a JSON value when content_type is JSON (they must be JSON text:
 * they are written verbatim), else "data_base64". Nothing for len 0. */
int cevent_json_gen_data(yajl_gen g, const char *content_type, const char *data, size_t len);
/* Writes ev as one event object at g's current position (a value, an array
 * element). err: NULL, or the dead-letter extensions to add. */
int cevent_json_gen_event(yajl_gen g, const struct cevent *ev, const struct cevent_json_error *err);
/* Appends ev as one JSON object to out (no newline). */
int cevent_json_event(const struct cevent *ev, const struct cevent_json_error *err, struct buf *out);
/* Appends a JSON array of n event objects, each already encoded (texts[i],
 * lens[i] bytes, from cevent_json_event()), to out. */
int cevent_json_array(const char *const *texts, const size_t *lens, size_t n, struct buf *out);

#endif

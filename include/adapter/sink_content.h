#ifndef ADAPTER_SINK_CONTENT_H
#define ADAPTER_SINK_CONTENT_H

#include <curl/curl.h>

#include "adapter/config.h"
#include "adapter/http.h"
#include "adapter/queue.h"
#include "adapter/util/buf.h"

/* What one POST carries for an event in the binary or structured content
 * mode (batched mode: sink_batch.h), for the sink or, with Knative's
 * knativeerror* extensions, the dead-letter sink; and what its answer means
 * (sink_classify(), declared in sink.h). No logging. */

/* Binary: appends the ce-* headers (and the dead-letter ones) and leaves
 * payload empty: the body is the event's data. Structured: appends the
 * JSON object to payload and its Content-Type header. dest is
 * knativeerrordest (the sink, credentials removed); borrowed. */
int sink_content_request(enum config_content_mode mode, const struct queue_entry *e,
	const char *dest, struct http_headers *headers, struct buf *payload);
/* Writes ev as one structured JSON line to fd (--sink -). Returns 0 or a
 * negative errno. */
int sink_content_write_line(int fd, const struct cevent *ev);

#endif

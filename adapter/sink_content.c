#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/cevent_json.h"
#include "adapter/sink.h"
#include "adapter/sink_content.h"

/* Knative's dead-letter convention: where it was going, what the sink
 * answered, and (base64, so any bytes fit a header) the start of its body. */
static int dead_letter_headers(const char *dest, const struct queue_entry *e,
	struct http_headers *headers) {
	struct buf b;
	int r;

	buf_init(&b, 0);
	r = buf_append_str(&b, "ce-knativeerrordest: ");
	if (r == 0)
		r = cevent_percent_encode(dest, &b);
	if (r == 0)
		r = http_headers_add(headers, b.data);
	buf_reset(&b);
	if (r == 0)
		r = buf_printf(&b, "ce-knativeerrorcode: %ld", e->failed_status);
	if (r == 0)
		r = http_headers_add(headers, b.data);
	if (r == 0 && e->failed_body && *e->failed_body) {
		size_t len = strlen(e->failed_body);
		unsigned char *enc = malloc(4 * ((len + 2) / 3) + 1);
		if (!enc) {
			r = -ENOMEM;
		} else {
			EVP_EncodeBlock(enc, (const unsigned char *)e->failed_body, (int)len);
			buf_reset(&b);
			r = buf_printf(&b, "ce-knativeerrordata: %s", enc);
			free(enc);
			if (r == 0)
				r = http_headers_add(headers, b.data);
		}
	}
	buf_finish(&b);
	return r;
}

int sink_content_request(enum config_content_mode mode, const struct queue_entry *e,
	const char *dest, struct http_headers *headers, struct buf *payload) {
	struct cevent_json_error err = { .dest = dest, .code = e->failed_status,
		.data = e->failed_body };
	int r;

	if (mode != CONFIG_CONTENT_STRUCTURED) {
		r = cevent_http_header_lines(e->ev, &headers->lines);
		if (r == 0 && e->dead_letter)
			r = dead_letter_headers(dest, e, headers);
		return r;
	}
	r = cevent_json_event(e->ev, e->dead_letter ? &err : NULL, payload);
	return r < 0 ? r : http_headers_add(headers, "Content-Type: " CEVENT_JSON_STRUCTURED_TYPE);
}

int sink_content_write_line(int fd, const struct cevent *ev) {
	struct buf b;
	size_t off = 0;
	int r;

	buf_init(&b, 0);
	r = cevent_structured(ev, &b);
	if (r == 0)
		r = buf_append(&b, "\n", 1);
	while (r == 0 && off < b.len) {
		ssize_t n = write(fd, b.data + off, b.len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	buf_finish(&b);
	return r;
}

enum queue_result sink_classify(int err, long status) {
	if (err)
		return QUEUE_RETRY;
	if (status >= 200 && status < 300)
		return QUEUE_DELIVERED;
	if (status >= 500 && status < 600)
		return QUEUE_RETRY;
	switch (status) {
	case 404: /* a Knative Service still starting, a Broker not ready yet */
	case 408:
	case 425:
	case 429:
		return QUEUE_RETRY;
	default:
		return QUEUE_DROP;
	}
}

#ifndef ADAPTER_HTTP_H
#define ADAPTER_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/loop.h"

/* The only user of curl_multi_*: glues libcurl's socket and timer callbacks to
 * the loop and reports each finished transfer to its owner. */

struct http;
struct http_xfer;

/* err: 0 when the transfer completed (whatever the HTTP status), otherwise a
 * negative errno mapped from the CURLcode: -ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -ECONNRESET, -EPROTO (TLS), -ECANCELED (our own write
 * callback aborted it), -EIO. errbuf holds curl's message. */
typedef void (*http_done_fn)(struct http_xfer *x, int err, long status, const char *errbuf,
	void *userdata);

/* Embedded in its owner. CURLOPT_PRIVATE points at it. */
struct http_xfer {
	CURL *easy;
	http_done_fn done;
	void *userdata;
	bool active;
	char errbuf[CURL_ERROR_SIZE];
};

int http_create(struct loop *loop, struct http **ret_http);
/* Transfers still active are removed without their done callback. */
void http_destroy(struct http *h);

/* Creates the easy handle (reset for reuse if it exists). */
int http_xfer_init(struct http_xfer *x, http_done_fn done, void *userdata);
/* Cancels an active transfer (no done callback) and frees the easy handle. */
void http_xfer_finish(struct http *h, struct http_xfer *x);

int http_start(struct http *h, struct http_xfer *x);
/* Removes an active transfer without calling done. Not from a curl callback. */
void http_cancel(struct http *h, struct http_xfer *x);
/* Resumes receiving on a transfer its write callback paused (backpressure).
 * libcurl may hand the kept data over at once; if that ends the transfer (the
 * write callback aborts it), libcurl forgets it, so it is removed here and its
 * done callback called with -ECANCELED. Not from inside a libcurl callback. */
void http_resume_recv(struct http *h, struct http_xfer *x);

/* Maps a CURLcode to a negative errno as documented above. */
int http_map_error(CURLcode code);

/* Parses a Retry-After value (seconds or an HTTP date) into a delay from now.
 * Returns 0 and the delay, or -EINVAL. */
int http_parse_retry_after(const char *value, uint64_t *ret_delay_usec);
/* For a header line (as libcurl hands it over) that is a valid Retry-After,
 * stores its delay and returns true. */
bool http_retry_after_header(const char *line, size_t len, uint64_t *ret_delay_usec);

/* True when value may go into an HTTP header as it is: no control character
 * (CR and LF would start another header; NUL would cut it short). For values
 * from outside (tokens), which are refused when this is false. */
bool http_header_value_valid(const char *value);
/* A copy of url, for logs and CloudEvent attributes, without what would leak
 * a credential: the user name, password and login options (userinfo) are
 * removed with libcurl's URL API. The query is kept: it is part of where a
 * request goes (Knative's knativeerrordest names the whole URL), and the
 * URLs handled here (sink, dead-letter, API server) carry no token in it.
 * A URL libcurl cannot parse is replaced by a fixed text rather than printed.
 * The caller frees the copy; NULL: out of memory. */
char *http_url_redact(const char *url);

#endif

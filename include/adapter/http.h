#ifndef ADAPTER_HTTP_H
#define ADAPTER_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/loop.h"
#include "adapter/util/buf.h"

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
	char *url; /* the CURLOPT_URL last set by http_xfer_set_url() */
	CURLU *uh; /* the same URL parsed once, handed to libcurl as CURLOPT_CURLU */
	struct http *sockets_of; /* whose socket callbacks the handle has */
};

/* A request's header list that allocates nothing per request once warm:
 * the lines live in one buffer, each followed by its NUL (append with buf_*
 * to lines, end each line with http_headers_end_line()), and the list's
 * nodes are an array of ours, kept with the buffer for the next request.
 * libcurl only reads a CURLOPT_HTTPHEADER list, so its nodes need not come
 * from curl_slist_append(). Embedded; zero-initialised is ready. */
struct http_headers {
	struct buf lines;
	struct curl_slist *nodes;
	size_t cap;
	bool secret; /* a line holds a credential: zeroed by http_headers_reset() */
};

/* Ends the line appended to h->lines since the last one. */
int http_headers_end_line(struct http_headers *h);
/* Appends one whole line. */
int http_headers_add(struct http_headers *h, const char *line);
/* Links the nodes over the lines, in order; the list stays valid until the
 * next change to h. NULL when h holds no line. Returns 0 or -ENOMEM. */
int http_headers_link(struct http_headers *h, struct curl_slist **ret_list);
/* Empties h for the next request, keeping its memory (zeroed if secret). */
void http_headers_reset(struct http_headers *h);
void http_headers_finish(struct http_headers *h);

int http_create(struct loop *loop, struct http **ret_http);
/* Transfers still active are removed without their done callback. */
void http_destroy(struct http *h);

/* Creates the easy handle (reset for reuse if it exists). */
int http_xfer_init(struct http_xfer *x, http_done_fn done, void *userdata);
/* Cancels an active transfer (no done callback) and frees the easy handle. */
void http_xfer_finish(struct http *h, struct http_xfer *x);

/* Sets CURLOPT_URL unless the handle has it already (libcurl copies the
 * string each time). Returns 0 or -ENOMEM. */
int http_xfer_set_url(struct http_xfer *x, const char *url);

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

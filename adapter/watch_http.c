#include <curl/curl.h>

#include "adapter/http.h"
#include "adapter/kube.h"
#include "watch_internal.h"

/* The transport a watch uses in the adapter: libcurl through http.c, with
 * the request authorised by kube.c. */

static size_t handle_header(char *buffer, size_t size, size_t nitems, void *userdata) {
	struct watch *wa = userdata;
	size_t n = size * nitems;
	long status = 0;

	http_retry_after_header(buffer, n, &wa->retry_after_usec);
	/* The end of the headers. */
	if (n <= 2 && (buffer[0] == '\r' || buffer[0] == '\n') &&
		curl_easy_getinfo(wa->xfer.easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
		watch_io_answer(wa, status, 0);
	return n;
}

static size_t handle_write(char *data, size_t size, size_t nmemb, void *userdata) {
	struct watch *wa = userdata;
	size_t n;

	if (!wa->status)
		curl_easy_getinfo(wa->xfer.easy, CURLINFO_RESPONSE_CODE, &wa->status);
	n = watch_io_body(wa, data, size * nmemb);
	return n == WATCH_IO_PAUSE ? CURL_WRITEFUNC_PAUSE : n;
}

static void handle_done(struct http_xfer *x, int err, long status, const char *errbuf,
	void *userdata) {
	(void)x;
	watch_io_done(userdata, err, status, errbuf);
}

static int net_start(struct watch *wa, const char *path, void *userdata) {
	int r;

	(void)userdata;
	curl_slist_free_all(wa->headers);
	wa->headers = NULL;
	r = http_xfer_init(&wa->xfer, handle_done, wa);
	if (r < 0)
		return r;
	curl_easy_setopt(wa->xfer.easy, CURLOPT_WRITEFUNCTION, handle_write);
	curl_easy_setopt(wa->xfer.easy, CURLOPT_WRITEDATA, wa);
	curl_easy_setopt(wa->xfer.easy, CURLOPT_HEADERFUNCTION, handle_header);
	curl_easy_setopt(wa->xfer.easy, CURLOPT_HEADERDATA, wa);
	r = kube_setup_request(wa->ctx->kube, wa->xfer.easy, path, &wa->headers);
	if (r < 0)
		return r;
	return http_start(wa->ctx->http, &wa->xfer);
}

static void net_cancel(struct watch *wa, void *userdata) {
	(void)userdata;
	http_cancel(wa->ctx->http, &wa->xfer);
}

static void net_resume(struct watch *wa, void *userdata) {
	(void)userdata;
	http_resume_recv(wa->ctx->http, &wa->xfer);
}

const struct watch_io watch_curl_io = {
	.start = net_start,
	.cancel = net_cancel,
	.resume = net_resume,
};

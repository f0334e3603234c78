#ifndef ADAPTER_KCALL_H
#define ADAPTER_KCALL_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/http.h"
#include "adapter/kube.h"

/* One request to the API server at a time, with a JSON body and a JSON
 * answer: what leader election (Lease) and its state (ConfigMap) need.
 * Embedded in its owner. */

/* err: 0 when an answer came (any status; body is its text, NUL-terminated,
 * valid only during the call), else a negative errno from http.c. */
typedef void (*kcall_done_fn)(
	int err, long status, const char *body, size_t len, const char *errbuf, void *userdata);

struct kcall {
	struct kube *kube;
	struct http *http;
	struct http_xfer xfer;
	struct curl_slist *headers;
	char *body;
	size_t answer_max;
	char *answer;
	size_t answer_len;
	bool answer_over;
	kcall_done_fn done;
	void *userdata;
	bool busy;
};

/* Borrows kube and http, which must outlive the call. Answers over
 * answer_max bytes end the transfer (-ECANCELED). */
void kcall_init(struct kcall *c, struct kube *kube, struct http *http, size_t answer_max);
/* Cancels a request in flight (no callback). NULL or zeroed is fine. */
void kcall_finish(struct kcall *c);
/* method: "GET", "POST", "PUT". Takes ownership of body (JSON, or NULL). A
 * request in flight is cancelled first. done may start the next request. */
int kcall_start(struct kcall *c, const char *method, const char *path, char *body, long timeout_ms,
	kcall_done_fn done, void *userdata);
void kcall_cancel(struct kcall *c);

#endif

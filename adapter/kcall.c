#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/kcall.h"

static size_t handle_data(char *data, size_t size, size_t nmemb, void *userdata) {
	struct kcall *c = userdata;
	size_t n = size * nmemb;
	char *p;

	if (c->answer_len + n > c->answer_max) {
		c->answer_over = true;
		return 0; /* ends the transfer */
	}
	p = realloc(c->answer, c->answer_len + n + 1);
	if (!p)
		return 0;
	c->answer = p;
	memcpy(c->answer + c->answer_len, data, n);
	c->answer_len += n;
	c->answer[c->answer_len] = '\0';
	return n;
}

static void reset(struct kcall *c) {
	curl_slist_free_all(c->headers);
	c->headers = NULL;
	free(c->body);
	c->body = NULL;
	free(c->answer);
	c->answer = NULL;
	c->answer_len = 0;
	c->answer_over = false;
}

static void handle_done(
	struct http_xfer *x, int err, long status, const char *errbuf, void *userdata) {
	struct kcall *c = userdata;
	char *answer = c->answer;
	size_t len = c->answer_len;
	char errcopy[CURL_ERROR_SIZE];

	(void)x;
	c->busy = false;
	if (status == 401)
		kube_token_rejected(c->kube);
	if (c->answer_over)
		snprintf(errcopy, sizeof(errcopy), "answer over %zu bytes", c->answer_max);
	else
		snprintf(errcopy, sizeof(errcopy), "%s", errbuf ? errbuf : "");
	/* The callback may start the next request: it gets the answer as its own. */
	c->answer = NULL;
	c->answer_len = 0;
	c->done(err, status, answer ? answer : "", len, errcopy, c->userdata);
	free(answer);
}

void kcall_init(struct kcall *c, struct kube *kube, struct http *http, size_t answer_max) {
	*c = (struct kcall){ .kube = kube, .http = http, .answer_max = answer_max };
}

void kcall_cancel(struct kcall *c) {
	if (c && c->busy)
		http_cancel(c->http, &c->xfer);
	if (c)
		c->busy = false;
}

void kcall_finish(struct kcall *c) {
	if (!c || !c->http)
		return;
	kcall_cancel(c);
	http_xfer_finish(c->http, &c->xfer);
	reset(c);
}

int kcall_start(struct kcall *c, const char *method, const char *path, char *body, long timeout_ms,
	kcall_done_fn done, void *userdata) {
	struct curl_slist *n;
	int r;

	kcall_cancel(c);
	reset(c);
	c->body = body;
	c->done = done;
	c->userdata = userdata;
	r = http_xfer_init(&c->xfer, handle_done, c);
	if (r == 0)
		r = kube_setup_request(c->kube, c->xfer.easy, path, &c->headers);
	if (r == 0 && body) {
		n = curl_slist_append(c->headers, "Content-Type: application/json");
		if (n)
			c->headers = n;
		else
			r = -ENOMEM;
	}
	if (r < 0)
		return r;
	curl_easy_setopt(c->xfer.easy, CURLOPT_HTTPHEADER, c->headers);
	if (body) {
		curl_easy_setopt(c->xfer.easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(
			c->xfer.easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(c->xfer.easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->xfer.easy, CURLOPT_WRITEFUNCTION, handle_data);
	curl_easy_setopt(c->xfer.easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->xfer.easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	r = http_start(c->http, &c->xfer);
	if (r == 0)
		c->busy = true;
	return r;
}

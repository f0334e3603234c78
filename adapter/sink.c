#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/cevent_json.h"
#include "adapter/log.h"
#include "adapter/metrics.h"
#include "adapter/oidc.h"
#include "adapter/sink.h"
#include "adapter/sink_batch.h"
#include "adapter/sink_content.h"
#include "adapter/sink_headers.h"

#define BACKOFF_INITIAL_USEC (100ull * 1000ull)
#define BACKOFF_MAX_USEC (30ull * 1000000ull)
#define RETRY_AFTER_MAX_USEC (300ull * 1000000ull)
/* Knative keeps this much of the sink's answer in knativeerrordata. */
#define ERROR_DATA_MAX 1024
/* While a sink fails: one summary line per interval, and at most this many
 * lines per interval about single events (a first retry, a delivery after
 * retries); the summary counts the rest. */
#define SUMMARY_INTERVAL_USEC (10ull * 1000000ull)
#define EVENT_LINES_BURST 5

/* One POST in flight. Kept on a free list so easy handles are reused. */
struct sink_req {
	struct http_xfer xfer;
	struct sink *sink;
	struct queue_entry *entry;
	struct http_headers headers; /* kept, with their memory, for the next POST */
	uint64_t retry_after_usec;
	uint64_t oidc_generation; /* of the token sent, 0: none */
	struct buf body;
	struct sink_req *next_free;
	struct sink_req *next_all;
	struct sink_batch *batch; /* batched mode: this POST's batch (entry is NULL) */
	struct buf payload;	  /* structured mode: the body */
};

/* What the log says about one destination (the sink, or the dead-letter
 * sink) while it fails. Each event's first retry and, if it was retried,
 * its delivery get a line (rate-limited); every failed attempt is counted,
 * and a timer writes one summary line per interval while events wait for a
 * retry. Never a line per attempt. */
struct sink_health {
	struct sink *sink;
	bool dead_letter;
	struct log_ratelimit retry_lines, delivered_lines;
	unsigned failed;	   /* failed attempts in this interval */
	unsigned delivered_after; /* events delivered after retries, in this interval */
	size_t retrying;	   /* events that failed and wait for (or are in) a retry */
	long last_status;
	int last_error;
	struct loop_timer summary_timer;
};

struct sink {
	const struct config *cfg;
	struct loop *loop;
	struct http *http;
	struct queue *queue;
	bool to_stdout;
	sink_space_fn space;
	void *space_userdata;
	struct sink_req *free_reqs;
	struct sink_req *all_reqs; /* every request ever made, for destroy */
	struct metrics *metrics;
	struct oidc *oidc;
	const struct sink_headers *extra_headers; /* --header, --header-file */
	char *namespace_header; /* "Kn-Namespace: NS", as Knative's adapter sends */
	char *sink_shown;	/* the sink URL without credentials: knativeerrordest */
	const char *url;	/* where events go (borrowed); NULL: no address yet */
	struct sink_health health[2]; /* [e->dead_letter] */
	struct sink_batcher *batcher; /* batched content mode */
};

static size_t handle_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
	struct sink_req *req = userdata;
	size_t n = size * nmemb, room = ERROR_DATA_MAX - req->body.len;

	/* Only a prefix is kept, for the dead-letter sink's knativeerrordata. */
	if (room)
		buf_append(&req->body, ptr, n < room ? n : room);
	return n;
}


static size_t handle_header(char *buffer, size_t size, size_t nitems, void *userdata) {
	struct sink_req *req = userdata;

	http_retry_after_header(buffer, size * nitems, &req->retry_after_usec);
	return size * nitems;
}

static void release_req(struct sink *s, struct sink_req *req) {
	http_headers_reset(&req->headers);
	buf_reset(&req->body);
	buf_reset(&req->payload);
	req->entry = NULL;
	req->batch = NULL;
	req->next_free = s->free_reqs;
	s->free_reqs = req;
}

static void handle_post_done(struct http_xfer *x, int err, long status, const char *errbuf,
	void *userdata) {
	struct sink_req *req = userdata;
	struct sink *s = req->sink;
	struct queue_entry *e = req->entry;
	enum queue_result res = sink_classify(err, status);
	uint64_t retry_after = req->retry_after_usec;

	(void)x;
	metrics_count_request(s->metrics, err, status);
	if (!err && status == 401 && req->oidc_generation) {
		/* The token may have been revoked or rotated: one new token, one
		 * more attempt, then the usual classification. */
		bool *auth_retried = e ? &e->auth_retried : &req->batch->auth_retried;
		oidc_token_rejected(s->oidc, req->oidc_generation);
		if (!*auth_retried) {
			*auth_retried = true;
			res = QUEUE_RETRY;
		}
	}
	if (req->batch) {
		struct sink_batch *b = req->batch;
		size_t len = 0;
		char *body = buf_steal(&req->body, &len);

		release_req(s, req);
		sink_batcher_done(s->batcher, b, res, err, status, body, len, retry_after);
		free(body);
		return;
	}
	e->last_status = status;
	e->last_error = err;
	free(e->last_body);
	e->last_body = req->body.len ? strndup(req->body.data, req->body.len) : NULL;
	if (res != QUEUE_DELIVERED)
		log_debug("sink", "delivery attempt failed", LOG_STR("id", e->ev->id),
			LOG_INT("status", status), LOG_STR("error", err ? errbuf : ""));
	release_req(s, req);
	queue_complete(s->queue, e, res, retry_after);
}

/* Authorization: Bearer with the current OIDC token; -EAGAIN (retried like
 * a failed attempt) while a new token is being fetched. */
static int auth_header(struct sink *s, struct sink_req *req) {
	const char *token = oidc_token(s->oidc);
	char *line = NULL;
	int r;

	if (!token)
		return -EAGAIN;
	/* oidc.c refuses such a token; never let one add a header. */
	if (!http_header_value_valid(token))
		return -EPROTO;
	if (asprintf(&line, "Authorization: Bearer %s", token) < 0)
		return -ENOMEM;
	req->headers.secret = true;
	r = http_headers_add(&req->headers, line);
	explicit_bzero(line, strlen(line));
	free(line);
	if (r == 0)
		req->oidc_generation = oidc_generation(s->oidc);
	return r;
}

/* What every POST of a handle shares, set once: handles are reused with
 * their options (no reset and a dozen setopts per request). */
static void set_constant_options(struct sink *s, struct sink_req *req) {
	CURL *easy = req->xfer.easy;
	long timeout_ms = (long)(s->cfg->sink_timeout_usec / 1000u);

	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, handle_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, handle_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "apiserversource-adapter/" ADAPTER_VERSION);
	if (s->cfg->ca_certs_pem) {
		struct curl_blob b = { .data = s->cfg->ca_certs_pem,
			.len = strlen(s->cfg->ca_certs_pem),
			.flags = CURL_BLOB_COPY };
		curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &b);
	}
}

static struct sink_req *req_get(struct sink *s) {
	struct sink_req *req = s->free_reqs;

	if (req) {
		s->free_reqs = req->next_free;
		return req;
	}
	req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	if (http_xfer_init(&req->xfer, handle_post_done, req) < 0) {
		free(req);
		return NULL;
	}
	req->sink = s;
	buf_init(&req->body, 0);
	buf_init(&req->payload, 0);
	set_constant_options(s, req);
	req->next_all = s->all_reqs;
	s->all_reqs = req;
	return req;
}

/* Starts req's POST of body: the headers so far plus the common ones. */
static int start_post(struct sink *s, struct sink_req *req, bool dead_letter, const char *body,
	size_t body_len) {
	struct curl_slist *list = NULL;
	CURL *easy;
	int r = 0;

	req->retry_after_usec = 0;
	req->oidc_generation = 0;
	if (s->namespace_header)
		r = http_headers_add(&req->headers, s->namespace_header);
	if (r == 0 && s->oidc && !dead_letter)
		r = auth_header(s, req);
	if (r == 0 && s->extra_headers && !dead_letter)
		r = sink_headers_append(s->extra_headers, &req->headers);
	/* No "Expect: 100-continue" round trip for larger bodies. */
	if (r == 0)
		r = http_headers_add(&req->headers, "Expect:");
	if (r == 0)
		r = http_headers_link(&req->headers, &list);
	if (r < 0)
		return r;
	r = http_xfer_set_url(&req->xfer, dead_letter ? s->cfg->dead_letter : s->url);
	if (r < 0)
		return r;
	easy = req->xfer.easy;
	req->xfer.errbuf[0] = '\0';
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
	return http_start(s->http, &req->xfer);
}

static int handle_send(struct queue_entry *e, void *userdata) {
	struct sink *s = userdata;
	struct sink_req *req;
	int r;

	if (s->to_stdout)
		return (r = sink_content_write_line(STDOUT_FILENO, e->ev)) < 0 ? r : 1;
	if (s->batcher)
		return sink_batcher_add(s->batcher, e, s->sink_shown);
	req = req_get(s);
	if (!req)
		return -ENOMEM;
	req->entry = e;
	r = sink_content_request(s->cfg->content_mode, e, s->sink_shown, &req->headers,
		&req->payload);
	if (r == 0)
		r = req->payload.len ?
			start_post(s, req, e->dead_letter, req->payload.data, req->payload.len) :
			start_post(s, req, e->dead_letter, e->ev->data, e->ev->data_len);
	if (r < 0)
		goto fail;
	return 0;
fail:
	release_req(s, req);
	return r;
}

/* Batched mode: one POST of a batch's JSON array. */
static int handle_batch_post(struct sink_batch *b, void *userdata) {
	struct sink *s = userdata;
	struct sink_req *req;
	int r;

	if (!b->dead_letter && !s->url)
		return -EAGAIN; /* no address (a sink reference): retried */
	req = req_get(s);
	r = req ? 0 : -ENOMEM;
	if (r == 0) {
		req->batch = b;
		r = http_headers_add(&req->headers, "Content-Type: " CEVENT_JSON_BATCH_TYPE);
	}
	if (r == 0)
		r = start_post(s, req, b->dead_letter, b->body.data, b->body.len);
	if (r < 0 && req)
		release_req(s, req);
	return r;
}

static const char *error_text(const struct queue_entry *e) {
	return e->last_error ? strerror(-e->last_error) : "";
}

static struct sink_health *health_of(struct sink *s, const struct queue_entry *e) {
	return &s->health[e->dead_letter ? 1 : 0];
}

/* An event's retry phase ends (delivered, given up, or handed to the
 * dead-letter sink): it no longer counts as waiting for a retry. Only events
 * that failed were counted: attempts > 1 means retrying() saw attempt 1. */
static void health_event_done(struct sink_health *h, const struct queue_entry *e) {
	if (e->attempts > 1 && h->retrying)
		h->retrying--;
}

/* One line per interval while events wait for a retry: a warning while
 * attempts fail (or none was due), else a note that the sink takes events
 * again, with how many single lines the rate limit left out. */
static void handle_summary_timer(struct loop_timer *t, void *userdata) {
	struct sink_health *h = userdata;
	struct sink *s = h->sink;
	struct queue_stats st;
	unsigned retry_lines = log_ratelimit_take_suppressed(&h->retry_lines),
		 delivered_lines = log_ratelimit_take_suppressed(&h->delivered_lines);

	(void)t;
	queue_get_stats(s->queue, &st);
	if (h->failed || (h->retrying && !h->delivered_after)) {
		log_warn("sink",
			h->dead_letter ? "the dead-letter sink keeps failing, retrying" :
					 "the sink keeps failing, retrying",
			LOG_INT("failed_attempts", h->failed),
			LOG_INT("events_retrying", h->retrying),
			LOG_INT("events_queued", st.queued), LOG_INT("status", h->last_status),
			LOG_STR("error", h->last_error ? strerror(-h->last_error) : ""),
			LOG_INT("delivered_after_retries", h->delivered_after),
			LOG_INT("retries_not_logged", retry_lines),
			LOG_INT("deliveries_not_logged", delivered_lines),
			LOG_INT("interval_s", SUMMARY_INTERVAL_USEC / 1000000u));
	} else if (h->retrying || retry_lines || delivered_lines) {
		log_info("sink",
			h->dead_letter ? "the dead-letter sink takes events again" :
					 "the sink takes events again",
			LOG_INT("delivered_after_retries", h->delivered_after),
			LOG_INT("events_retrying", h->retrying),
			LOG_INT("events_queued", st.queued),
			LOG_INT("retries_not_logged", retry_lines),
			LOG_INT("deliveries_not_logged", delivered_lines),
			LOG_INT("interval_s", SUMMARY_INTERVAL_USEC / 1000000u));
	}
	h->failed = 0;
	h->delivered_after = 0;
	if (h->retrying)
		loop_timer_arm_in(s->loop, &h->summary_timer, SUMMARY_INTERVAL_USEC);
}

static void handle_finished(struct queue_entry *e, enum queue_outcome outcome, bool exhausted,
	void *userdata) {
	struct sink *s = userdata;
	struct sink_health *h = health_of(s, e);

	if (e->ev->arrival_usec)
		metrics_observe_delivery(s->metrics, loop_now_usec() - e->ev->arrival_usec);
	health_event_done(h, e);
	switch (outcome) {
	case QUEUE_OUT_DELIVERED:
		if (e->attempts <= 1) {
			log_debug("sink", "event delivered", LOG_STR("id", e->ev->id),
				LOG_STR("type", e->ev->type), LOG_STR("subject", e->ev->subject),
				LOG_INT("attempts", e->attempts));
			break;
		}
		h->delivered_after++;
		if (log_ratelimit_below(&h->delivered_lines, loop_now_usec()))
			log_info("sink", "event delivered after retries", LOG_STR("id", e->ev->id),
				LOG_STR("type", e->ev->type), LOG_STR("subject", e->ev->subject),
				LOG_INT("attempts", e->attempts));
		break;
	case QUEUE_OUT_DEAD_LETTERED:
		if (e->attempts > 1)
			h->delivered_after++;
		log_warn("sink", "event delivered to the dead-letter sink", LOG_STR("id", e->ev->id),
			LOG_STR("type", e->ev->type), LOG_STR("subject", e->ev->subject),
			LOG_INT("status", e->failed_status), LOG_INT("attempts", e->attempts));
		break;
	case QUEUE_OUT_DROPPED:
		log_error("sink",
			e->dead_letter ? "the dead-letter sink did not take the event, dropping it" :
			exhausted      ? "event not delivered after the last attempt, dropping it" :
					 "sink rejected the event, dropping it",
			LOG_STR("id", e->ev->id), LOG_STR("type", e->ev->type),
			LOG_STR("subject", e->ev->subject), LOG_INT("status", e->last_status),
			LOG_INT("attempts", e->attempts), LOG_STR("error", error_text(e)));
		break;
	}
}

static void handle_dead_lettering(struct queue_entry *e, bool exhausted, void *userdata) {
	struct sink *s = userdata;

	/* Called before the event turns to the dead-letter sink: e is still
	 * the sink's. */
	health_event_done(health_of(s, e), e);
	log_warn("sink",
		exhausted ? "event not delivered after the last attempt, sending it to the dead-letter sink" :
			    "sink rejected the event, sending it to the dead-letter sink",
		LOG_STR("id", e->ev->id), LOG_STR("type", e->ev->type),
		LOG_STR("subject", e->ev->subject), LOG_INT("status", e->last_status),
		LOG_INT("attempts", e->attempts), LOG_STR("error", error_text(e)));
}

/* Called for every failed attempt that will be retried: counted, and
 * logged only for the event's first retry (rate-limited); the summary timer
 * reports the rest. */
static void handle_retrying(struct queue_entry *e, uint64_t delay_usec, void *userdata) {
	struct sink *s = userdata;
	struct sink_health *h = health_of(s, e);

	h->failed++;
	h->last_status = e->last_status;
	h->last_error = e->last_error;
	if (!loop_timer_armed(&h->summary_timer))
		loop_timer_arm_in(s->loop, &h->summary_timer, SUMMARY_INTERVAL_USEC);
	if (e->attempts != 1)
		return;
	h->retrying++;
	if (!log_ratelimit_below(&h->retry_lines, loop_now_usec()))
		return;
	log_warn("sink",
		e->dead_letter ? "dead-letter delivery failed, retrying" : "delivery failed, retrying",
		LOG_STR("id", e->ev->id), LOG_STR("subject", e->ev->subject),
		LOG_INT("status", e->last_status), LOG_STR("error", error_text(e)),
		LOG_INT("attempt", e->attempts), LOG_INT("retry_in_ms", delay_usec / 1000u));
}

static void handle_space(void *userdata) {
	struct sink *s = userdata;

	if (s->space)
		s->space(s->space_userdata);
}

int sink_create(const struct config *cfg, struct loop *loop, struct http *http,
	struct sink **ret_sink) {
	struct queue_options opts = {
		.max_inflight = cfg->max_inflight,
		.max_events = cfg->queue_max_events,
		.max_bytes = cfg->queue_max_bytes,
		.dead_letter = cfg->dead_letter != NULL,
		.retry_timeout_usec = cfg->retry_timeout_usec,
		.retry_max = cfg->retry_max,
		.backoff_initial_usec = BACKOFF_INITIAL_USEC,
		.backoff_max_usec = BACKOFF_MAX_USEC,
		.retry_after_max_usec = RETRY_AFTER_MAX_USEC,
	};
	struct sink_batch_options bopts;
	bool batched;
	static const struct queue_ops ops = {
		.send = handle_send,
		.finished = handle_finished,
		.retrying = handle_retrying,
		.dead_lettering = handle_dead_lettering,
		.space = handle_space,
	};
	struct sink *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->cfg = cfg;
	s->loop = loop;
	s->http = http;
	for (size_t i = 0; i < 2; i++) {
		struct sink_health *h = &s->health[i];
		h->sink = s;
		h->dead_letter = i == 1;
		h->retry_lines = (struct log_ratelimit){ .interval_usec = SUMMARY_INTERVAL_USEC,
			.burst = EVENT_LINES_BURST };
		h->delivered_lines = h->retry_lines;
		loop_timer_init(&h->summary_timer, handle_summary_timer, h);
	}
	s->to_stdout = !cfg->sink_ref.kind && strcmp(cfg->sink, "-") == 0;
	batched = !s->to_stdout && cfg->content_mode == CONFIG_CONTENT_BATCHED;
	r = -ENOMEM;
	if (cfg->namespace) {
		/* NAMESPACE comes from outside: percent-encoded as a CloudEvents
		 * attribute is, so a line break cannot start another header (a
		 * Kubernetes name needs no encoding and is sent as it is). */
		struct buf b;
		buf_init(&b, 0);
		if (buf_append_str(&b, "Kn-Namespace: ") < 0 ||
			cevent_percent_encode(cfg->namespace, &b) < 0) {
			buf_finish(&b);
			goto fail;
		}
		s->namespace_header = buf_steal(&b, NULL);
	}
	if (s->to_stdout)
		opts.max_inflight = 1;
	/* Batched: max_inflight counts POSTs; each holds up to max_events. */
	if (batched)
		opts.max_inflight *= sink_batch_options_init(&bopts, cfg, &opts)->max_events;
	r = queue_create(loop, &opts, &ops, s, &s->queue);
	/* With a sink reference, no address yet: sinkref.c gives it. */
	if (r == 0 && !s->to_stdout)
		r = sink_set_url(s, cfg->sink_ref.kind ? NULL : cfg->sink);
	if (r == 0 && batched)
		r = sink_batcher_create(loop, &bopts, s->queue, &ops, s, handle_batch_post, s,
			&s->batcher);
	if (r < 0)
		goto fail;
	*ret_sink = s;
	return 0;
fail:
	sink_destroy(s);
	return r;
}

void sink_destroy(struct sink *s) {
	if (!s)
		return;
	/* Cancel in-flight POSTs first: they read the queued events' data. */
	while (s->all_reqs) {
		struct sink_req *n = s->all_reqs->next_all;
		http_xfer_finish(s->http, &s->all_reqs->xfer);
		http_headers_finish(&s->all_reqs->headers);
		buf_finish(&s->all_reqs->body);
		buf_finish(&s->all_reqs->payload);
		free(s->all_reqs);
		s->all_reqs = n;
	}
	sink_batcher_destroy(s->batcher);
	queue_destroy(s->queue);
	for (size_t i = 0; i < 2; i++)
		loop_timer_disarm(s->loop, &s->health[i].summary_timer);
	free(s->namespace_header);
	free(s->sink_shown);
	free(s);
}

int sink_set_url(struct sink *s, const char *url) {
	char *shown = url ? http_url_redact(url) : NULL;

	if (url && !shown)
		return -ENOMEM;
	free(s->sink_shown);
	s->sink_shown = shown;
	s->url = url;
	queue_hold(s->queue, !url);
	return 0;
}

void sink_set_metrics(struct sink *s, struct metrics *m) {
	s->metrics = m;
}

void sink_set_oidc(struct sink *s, struct oidc *o) {
	s->oidc = o;
}

void sink_set_headers(struct sink *s, const struct sink_headers *h) {
	s->extra_headers = h;
}

int sink_submit(struct sink *s, struct cevent *ev) {
	return queue_push(s->queue, ev);
}

void sink_get_stats(const struct sink *s, struct queue_stats *ret) {
	queue_get_stats(s->queue, ret);
	if (s->batcher) /* POSTs, not the events they carry */
		ret->inflight = sink_batcher_requests(s->batcher);
}

void sink_flush(struct sink *s) {
	sink_batcher_flush(s->batcher);
}

bool sink_idle(const struct sink *s) {
	return queue_empty(s->queue);
}

bool sink_full(const struct sink *s) {
	return queue_full(s->queue);
}

void sink_on_space(struct sink *s, sink_space_fn fn, void *userdata) {
	s->space = fn;
	s->space_userdata = userdata;
}

void sink_foreach_pending(const struct sink *s,
	void (*fn)(const struct queue_entry *e, void *userdata), void *userdata) {
	queue_foreach(s->queue, fn, userdata);
}

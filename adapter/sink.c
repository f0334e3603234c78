#include <curl/curl.h>
#include <openssl/evp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "adapter/log.h"
#include "adapter/metrics.h"
#include "adapter/oidc.h"
#include "adapter/sink.h"
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
	struct curl_slist *headers;
	uint64_t retry_after_usec;
	uint64_t oidc_generation; /* of the token sent, 0: none */
	struct buf body;
	struct sink_req *next_free;
	struct sink_req *next_all;
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
};

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
	curl_slist_free_all(req->headers);
	req->headers = NULL;
	buf_reset(&req->body);
	req->entry = NULL;
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
		oidc_token_rejected(s->oidc, req->oidc_generation);
		if (!e->auth_retried) {
			e->auth_retried = true;
			res = QUEUE_RETRY;
		}
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

static int send_stdout(struct sink *s, struct queue_entry *e) {
	struct buf b;
	size_t off = 0;
	int r;

	(void)s;
	buf_init(&b, 0);
	r = cevent_structured(e->ev, &b);
	if (r == 0)
		r = buf_append(&b, "\n", 1);
	while (r == 0 && off < b.len) {
		ssize_t n = write(STDOUT_FILENO, b.data + off, b.len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	buf_finish(&b);
	return r < 0 ? r : 1;
}

/* Knative's dead-letter convention: where it was going, what the sink
 * answered, and (base64, so any bytes fit a header) the start of its body. */
static int dead_letter_headers(struct sink *s, struct queue_entry *e,
	struct curl_slist **headers) {
	struct buf b;
	struct curl_slist *n;
	int r;

	buf_init(&b, 0);
	r = buf_append_str(&b, "ce-knativeerrordest: ");
	if (r == 0)
		r = cevent_percent_encode(s->sink_shown, &b);
	if (r == 0 && (n = curl_slist_append(*headers, b.data)))
		*headers = n;
	else
		r = -ENOMEM;
	buf_reset(&b);
	if (r == 0)
		r = buf_printf(&b, "ce-knativeerrorcode: %ld", e->failed_status);
	if (r == 0 && (n = curl_slist_append(*headers, b.data)))
		*headers = n;
	else
		r = r ?: -ENOMEM;
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
			if (r == 0 && (n = curl_slist_append(*headers, b.data)))
				*headers = n;
			else
				r = r ?: -ENOMEM;
		}
	}
	buf_finish(&b);
	return r;
}

static int append_header(struct curl_slist **headers, const char *line) {
	struct curl_slist *n = curl_slist_append(*headers, line);

	if (!n)
		return -ENOMEM;
	*headers = n;
	return 0;
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
	r = append_header(&req->headers, line);
	explicit_bzero(line, strlen(line));
	free(line);
	if (r == 0)
		req->oidc_generation = oidc_generation(s->oidc);
	return r;
}

static int handle_send(struct queue_entry *e, void *userdata) {
	struct sink *s = userdata;
	struct sink_req *req;
	CURL *easy;
	int r;

	if (s->to_stdout)
		return send_stdout(s, e);
	req = s->free_reqs;
	if (req) {
		s->free_reqs = req->next_free;
	} else {
		req = calloc(1, sizeof(*req));
		if (!req)
			return -ENOMEM;
		req->sink = s;
		buf_init(&req->body, 0);
		req->next_all = s->all_reqs;
		s->all_reqs = req;
	}
	r = http_xfer_init(&req->xfer, handle_post_done, req);
	if (r < 0)
		goto fail;
	req->entry = e;
	req->retry_after_usec = 0;
	req->oidc_generation = 0;
	r = cevent_http_headers(e->ev, &req->headers);
	if (r == 0 && e->dead_letter)
		r = dead_letter_headers(s, e, &req->headers);
	if (r == 0 && s->namespace_header)
		r = append_header(&req->headers, s->namespace_header);
	if (r == 0 && s->oidc && !e->dead_letter)
		r = auth_header(s, req);
	if (r == 0 && s->extra_headers && !e->dead_letter)
		r = sink_headers_append(s->extra_headers, &req->headers);
	if (r < 0)
		goto fail;
	/* No "Expect: 100-continue" round trip for larger bodies. */
	{
		struct curl_slist *n = curl_slist_append(req->headers, "Expect:");
		if (!n) {
			r = -ENOMEM;
			goto fail;
		}
		req->headers = n;
	}
	easy = req->xfer.easy;
	curl_easy_setopt(easy, CURLOPT_URL, e->dead_letter ? s->cfg->dead_letter : s->url);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, e->ev->data);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)e->ev->data_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(s->cfg->sink_timeout_usec / 1000u));
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
		(long)(s->cfg->sink_timeout_usec / 1000u < 10000 ? s->cfg->sink_timeout_usec / 1000u :
								      10000));
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
	r = http_start(s->http, &req->xfer);
	if (r < 0)
		goto fail;
	return 0;
fail:
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
	r = queue_create(loop, &opts, &ops, s, &s->queue);
	/* With a sink reference, no address yet: sinkref.c gives it. */
	if (r == 0 && !s->to_stdout)
		r = sink_set_url(s, cfg->sink_ref.kind ? NULL : cfg->sink);
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
		curl_slist_free_all(s->all_reqs->headers);
		buf_finish(&s->all_reqs->body);
		free(s->all_reqs);
		s->all_reqs = n;
	}
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

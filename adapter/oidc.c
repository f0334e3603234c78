#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "adapter/log.h"
#include "adapter/oidc.h"
#include "adapter/util/backoff.h"
#include "adapter/util/buf.h"
#include "adapter/util/json.h"

#define ANSWER_MAX (64u * 1024u)
#define REQUEST_TIMEOUT_MS 30000L
#define EXPIRATION_SEC 3600
#define MIN_REFRESH_USEC (10ull * 1000000ull)
#define BACKOFF_INITIAL_USEC (200ull * 1000ull)
#define BACKOFF_MAX_USEC (30ull * 1000000ull)

struct oidc {
	struct kube *kube;
	struct http *http;
	struct loop *loop;
	char *path;
	char *body;
	oidc_ready_fn ready;
	void *userdata;
	struct http_xfer xfer;
	struct curl_slist *headers;
	struct buf answer;
	struct loop_timer timer;
	struct backoff backoff;
	bool fetching;
	char *token;
	uint64_t generation;
	uint64_t rejected_generation;
	char problem[256];
	unsigned failures; /* in a row, for logging the first and the recovery */
};

static void fetch(struct oidc *o);

int oidc_parse_answer(const char *body, char **ret_token, int64_t *ret_expires_unix) {
	char err[128];
	yajl_val root = json_parse(body, err, sizeof(err));
	yajl_val status = json_get(root, "status");
	const char *token = json_get_str(status, "token");
	const char *exp = json_get_str(status, "expirationTimestamp");
	struct tm tm = { 0 };
	const char *end;
	int r = -EBADMSG;

	if (!token || !*token || !exp)
		goto out;
	end = strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || (*end != 'Z' && *end != '\0'))
		goto out;
	*ret_token = strdup(token);
	if (!*ret_token) {
		r = -ENOMEM;
		goto out;
	}
	*ret_expires_unix = (int64_t)timegm(&tm);
	r = 0;
out:
	yajl_tree_free(root);
	return r;
}

static size_t handle_data(char *data, size_t size, size_t nmemb, void *userdata) {
	struct oidc *o = userdata;

	/* Too long an answer ends the transfer (the write returns short). */
	return buf_append(&o->answer, data, size * nmemb) < 0 ? 0 : size * nmemb;
}

static void handle_timer(struct loop_timer *t, void *userdata) {
	(void)t;
	fetch(userdata);
}

static void failed(struct oidc *o, const char *problem, long status) {
	uint64_t delay = backoff_next(&o->backoff);

	snprintf(o->problem, sizeof(o->problem), "%s", problem);
	if (o->failures++ == 0)
		log_warn("oidc", "cannot get an OIDC token for the sink, retrying",
			LOG_STR("error", problem), LOG_INT("status", status),
			LOG_INT("retry_in_ms", delay / 1000u));
	loop_timer_arm_in(o->loop, &o->timer, delay);
}

static void handle_done(struct http_xfer *x, int err, long status, const char *errbuf,
	void *userdata) {
	struct oidc *o = userdata;
	char *token = NULL;
	int64_t expires = 0, now = (int64_t)time(NULL);
	uint64_t refresh;
	char problem[256];

	(void)x;
	o->fetching = false;
	if (err) {
		snprintf(problem, sizeof(problem), "TokenRequest failed: %s", errbuf);
		failed(o, problem, 0);
		return;
	}
	if (status != 200 && status != 201) {
		if (status == 401)
			kube_token_rejected(o->kube);
		snprintf(problem, sizeof(problem),
			status == 403 ? "TokenRequest forbidden (403): the adapter's service account may "
					"not create tokens for K_OIDC_SERVICE_ACCOUNT" :
			status == 404 ? "TokenRequest: the service account K_OIDC_SERVICE_ACCOUNT does "
					"not exist (404)" :
					"TokenRequest answered %ld",
			status);
		failed(o, problem, status);
		return;
	}
	if (oidc_parse_answer(o->answer.data ? o->answer.data : "", &token, &expires) < 0) {
		failed(o, "TokenRequest answer has no status.token or expirationTimestamp", status);
		return;
	}
	if (!http_header_value_valid(token)) {
		/* It would add headers to the POSTs that carry it. */
		explicit_bzero(token, strlen(token));
		free(token);
		failed(o, "TokenRequest answer: status.token contains a control character; refused",
			status);
		return;
	}
	free(o->token);
	o->token = token;
	o->generation++;
	o->problem[0] = '\0';
	backoff_reset(&o->backoff);
	if (o->failures)
		log_info("oidc", "OIDC token obtained after failures", LOG_INT("failures", o->failures));
	o->failures = 0;
	/* Fetch again at 80% of its life, as client-go's token sources do. */
	refresh = expires > now ? (uint64_t)(expires - now) * 800000ull : 0;
	loop_timer_arm_in(o->loop, &o->timer, refresh > MIN_REFRESH_USEC ? refresh : MIN_REFRESH_USEC);
	log_debug("oidc", "OIDC token obtained", LOG_INT("expires_in_s", expires - now));
	if (o->ready)
		o->ready(o->userdata);
}

static void fetch(struct oidc *o) {
	struct curl_slist *n;
	int r;

	if (o->fetching)
		return;
	loop_timer_disarm(o->loop, &o->timer);
	curl_slist_free_all(o->headers);
	o->headers = NULL;
	buf_reset(&o->answer);
	r = http_xfer_init(&o->xfer, handle_done, o);
	if (r == 0)
		r = kube_setup_request(o->kube, o->xfer.easy, o->path, &o->headers);
	if (r == 0) {
		n = curl_slist_append(o->headers, "Content-Type: application/json");
		if (n)
			o->headers = n;
		else
			r = -ENOMEM;
	}
	if (r == 0) {
		curl_easy_setopt(o->xfer.easy, CURLOPT_HTTPHEADER, o->headers);
		curl_easy_setopt(o->xfer.easy, CURLOPT_POSTFIELDS, o->body);
		curl_easy_setopt(o->xfer.easy, CURLOPT_POSTFIELDSIZE, (long)strlen(o->body));
		curl_easy_setopt(o->xfer.easy, CURLOPT_WRITEFUNCTION, handle_data);
		curl_easy_setopt(o->xfer.easy, CURLOPT_WRITEDATA, o);
		curl_easy_setopt(o->xfer.easy, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
		r = http_start(o->http, &o->xfer);
	}
	if (r < 0) {
		failed(o, strerror(-r), 0);
		return;
	}
	o->fetching = true;
}

/* The TokenRequest body, built with yajl so the audience is escaped. */
static int request_body(const char *audience, char **ret) {
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *out;
	size_t len;
	int r = -ENOMEM;

#define S(str) yajl_gen_string(g, (const unsigned char *)(str), strlen(str))
	if (!g)
		return -ENOMEM;
	yajl_gen_map_open(g);
	S("apiVersion");
	S("authentication.k8s.io/v1");
	S("kind");
	S("TokenRequest");
	S("spec");
	yajl_gen_map_open(g);
	S("audiences");
	yajl_gen_array_open(g);
	S(audience);
	yajl_gen_array_close(g);
	S("expirationSeconds");
	yajl_gen_integer(g, EXPIRATION_SEC);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
#undef S
	if (yajl_gen_get_buf(g, &out, &len) == yajl_gen_status_ok && (*ret = strndup((const char *)out, len)))
		r = 0;
	yajl_gen_free(g);
	return r;
}

int oidc_create(struct kube *kube, struct http *http, struct loop *loop, const char *namespace,
	const char *service_account, const char *audience, oidc_ready_fn fn, void *userdata,
	struct oidc **ret_oidc) {
	struct oidc *o = calloc(1, sizeof(*o));
	int r = -ENOMEM;

	if (!o)
		return -ENOMEM;
	o->kube = kube;
	o->http = http;
	o->loop = loop;
	o->ready = fn;
	o->userdata = userdata;
	buf_init(&o->answer, ANSWER_MAX);
	backoff_init(&o->backoff, BACKOFF_INITIAL_USEC, BACKOFF_MAX_USEC);
	loop_timer_init(&o->timer, handle_timer, o);
	snprintf(o->problem, sizeof(o->problem), "waiting for the first OIDC token");
	if (asprintf(&o->path, "/api/v1/namespaces/%s/serviceaccounts/%s/token", namespace,
		    service_account) < 0) {
		o->path = NULL;
		goto fail;
	}
	r = request_body(audience, &o->body);
	if (r < 0)
		goto fail;
	fetch(o);
	*ret_oidc = o;
	return 0;
fail:
	oidc_destroy(o);
	return r;
}

void oidc_destroy(struct oidc *o) {
	if (!o)
		return;
	loop_timer_disarm(o->loop, &o->timer);
	http_xfer_finish(o->http, &o->xfer);
	curl_slist_free_all(o->headers);
	buf_finish(&o->answer);
	if (o->token)
		explicit_bzero(o->token, strlen(o->token));
	free(o->token);
	free(o->path);
	free(o->body);
	free(o);
}

const char *oidc_token(const struct oidc *o) {
	return o ? o->token : NULL;
}

uint64_t oidc_generation(const struct oidc *o) {
	return o ? o->generation : 0;
}

void oidc_token_rejected(struct oidc *o, uint64_t generation) {
	if (!o || generation != o->generation || o->rejected_generation == generation)
		return;
	o->rejected_generation = generation;
	log_info("oidc", "the sink rejected the OIDC token (401); fetching a new one");
	if (o->token)
		explicit_bzero(o->token, strlen(o->token));
	free(o->token);
	o->token = NULL;
	snprintf(o->problem, sizeof(o->problem), "the sink rejected the OIDC token; fetching a new one");
	fetch(o);
}

const char *oidc_problem(const struct oidc *o) {
	return o && !o->token ? o->problem : NULL;
}

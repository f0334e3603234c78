#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/discovery.h"
#include "adapter/kcall.h"
#include "adapter/kobj.h"
#include "adapter/log.h"
#include "adapter/sinkref.h"
#include "adapter/util/backoff.h"
#include "adapter/util/buf.h"
#include "adapter/util/json.h"

#define BACKOFF_INITIAL_USEC (500ull * 1000ull)
#define BACKOFF_MAX_USEC (30ull * 1000000ull)
#define DISCOVERY_MAX (8u * 1024u * 1024u)
/* While unresolved: how often the state is looked at again, for what no
 * callback reports (a list that found nothing, a watch that keeps failing). */
#define CHECK_INTERVAL_USEC (200ull * 1000ull)

struct sinkref {
	/* Copies: the watch of the reference is in no checkpoint and no
	 * metrics, and reports the object from its first list on. */
	struct watch_context ctx;
	struct config cfg; /* shallow: borrows every pointer */
	const struct config_sink_ref *ref;
	struct sink *sink;
	const char *relative;
	char *ns;
	char api_version[300];
	char label[600]; /* "v1/Service default/player", for logs and readiness */
	char *field_selector;
	/* Discovery: the plural and scope of the kind. */
	struct discovery_result disc;
	bool discovered;
	char discovery_problem[400];
	struct kcall discovery; /* the GET of the reference's group/version */
	struct buf body;
	struct backoff backoff;
	struct loop_timer timer;
	/* The watch of the one object. */
	struct watch_owner owner;
	struct watch *watch;
	bool have_object;
	char problem[400]; /* why the object gives no address */
	char *url;	   /* in use; NULL: unresolved */
	char logged[600];  /* the cause last logged while unresolved */
	struct loop_timer check_timer;
	bool stopped;
};

/* ---------------- the address ---------------- */

/* An http(s) URL with a host, else -EINVAL; -ENOMEM. */
static int check_http_url(CURLU *u) {
	char *scheme = NULL, *host = NULL;
	int r = -EINVAL;

	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OUT_OF_MEMORY ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OUT_OF_MEMORY)
		r = -ENOMEM;
	else if (scheme && host && *host &&
		(strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0))
		r = 0;
	curl_free(scheme);
	curl_free(host);
	return r;
}

/* Knative's selectAddress(): the first of status.addresses, else
 * status.address (a KReference names no address). */
static const char *addressable_url(yajl_val obj, char *problem, size_t len) {
	yajl_val status = json_get(obj, "status"), addrs = json_get(status, "addresses"), addr;
	const char *url;

	if (YAJL_IS_ARRAY(addrs) && addrs->u.array.len > 0) {
		addr = addrs->u.array.values[0];
		url = json_get_str(addr, "url");
		if (!url || !*url)
			snprintf(problem, len, "status.addresses[0] has no url");
		return url && *url ? url : NULL;
	}
	addr = json_get(status, "address");
	url = json_get_str(addr, "url");
	if (!url || !*url)
		snprintf(problem, len, "no address yet (status.address.url)");
	return url && *url ? url : NULL;
}

int sinkref_address(const char *json, size_t len, const struct config_sink_ref *ref,
	const char *ns, const char *relative, char **ret_url, char *problem, size_t problem_len) {
	char *svc = NULL, *out = NULL;
	const char *base;
	yajl_val obj = NULL;
	CURLU *u = NULL;
	CURLUcode uc;
	int r = -ENOMEM;

	if (!*ref->group && strcmp(ref->version, "v1") == 0 && strcmp(ref->kind, "Service") == 0) {
		/* Kubernetes Services are special-cased by Knative's resolver:
		 * the cluster DNS name, plain http, no port. */
		if (asprintf(&svc, "http://%s.%s.svc.cluster.local", ref->name, ns) < 0) {
			svc = NULL;
			goto out;
		}
		base = svc;
	} else {
		obj = json_parse_bounded(json, len, JSON_MAX_DEPTH, NULL, 0);
		if (!obj) {
			if (errno == ENOMEM)
				goto out;
			snprintf(problem, problem_len, "the object is not valid JSON");
			r = -ENOENT;
			goto out;
		}
		base = addressable_url(obj, problem, problem_len);
		if (!base) {
			r = -ENOENT;
			goto out;
		}
	}
	u = curl_url();
	if (!u)
		goto out;
	uc = curl_url_set(u, CURLUPART_URL, base, 0);
	if (uc == CURLUE_OUT_OF_MEMORY)
		goto out;
	if (uc != CURLUE_OK || (r = check_http_url(u)) == -EINVAL) {
		char *shown = http_url_redact(base);
		snprintf(problem, problem_len, "its address \"%s\" is not an http:// or https:// URL",
			shown ? shown : "");
		free(shown);
		r = -ENOENT;
		goto out;
	}
	if (r < 0)
		goto out;
	/* Knative: addr.URL.ResolveReference(dest.URI). */
	if (relative && (uc = curl_url_set(u, CURLUPART_URL, relative, 0)) != CURLUE_OK) {
		if (uc == CURLUE_OUT_OF_MEMORY) {
			r = -ENOMEM;
			goto out;
		}
		snprintf(problem, problem_len, "\"%s\" cannot be joined to its address", relative);
		r = -ENOENT;
		goto out;
	}
	if (curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK) {
		r = -ENOMEM;
		goto out;
	}
	*ret_url = strdup(out);
	r = *ret_url ? 0 : -ENOMEM;
out:
	curl_free(out);
	curl_url_cleanup(u);
	yajl_tree_free(obj);
	free(svc);
	return r;
}

/* ---------------- what the log and readiness say ---------------- */

/* False while unresolved, with the reason; *worth_logging: a cause, not a
 * step of starting up. */
static bool resolved(const struct sinkref *sr, char *reason, size_t len, bool *worth_logging) {
	*worth_logging = true;
	if (sr->url)
		return true;
	if (!sr->discovered) {
		*worth_logging = sr->discovery_problem[0] != '\0';
		snprintf(reason, len, "the sink reference %s: %s", sr->label,
			*worth_logging ? sr->discovery_problem : "discovering its kind");
	} else if (!sr->watch || watch_failing(sr->watch)) {
		snprintf(reason, len, "the sink reference %s cannot be read: the API server refuses "
				      "or fails its list or watch (forbidden? see the watch log)",
			sr->label);
	} else if (!watch_synced(sr->watch)) {
		*worth_logging = false;
		snprintf(reason, len, "the sink reference %s is being read", sr->label);
	} else if (!sr->have_object) {
		snprintf(reason, len, "the sink reference %s does not exist", sr->label);
	} else {
		snprintf(reason, len, "the sink reference %s has %s", sr->label, sr->problem);
	}
	return false;
}

bool sinkref_ready(const struct sinkref *sr, char *reason, size_t len) {
	bool worth_logging;

	return resolved(sr, reason, len, &worth_logging);
}

/* Logs a cause once, when it starts; keeps looking while unresolved. */
static void check(struct sinkref *sr) {
	char reason[sizeof(sr->logged)];
	bool worth_logging;

	if (sr->stopped)
		return;
	if (resolved(sr, reason, sizeof(reason), &worth_logging)) {
		sr->logged[0] = '\0';
		loop_timer_disarm(sr->ctx.loop, &sr->check_timer);
		return;
	}
	if (worth_logging && strcmp(reason, sr->logged) != 0) {
		log_warn("sinkref", "the sink is not resolved, events wait in the queue",
			LOG_STR("ref", sr->label), LOG_STR("reason", reason));
		snprintf(sr->logged, sizeof(sr->logged), "%s", reason);
	}
	if (!loop_timer_armed(&sr->check_timer))
		loop_timer_arm_in(sr->ctx.loop, &sr->check_timer, CHECK_INTERVAL_USEC);
}

static void handle_check_timer(struct loop_timer *t, void *userdata) {
	(void)t;
	check(userdata);
}

/* Hands the sink its new address (NULL: none); logs a change once. */
static int use_url(struct sinkref *sr, char *url) {
	char *shown = NULL, *before = NULL;
	int r;

	if ((!url && !sr->url) || (url && sr->url && strcmp(url, sr->url) == 0)) {
		free(url);
		return 0;
	}
	/* The sink borrows url: the old one is freed once it has let go. */
	r = sink_set_url(sr->sink, url);
	if (r < 0) {
		free(url);
		return r;
	}
	if (url) {
		shown = http_url_redact(url);
		before = sr->url ? http_url_redact(sr->url) : NULL;
		log_info("sinkref", sr->url ? "the sink moved" : "the sink is resolved",
			LOG_STR("ref", sr->label), LOG_STR("url", shown ? shown : ""),
			LOG_STR("previous", before ? before : ""));
		free(shown);
		free(before);
	}
	free(sr->url);
	sr->url = url;
	return 0;
}

/* The watch's objects_emit_fn: the object's every state, or its deletion.
 * Returns 0, or -ENOMEM (the watch reports the same change again). */
static int handle_object(enum cevent_op op, const struct kobj *obj, void *userdata) {
	struct sinkref *sr = userdata;
	char *url = NULL;
	int r = 0;

	if (strcmp(obj->name, sr->ref->name) != 0)
		return 0; /* not the one (a server ignoring the field selector) */
	sr->have_object = op != CEVENT_DELETE;
	sr->problem[0] = '\0';
	if (sr->have_object) {
		r = sinkref_address(obj->json, obj->json_len, sr->ref, sr->ns, sr->relative, &url,
			sr->problem, sizeof(sr->problem));
		if (r == -ENOMEM)
			return r;
	}
	r = use_url(sr, url);
	check(sr);
	return r;
}

/* ---------------- discovery, then the watch ---------------- */

static void request_discovery(struct sinkref *sr);

static void handle_discovery_timer(struct loop_timer *t, void *userdata) {
	(void)t;
	request_discovery(userdata);
}

static void retry_discovery(struct sinkref *sr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void retry_discovery(struct sinkref *sr, const char *fmt, ...) {
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sr->discovery_problem, sizeof(sr->discovery_problem), fmt, ap);
	va_end(ap);
	loop_timer_arm_in(sr->ctx.loop, &sr->timer, backoff_next(&sr->backoff));
	check(sr);
}

static int start_watch(struct sinkref *sr) {
	char *path = NULL, *key = NULL;
	const char *ns = sr->disc.namespaced ? sr->ns : NULL;
	int r = -ENOMEM;

	if (*sr->ref->group)
		r = ns ? asprintf(&path, "/apis/%s/%s/namespaces/%s/%s", sr->ref->group,
				 sr->ref->version, ns, sr->disc.resource) :
			 asprintf(&path, "/apis/%s/%s/%s", sr->ref->group, sr->ref->version,
				 sr->disc.resource);
	else
		r = ns ? asprintf(&path, "/api/%s/namespaces/%s/%s", sr->ref->version, ns,
				 sr->disc.resource) :
			 asprintf(&path, "/api/%s/%s", sr->ref->version, sr->disc.resource);
	if (r < 0 || asprintf(&key, "sinkref|%s", sr->label) < 0) {
		path = r < 0 ? NULL : path;
		key = NULL;
		r = -ENOMEM;
		goto out;
	}
	sr->owner = (struct watch_owner){
		.ctx = &sr->ctx,
		.label = sr->label,
		.field_selector = sr->field_selector,
		.kind = sr->ref->kind,
		.api_version = sr->api_version,
		.emit = handle_object,
		/* Never paused: the queue may be full because of this very watch. */
		.full = NULL,
		.userdata = sr,
	};
	r = watch_create(&sr->owner, ns, path, key, &sr->watch);
	if (r == 0)
		watch_start(sr->watch);
out:
	free(path);
	free(key);
	return r;
}

/* kcall counts a 401 against the token itself. */
static void handle_discovery_done(int err, long status, const char *body, size_t len,
	const char *errbuf, void *userdata) {
	struct sinkref *sr = userdata;
	int r;

	if (err) {
		retry_discovery(sr, "cannot reach the API server: %s", errbuf);
		return;
	}
	if (status == 404) {
		retry_discovery(sr, "the API server does not serve %s", sr->api_version);
		return;
	}
	if (status != 200) {
		retry_discovery(sr, "discovery of %s answered %ld", sr->api_version, status);
		return;
	}
	r = discovery_parse(body, len, sr->ref->kind, NULL, &sr->disc);
	if (r == -ENOENT) {
		retry_discovery(sr, "%s does not serve kind %s", sr->api_version, sr->ref->kind);
		return;
	}
	if (r < 0 || !sr->disc.can_list || !sr->disc.can_watch) {
		retry_discovery(sr, r < 0 ? "invalid discovery document for %s" :
					    "%s serves no list and watch of the kind",
			sr->api_version);
		return;
	}
	r = start_watch(sr);
	if (r < 0) {
		retry_discovery(sr, "cannot start its watch: %s", strerror(-r));
		return;
	}
	sr->discovered = true;
	sr->discovery_problem[0] = '\0';
	check(sr);
}

static void request_discovery(struct sinkref *sr) {
	char path[600];
	int r;

	if (sr->stopped)
		return;
	r = discovery_path(sr->ref->group, sr->ref->version, path, sizeof(path));
	if (r == 0)
		r = kcall_start(&sr->discovery, "GET", path, NULL,
			(long)((sr->ctx.cfg->request_timeout_usec ?: WATCH_REQUEST_TIMEOUT_DEFAULT_USEC) /
				1000u),
			handle_discovery_done, sr);
	if (r < 0)
		retry_discovery(sr, "cannot start discovery: %s", strerror(-r));
}

/* ---------------- life cycle ---------------- */

int sinkref_create(const struct watch_context *ctx, const struct config_sink_ref *ref,
	const char *ns, const char *relative, struct sink *sink, struct sinkref **ret_sinkref) {
	struct sinkref *sr = calloc(1, sizeof(*sr));

	if (!sr)
		return -ENOMEM;
	sr->cfg = *ctx->cfg;
	sr->cfg.initial_events = true;
	sr->ctx = *ctx;
	sr->ctx.cfg = &sr->cfg;
	sr->ctx.checkpoint = NULL;
	sr->ctx.metrics = NULL;
	sr->ref = ref;
	sr->sink = sink;
	sr->relative = relative;
	sr->ns = strdup(ref->namespace ? ref->namespace : ns);
	if (!sr->ns || asprintf(&sr->field_selector, "metadata.name=%s", ref->name) < 0) {
		sr->field_selector = NULL;
		sinkref_destroy(sr);
		return -ENOMEM;
	}
	snprintf(sr->api_version, sizeof(sr->api_version), "%s%s%s", ref->group,
		*ref->group ? "/" : "", ref->version);
	snprintf(sr->label, sizeof(sr->label), "%s/%s %s/%s", sr->api_version, ref->kind, sr->ns,
		ref->name);
	kcall_init(&sr->discovery, ctx->kube, ctx->http, DISCOVERY_MAX);
	backoff_init(&sr->backoff, BACKOFF_INITIAL_USEC, BACKOFF_MAX_USEC);
	loop_timer_init(&sr->timer, handle_discovery_timer, sr);
	loop_timer_init(&sr->check_timer, handle_check_timer, sr);
	*ret_sinkref = sr;
	return 0;
}

void sinkref_start(struct sinkref *sr) {
	log_info("sinkref", "following the sink reference", LOG_STR("ref", sr->label),
		LOG_STR("relative", sr->relative ? sr->relative : ""));
	request_discovery(sr);
	check(sr);
}

void sinkref_destroy(struct sinkref *sr) {
	if (!sr)
		return;
	sr->stopped = true;
	if (sr->watch) {
		watch_stop(sr->watch);
		watch_destroy(sr->watch);
	}
	kcall_finish(&sr->discovery);
	if (sr->ctx.loop) {
		loop_timer_disarm(sr->ctx.loop, &sr->timer);
		loop_timer_disarm(sr->ctx.loop, &sr->check_timer);
	}
	if (sr->url)
		sink_set_url(sr->sink, NULL); /* it borrows sr->url */
	free(sr->url);
	free(sr->field_selector);
	free(sr->ns);
	free(sr);
}

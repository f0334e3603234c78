#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/discovery.h"
#include "adapter/filter.h"
#include "adapter/log.h"
#include "adapter/util/backoff.h"
#include "adapter/util/buf.h"
#include "adapter/watcher.h"

#define BACKOFF_INITIAL_USEC (500ull * 1000ull)
#define BACKOFF_MAX_USEC (30ull * 1000000ull)
#define DISCOVERY_MAX (8u * 1024u * 1024u)

struct watcher {
	struct watch_context *ctx;
	const struct config_resource *res;
	char label[512]; /* "guitars.kool.karmalabs.local/v1" style, for logs */
	char api_version[300];
	struct discovery_result disc;
	bool discovered;
	struct http_xfer xfer;
	struct curl_slist *headers;
	struct buf body;
	struct backoff backoff;
	struct loop_timer timer;
	struct watch_owner owner; /* what its watches borrow */
	struct watch **watches;
	size_t n_watches;
	struct cevent_params params;
	bool stopped;
	struct metrics_resource *mres;
};

/* ---------------- emitting ---------------- */

static bool owner_filtered(const struct config *cfg, const struct kobj *obj) {
	if (!cfg->owner_api_version && !cfg->owner_kind)
		return false;
	/* Knative's filter: only objects whose controller matches. */
	if (!obj->has_controller)
		return true;
	if (cfg->owner_api_version && strcmp(cfg->owner_api_version, obj->controller_api_version))
		return true;
	if (cfg->owner_kind && strcmp(cfg->owner_kind, obj->controller_kind))
		return true;
	return false;
}

/* The watches' objects_emit_fn. A change left out by the owner filter or the
 * filters counts as seen. Returns 0 or a negative errno (out of memory): the
 * watch then reports the same change again, from the list or the stream
 * resumed before it. */
static int emit(enum cevent_op op, const struct kobj *obj, void *userdata) {
	struct watcher *w = userdata;
	struct cevent *ev = NULL;
	int r;

	if (owner_filtered(w->ctx->cfg, obj))
		return 0;
	r = cevent_create(&w->params, obj, op, &ev);
	if (r == 0 && !filter_match(w->ctx->cfg->filter, cevent_filter_attr, ev)) {
		metrics_count_filtered(w->ctx->metrics);
		cevent_destroy(ev);
		return 0;
	}
	if (r == 0) {
		ev->arrival_usec = loop_now_usec();
		r = sink_submit(w->ctx->sink, ev);
		if (r < 0)
			cevent_destroy(ev);
	}
	if (r < 0)
		log_error("watch", "cannot queue an event, it will be reported again",
			LOG_STR("resource", w->label), LOG_STR("namespace", obj->namespace),
			LOG_STR("name", obj->name), LOG_STR("error", strerror(-r)));
	return r;
}

static bool delivery_full(void *userdata) {
	struct watcher *w = userdata;

	return sink_full(w->ctx->sink);
}

/* ---------------- the watches, one per namespace ---------------- */

/* Names a watch across restarts: what it watches, where, with which selector. */
static char *make_key(const struct watcher *w, const char *ns) {
	char *key = NULL;

	if (asprintf(&key, "%s/%s|%s|%s", w->api_version,
		    w->res->kind ? w->res->kind : w->res->resource, ns ? ns : "*",
		    w->res->label_selector ? w->res->label_selector : "") < 0)
		return NULL;
	return key;
}

/* The collection's path: /apis/GROUP/VERSION[/namespaces/NS]/PLURAL. */
static char *collection_path(const struct watcher *w, const char *ns) {
	const struct config_resource *res = w->res;
	char *path = NULL;
	int n;

	if (*res->group)
		n = ns ? asprintf(&path, "/apis/%s/%s/namespaces/%s/%s", res->group, res->version,
				 ns, w->disc.resource) :
			 asprintf(&path, "/apis/%s/%s/%s", res->group, res->version,
				 w->disc.resource);
	else
		n = ns ? asprintf(&path, "/api/%s/namespaces/%s/%s", res->version, ns,
				 w->disc.resource) :
			 asprintf(&path, "/api/%s/%s", res->version, w->disc.resource);
	return n < 0 ? NULL : path;
}

/* Creates the watch of one namespace and hands it what a checkpoint kept
 * for it: it resumes from there, and if that version has expired the relist
 * reports what changed while the adapter was away. */
static int add_watch(struct watcher *w, const char *ns, struct watch **ret_watch) {
	struct checkpoint_watch *sw;
	char *path = NULL, *key = NULL;
	int r = -ENOMEM;

	path = collection_path(w, ns);
	key = make_key(w, ns);
	if (!path || !key)
		goto out;
	r = watch_create(&w->owner, ns, path, key, ret_watch);
	if (r < 0)
		goto out;
	sw = checkpoint_find_watch(w->ctx->checkpoint, key);
	if (sw && !sw->adopted) {
		sw->adopted = true;
		watch_adopt(*ret_watch, sw->rv, &sw->objects, sw->relist);
	}
out:
	free(path);
	free(key);
	return r;
}

static int start_watches(struct watcher *w) {
	const struct config *cfg = w->ctx->cfg;
	bool one = !w->disc.namespaced || cfg->all_namespaces;
	size_t n = one ? 1 : cfg->n_namespaces;
	int r;

	w->owner = (struct watch_owner){
		.ctx = w->ctx,
		.label = w->label,
		.label_selector = w->res->label_selector,
		.kind = w->params.default_kind,
		.api_version = w->params.default_api_version,
		.mres = w->mres,
		.emit = emit,
		.full = delivery_full,
		.userdata = w,
	};
	w->watches = calloc(n, sizeof(*w->watches));
	if (!w->watches)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = add_watch(w, one ? NULL : cfg->namespaces[i], &w->watches[i]);
		if (r < 0) {
			/* Start over cleanly at the next discovery retry. */
			for (size_t j = 0; j < w->n_watches; j++)
				watch_destroy(w->watches[j]);
			free(w->watches);
			w->watches = NULL;
			w->n_watches = 0;
			return r;
		}
		w->n_watches++;
	}
	for (size_t i = 0; i < w->n_watches; i++)
		watch_start(w->watches[i]);
	return 0;
}

/* ---------------- discovery ---------------- */

static void request_discovery(struct watcher *w);

static void handle_discovery_timer(struct loop_timer *t, void *userdata) {
	(void)t;
	request_discovery(userdata);
}

/* what: the outcome, without what happens next ("resource not served"). */
static void retry_discovery(struct watcher *w, const char *what, long status, const char *detail,
	bool permanent) {
	char msg[200];
	uint64_t delay;

	if (permanent && w->ctx->cfg->fail_fast) {
		snprintf(msg, sizeof(msg), "%s; exiting (fail-fast)", what);
		log_error("watch", msg, LOG_STR("resource", w->label), LOG_INT("status", status),
			LOG_STR("error", detail), LOG_BOOL("fail_fast", true));
		w->ctx->fatal(w->ctx->userdata);
		return;
	}
	delay = backoff_next(&w->backoff);
	snprintf(msg, sizeof(msg), "%s, retrying discovery", what);
	log_warn("watch", msg, LOG_STR("resource", w->label), LOG_INT("status", status),
		LOG_STR("error", detail), LOG_INT("retry_in_ms", delay / 1000u));
	loop_timer_arm_in(w->ctx->loop, &w->timer, delay);
}

static size_t handle_discovery_data(char *data, size_t size, size_t nmemb, void *userdata) {
	struct watcher *w = userdata;
	size_t n = size * nmemb;

	return buf_append(&w->body, data, n) < 0 ? 0 : n;
}

static void handle_discovery_done(struct http_xfer *x, int err, long status, const char *errbuf,
	void *userdata) {
	struct watcher *w = userdata;
	char detail[700];
	int r;

	(void)x;
	if (err) {
		retry_discovery(w, "cannot reach the API server", 0, errbuf,
			false);
		return;
	}
	if (status == 401)
		kube_token_rejected(w->ctx->kube);
	if (status == 404) {
		snprintf(detail, sizeof(detail), "the API server does not serve %s%s", w->api_version,
			*w->res->group ? " (is its CRD installed?)" : "");
		retry_discovery(w, "resource not served", status, detail, true);
		return;
	}
	if (status != 200) {
		snprintf(detail, sizeof(detail), "discovery of %s answered %ld", w->api_version, status);
		retry_discovery(w, "discovery failed", status, detail,
			status == 401 || status == 403);
		return;
	}
	r = discovery_parse(w->body.data ? w->body.data : "", w->body.len, w->res->kind,
		w->res->resource, &w->disc);
	if (r == -ENOENT) {
		snprintf(detail, sizeof(detail), "%s does not serve %s %s%s", w->api_version,
			w->res->kind ? "kind" : "resource", w->res->kind ? w->res->kind : w->res->resource,
			*w->res->group ? " (is its CRD installed?)" : "");
		retry_discovery(w, "resource not served", status, detail, true);
		return;
	}
	if (r < 0) {
		retry_discovery(w, "invalid discovery document", status, "not an APIResourceList",
			false);
		return;
	}
	if (!w->disc.can_list || !w->disc.can_watch) {
		snprintf(detail, sizeof(detail), "%s %s does not support list and watch", w->api_version,
			w->disc.resource);
		retry_discovery(w, "resource cannot be watched", status, detail, true);
		return;
	}
	w->discovered = true;
	backoff_reset(&w->backoff);
	snprintf(w->label, sizeof(w->label), "%s%s%s/%s", w->disc.resource, *w->res->group ? "." : "",
		w->res->group, w->res->version);
	w->params.default_kind = w->disc.kind;
	log_info("watch", "resource discovered", LOG_STR("resource", w->label),
		LOG_STR("kind", w->disc.kind), LOG_BOOL("namespaced", w->disc.namespaced));
	r = start_watches(w);
	if (r < 0)
		retry_discovery(w, "cannot start watches", 0, strerror(-r), false);
}

static void request_discovery(struct watcher *w) {
	char path[600];
	int r;

	if (w->stopped)
		return;
	curl_slist_free_all(w->headers);
	w->headers = NULL;
	buf_reset(&w->body);
	r = discovery_path(w->res->group, w->res->version, path, sizeof(path));
	if (r == 0)
		r = http_xfer_init(&w->xfer, handle_discovery_done, w);
	if (r == 0)
		r = kube_setup_request(w->ctx->kube, w->xfer.easy, path, &w->headers);
	if (r == 0) {
		curl_easy_setopt(w->xfer.easy, CURLOPT_WRITEFUNCTION, handle_discovery_data);
		curl_easy_setopt(w->xfer.easy, CURLOPT_WRITEDATA, w);
		curl_easy_setopt(w->xfer.easy, CURLOPT_TIMEOUT_MS,
			(long)((w->ctx->cfg->request_timeout_usec ?: WATCH_REQUEST_TIMEOUT_DEFAULT_USEC) /
				1000u));
		r = http_start(w->ctx->http, &w->xfer);
	}
	if (r < 0)
		retry_discovery(w, "cannot start discovery", 0, strerror(-r), false);
}

int watcher_create(struct watch_context *ctx, const struct config_resource *res,
	struct watcher **ret_watcher) {
	struct watcher *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->ctx = ctx;
	w->res = res;
	snprintf(w->api_version, sizeof(w->api_version), "%s%s%s", res->group, *res->group ? "/" : "",
		res->version);
	snprintf(w->label, sizeof(w->label), "%s/%s", w->api_version,
		res->kind ? res->kind : res->resource);
	buf_init(&w->body, DISCOVERY_MAX);
	backoff_init(&w->backoff, BACKOFF_INITIAL_USEC, BACKOFF_MAX_USEC);
	loop_timer_init(&w->timer, handle_discovery_timer, w);
	w->params = (struct cevent_params){
		.mode = ctx->cfg->mode,
		.source = kube_server(ctx->kube),
		.overrides = ctx->cfg->extensions,
		.n_overrides = ctx->cfg->n_extensions,
		.default_kind = res->kind,
		.default_api_version = w->api_version,
	};
	w->mres = metrics_resource(ctx->metrics, w->label);
	*ret_watcher = w;
	return 0;
}

int watcher_start(struct watcher *w) {
	request_discovery(w);
	return 0;
}

void watcher_stop(struct watcher *w) {
	if (!w)
		return;
	w->stopped = true;
	loop_timer_disarm(w->ctx->loop, &w->timer);
	http_cancel(w->ctx->http, &w->xfer);
	for (size_t i = 0; i < w->n_watches; i++)
		watch_stop(w->watches[i]);
}

void watcher_resume(struct watcher *w) {
	for (size_t i = 0; i < w->n_watches && !sink_full(w->ctx->sink); i++)
		watch_resume(w->watches[i]);
}

int watcher_checkpoint(const struct watcher *w, struct checkpoint_snapshot *cs) {
	int r;

	for (size_t i = 0; i < w->n_watches; i++) {
		r = watch_checkpoint(w->watches[i], cs);
		if (r < 0)
			return r;
	}
	return 0;
}

bool watcher_reachable(const struct watcher *w) {
	for (size_t i = 0; i < w->n_watches; i++)
		if (watch_failing(w->watches[i]))
			return false;
	return true;
}

bool watcher_synced(const struct watcher *w) {
	if (!w->discovered)
		return false;
	for (size_t i = 0; i < w->n_watches; i++)
		if (!watch_synced(w->watches[i]))
			return false;
	return true;
}

void watcher_destroy(struct watcher *w) {
	if (!w)
		return;
	watcher_stop(w);
	for (size_t i = 0; i < w->n_watches; i++)
		watch_destroy(w->watches[i]);
	free(w->watches);
	http_xfer_finish(w->ctx->http, &w->xfer);
	curl_slist_free_all(w->headers);
	buf_finish(&w->body);
	free(w);
}

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/discovery.h"
#include "adapter/filter.h"
#include "adapter/log.h"
#include "adapter/util/backoff.h"
#include "adapter/util/buf.h"
#include "adapter/util/hashmap.h"
#include "adapter/watcher.h"

#define BACKOFF_INITIAL_USEC (500ull * 1000ull)
#define BACKOFF_MAX_USEC (30ull * 1000000ull)
#define DISCOVERY_MAX (8u * 1024u * 1024u)
/* After a watch of a newly selected namespace could not be created. */
#define SYNC_RETRY_USEC (1000ull * 1000ull)

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
	/* Per-namespace watches that follow a set of namespaces
	 * (namespaceSelector, or the fallback from a forbidden cluster-wide
	 * list): ns_set is the nsselector's, borrowed; by_ns maps each
	 * namespace watched to its watch. */
	bool live;
	struct hashmap *ns_set; /* NULL: not known yet */
	struct hashmap by_ns;
	/* Watches of namespaces that left the set, stopped; with checkpoints
	 * they are freed only once no snapshot can point at their tables. */
	struct watch **retired;
	size_t n_retired;
	struct loop_timer sync_timer;
	bool falling_back;
	watcher_forbidden_fn forbidden_fn;
	void *forbidden_userdata;
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

/* Creates the watch of ns (NULL: cluster-wide) and appends it; not started. */
static int append_watch(struct watcher *w, const char *ns) {
	struct watch **n;
	int r;

	n = realloc(w->watches, (w->n_watches + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	w->watches = n;
	r = add_watch(w, ns, &w->watches[w->n_watches]);
	if (r == 0 && ns && (r = hashmap_put(&w->by_ns, ns, w->watches[w->n_watches])) < 0)
		watch_destroy(w->watches[w->n_watches]);
	if (r < 0)
		return r;
	w->n_watches++;
	return 0;
}

/* Stops the i-th watch and takes it out of the set watched. Returns 0, or
 * -ENOMEM with nothing changed. */
static int retire_watch(struct watcher *w, size_t i) {
	struct watch *wa = w->watches[i];
	struct watch **n;

	if (w->ctx->cfg->state_dir) {
		n = realloc(w->retired, (w->n_retired + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		w->retired = n;
	}
	watch_stop(wa);
	w->watches[i] = w->watches[--w->n_watches];
	if (w->ctx->cfg->state_dir)
		w->retired[w->n_retired++] = wa;
	else
		watch_destroy(wa);
	return 0;
}

static void free_retired(struct watcher *w) {
	for (size_t i = 0; i < w->n_retired; i++)
		watch_destroy(w->retired[i]);
	w->n_retired = 0;
}

static void destroy_watches(struct watcher *w) {
	for (size_t i = 0; i < w->n_watches; i++)
		watch_destroy(w->watches[i]);
	free(w->watches);
	w->watches = NULL;
	w->n_watches = 0;
	hashmap_finish(&w->by_ns);
}

/* Starts and stops per-namespace watches so that they are those of the
 * set: a namespace that left it is no longer watched and what was known of
 * its objects is forgotten (no delete events: they were not deleted); one
 * that entered it is listed and watched (its objects come as adds with
 * --initial-events, as at a start). */
static void sync_namespaces(struct watcher *w) {
	struct hashmap_iter it = { 0 };
	const char *ns;
	void *wa;
	size_t started = 0, stopped = 0;
	int r;

	if (!w->discovered || !w->live || !w->disc.namespaced || !w->ns_set || w->stopped)
		return;
	while (hashmap_next(&w->by_ns, &it, &ns, &wa)) {
		if (hashmap_get(w->ns_set, ns))
			continue;
		for (size_t i = 0; i < w->n_watches; i++)
			if (w->watches[i] == wa && (r = retire_watch(w, i)) < 0)
				goto retry;
		log_info("watch", "namespace left the selection; its watch is stopped and its "
				  "objects forgotten",
			LOG_STR("resource", w->label), LOG_STR("namespace", ns));
		hashmap_remove(&w->by_ns, ns);
		stopped++;
	}
	it = (struct hashmap_iter){ 0 };
	while (hashmap_next(w->ns_set, &it, &ns, NULL)) {
		if (hashmap_get(&w->by_ns, ns))
			continue;
		r = append_watch(w, ns);
		if (r < 0)
			goto retry;
		watch_start(w->watches[w->n_watches - 1]);
		started++;
	}
	if (started || stopped)
		log_debug("watch", "namespace watches updated", LOG_STR("resource", w->label),
			LOG_INT("started", started), LOG_INT("stopped", stopped),
			LOG_INT("watches", w->n_watches));
	return;
retry:
	log_error("watch", "cannot follow the namespace selection, retrying",
		LOG_STR("resource", w->label), LOG_STR("namespace", ns), LOG_STR("error", strerror(-r)),
		LOG_INT("retry_in_ms", SYNC_RETRY_USEC / 1000u));
	loop_timer_arm_in(w->ctx->loop, &w->sync_timer, SYNC_RETRY_USEC);
}

/* Called by a watch answered 403 (inside its completion: nothing is
 * destroyed here). A cluster-wide list of a namespaced resource that is
 * forbidden falls back to per-namespace watches, once. */
static bool handle_forbidden(void *userdata) {
	struct watcher *w = userdata;

	if (!w->forbidden_fn || w->live || !w->disc.namespaced || !w->ctx->cfg->all_namespaces)
		return false;
	w->falling_back = true;
	loop_timer_arm_in(w->ctx->loop, &w->sync_timer, 0);
	return true;
}

static void fall_back(struct watcher *w) {
	while (w->n_watches)
		if (retire_watch(w, w->n_watches - 1) < 0) {
			loop_timer_arm_in(w->ctx->loop, &w->sync_timer, SYNC_RETRY_USEC);
			return;
		}
	log_warn("watch", "the cluster-wide list is forbidden; falling back to one watch per "
			  "namespace (needs list and watch on namespaces)",
		LOG_STR("resource", w->label));
	w->falling_back = false;
	w->live = true;
	w->ns_set = NULL;
	w->forbidden_fn(w, w->forbidden_userdata); /* may hand the set over now */
}

static void handle_sync_timer(struct loop_timer *t, void *userdata) {
	struct watcher *w = userdata;

	(void)t;
	if (w->stopped)
		return;
	if (w->falling_back)
		fall_back(w);
	else
		sync_namespaces(w);
}

static int start_watches(struct watcher *w) {
	const struct config *cfg = w->ctx->cfg;
	int r = 0;

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
		.forbidden = handle_forbidden,
	};
	if (!w->disc.namespaced || (cfg->all_namespaces && !w->live)) {
		r = append_watch(w, NULL);
	} else if (w->live) {
		sync_namespaces(w);
		return 0;
	} else {
		for (size_t i = 0; r == 0 && i < cfg->n_namespaces; i++)
			r = append_watch(w, cfg->namespaces[i]);
	}
	if (r < 0) {
		/* Start over cleanly at the next discovery retry. */
		destroy_watches(w);
		return r;
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
	hashmap_init(&w->by_ns);
	loop_timer_init(&w->sync_timer, handle_sync_timer, w);
	w->live = ctx->cfg->namespace_selector && !ctx->cfg->all_namespaces;
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
	loop_timer_disarm(w->ctx->loop, &w->sync_timer);
	http_cancel(w->ctx->http, &w->xfer);
	for (size_t i = 0; i < w->n_watches; i++)
		watch_stop(w->watches[i]);
}

void watcher_resume(struct watcher *w) {
	for (size_t i = 0; i < w->n_watches && !sink_full(w->ctx->sink); i++)
		watch_resume(w->watches[i]);
}

int watcher_checkpoint(struct watcher *w, struct checkpoint_snapshot *cs) {
	int r;

	/* No snapshot is alive while one is taken (one write at a time). */
	free_retired(w);
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
	if (!w->discovered || (w->live && w->disc.namespaced && !w->ns_set))
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
	destroy_watches(w);
	free_retired(w);
	free(w->retired);
	http_xfer_finish(w->ctx->http, &w->xfer);
	curl_slist_free_all(w->headers);
	buf_finish(&w->body);
	free(w);
}

void watcher_set_namespaces(struct watcher *w, struct hashmap *set) {
	if (!w->live)
		return;
	w->ns_set = set;
	sync_namespaces(w);
}

void watcher_on_forbidden(struct watcher *w, watcher_forbidden_fn fn, void *userdata) {
	w->forbidden_fn = fn;
	w->forbidden_userdata = userdata;
}

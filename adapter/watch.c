#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "adapter/cevent.h"
#include "adapter/discovery.h"
#include "adapter/log.h"
#include "adapter/metrics.h"
#include "adapter/ndjson.h"
#include "adapter/state.h"
#include "adapter/util/backoff.h"
#include "adapter/util/buf.h"
#include "adapter/util/hashmap.h"
#include "adapter/watch.h"

#define LIST_PAGE_LIMIT 500
#define BACKOFF_INITIAL_USEC (500ull * 1000ull)
#define BACKOFF_MAX_USEC (30ull * 1000000ull)
#define RETRY_AFTER_MAX_USEC (300ull * 1000000ull)
#define ERROR_BODY_MAX (64u * 1024u)
#define DISCOVERY_MAX (8u * 1024u * 1024u)
/* A watch that ends sooner than this without an event counts as a failure,
 * so a server that closes at once is not hammered. */
#define SHORT_STREAM_USEC (1000000ull)

enum watch_state { ST_IDLE, ST_LISTING, ST_WATCHING, ST_WAITING };
enum pending { PENDING_NONE, PENDING_RELIST, PENDING_BAD_STREAM };

struct watch {
	struct watcher *w;
	char *ns; /* NULL: cluster-wide */
	char *base_path;
	enum watch_state state;
	struct http_xfer xfer;
	struct curl_slist *headers;
	struct ndjson lines;
	struct ndjson_list *list;
	struct buf errbody;
	long status;
	char rv[64];
	char *list_continue;
	bool synced;
	bool relisting;
	unsigned generation;
	struct hashmap objects;
	enum pending pending;
	int stream_error;
	struct backoff backoff;
	struct loop_timer timer;
	uint64_t started_usec;
	unsigned events_in_stream;
	uint64_t retry_after_usec;
	bool announced;
	bool paused; /* backpressure: the queue is full */
	bool resumed; /* state taken from a checkpoint */
	bool relist_on_resume; /* the checkpoint was taken in the middle of a relist */
	bool list_restarted;   /* a continue token expired during this list */
	char list_rv[64];      /* the list's version, applied when the list completes */
	char *key;    /* names the watch in checkpoints */
	struct metrics_watch *mw;
	bool streamed; /* a watch stream was opened before */
	bool failing;  /* the last list or watch failed; cleared by a 200 answer */
};

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
	struct watch **watches;
	size_t n_watches;
	struct cevent_params params;
	char *escaped_selector;
	bool stopped;
	struct metrics_resource *mres;
};

static void watch_list_start(struct watch *wa);
static void watch_stream_start(struct watch *wa);
static void adopt_checkpoint(struct watch *wa);

/* ---------------- object state ---------------- */

static const char *obj_key(const struct kobj *obj, char *buf, size_t len) {
	if (obj->uid[0])
		return obj->uid;
	snprintf(buf, len, "%s/%s", obj->namespace, obj->name);
	return buf;
}

/* Records the object's latest state. Returns the previous resourceVersion's
 * equality: 1 if it was already known at this resourceVersion, 0 otherwise,
 * or -ENOMEM. */
static int state_put(struct watch *wa, const struct kobj *obj) {
	char kbuf[2 * NDJSON_NAME_MAX + 2];
	const char *key = obj_key(obj, kbuf, sizeof(kbuf));
	struct state_object *o = hashmap_get(&wa->objects, key), *n;
	/* The last state is needed only to send it with a delete found by a
	 * relist, in Resource mode, unless references were asked for. */
	bool keep_json = wa->w->ctx->cfg->mode == CONFIG_MODE_RESOURCE &&
		!wa->w->ctx->cfg->object_state_refs;

	if (o && strcmp(o->rv, obj->resource_version) == 0) {
		o->generation = wa->generation;
		return 1;
	}
	wa->w->ctx->changes++;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->rv = strdup(obj->resource_version);
	n->name = strdup(obj->name);
	n->ns = strdup(obj->namespace);
	if (keep_json) {
		n->json = malloc(obj->json_len + 1);
		if (n->json) {
			memcpy(n->json, obj->json, obj->json_len);
			n->json[obj->json_len] = '\0';
			n->json_len = obj->json_len;
		}
	}
	n->generation = wa->generation;
	n->typed = obj->kind[0] && obj->api_version[0];
	if (!n->rv || !n->name || !n->ns || (keep_json && !n->json) ||
		hashmap_put(&wa->objects, key, n) < 0) {
		state_object_free(n);
		return -ENOMEM;
	}
	state_object_free(o);
	return 0;
}

/* Forgets a deleted object. Returns its last known resourceVersion in
 * ret_rv (empty if unknown): a delete's id is made from it, so the delete a
 * relist finds and the one a watch reports carry the same id. */
static void state_remove(struct watch *wa, const struct kobj *obj, char *ret_rv, size_t rv_len) {
	char kbuf[2 * NDJSON_NAME_MAX + 2];
	struct state_object *o = hashmap_remove(&wa->objects, obj_key(obj, kbuf, sizeof(kbuf)));

	snprintf(ret_rv, rv_len, "%s", o ? o->rv : obj->resource_version);
	wa->w->ctx->changes++;
	state_object_free(o);
}

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

static void count(struct watch *wa, enum metrics_watch_event ev) {
	metrics_count_event(wa->w->mres, wa->mw, ev, loop_now_usec());
}

/* Returns 0 or a negative errno (out of memory): the caller then ends the
 * stream, which resumes from the last version whose events were queued. */
static int emit(struct watch *wa, enum cevent_op op, const struct kobj *obj) {
	struct watcher *w = wa->w;
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
	if (r == 0)
		ev->arrival_usec = loop_now_usec();
	if (r == 0) {
		r = sink_submit(w->ctx->sink, ev);
		if (r < 0)
			cevent_destroy(ev);
	}
	if (r < 0)
		log_error("watch", "cannot queue an event, resuming the stream before it",
			LOG_STR("resource", w->label), LOG_STR("namespace", obj->namespace),
			LOG_STR("name", obj->name), LOG_STR("error", strerror(-r)));
	return r;
}

/* ---------------- failures and retries ---------------- */

static void handle_timer(struct loop_timer *t, void *userdata) {
	struct watch *wa = userdata;

	(void)t;
	if (wa->relisting || !wa->synced)
		watch_list_start(wa);
	else
		watch_stream_start(wa);
}

/* Waits (backoff, at least Retry-After) and then resumes: a relist if the
 * watch must list again, a watch from the last resourceVersion otherwise. */
static void retry_later(struct watch *wa, const char *msg, long status, const char *detail) {
	uint64_t delay = backoff_next(&wa->backoff);

	if (wa->retry_after_usec > delay)
		delay = wa->retry_after_usec < RETRY_AFTER_MAX_USEC ? wa->retry_after_usec :
								      RETRY_AFTER_MAX_USEC;
	wa->state = ST_WAITING;
	wa->failing = true;
	log_warn("watch", msg, LOG_STR("resource", wa->w->label),
		LOG_STR("namespace", wa->ns ? wa->ns : ""), LOG_INT("status", status),
		LOG_STR("error", detail ? detail : ""), LOG_INT("retry_in_ms", delay / 1000u));
	loop_timer_arm_in(wa->w->ctx->loop, &wa->timer, delay);
}

static void fatal(struct watcher *w) {
	w->ctx->fatal(w->ctx->userdata);
}

/* The message of a Status body (or of an ERROR event's text kept there). */
static void status_message(const struct buf *body, char *out, size_t len) {
	const char *m = NULL;
	yajl_val root;

	out[0] = '\0';
	if (!body->len)
		return;
	root = yajl_tree_parse(body->data, NULL, 0);
	for (size_t i = 0; YAJL_IS_OBJECT(root) && i < root->u.object.len; i++)
		if (strcmp(root->u.object.keys[i], "message") == 0 &&
			YAJL_IS_STRING(root->u.object.values[i]))
			m = root->u.object.values[i]->u.string;
	/* Not JSON (an ERROR event's message is kept as text): use it as it is. */
	snprintf(out, len, "%s", m ? m : root ? "" : body->data);
	yajl_tree_free(root);
}

/* An HTTP answer other than 200 to a list or a watch. */
static void handle_http_failure(struct watch *wa, long status) {
	struct watcher *w = wa->w;
	char msg[600] = "";
	bool permanent = false;
	const char *what = "request failed";

	/* The body is a Status; its message is what a person needs. */
	status_message(&wa->errbody, msg, sizeof(msg));
	switch (status) {
	case 401:
		kube_token_rejected(w->ctx->kube);
		what = "unauthorized (401): the token was rejected; re-reading it";
		permanent = true;
		break;
	case 403:
		what = "forbidden (403): the identity may not list and watch this resource; check the "
		       "Role or ClusterRole";
		permanent = true;
		break;
	case 404:
		what = "not found (404): the resource is not served";
		permanent = true;
		break;
	case 400:
	case 422:
		what = "bad request: check the label selector";
		permanent = true;
		break;
	case 504:
		/* "Too large resource version": the server is behind; list again. */
		if (strstr(msg, "Too large resource version") || strstr(msg, "too large resource version"))
			wa->relisting = wa->synced;
		what = "server timeout";
		break;
	default:
		break;
	}
	if (permanent && w->ctx->cfg->fail_fast) {
		log_error("watch", what, LOG_STR("resource", w->label),
			LOG_STR("namespace", wa->ns ? wa->ns : ""), LOG_INT("status", status),
			LOG_STR("error", msg), LOG_BOOL("fail_fast", true));
		fatal(w);
		return;
	}
	if (permanent)
		log_error("watch", what, LOG_STR("resource", w->label),
			LOG_STR("namespace", wa->ns ? wa->ns : ""), LOG_INT("status", status),
			LOG_STR("error", msg));
	retry_later(wa, "list or watch failed, retrying", status, msg);
}

static size_t handle_header(char *buffer, size_t size, size_t nitems, void *userdata) {
	struct watch *wa = userdata;
	long status = 0;

	sink_retry_after_header(buffer, size * nitems, &wa->retry_after_usec);
	/* The end of a 200 answer's headers: the server is reachable again. */
	if (size * nitems <= 2 && (buffer[0] == '\r' || buffer[0] == '\n') &&
		curl_easy_getinfo(wa->xfer.easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
		status == 200)
		wa->failing = false;
	return size * nitems;
}

/* Backpressure: before taking a chunk, stop reading if the queue is full.
 * curl keeps the chunk and hands it over again after watcher_resume(). */
static bool must_pause(struct watch *wa) {
	if (!sink_full(wa->w->ctx->sink))
		return false;
	if (!wa->paused)
		log_debug("watch", "delivery queue full, pausing the stream",
			LOG_STR("resource", wa->w->label), LOG_STR("namespace", wa->ns ? wa->ns : ""));
	wa->paused = true;
	return true;
}

/* Captures the body of a non-200 answer (a Status). Returns true if so. */
static bool capture_error_body(struct watch *wa, const char *data, size_t n) {
	if (!wa->status)
		curl_easy_getinfo(wa->xfer.easy, CURLINFO_RESPONSE_CODE, &wa->status);
	if (wa->status == 200)
		return false;
	if (buf_append(&wa->errbody, data, n) == -E2BIG) {
		/* Keep the start; the message comes early in a Status. */
	}
	return true;
}

static int append_query(struct buf *b, const char *key, const char *value, CURL *easy) {
	char *esc = curl_easy_escape(easy, value, 0);
	int r;

	if (!esc)
		return -ENOMEM;
	r = buf_printf(b, "%c%s=%s", strchr(b->data ? b->data : "", '?') ? '&' : '?', key, esc);
	curl_free(esc);
	return r;
}

/* Resets the transfer for a new request; the caller then builds the path
 * (escaping needs the handle) and calls finish_prepare(). */
static int prepare(struct watch *wa, curl_write_callback write_fn, http_done_fn done) {
	int r;

	curl_slist_free_all(wa->headers);
	wa->headers = NULL;
	r = http_xfer_init(&wa->xfer, done, wa);
	if (r < 0)
		return r;
	curl_easy_setopt(wa->xfer.easy, CURLOPT_WRITEFUNCTION, write_fn);
	curl_easy_setopt(wa->xfer.easy, CURLOPT_WRITEDATA, wa);
	curl_easy_setopt(wa->xfer.easy, CURLOPT_HEADERFUNCTION, handle_header);
	curl_easy_setopt(wa->xfer.easy, CURLOPT_HEADERDATA, wa);
	wa->status = 0;
	wa->paused = false;
	wa->retry_after_usec = 0;
	wa->pending = PENDING_NONE;
	wa->stream_error = 0;
	buf_reset(&wa->errbody);
	return 0;
}

/* ---------------- listing ---------------- */

static int handle_list_item(const struct kobj *obj, void *userdata) {
	struct watch *wa = userdata;
	char kbuf[2 * NDJSON_NAME_MAX + 2];
	struct state_object *prev;
	bool known;
	int r;

	count(wa, METRICS_EV_LISTED);
	prev = hashmap_get(&wa->objects, obj_key(obj, kbuf, sizeof(kbuf)));
	known = prev != NULL;
	r = state_put(wa, obj);
	if (r < 0)
		return r;
	if (r == 1)
		return 0; /* unchanged since we last saw it */
	if (wa->relisting)
		return emit(wa, known ? CEVENT_UPDATE : CEVENT_ADD, obj);
	if (wa->w->ctx->cfg->initial_events)
		return emit(wa, CEVENT_ADD, obj);
	return 0;
}

static size_t handle_list_data(char *data, size_t size, size_t nmemb, void *userdata) {
	struct watch *wa = userdata;
	size_t n = size * nmemb;
	int r;

	if (capture_error_body(wa, data, n))
		return n;
	if (must_pause(wa))
		return CURL_WRITEFUNC_PAUSE;
	r = ndjson_list_feed(wa->list, data, n);
	if (r < 0) {
		wa->stream_error = r;
		return 0; /* abort; the done callback decides */
	}
	return n;
}

/* After a complete relist: objects no longer listed were deleted in the gap
 * (with events), or were only on the pages of an abandoned first list
 * (quietly, unless they were announced as initial events). */
static void sweep_deleted(struct watch *wa, bool with_events) {
	struct hashmap_iter it = { 0 };
	const char *key;
	void *v;

	while (hashmap_next(&wa->objects, &it, &key, &v)) {
		struct state_object *o = v;
		struct kobj obj;
		char ref[1200];
		int n;

		if (o->generation == wa->generation)
			continue;
		if (!with_events) {
			hashmap_remove(&wa->objects, key);
			state_object_free(o);
			continue;
		}
		memset(&obj, 0, sizeof(obj));
		if (o->json) {
			obj.json = o->json;
			obj.json_len = o->json_len;
			if (o->typed) {
				/* The stored object has them: nothing to splice in. */
				snprintf(obj.kind, sizeof(obj.kind), "%s", wa->w->params.default_kind);
				snprintf(obj.api_version, sizeof(obj.api_version), "%s",
					wa->w->params.default_api_version);
			}
		} else {
			/* Only a reference was kept: the delete carries it. */
			n = snprintf(ref, sizeof(ref),
				"{\"kind\":\"%s\",%s%s%s\"name\":\"%s\",\"apiVersion\":\"%s\"}",
				wa->w->params.default_kind, *o->ns ? "\"namespace\":\"" : "", o->ns,
				*o->ns ? "\"," : "", o->name, wa->w->params.default_api_version);
			obj.json = ref;
			obj.json_len = n > 0 && (size_t)n < sizeof(ref) ? (size_t)n : 0;
			snprintf(obj.kind, sizeof(obj.kind), "%s", wa->w->params.default_kind);
			snprintf(obj.api_version, sizeof(obj.api_version), "%s",
				wa->w->params.default_api_version);
		}
		snprintf(obj.name, sizeof(obj.name), "%s", o->name);
		snprintf(obj.namespace, sizeof(obj.namespace), "%s", o->ns);
		snprintf(obj.resource_version, sizeof(obj.resource_version), "%s", o->rv);
		if (!strchr(key, '/'))
			snprintf(obj.uid, sizeof(obj.uid), "%s", key);
		/* Kind and apiVersion come from the object itself when it was
		 * stored from a watch event, else from the resource. */
		emit(wa, CEVENT_DELETE, &obj);
		hashmap_remove(&wa->objects, key);
		state_object_free(o);
		wa->w->ctx->changes++;
	}
}

static void handle_list_done(struct http_xfer *x, int err, long status, const char *errbuf,
	void *userdata) {
	struct watch *wa = userdata;
	struct watcher *w = wa->w;
	const char *rv = "", *cont = "", *message = "";
	long long scode = 0;
	int r;

	(void)x;
	if (err || status != 200) {
		ndjson_list_destroy(wa->list);
		wa->list = NULL;
		if (err == -ECANCELED && wa->stream_error) {
			retry_later(wa, wa->stream_error == -E2BIG ?
					"list item larger than --max-event-bytes, retrying" :
					"invalid list response, retrying",
				status, strerror(-wa->stream_error));
			return;
		}
		if (err) {
			retry_later(wa, "list failed, retrying", 0, errbuf);
			return;
		}
		if (status == 410 && w->mres)
			w->mres->expired++;
		if (status == 410 && wa->list_continue) {
			/* The continue token expired: start the list over; objects seen
			 * only on the abandoned pages are swept at the end. */
			free(wa->list_continue);
			wa->list_continue = NULL;
			wa->list_rv[0] = '\0';
			wa->list_restarted = true;
			watch_list_start(wa);
			return;
		}
		handle_http_failure(wa, status);
		return;
	}
	r = ndjson_list_end(wa->list, &rv, &cont, &scode, &message);
	if (r == 0 && !*rv)
		r = -EBADMSG;
	if (r < 0) {
		ndjson_list_destroy(wa->list);
		wa->list = NULL;
		retry_later(wa, "invalid list response, retrying", status, strerror(-r));
		return;
	}
	free(wa->list_continue);
	wa->list_continue = *cont ? strdup(cont) : NULL;
	/* Only a complete list (and its sweep) moves the watch's version on: a
	 * checkpoint taken between pages must not skip what the rest would show. */
	if (!wa->list_continue || !wa->list_rv[0])
		snprintf(wa->list_rv, sizeof(wa->list_rv), "%s", rv);
	ndjson_list_destroy(wa->list);
	wa->list = NULL;
	if (wa->list_continue) {
		watch_list_start(wa);
		return;
	}
	if (wa->relisting || wa->list_restarted)
		sweep_deleted(wa, wa->relisting || wa->w->ctx->cfg->initial_events);
	snprintf(wa->rv, sizeof(wa->rv), "%s", wa->list_rv);
	wa->list_rv[0] = '\0';
	wa->list_restarted = false;
	wa->relisting = false;
	wa->relist_on_resume = false;
	wa->synced = true;
	metrics_count_event(NULL, wa->mw, METRICS_EV_LISTED, loop_now_usec());
	backoff_reset(&wa->backoff);
	if (!wa->announced) {
		wa->announced = true;
		log_info("watch", "watching", LOG_STR("resource", w->label),
			LOG_STR("namespace", wa->ns ? wa->ns : ""), LOG_STR("resourceVersion", wa->rv),
			LOG_INT("objects", wa->objects.count));
	} else {
		log_info("watch", "relisted", LOG_STR("resource", w->label),
			LOG_STR("namespace", wa->ns ? wa->ns : ""), LOG_STR("resourceVersion", wa->rv),
			LOG_INT("objects", wa->objects.count));
	}
	watch_stream_start(wa);
}

static void watch_list_start(struct watch *wa) {
	struct watcher *w = wa->w;
	struct buf path;
	char limit[16];
	int r;

	if (w->stopped)
		return;
	buf_init(&path, 0);
	if (!wa->list_continue) {
		/* A new list (not a next page): a new generation for the sweep. */
		wa->generation++;
		if (wa->synced)
			wa->relisting = true;
		if (wa->relisting && w->mres)
			w->mres->relists++;
	}
	r = prepare(wa, (curl_write_callback)handle_list_data, handle_list_done);
	if (r == 0)
		r = buf_append_str(&path, wa->base_path);
	snprintf(limit, sizeof(limit), "%d", LIST_PAGE_LIMIT);
	if (r == 0)
		r = append_query(&path, "limit", limit, wa->xfer.easy);
	if (r == 0 && wa->list_continue)
		r = append_query(&path, "continue", wa->list_continue, wa->xfer.easy);
	if (r == 0 && w->res->label_selector)
		r = append_query(&path, "labelSelector", w->res->label_selector, wa->xfer.easy);
	if (r == 0)
		r = kube_setup_request(w->ctx->kube, wa->xfer.easy, path.data, &wa->headers);
	if (r == 0)
		r = ndjson_list_create(w->ctx->cfg->max_event_bytes, handle_list_item, wa, &wa->list);
	if (r == 0)
		r = http_start(w->ctx->http, &wa->xfer);
	buf_finish(&path);
	if (r < 0) {
		ndjson_list_destroy(wa->list);
		wa->list = NULL;
		retry_later(wa, "cannot start a list, retrying", 0, strerror(-r));
		return;
	}
	wa->state = ST_LISTING;
}

/* ---------------- watching ---------------- */

static int handle_line(const char *line, size_t len, void *userdata) {
	struct watch *wa = userdata;
	struct ndjson_event ev;
	int r;

	r = ndjson_parse_event(line, len, &ev);
	if (r < 0)
		return r;
	count(wa, ev.type == NDJSON_ADDED ? METRICS_EV_ADDED :
		ev.type == NDJSON_MODIFIED    ? METRICS_EV_MODIFIED :
		ev.type == NDJSON_DELETED     ? METRICS_EV_DELETED :
		ev.type == NDJSON_BOOKMARK    ? METRICS_EV_BOOKMARK :
						METRICS_EV_ERROR);
	switch (ev.type) {
	case NDJSON_ADDED:
	case NDJSON_MODIFIED: {
		char kbuf[2 * NDJSON_NAME_MAX + 2];
		bool known = hashmap_get(&wa->objects, obj_key(&ev.obj, kbuf, sizeof(kbuf))) != NULL;
		r = state_put(wa, &ev.obj);
		if (r < 0)
			return r;
		if (r == 0)
			r = emit(wa, ev.type == NDJSON_ADDED || !known ? CEVENT_ADD : CEVENT_UPDATE,
				&ev.obj);
		if (r < 0)
			return r;
		break;
	}
	case NDJSON_DELETED: {
		struct kobj last = ev.obj;
		state_remove(wa, &ev.obj, last.resource_version, sizeof(last.resource_version));
		r = emit(wa, CEVENT_DELETE, &last);
		if (r < 0)
			return r;
		break;
	}
	case NDJSON_BOOKMARK:
		break;
	case NDJSON_ERROR:
		if (ev.obj.code == 410 || strcmp(ev.obj.reason, "Expired") == 0 ||
			strcmp(ev.obj.reason, "Gone") == 0) {
			wa->pending = PENDING_RELIST;
			if (wa->w->mres)
				wa->w->mres->expired++;
			log_info("watch", "watch expired, listing again", LOG_STR("resource", wa->w->label),
				LOG_STR("namespace", wa->ns ? wa->ns : ""), LOG_STR("error", ev.obj.message));
		} else {
			if (strstr(ev.obj.message, "Too large resource version") ||
				strstr(ev.obj.message, "too large resource version"))
				wa->pending = PENDING_RELIST;
			else
				wa->pending = PENDING_BAD_STREAM;
			wa->status = ev.obj.code;
			buf_reset(&wa->errbody);
			buf_append_str(&wa->errbody, ev.obj.message);
			log_warn("watch", "error event in the watch stream",
				LOG_STR("resource", wa->w->label), LOG_STR("namespace", wa->ns ? wa->ns : ""),
				LOG_INT("code", ev.obj.code), LOG_STR("reason", ev.obj.reason),
				LOG_STR("error", ev.obj.message));
		}
		return -ECANCELED;
	case NDJSON_UNKNOWN:
		log_debug("watch", "ignoring an unknown watch event type",
			LOG_STR("type", ev.type_name));
		break;
	}
	/* Only after the event is queued does its version count as seen. */
	if (ev.obj.resource_version[0]) {
		snprintf(wa->rv, sizeof(wa->rv), "%s", ev.obj.resource_version);
		wa->w->ctx->changes++;
	}
	wa->events_in_stream++;
	return 0;
}

static size_t handle_watch_data(char *data, size_t size, size_t nmemb, void *userdata) {
	struct watch *wa = userdata;
	size_t n = size * nmemb;
	int r;

	if (capture_error_body(wa, data, n))
		return n;
	if (must_pause(wa))
		return CURL_WRITEFUNC_PAUSE;
	r = ndjson_feed(&wa->lines, data, n, handle_line, wa);
	if (r < 0) {
		if (wa->pending == PENDING_NONE)
			wa->pending = PENDING_BAD_STREAM;
		wa->stream_error = r;
		return 0;
	}
	if (r > 0)
		backoff_reset(&wa->backoff);
	return n;
}

static void handle_watch_done(struct http_xfer *x, int err, long status, const char *errbuf,
	void *userdata) {
	struct watch *wa = userdata;
	uint64_t lasted = loop_now_usec() - wa->started_usec;

	(void)x;
	ndjson_reset(&wa->lines);
	switch (wa->pending) {
	case PENDING_RELIST:
		wa->relisting = true;
		watch_list_start(wa);
		return;
	case PENDING_BAD_STREAM:
		if (wa->stream_error == -E2BIG)
			log_error("watch", "a watch event is longer than --max-event-bytes; raise it",
				LOG_STR("resource", wa->w->label), LOG_STR("namespace", wa->ns ? wa->ns : ""),
				LOG_INT("max_event_bytes", wa->w->ctx->cfg->max_event_bytes));
		retry_later(wa, "bad watch stream, resuming from the last resourceVersion", wa->status,
			wa->stream_error ? strerror(-wa->stream_error) : wa->errbody.data);
		return;
	case PENDING_NONE:
		break;
	}
	if (err) {
		retry_later(wa, "watch connection failed, resuming", 0, errbuf);
		return;
	}
	if (status == 410) {
		if (wa->w->mres)
			wa->w->mres->expired++;
		wa->relisting = true;
		watch_list_start(wa);
		return;
	}
	if (status != 200) {
		handle_http_failure(wa, status);
		return;
	}
	if (!wa->events_in_stream && lasted < SHORT_STREAM_USEC) {
		retry_later(wa, "watch ended at once, resuming", status, "");
		return;
	}
	/* The server ended the stream (timeoutSeconds): resume where we were. */
	log_debug("watch", "watch ended, resuming", LOG_STR("resource", wa->w->label),
		LOG_STR("resourceVersion", wa->rv));
	watch_stream_start(wa);
}

static void watch_stream_start(struct watch *wa) {
	struct watcher *w = wa->w;
	const struct config *cfg = w->ctx->cfg;
	struct buf path;
	char timeout[16];
	int r;

	if (w->stopped)
		return;
	buf_init(&path, 0);
	r = prepare(wa, (curl_write_callback)handle_watch_data, handle_watch_done);
	if (r == 0)
		r = buf_append_str(&path, wa->base_path);
	/* client-go's reflector asks for between one and two times its minimum,
	 * so that many watches do not expire together. */
	snprintf(timeout, sizeof(timeout), "%u",
		cfg->watch_timeout_sec + (unsigned)(backoff_random() * cfg->watch_timeout_sec));
	if (r == 0)
		r = append_query(&path, "watch", "1", wa->xfer.easy);
	if (r == 0)
		r = append_query(&path, "allowWatchBookmarks", "true", wa->xfer.easy);
	if (r == 0)
		r = append_query(&path, "resourceVersion", wa->rv, wa->xfer.easy);
	if (r == 0)
		r = append_query(&path, "timeoutSeconds", timeout, wa->xfer.easy);
	if (r == 0 && w->res->label_selector)
		r = append_query(&path, "labelSelector", w->res->label_selector, wa->xfer.easy);
	if (r == 0)
		r = kube_setup_request(w->ctx->kube, wa->xfer.easy, path.data, &wa->headers);
	if (r == 0)
		r = http_start(w->ctx->http, &wa->xfer);
	buf_finish(&path);
	if (r < 0) {
		retry_later(wa, "cannot start a watch, retrying", 0, strerror(-r));
		return;
	}
	wa->state = ST_WATCHING;
	wa->started_usec = loop_now_usec();
	wa->events_in_stream = 0;
	if (wa->streamed && w->mres)
		w->mres->watch_restarts++;
	wa->streamed = true;
}

/* ---------------- the watcher: discovery, then its watches ---------------- */

static void watch_destroy(struct watch *wa) {
	if (!wa)
		return;
	loop_timer_disarm(wa->w->ctx->loop, &wa->timer);
	http_xfer_finish(wa->w->ctx->http, &wa->xfer);
	curl_slist_free_all(wa->headers);
	ndjson_finish(&wa->lines);
	ndjson_list_destroy(wa->list);
	buf_finish(&wa->errbody);
	state_objects_clear(&wa->objects);
	metrics_watch_remove(wa->w->ctx->metrics, wa->mw);
	free(wa->list_continue);
	free(wa->ns);
	free(wa->base_path);
	free(wa->key);
	free(wa);
}

/* Takes over the objects and resourceVersion a checkpoint kept for this
 * watch: the watch resumes from there, and if that version has expired the
 * relist reports what changed while the adapter was away. */
static void adopt_checkpoint(struct watch *wa) {
	struct state_watch *sw = state_find_watch(wa->w->ctx->checkpoint, wa->key);

	if (!sw || sw->adopted)
		return;
	sw->adopted = true;
	wa->objects = sw->objects;
	hashmap_init(&sw->objects);
	snprintf(wa->rv, sizeof(wa->rv), "%s", sw->rv);
	wa->synced = true;
	wa->resumed = true;
	wa->relist_on_resume = sw->relist;
}

/* Names a watch across restarts: what it watches, where, with which selector. */
static char *watch_key(const struct watcher *w, const char *ns) {
	char *key = NULL;

	if (asprintf(&key, "%s/%s|%s|%s", w->api_version,
		    w->res->kind ? w->res->kind : w->res->resource, ns ? ns : "*",
		    w->res->label_selector ? w->res->label_selector : "") < 0)
		return NULL;
	return key;
}

static int watch_create(struct watcher *w, const char *ns, struct watch **ret) {
	struct watch *wa = calloc(1, sizeof(*wa));
	const struct config_resource *res = w->res;
	int n;

	if (!wa)
		return -ENOMEM;
	wa->w = w;
	ndjson_init(&wa->lines, w->ctx->cfg->max_event_bytes);
	buf_init(&wa->errbody, ERROR_BODY_MAX);
	hashmap_init(&wa->objects);
	backoff_init(&wa->backoff, BACKOFF_INITIAL_USEC, BACKOFF_MAX_USEC);
	loop_timer_init(&wa->timer, handle_timer, wa);
	wa->mw = metrics_watch_add(w->ctx->metrics, w->mres, ns);
	if (ns && !(wa->ns = strdup(ns)))
		goto oom;
	if (*res->group)
		n = ns ? asprintf(&wa->base_path, "/apis/%s/%s/namespaces/%s/%s", res->group,
				 res->version, ns, w->disc.resource) :
			 asprintf(&wa->base_path, "/apis/%s/%s/%s", res->group, res->version,
				 w->disc.resource);
	else
		n = ns ? asprintf(&wa->base_path, "/api/%s/namespaces/%s/%s", res->version, ns,
				 w->disc.resource) :
			 asprintf(&wa->base_path, "/api/%s/%s", res->version, w->disc.resource);
	if (n < 0) {
		wa->base_path = NULL;
		goto oom;
	}
	wa->key = watch_key(w, ns);
	if (!wa->key)
		goto oom;
	adopt_checkpoint(wa);
	*ret = wa;
	return 0;
oom:
	watch_destroy(wa);
	return -ENOMEM;
}

static int start_watches(struct watcher *w) {
	const struct config *cfg = w->ctx->cfg;
	size_t n = (!w->disc.namespaced || cfg->all_namespaces) ? 1 : cfg->n_namespaces;
	int r;

	w->watches = calloc(n, sizeof(*w->watches));
	if (!w->watches)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *ns = (!w->disc.namespaced || cfg->all_namespaces) ? NULL : cfg->namespaces[i];
		r = watch_create(w, ns, &w->watches[i]);
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
	for (size_t i = 0; i < w->n_watches; i++) {
		struct watch *wa = w->watches[i];
		if (!wa->resumed) {
			watch_list_start(wa);
			continue;
		}
		if (wa->relist_on_resume) {
			/* synced: this list is a relist, diffed and swept. */
			wa->announced = true;
			log_info("watch", "watching", LOG_STR("resource", w->label),
				LOG_STR("namespace", wa->ns ? wa->ns : ""),
				LOG_INT("objects", wa->objects.count), LOG_BOOL("from_checkpoint", true),
				LOG_BOOL("relist", true));
			watch_list_start(wa);
			continue;
		}
		wa->announced = true;
		log_info("watch", "watching", LOG_STR("resource", w->label),
			LOG_STR("namespace", wa->ns ? wa->ns : ""), LOG_STR("resourceVersion", wa->rv),
			LOG_INT("objects", wa->objects.count), LOG_BOOL("from_checkpoint", true));
		watch_stream_start(wa);
	}
	return 0;
}

static void discovery_request(struct watcher *w);

static void handle_discovery_timer(struct loop_timer *t, void *userdata) {
	(void)t;
	discovery_request(userdata);
}

static void discovery_retry(struct watcher *w, const char *msg, long status, const char *detail,
	bool permanent) {
	uint64_t delay;

	if (permanent && w->ctx->cfg->fail_fast) {
		log_error("watch", msg, LOG_STR("resource", w->label), LOG_INT("status", status),
			LOG_STR("error", detail), LOG_BOOL("fail_fast", true));
		w->ctx->fatal(w->ctx->userdata);
		return;
	}
	delay = backoff_next(&w->backoff);
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
		discovery_retry(w, "cannot reach the API server for discovery, retrying", 0, errbuf,
			false);
		return;
	}
	if (status == 401)
		kube_token_rejected(w->ctx->kube);
	if (status == 404) {
		snprintf(detail, sizeof(detail), "the API server does not serve %s (is its CRD installed?)",
			w->api_version);
		discovery_retry(w, "resource not served, retrying discovery", status, detail, true);
		return;
	}
	if (status != 200) {
		snprintf(detail, sizeof(detail), "discovery of %s answered %ld", w->api_version, status);
		discovery_retry(w, "discovery failed, retrying", status, detail,
			status == 401 || status == 403);
		return;
	}
	r = discovery_parse(w->body.data ? w->body.data : "", w->body.len, w->res->kind,
		w->res->resource, &w->disc);
	if (r == -ENOENT) {
		snprintf(detail, sizeof(detail), "%s does not serve %s %s (is its CRD installed?)",
			w->api_version, w->res->kind ? "kind" : "resource",
			w->res->kind ? w->res->kind : w->res->resource);
		discovery_retry(w, "resource not served, retrying discovery", status, detail, true);
		return;
	}
	if (r < 0) {
		discovery_retry(w, "invalid discovery document, retrying", status, "not an APIResourceList",
			false);
		return;
	}
	if (!w->disc.can_list || !w->disc.can_watch) {
		snprintf(detail, sizeof(detail), "%s %s does not support list and watch", w->api_version,
			w->disc.resource);
		discovery_retry(w, "resource cannot be watched", status, detail, true);
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
		discovery_retry(w, "cannot start watches", 0, strerror(-r), false);
}

static void discovery_request(struct watcher *w) {
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
		curl_easy_setopt(w->xfer.easy, CURLOPT_TIMEOUT_MS, 30000L);
		r = http_start(w->ctx->http, &w->xfer);
	}
	if (r < 0)
		discovery_retry(w, "cannot start discovery", 0, strerror(-r), false);
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
	discovery_request(w);
	return 0;
}

void watcher_stop(struct watcher *w) {
	if (!w)
		return;
	w->stopped = true;
	loop_timer_disarm(w->ctx->loop, &w->timer);
	http_cancel(w->ctx->http, &w->xfer);
	for (size_t i = 0; i < w->n_watches; i++) {
		loop_timer_disarm(w->ctx->loop, &w->watches[i]->timer);
		http_cancel(w->ctx->http, &w->watches[i]->xfer);
	}
}

void watcher_resume(struct watcher *w) {
	for (size_t i = 0; i < w->n_watches && !sink_full(w->ctx->sink); i++) {
		struct watch *wa = w->watches[i];
		if (!wa->paused)
			continue;
		wa->paused = false;
		/* May hand the kept chunk over at once, and pause again. If that
		 * chunk ends the stream (an ERROR event, a bad line), libcurl
		 * reports it here and forgets the transfer: finish it ourselves so
		 * the usual path retries, relists or resumes. */
		if (wa->xfer.active && http_pause_recv(w->ctx->http, &wa->xfer, false) < 0) {
			http_cancel(w->ctx->http, &wa->xfer);
			wa->xfer.done(&wa->xfer, -ECANCELED, wa->status, "stream ended on resume", wa);
		}
	}
}

int watcher_checkpoint(const struct watcher *w, struct state_writer *sw) {
	for (size_t i = 0; i < w->n_watches; i++) {
		struct watch *wa = w->watches[i];
		struct hashmap_iter it = { 0 };
		const char *key;
		void *v;
		int r;

		if (!wa->synced)
			continue; /* it lists afresh after a restart */
		/* In the middle of a relist the objects are partly updated: the
		 * restart must relist too, not resume from the old version. */
		r = state_writer_watch(sw, wa->key, wa->rv, wa->relisting || wa->relist_on_resume);
		while (r == 0 && hashmap_next(&wa->objects, &it, &key, &v))
			r = state_writer_object(sw, key, v);
		if (r < 0)
			return r;
	}
	return 0;
}

bool watcher_reachable(const struct watcher *w) {
	for (size_t i = 0; i < w->n_watches; i++)
		if (w->watches[i]->failing)
			return false;
	return true;
}

bool watcher_synced(const struct watcher *w) {
	if (!w->discovered)
		return false;
	for (size_t i = 0; i < w->n_watches; i++)
		if (!w->watches[i]->synced)
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

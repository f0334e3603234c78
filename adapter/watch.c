#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "adapter/ingest.h"
#include "adapter/log.h"
#include "adapter/util/backoff.h"
#include "adapter/util/buf.h"
#include "adapter/util/json.h"
#include "watch_internal.h"

#define BACKOFF_INITIAL_USEC (500ull * 1000ull)
#define BACKOFF_MAX_USEC (30ull * 1000000ull)
#define RETRY_AFTER_MAX_USEC (300ull * 1000000ull)
#define ERROR_BODY_MAX (64u * 1024u)

/* ---------------- failures and retries ---------------- */

static void handle_timer(struct loop_timer *t, void *userdata) {
	struct watch *wa = userdata;

	(void)t;
	if (wa->relisting || !wa->synced)
		watch_list_start(wa);
	else
		watch_stream_start(wa);
}

/* Enters ST_WAITING; the delay: backoff, at least Retry-After. */
uint64_t watch_begin_retry(struct watch *wa) {
	uint64_t delay = backoff_next(&wa->backoff);

	if (wa->retry_after_usec > delay)
		delay = wa->retry_after_usec < RETRY_AFTER_MAX_USEC ? wa->retry_after_usec :
								      RETRY_AFTER_MAX_USEC;
	wa->state = ST_WAITING;
	wa->failing = true;
	return delay;
}

/* Waits (backoff, at least Retry-After) and then resumes: a relist if the
 * watch must list again, a watch from the last resourceVersion otherwise. */
void watch_retry_later(struct watch *wa, const char *msg, long status, const char *detail) {
	uint64_t delay = watch_begin_retry(wa);

	log_warn("watch", msg, LOG_STR("resource", wa->owner->label),
		LOG_STR("namespace", ns_of(wa)), LOG_INT("status", status),
		LOG_STR("error", detail ? detail : ""), LOG_INT("retry_in_ms", delay / 1000u));
	loop_timer_arm_in(wa->ctx->loop, &wa->timer, delay);
}

/* The message of a Status body (or of an ERROR event's text kept there). */
static void status_message(const struct buf *body, char *out, size_t len) {
	const char *m = NULL;
	yajl_val root;

	out[0] = '\0';
	if (!body->len)
		return;
	/* Bounded: the body is the server's, of any depth. */
	root = json_parse_bounded(body->data, body->len, JSON_MAX_DEPTH, NULL, 0);
	for (size_t i = 0; YAJL_IS_OBJECT(root) && i < root->u.object.len; i++)
		if (strcmp(root->u.object.keys[i], "message") == 0 &&
			YAJL_IS_STRING(root->u.object.values[i]))
			m = root->u.object.values[i]->u.string;
	/* Not JSON (an ERROR event's message is kept as text): use it as it is. */
	snprintf(out, len, "%s", m ? m : root ? "" : body->data);
	yajl_tree_free(root);
}

bool watch_too_large_rv(const char *msg) {
	return strstr(msg, "Too large resource version") ||
		strstr(msg, "too large resource version");
}

/* An HTTP answer other than 200 to a list or a watch. */
void watch_http_failure(struct watch *wa, long status) {
	char msg[600] = "";
	bool permanent = false;
	const char *what = "request failed";

	/* The body is a Status; its message is what a person needs. */
	status_message(&wa->errbody, msg, sizeof(msg));
	switch (status) {
	case 401:
		if (wa->ctx->kube)
			kube_token_rejected(wa->ctx->kube);
		what = "unauthorized (401): the token was rejected; re-reading it";
		permanent = true;
		break;
	case 403:
		if (wa->owner->forbidden && wa->owner->forbidden(wa->owner->userdata)) {
			wa->state = ST_IDLE;
			wa->failing = true;
			return;
		}
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
		if (watch_too_large_rv(msg))
			wa->relisting = wa->synced;
		what = "server timeout";
		break;
	default:
		break;
	}
	if (permanent && wa->ctx->cfg->fail_fast) {
		log_error("watch", what, LOG_STR("resource", wa->owner->label),
			LOG_STR("namespace", ns_of(wa)), LOG_INT("status", status),
			LOG_STR("error", msg), LOG_BOOL("fail_fast", true));
		wa->ctx->fatal(wa->ctx->userdata);
		return;
	}
	if (permanent)
		log_error("watch", what, LOG_STR("resource", wa->owner->label),
			LOG_STR("namespace", ns_of(wa)), LOG_INT("status", status),
			LOG_STR("error", msg));
	watch_retry_later(wa, "list or watch failed, retrying", status, msg);
}

/* Appends ?key=value or &key=value, percent-encoding all but RFC 3986's
 * unreserved characters. */
int watch_append_query(struct buf *b, const char *key, const char *value) {
	int r = buf_printf(b, "%c%s=", strchr(b->data ? b->data : "", '?') ? '&' : '?', key);

	for (const unsigned char *p = (const unsigned char *)value; r >= 0 && *p; p++) {
		bool unreserved = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || strchr("-._~", *p);

		r = unreserved ? buf_printf(b, "%c", *p) : buf_printf(b, "%%%02X", *p);
	}
	return r < 0 ? r : 0;
}

/* Resets what an answer fills in and sends the request. */
int watch_send_request(struct watch *wa, enum watch_state state, const char *path,
	uint64_t limit_usec) {
	const struct watch_io *io = io_of(wa);
	char *p = strdup(path);
	int r;

	if (!p)
		return -ENOMEM;
	free(wa->request_path);
	wa->request_path = p;
	wa->limit_usec = limit_usec;
	wa->deadline_usec = loop_now_usec() + limit_usec;
	wa->status = 0;
	wa->paused = false;
	wa->retry_after_usec = 0;
	wa->pending = PENDING_NONE;
	wa->stream_error = 0;
	buf_reset(&wa->errbody);
	wa->state = state;
	r = io->start(wa, path, io->userdata);
	if (r == 0)
		loop_timer_arm(wa->ctx->loop, &wa->deadline_timer, wa->deadline_usec);
	return r;
}

/* ---------------- listing ---------------- */

static int handle_list_item(const struct kobj *obj, void *userdata) {
	struct watch *wa = userdata;
	enum objects_report report = wa->relisting ? OBJECTS_CHANGES :
		wa->ctx->cfg->initial_events      ? OBJECTS_ADDS :
						    OBJECTS_QUIET;
	struct ingest in;
	int r;

	count(wa, METRICS_EV_LISTED);
	r = ingest_begin(&in, wa->ctx->cfg, &wa->objects, obj, wa->owner->emit, wa->owner->userdata);
	if (r == 0)
		r = objects_list_item(&wa->objects, in.obj, report, ingest_emit, &in);
	ingest_end(&in);
	if (r < 0)
		wa->pending = PENDING_NOT_QUEUED;
	return r;
}

/* The next list starts from its first page. */
static void abandon_pages(struct watch *wa) {
	free(wa->list_continue);
	wa->list_continue = NULL;
}

static void list_failed(struct watch *wa, int err, long status, const char *errbuf) {
	kobj_list_destroy(wa->list);
	wa->list = NULL;
	if (err == -ECANCELED && wa->stream_error) {
		const char *msg = "invalid list response, retrying";

		if (wa->pending == PENDING_NOT_QUEUED)
			msg = "cannot queue a listed change, listing it again";
		else if (wa->stream_error == -E2BIG)
			msg = "list item larger than --max-event-bytes, retrying";

		watch_retry_later(wa, msg, status, kobj_strerror(wa->stream_error));
		return;
	}
	if (err == -ETIMEDOUT) {
		watch_retry_timed_out(wa, "list timed out (no complete answer within "
					  "--request-timeout), retrying", errbuf);
		return;
	}
	if (err) {
		watch_retry_later(wa, "list failed, retrying", 0, errbuf);
		return;
	}
	if (status == 410 && wa->owner->mres)
		wa->owner->mres->expired++;
	if (status == 410 && wa->list_continue) {
		/* The continue token expired: start the list over; objects seen
		 * only on the abandoned pages are swept at the end. */
		abandon_pages(wa);
		watch_list_start(wa);
		return;
	}
	watch_http_failure(wa, status);
}

static void list_done(struct watch *wa, int err, long status, const char *errbuf) {
	const char *rv = "", *cont = "", *message = "";
	char *next = NULL;
	long long scode = 0;
	int r;

	if (err || status != 200) {
		list_failed(wa, err, status, errbuf);
		return;
	}
	r = kobj_list_end(wa->list, &rv, &cont, &scode, &message);
	if (r == 0 && !*rv)
		r = -EBADMSG;
	/* Without its continue token, the list would look complete after this
	 * page, and the sweep would delete every object of the pages after it. */
	if (r == 0 && *cont && !(next = strdup(cont)))
		r = -ENOMEM;
	if (r == 0 && next && (r = watch_check_continue(wa, next)) < 0 && r != -ENOMEM) {
		char pages[32];

		snprintf(pages, sizeof(pages), "after %u pages", wa->list_pages);
		free(next);
		kobj_list_destroy(wa->list);
		wa->list = NULL;
		abandon_pages(wa);
		watch_retry_later(wa,
			r == -ELOOP ? "list failed: the server sent a continue token already seen in "
				      "this list (it would page forever); listing again" :
				      "list failed: more pages than WATCH_LIST_MAX_PAGES; listing again",
			status, pages);
		return;
	}
	if (r < 0) {
		free(next);
		kobj_list_destroy(wa->list);
		wa->list = NULL;
		watch_retry_later(wa, "invalid list response, retrying", status, kobj_strerror(r));
		return;
	}
	free(wa->list_continue);
	wa->list_continue = next;
	/* Only a complete list (and its sweep) moves the watch's version on: a
	 * checkpoint taken between pages must not skip what the rest would show. */
	if (!wa->list_continue || !wa->list_rv[0])
		snprintf(wa->list_rv, sizeof(wa->list_rv), "%s", rv);
	kobj_list_destroy(wa->list);
	wa->list = NULL;
	if (wa->list_continue) {
		watch_list_start(wa);
		return;
	}
	/* After a complete relist: objects no longer listed were deleted in the
	 * gap (with events), or were only on the pages of an abandoned first list
	 * (quietly, unless they were announced as initial events). */
	if (wa->relisting || wa->list_restarted) {
		const struct watch_owner *o = wa->owner;

		r = objects_sweep(&wa->objects, wa->relisting || wa->ctx->cfg->initial_events,
			o->kind, o->api_version, o->emit, o->userdata);
		if (r < 0) {
			/* The deletes not queued are found again by the next list. */
			watch_retry_later(wa, "cannot queue a delete a list found, listing again", 0,
				strerror(-r));
			return;
		}
	}
	snprintf(wa->rv, sizeof(wa->rv), "%s", wa->list_rv);
	wa->list_rv[0] = '\0';
	wa->list_restarted = false;
	wa->relisting = false;
	wa->relist_on_resume = false;
	wa->synced = true;
	metrics_count_event(NULL, wa->mw, METRICS_EV_LISTED, loop_now_usec());
	backoff_reset(&wa->backoff);
	log_info("watch", wa->announced ? "relisted" : "watching",
		LOG_STR("resource", wa->owner->label), LOG_STR("namespace", ns_of(wa)),
		LOG_STR("resourceVersion", wa->rv), LOG_INT("objects", objects_count(&wa->objects)));
	wa->announced = true;
	watch_stream_start(wa);
}

void watch_list_start(struct watch *wa) {
	struct buf path;
	char limit[16];
	int r;

	if (wa->stopped)
		return;
	buf_init(&path, 0);
	if (!wa->list_continue) {
		/* A new list (not a next page): a new generation for the sweep. */
		objects_list_begin(&wa->objects);
		hashmap_finish(&wa->list_tokens);
		hashmap_init(&wa->list_tokens);
		wa->list_pages = 0;
		wa->list_rv[0] = '\0';
		/* Objects recorded by an unfinished first list are swept at the
		 * end of this one, in case they are gone by now. */
		if (!wa->synced && objects_count(&wa->objects))
			wa->list_restarted = true;
		if (wa->synced)
			wa->relisting = true;
		if (wa->relisting && wa->owner->mres)
			wa->owner->mres->relists++;
	}
	r = buf_append_str(&path, wa->base_path);
	snprintf(limit, sizeof(limit), "%d", WATCH_LIST_PAGE_LIMIT);
	if (r == 0)
		r = watch_append_query(&path, "limit", limit);
	if (r == 0 && wa->list_continue)
		r = watch_append_query(&path, "continue", wa->list_continue);
	if (r == 0 && wa->owner->label_selector)
		r = watch_append_query(&path, "labelSelector", wa->owner->label_selector);
	if (r == 0 && wa->owner->field_selector)
		r = watch_append_query(&path, "fieldSelector", wa->owner->field_selector);
	if (r == 0)
		r = kobj_list_create(wa->ctx->cfg->max_event_bytes, handle_list_item, wa,
			&wa->list);
	if (r == 0)
		r = watch_send_request(wa, ST_LISTING, path.data, watch_request_timeout(wa));
	buf_finish(&path);
	if (r < 0) {
		kobj_list_destroy(wa->list);
		wa->list = NULL;
		watch_retry_later(wa, "cannot start a list, retrying", 0, strerror(-r));
	}
}

/* ---------------- the transport's side ---------------- */

void watch_io_answer(struct watch *wa, long status, uint64_t retry_after_usec) {
	wa->status = status;
	if (retry_after_usec)
		wa->retry_after_usec = retry_after_usec;
	/* The server is reachable again. */
	if (status == 200)
		wa->failing = false;
}

size_t watch_io_body(struct watch *wa, const char *data, size_t n) {
	/* A watch that hears something is alive. */
	if (wa->state == ST_WATCHING && !wa->paused)
		wa->deadline_usec = loop_now_usec() + wa->limit_usec;
	if (wa->status != 200) {
		/* A Status; keep its start, where the message is. */
		buf_append(&wa->errbody, data, n);
		return n;
	}
	/* Backpressure: before taking a chunk, stop reading if the queue is
	 * full. The transport hands it over again after watch_resume(). */
	if (wa->owner->full && wa->owner->full(wa->owner->userdata)) {
		if (!wa->paused)
			log_debug("watch", "delivery queue full, pausing the stream",
				LOG_STR("resource", wa->owner->label),
				LOG_STR("namespace", ns_of(wa)));
		if (!wa->paused)
			wa->paused_usec = loop_now_usec();
		wa->paused = true;
		return WATCH_IO_PAUSE;
	}
	if (wa->state == ST_WATCHING)
		return watch_stream_body(wa, data, n);
	if (wa->state != ST_LISTING)
		return 0;
	wa->stream_error = kobj_list_feed(wa->list, data, n);
	return wa->stream_error < 0 ? 0 : n; /* abort: the done callback decides */
}

void watch_io_done(struct watch *wa, int err, long status, const char *errbuf) {
	loop_timer_disarm(wa->ctx->loop, &wa->deadline_timer);
	if (wa->state == ST_LISTING)
		list_done(wa, err, status, errbuf);
	else if (wa->state == ST_WATCHING)
		watch_stream_done(wa, err, status, errbuf);
}

/* ---------------- the watch ---------------- */

int watch_create(const struct watch_owner *owner, const char *ns, const char *base_path,
	const char *key, struct watch **ret_watch) {
	const struct config *cfg = owner->ctx->cfg;
	struct watch *wa = NULL;
	int r = -ENOMEM;

	wa = calloc(1, sizeof(*wa));
	if (!wa)
		goto out;
	wa->owner = owner;
	wa->ctx = owner->ctx;
	ndjson_init(&wa->lines, cfg->max_event_bytes);
	buf_init(&wa->errbody, ERROR_BODY_MAX);
	/* The last state is needed only to send it with a delete found by a
	 * relist, in Resource mode, or to diff an update (--with-changes),
	 * unless references were asked for. */
	objects_init(&wa->objects,
		(cfg->mode == CONFIG_MODE_RESOURCE || cfg->with_changes) && !cfg->object_state_refs,
		cfg->state_dir, &wa->ctx->changes);
	backoff_init(&wa->backoff, BACKOFF_INITIAL_USEC, BACKOFF_MAX_USEC);
	loop_timer_init(&wa->timer, handle_timer, wa);
	loop_timer_init(&wa->deadline_timer, watch_handle_deadline, wa);
	hashmap_init(&wa->list_tokens);
	wa->mw = metrics_watch_add(wa->ctx->metrics, owner->mres, ns);
	if (ns && !(wa->ns = strdup(ns)))
		goto out;
	wa->base_path = strdup(base_path);
	wa->key = strdup(key);
	if (!wa->base_path || !wa->key)
		goto out;
	*ret_watch = wa;
	wa = NULL;
	r = 0;
out:
	watch_destroy(wa);
	return r;
}

void watch_destroy(struct watch *wa) {
	if (!wa)
		return;
	watch_stop(wa);
	http_xfer_finish(wa->ctx->http, &wa->xfer);
	curl_slist_free_all(wa->headers);
	ndjson_finish(&wa->lines);
	kobj_list_destroy(wa->list);
	buf_finish(&wa->errbody);
	objects_finish(&wa->objects);
	metrics_watch_remove(wa->ctx->metrics, wa->mw);
	free(wa->list_continue);
	hashmap_finish(&wa->list_tokens);
	free(wa->request_path);
	free(wa->ns);
	free(wa->base_path);
	free(wa->key);
	free(wa);
}

void watch_adopt(struct watch *wa, const char *rv, struct hashmap *objects, bool relist) {
	int r = objects_adopt(&wa->objects, objects);

	if (r < 0) {
		/* Nothing to diff against: a first list, as without a checkpoint. */
		log_warn("watch", "cannot take over the checkpoint's objects, listing afresh",
			LOG_STR("resource", wa->owner->label), LOG_STR("namespace", ns_of(wa)),
			LOG_STR("error", strerror(-r)));
		return;
	}
	snprintf(wa->rv, sizeof(wa->rv), "%s", rv);
	wa->synced = true;
	wa->resumed = true;
	wa->relist_on_resume = relist;
}

void watch_start(struct watch *wa) {
	if (!wa->resumed) {
		watch_list_start(wa);
		return;
	}
	wa->announced = true;
	if (wa->relist_on_resume) {
		/* synced: this list is a relist, diffed and swept. */
		log_info("watch", "watching", LOG_STR("resource", wa->owner->label),
			LOG_STR("namespace", ns_of(wa)),
			LOG_INT("objects", objects_count(&wa->objects)),
			LOG_BOOL("from_checkpoint", true), LOG_BOOL("relist", true));
		watch_list_start(wa);
		return;
	}
	log_info("watch", "watching", LOG_STR("resource", wa->owner->label),
		LOG_STR("namespace", ns_of(wa)), LOG_STR("resourceVersion", wa->rv),
		LOG_INT("objects", objects_count(&wa->objects)), LOG_BOOL("from_checkpoint", true));
	watch_stream_start(wa);
}

void watch_stop(struct watch *wa) {
	const struct watch_io *io = io_of(wa);

	wa->stopped = true;
	loop_timer_disarm(wa->ctx->loop, &wa->timer);
	loop_timer_disarm(wa->ctx->loop, &wa->deadline_timer);
	if (wa->state == ST_LISTING || wa->state == ST_WATCHING)
		io->cancel(wa, io->userdata);
	wa->state = ST_IDLE;
}

bool watch_resume(struct watch *wa) {
	const struct watch_io *io = io_of(wa);

	if (!wa->paused)
		return false;
	wa->paused = false;
	/* The time paused does not count against the list's or watch's limit. */
	wa->deadline_usec += loop_now_usec() - wa->paused_usec;
	if (wa->state == ST_LISTING || wa->state == ST_WATCHING)
		loop_timer_arm(wa->ctx->loop, &wa->deadline_timer, wa->deadline_usec);
	/* May hand the kept chunk over at once, and pause again, or end the
	 * request (then the usual path retries, relists or resumes). */
	io->resume(wa, io->userdata);
	return true;
}

int watch_checkpoint(struct watch *wa, struct checkpoint_snapshot *cs) {
	int r;

	if (!wa->synced)
		return 0; /* it lists afresh after a restart */
	/* In the middle of a relist the objects are partly updated: the restart
	 * must relist too, not resume from the old version. */
	r = checkpoint_snapshot_watch(cs, wa->key, wa->rv, wa->relisting || wa->relist_on_resume);
	/* A copy of the compact records; the bytes are read back by the writer. */
	return r < 0 ? r : objects_checkpoint(&wa->objects, cs);
}

bool watch_synced(const struct watch *wa) {
	return wa->synced;
}

bool watch_failing(const struct watch *wa) {
	return wa->failing;
}

const char *watch_resource_version(const struct watch *wa) {
	return wa->rv;
}

const struct objects *watch_objects(const struct watch *wa) {
	return &wa->objects;
}

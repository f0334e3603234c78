#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adapter/ingest.h"
#include "adapter/log.h"
#include "watch_internal.h"

/* A watch that ends sooner than this without an event counts as a failure,
 * so a server that closes at once is not hammered. */
#define SHORT_STREAM_USEC (1000000ull)

static void error_event(struct watch *wa, const struct kobj *status) {
	if (status->code == 410 || strcmp(status->reason, "Expired") == 0 ||
		strcmp(status->reason, "Gone") == 0) {
		wa->pending = PENDING_RELIST;
		if (wa->owner->mres)
			wa->owner->mres->expired++;
		log_info("watch", "watch expired, listing again",
			LOG_STR("resource", wa->owner->label), LOG_STR("namespace", ns_of(wa)),
			LOG_STR("error", status->message));
		return;
	}
	wa->pending = watch_too_large_rv(status->message) ? PENDING_RELIST : PENDING_BAD_STREAM;
	wa->status = status->code;
	buf_reset(&wa->errbody);
	buf_append_str(&wa->errbody, status->message);
	log_warn("watch", "error event in the watch stream", LOG_STR("resource", wa->owner->label),
		LOG_STR("namespace", ns_of(wa)), LOG_INT("code", status->code),
		LOG_STR("reason", status->reason), LOG_STR("error", status->message));
}

static int handle_line(const char *line, size_t len, void *userdata) {
	struct watch *wa = userdata;
	const struct watch_owner *o = wa->owner;
	struct kobj_event ev;
	struct ingest in;
	int r = 0;

	r = kobj_parse_event(line, len, &ev);
	if (r < 0)
		return r;
	count(wa, ev.type == KOBJ_ADDED ? METRICS_EV_ADDED :
		ev.type == KOBJ_MODIFIED    ? METRICS_EV_MODIFIED :
		ev.type == KOBJ_DELETED     ? METRICS_EV_DELETED :
		ev.type == KOBJ_BOOKMARK    ? METRICS_EV_BOOKMARK :
						METRICS_EV_ERROR);
	switch (ev.type) {
	case KOBJ_ADDED:
	case KOBJ_MODIFIED:
	case KOBJ_DELETED:
		/* --strip-managed-fields, --with-changes (ingest.h) */
		r = ingest_begin(&in, wa->ctx->cfg, &wa->objects, &ev.obj, o->emit, o->userdata);
		if (r == 0 && ev.type == KOBJ_DELETED)
			r = objects_delete(&wa->objects, in.obj, ingest_emit, &in);
		else if (r == 0)
			r = objects_update(&wa->objects, in.obj, ev.type == KOBJ_ADDED, ingest_emit,
				&in);
		ingest_end(&in);
		break;
	case KOBJ_BOOKMARK:
		break;
	case KOBJ_ERROR:
		error_event(wa, &ev.obj);
		return -ECANCELED;
	case KOBJ_UNKNOWN:
		log_debug("watch", "ignoring an unknown watch event type",
			LOG_STR("type", ev.type_name));
		break;
	}
	/* The stream resumes from the last version whose events were queued. */
	if (r < 0) {
		wa->pending = PENDING_NOT_QUEUED;
		return r;
	}
	if (ev.obj.resource_version[0]) {
		snprintf(wa->rv, sizeof(wa->rv), "%s", ev.obj.resource_version);
		wa->ctx->changes++;
	}
	wa->events_in_stream++;
	return 0;
}

size_t watch_stream_body(struct watch *wa, const char *data, size_t n) {
	int r = ndjson_feed(&wa->lines, data, n, handle_line, wa);

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

void watch_stream_done(struct watch *wa, int err, long status, const char *errbuf) {
	uint64_t lasted = loop_now_usec() - wa->started_usec;

	ndjson_reset(&wa->lines);
	switch (wa->pending) {
	case PENDING_RELIST:
		wa->relisting = true;
		watch_list_start(wa);
		return;
	case PENDING_BAD_STREAM:
		if (wa->stream_error == -E2BIG)
			log_error("watch",
				"a watch event is longer than --max-event-bytes; raise it",
				LOG_STR("resource", wa->owner->label),
				LOG_STR("namespace", ns_of(wa)),
				LOG_INT("max_event_bytes", wa->ctx->cfg->max_event_bytes));
		watch_retry_later(wa, "bad watch stream, resuming from the last resourceVersion",
			wa->status,
			wa->stream_error ? kobj_strerror(wa->stream_error) : wa->errbody.data);
		return;
	case PENDING_NOT_QUEUED:
		watch_retry_later(wa, "cannot queue a change, resuming the watch before it", 0,
			strerror(-wa->stream_error));
		return;
	case PENDING_NONE:
		break;
	}
	if (err == -ETIMEDOUT) {
		watch_retry_timed_out(wa, "watch heard nothing, not even a bookmark, past its "
					  "timeoutSeconds plus --request-timeout; restarting it", errbuf);
		return;
	}
	if (err) {
		watch_retry_later(wa, "watch connection failed, resuming", 0, errbuf);
		return;
	}
	if (status == 410) {
		if (wa->owner->mres)
			wa->owner->mres->expired++;
		wa->relisting = true;
		watch_list_start(wa);
		return;
	}
	if (status != 200) {
		watch_http_failure(wa, status);
		return;
	}
	if (!wa->events_in_stream && lasted < SHORT_STREAM_USEC) {
		watch_retry_later(wa, "watch ended at once, resuming", status, "");
		return;
	}
	/* The server ended the stream (timeoutSeconds): resume where we were. */
	log_debug("watch", "watch ended, resuming", LOG_STR("resource", wa->owner->label),
		LOG_STR("resourceVersion", wa->rv));
	watch_stream_start(wa);
}

void watch_stream_start(struct watch *wa) {
	const struct config *cfg = wa->ctx->cfg;
	struct buf path;
	char timeout[16];
	unsigned timeout_sec;
	int r;

	if (wa->stopped)
		return;
	buf_init(&path, 0);
	r = buf_append_str(&path, wa->base_path);
	/* client-go's reflector asks for between one and two times its minimum,
	 * so that many watches do not expire together. */
	timeout_sec = cfg->watch_timeout_sec + (unsigned)(backoff_random() * cfg->watch_timeout_sec);
	snprintf(timeout, sizeof(timeout), "%u", timeout_sec);
	if (r == 0)
		r = watch_append_query(&path, "watch", "1");
	if (r == 0)
		r = watch_append_query(&path, "allowWatchBookmarks", "true");
	if (r == 0)
		r = watch_append_query(&path, "resourceVersion", wa->rv);
	if (r == 0)
		r = watch_append_query(&path, "timeoutSeconds", timeout);
	if (r == 0 && wa->owner->label_selector)
		r = watch_append_query(&path, "labelSelector", wa->owner->label_selector);
	if (r == 0 && wa->owner->field_selector)
		r = watch_append_query(&path, "fieldSelector", wa->owner->field_selector);
	if (r == 0)
		/* The server ends it after timeoutSeconds; silent past that (and a
		 * margin), it is dead: a stuck proxy, a lost peer. */
		r = watch_send_request(wa, ST_WATCHING, path.data,
			timeout_sec * 1000000ull + watch_request_timeout(wa));
	buf_finish(&path);
	if (r < 0) {
		watch_retry_later(wa, "cannot start a watch, retrying", 0, strerror(-r));
		return;
	}
	wa->started_usec = loop_now_usec();
	wa->events_in_stream = 0;
	if (wa->streamed && wa->owner->mres)
		wa->owner->mres->watch_restarts++;
	wa->streamed = true;
}

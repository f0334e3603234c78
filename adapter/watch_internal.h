#ifndef ADAPTER_WATCH_INTERNAL_H
#define ADAPTER_WATCH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "adapter/util/backoff.h"
#include "adapter/util/buf.h"
#include "adapter/util/hashmap.h"
#include "adapter/watch.h"

/* Shared by watch.c (the watch's life, retries, the paged list and its
 * sweep), watch_stream.c (the watch stream) and watch_http.c (the libcurl
 * transport). Not part of the watch module's interface. */

enum watch_state { ST_IDLE, ST_LISTING, ST_WATCHING, ST_WAITING };
/* Why a request was ended from inside it. NOT_QUEUED: a change could not be
 * queued (or recorded); the list or watch is retried from before it. */
enum pending { PENDING_NONE, PENDING_RELIST, PENDING_BAD_STREAM, PENDING_NOT_QUEUED };

struct watch {
	const struct watch_owner *owner;
	struct watch_context *ctx;
	char *ns; /* NULL: cluster-wide */
	char *base_path;
	char *key; /* names the watch in checkpoints */
	enum watch_state state;
	bool stopped;
	/* The libcurl transport. */
	struct http_xfer xfer;
	struct curl_slist *headers;
	/* The answer in progress. */
	long status;
	uint64_t retry_after_usec;
	struct buf errbody;
	enum pending pending;
	int stream_error;
	bool paused; /* backpressure: the queue is full */
	/* Time limits: a list must end, and a watch must hear something (an
	 * event, a bookmark), by deadline_usec, limit_usec after it started or
	 * last heard; time paused for backpressure does not count. */
	struct loop_timer deadline_timer;
	uint64_t deadline_usec;
	uint64_t limit_usec;
	uint64_t paused_usec; /* when the body was paused */
	char *request_path;   /* for the line that says which request timed out */
	/* Listing. */
	struct kobj_list *list;
	char *list_continue;
	struct hashmap list_tokens; /* hashes of this list's continue tokens */
	unsigned list_pages;
	char list_rv[64];    /* the list's version, applied when the list completes */
	bool list_restarted; /* objects of an abandoned list wait for the sweep */
	bool relisting;
	/* Watching. */
	struct ndjson lines;
	char rv[64];
	uint64_t started_usec;
	unsigned events_in_stream;
	bool streamed; /* a watch stream was opened before */
	/* What was seen. */
	struct objects objects;
	bool synced;
	bool announced;
	bool resumed;	       /* state taken from a checkpoint */
	bool relist_on_resume; /* the checkpoint was taken in the middle of a relist */
	bool failing;	       /* the last list or watch failed; cleared by a 200 answer */
	struct backoff backoff;
	struct loop_timer timer;
	struct metrics_watch *mw;
};

/* The transport used when the owner gives none. */
extern const struct watch_io watch_curl_io;

static inline const struct watch_io *io_of(const struct watch *wa) {
	return wa->owner->io ? wa->owner->io : &watch_curl_io;
}

static inline const char *ns_of(const struct watch *wa) {
	return wa->ns ? wa->ns : "";
}

static inline void count(struct watch *wa, enum metrics_watch_event ev) {
	metrics_count_event(wa->owner->mres, wa->mw, ev, loop_now_usec());
}

/* Waits (backoff, at least Retry-After) and then resumes: a relist if the
 * watch must list again, a watch from the last resourceVersion otherwise. */
void watch_retry_later(struct watch *wa, const char *msg, long status, const char *detail);
/* Enters ST_WAITING and returns the delay (backoff, at least Retry-After):
 * the first half of the two above. */
uint64_t watch_begin_retry(struct watch *wa);
/* The same for a request that passed its time limit: the line names its URL
 * (the server without credentials). */
void watch_retry_timed_out(struct watch *wa, const char *msg, const char *detail);
/* --request-timeout, or its default. */
uint64_t watch_request_timeout(const struct watch *wa);
/* The deadline timer's callback: drops a request past its limit and ends it
 * as -ETIMEDOUT, unless paused or not due yet. */
void watch_handle_deadline(struct loop_timer *t, void *userdata);
/* Records a page's continue token: -ELOOP when this list had it already,
 * -E2BIG past WATCH_LIST_MAX_PAGES, -ENOMEM. */
int watch_check_continue(struct watch *wa, const char *cont);
/* An HTTP answer other than 200 to a list or a watch: logs, then retries (or
 * calls the context's fatal, with --fail-fast, when retrying cannot help). */
void watch_http_failure(struct watch *wa, long status);
/* A Status message saying the server is behind the resourceVersion asked for. */
bool watch_too_large_rv(const char *msg);
/* Appends ?key=value or &key=value, percent-encoded. */
int watch_append_query(struct buf *b, const char *key, const char *value);
/* Resets what an answer fills in and sends GET path. limit_usec: see
 * deadline_usec. */
int watch_send_request(struct watch *wa, enum watch_state state, const char *path,
	uint64_t limit_usec);
/* A new list (a relist once synced), or the next page. */
void watch_list_start(struct watch *wa);
/* A watch from the last resourceVersion. */
void watch_stream_start(struct watch *wa);
/* A chunk of the stream's body, and its end (as watch_io_body/_done). */
size_t watch_stream_body(struct watch *wa, const char *data, size_t n);
void watch_stream_done(struct watch *wa, int err, long status, const char *errbuf);

#endif

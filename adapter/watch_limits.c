#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapter/kube.h"
#include "adapter/log.h"
#include "adapter/util/buf.h"
#include "watch_internal.h"

/* A watch's bounds against a server that never finishes: time limits on a
 * list and on a watch's silence, and the pages of one list. */

uint64_t watch_request_timeout(const struct watch *wa) {
	uint64_t t = wa->ctx->cfg->request_timeout_usec;

	return t ? t : WATCH_REQUEST_TIMEOUT_DEFAULT_USEC;
}

void watch_retry_timed_out(struct watch *wa, const char *msg, const char *detail) {
	uint64_t delay = watch_begin_retry(wa);
	struct buf url;

	buf_init(&url, 0);
	/* kube_server() has no credentials in it. */
	if ((wa->ctx->kube && buf_append_str(&url, kube_server(wa->ctx->kube)) < 0) ||
		buf_append_str(&url, wa->request_path ? wa->request_path : "") < 0)
		buf_reset(&url);
	log_warn("watch", msg, LOG_STR("resource", wa->owner->label),
		LOG_STR("namespace", ns_of(wa)), LOG_STR("url", url.data ? url.data : ""),
		LOG_INT("limit_ms", wa->limit_usec / 1000u), LOG_STR("error", detail ? detail : ""),
		LOG_INT("retry_in_ms", delay / 1000u));
	buf_finish(&url);
	loop_timer_arm_in(wa->ctx->loop, &wa->timer, delay);
}

/* A list that has not ended, or a watch that heard nothing, in time: the
 * request is dropped and fails as a timeout (retried like other failures).
 * While the body is paused for backpressure the clock stops. */
void watch_handle_deadline(struct loop_timer *t, void *userdata) {
	struct watch *wa = userdata;
	const struct watch_io *io = io_of(wa);
	uint64_t now = loop_now_usec();

	if (wa->state != ST_LISTING && wa->state != ST_WATCHING)
		return;
	if (wa->paused || now < wa->deadline_usec) {
		/* watch_resume() moves the deadline on and arms it again. */
		uint64_t due = wa->paused ? now + wa->limit_usec : wa->deadline_usec;

		loop_timer_arm(wa->ctx->loop, t, due);
		return;
	}
	io->cancel(wa, io->userdata);
	watch_io_done(wa, -ETIMEDOUT, wa->status,
		wa->state == ST_LISTING ? "no complete answer within the time limit" :
					  "nothing received within the time limit");
}

/* A continue token the server already gave in this list, or one page too
 * many, would page forever: -ELOOP, -E2BIG. Tokens are remembered by a
 * 64-bit FNV-1a hash, not kept whole. */
int watch_check_continue(struct watch *wa, const char *cont) {
	uint64_t h = 0xcbf29ce484222325ull;
	char key[17];

	for (const unsigned char *p = (const unsigned char *)cont; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	snprintf(key, sizeof(key), "%016llx", (unsigned long long)h);
	if (hashmap_get(&wa->list_tokens, key))
		return -ELOOP;
	if (++wa->list_pages >= WATCH_LIST_MAX_PAGES)
		return -E2BIG;
	return hashmap_put(&wa->list_tokens, key, wa);
}

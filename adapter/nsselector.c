#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/log.h"
#include "adapter/nsselector.h"
#include "adapter/util/hashmap.h"

/* How often the set is looked at while the first list is in progress. */
#define SYNC_POLL_USEC (50ull * 1000ull)

struct nsselector {
	/* The watch sees a copy of the configuration that reports every
	 * namespace of its first list as added, whatever --initial-events says:
	 * the set is built from those adds. */
	struct config cfg;
	struct watch_context ctx;
	struct watch_owner owner;
	const char *selector;
	struct watch *watch;
	struct hashmap selected; /* name -> s (any non-NULL value) */
	struct watcher **watchers;
	size_t n_watchers;
	struct loop_timer timer;
	bool started;
	bool delivered; /* the watchers have had the set at least once */
	bool dirty;	/* changed since they last had it */
	bool stopped;
};

/* The namespace watch's objects_emit_fn: runs inside a libcurl callback, so
 * it only records the change and arms the timer. */
static int emit(enum cevent_op op, const struct kobj *obj, void *userdata) {
	struct nsselector *s = userdata;
	int r;

	if (op == CEVENT_DELETE) {
		if (!hashmap_remove(&s->selected, obj->name))
			return 0;
	} else if (!hashmap_get(&s->selected, obj->name)) {
		r = hashmap_put(&s->selected, obj->name, s);
		if (r < 0)
			return r; /* reported again by the watch */
	} else {
		return 0; /* still selected */
	}
	s->dirty = true;
	if (!s->stopped)
		loop_timer_arm_in(s->ctx.loop, &s->timer, 0);
	return 0;
}

static bool never_full(void *userdata) {
	(void)userdata;
	return false;
}

static void handle_timer(struct loop_timer *t, void *userdata) {
	struct nsselector *s = userdata;

	(void)t;
	if (s->stopped)
		return;
	if (!watch_synced(s->watch)) {
		loop_timer_arm_in(s->ctx.loop, &s->timer, SYNC_POLL_USEC);
		return;
	}
	if (!s->delivered || s->dirty) {
		log_info("main", s->delivered ? "namespace selection changed" : "namespaces selected",
			LOG_STR("selector", s->selector ? s->selector : ""),
			LOG_INT("namespaces", s->selected.count));
		for (size_t i = 0; i < s->n_watchers; i++)
			watcher_set_namespaces(s->watchers[i], &s->selected);
		s->delivered = true;
		s->dirty = false;
	}
}

int nsselector_create(struct watch_context *ctx, const char *selector, struct watcher **watchers,
	size_t n_watchers, struct nsselector **ret_nsselector) {
	struct nsselector *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->cfg = *ctx->cfg; /* shallow: borrowed, never finished */
	s->cfg.initial_events = true;
	s->ctx = *ctx;
	s->ctx.cfg = &s->cfg;
	s->ctx.metrics = NULL;
	s->ctx.checkpoint = NULL; /* listed afresh at every start */
	s->selector = selector;
	s->watchers = watchers;
	s->n_watchers = n_watchers;
	hashmap_init(&s->selected);
	loop_timer_init(&s->timer, handle_timer, s);
	s->owner = (struct watch_owner){
		.ctx = &s->ctx,
		.label = "namespaces/v1",
		.label_selector = selector,
		.kind = "Namespace",
		.api_version = "v1",
		.emit = emit,
		.full = never_full,
		.userdata = s,
	};
	r = watch_create(&s->owner, NULL, "/api/v1/namespaces", "v1/Namespace|*|nsselector",
		&s->watch);
	if (r < 0) {
		nsselector_destroy(s);
		return r;
	}
	*ret_nsselector = s;
	return 0;
}

void nsselector_start(struct nsselector *s) {
	if (!s || s->started || s->stopped)
		return;
	s->started = true;
	log_info("main", "following spec.namespaceSelector",
		LOG_STR("selector", s->selector ? s->selector : "(every namespace)"));
	watch_start(s->watch);
	loop_timer_arm_in(s->ctx.loop, &s->timer, SYNC_POLL_USEC);
}

void nsselector_stop(struct nsselector *s) {
	if (!s)
		return;
	s->stopped = true;
	loop_timer_disarm(s->ctx.loop, &s->timer);
	if (s->watch)
		watch_stop(s->watch);
}

void nsselector_handle_forbidden(struct watcher *w, void *userdata) {
	struct nsselector *s = userdata;

	nsselector_start(s);
	/* Else every watcher gets the set at the end of the first list. */
	if (s->delivered)
		watcher_set_namespaces(w, &s->selected);
}

void nsselector_destroy(struct nsselector *s) {
	if (!s)
		return;
	nsselector_stop(s);
	watch_destroy(s->watch);
	hashmap_finish(&s->selected);
	free(s);
}

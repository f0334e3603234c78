#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/checkpoint.h"
#include "adapter/kube.h"
#include "adapter/log.h"
#include "adapter/metrics.h"
#include "adapter/oidc.h"
#include "adapter/probes.h"
#include "adapter/sink.h"
#include "adapter/watcher.h"

#include "main_internal.h"

/* Changes since the last checkpoint show up in one of these counters. */
static uint64_t state_signature(struct adapter *a) {
	struct queue_stats st;

	sink_get_stats(a->sink, &st);
	return a->wctx.changes + st.accepted + st.delivered + st.dead_lettered + st.dropped;
}

static void snapshot_pending_event(const struct queue_entry *e, void *userdata) {
	checkpoint_snapshot_event(userdata, e->ev);
}

/* Every watch's resourceVersion and objects (pointers: O(changes)), the loaded
 * checkpoint's watches not running yet, and every undelivered event. */
static int take_snapshot(struct adapter *a, struct checkpoint_snapshot **ret_snapshot) {
	struct checkpoint_snapshot *cs = NULL;
	int r;

	r = checkpoint_snapshot_create(a->cfg.state_dir, &cs);
	for (size_t i = 0; r == 0 && i < a->n_watchers; i++)
		r = watcher_checkpoint(a->watchers[i], cs);
	if (r == 0)
		r = checkpoint_snapshot_unadopted(cs, a->checkpoint);
	if (r == 0)
		sink_foreach_pending(a->sink, snapshot_pending_event, cs);
	if (r < 0) {
		checkpoint_snapshot_free(cs);
		return r;
	}
	*ret_snapshot = cs;
	return 0;
}

/* The result of the checkpoint that reflects a->checkpoint_signature. */
void adapter_checkpoint_written(int r, void *userdata) {
	struct adapter *a = userdata;

	if (r < 0) {
		log_error("main", "cannot write the checkpoint, retrying at the next interval",
			LOG_STR("dir", a->cfg.state_dir), LOG_STR("error", strerror(-r)));
		return;
	}
	a->checkpointed_signature = a->checkpoint_signature;
	adapter_leader_checkpointed(a, r); /* --leader-elect: recorded in the cluster too */
	log_debug("main", "checkpoint written", LOG_STR("dir", a->cfg.state_dir),
		LOG_INT("write_ms", (loop_now_usec() - a->checkpoint_started_usec) / 1000u));
}

/* Hands a snapshot to the writer thread; the loop goes on meanwhile. */
static void start_checkpoint(struct adapter *a) {
	struct checkpoint_snapshot *cs = NULL;
	size_t objects = 0;
	int r;

	a->checkpoint_signature = state_signature(a);
	a->checkpoint_started_usec = loop_now_usec();
	r = take_snapshot(a, &cs);
	if (r == 0) {
		objects = checkpoint_snapshot_objects(cs);
		r = checkpoint_writer_start(a->checkpoint_writer, cs);
		if (r < 0)
			checkpoint_snapshot_free(cs);
	}
	if (r < 0)
		adapter_checkpoint_written(r, a);
	else /* cs is the thread's now */
		log_debug("main", "checkpoint snapshot taken", LOG_INT("objects", objects),
			LOG_INT("snapshot_us", loop_now_usec() - a->checkpoint_started_usec));
}

/* Writes a checkpoint in place, blocking: at exit. A write in flight is
 * finished first, so the last one written is this one. */
int adapter_checkpoint_write(struct adapter *a) {
	struct checkpoint_snapshot *cs = NULL;
	int r;

	checkpoint_writer_wait(a->checkpoint_writer);
	a->checkpoint_signature = state_signature(a);
	a->checkpoint_started_usec = loop_now_usec();
	r = take_snapshot(a, &cs);
	if (r == 0)
		r = checkpoint_snapshot_write(cs);
	checkpoint_snapshot_free(cs);
	adapter_checkpoint_written(r, a);
	return r;
}

bool adapter_all_listed(struct adapter *a) {
	for (size_t i = 0; i < a->n_watchers; i++)
		if (!watcher_synced(a->watchers[i]))
			return false;
	return true;
}

/* Every interval if something changed, and once as soon as every watch has listed
 * (polled): else a SIGKILL before the first interval loses every change since start. */
void adapter_checkpoint_timer(struct loop_timer *t, void *userdata) {
	struct adapter *a = userdata;
	uint64_t now = loop_now_usec();
	bool first = a->first_checkpoint_due && adapter_all_listed(a);
	bool turn = now >= a->checkpoint_next_usec;

	/* One at a time: a write still in flight takes this turn. */
	if (!checkpoint_writer_busy(a->checkpoint_writer) &&
		(first || (turn && state_signature(a) != a->checkpointed_signature))) {
		start_checkpoint(a);
		if (first)
			a->first_checkpoint_due = false;
	}
	if (turn)
		a->checkpoint_next_usec = now + a->cfg.checkpoint_interval_usec;
	loop_timer_arm_in(a->loop, t,
		a->first_checkpoint_due && a->checkpoint_next_usec - now > CHECKPOINT_POLL_USEC ?
			CHECKPOINT_POLL_USEC :
			a->checkpoint_next_usec - now);
}

/* Reads --state-dir's checkpoint: its undelivered events are queued again
 * (same ids), and its watch states wait for their watches. */
int adapter_checkpoint_load(struct adapter *a) {
	struct cevent_params params = { .mode = a->cfg.mode, .source = kube_server(a->kube),
		.overrides = a->cfg.extensions, .n_overrides = a->cfg.n_extensions };
	struct checkpoint_load_error err;
	int r;

	r = checkpoint_load(a->cfg.state_dir, &params, a->cfg.max_event_bytes + 4096, &a->checkpoint,
		&err);
	if (r == -ENOENT) {
		log_info("main", "no checkpoint yet, starting afresh", LOG_STR("dir", a->cfg.state_dir));
		return 0;
	}
	if (r < 0) {
		log_error("main", err.message, LOG_STR("field", "--state-dir"));
		return r;
	}
	for (size_t i = 0; i < a->checkpoint->n_events; i++) {
		r = sink_submit(a->sink, a->checkpoint->events[i]);
		if (r < 0)
			return r;
		a->checkpoint->events[i] = NULL; /* the queue owns it now */
	}
	log_info("main", "checkpoint loaded", LOG_STR("dir", a->cfg.state_dir),
		LOG_INT("watches", a->checkpoint->n_watches),
		LOG_INT("objects", a->checkpoint->n_objects),
		LOG_INT("undelivered_events", a->checkpoint->n_events));
	return 0;
}

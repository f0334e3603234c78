#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/checkpoint.h"
#include "adapter/config.h"
#include "adapter/http.h"
#include "adapter/kube.h"
#include "adapter/log.h"
#include "adapter/loop.h"
#include "adapter/metrics.h"
#include "adapter/ndjson.h"
#include "adapter/nsselector.h"
#include "adapter/oidc.h"
#include "adapter/probes.h"
#include "adapter/sink.h"
#include "adapter/checkpoint.h"
#include "adapter/util/buf.h"
#include "adapter/watcher.h"

#define EXIT_CONFIG 2
#define EXIT_RUNTIME 1
#define DRAIN_POLL_USEC (50ull * 1000ull)
#define CHECKPOINT_POLL_USEC (50ull * 1000ull)

struct adapter {
	struct config cfg;
	struct kube *kube;
	struct loop *loop;
	struct http *http;
	struct sink *sink;
	struct watch_context wctx;
	struct watcher **watchers;
	size_t n_watchers;
	struct loop_timer drain_timer;
	uint64_t drain_deadline_usec;
	bool draining;
	unsigned config_errors;
	bool kube_input_bad; /* a reported problem is in what kube_load() reads */
	struct checkpoint_state *checkpoint;
	struct loop_timer checkpoint_timer;
	uint64_t checkpointed_signature; /* what the last checkpoint reflected */
	struct checkpoint_writer *checkpoint_writer; /* with --state-dir */
	uint64_t checkpoint_signature;		     /* what the one in flight reflects */
	uint64_t checkpoint_started_usec;
	uint64_t checkpoint_next_usec; /* the next interval's turn */
	bool first_checkpoint_due;     /* once every watch has listed */
	struct metrics *metrics;
	struct probes *probes;
	struct oidc *oidc;
};

static const char *env_lookup(const char *name, void *userdata) {
	(void)userdata;
	return getenv(name);
}

static void handle_config_error(const char *field, const char *message, void *userdata) {
	struct adapter *a = userdata;
	char line[1600];

	a->config_errors++;
	/* --kubeconfig, --context (or a misspelling of them), KUBECONFIG. */
	if (strncmp(field, "--kube", 6) == 0 || strncmp(field, "--context", 9) == 0 ||
		strcmp(field, "KUBECONFIG") == 0)
		a->kube_input_bad = true;
	snprintf(line, sizeof(line), "%s: %s", field, message);
	log_error("config", line, LOG_STR("field", field));
}

static void handle_fatal(void *userdata) {
	struct adapter *a = userdata;

	log_error("main", "exiting: fail-fast is set and a resource cannot be watched");
	loop_quit(a->loop, EXIT_RUNTIME);
}

static void stop_watchers(struct adapter *a) {
	for (size_t i = 0; i < a->n_watchers; i++)
		watcher_stop(a->watchers[i]);
}

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
static void handle_checkpoint_written(int r, void *userdata) {
	struct adapter *a = userdata;

	if (r < 0) {
		log_error("main", "cannot write the checkpoint, retrying at the next interval",
			LOG_STR("dir", a->cfg.state_dir), LOG_STR("error", strerror(-r)));
		return;
	}
	a->checkpointed_signature = a->checkpoint_signature;
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
		handle_checkpoint_written(r, a);
	else /* cs is the thread's now */
		log_debug("main", "checkpoint snapshot taken", LOG_INT("objects", objects),
			LOG_INT("snapshot_us", loop_now_usec() - a->checkpoint_started_usec));
}

/* Writes a checkpoint in place, blocking: at exit. A write in flight is
 * finished first, so the last one written is this one. */
static int write_checkpoint(struct adapter *a) {
	struct checkpoint_snapshot *cs = NULL;
	int r;

	checkpoint_writer_wait(a->checkpoint_writer);
	a->checkpoint_signature = state_signature(a);
	a->checkpoint_started_usec = loop_now_usec();
	r = take_snapshot(a, &cs);
	if (r == 0)
		r = checkpoint_snapshot_write(cs);
	checkpoint_snapshot_free(cs);
	handle_checkpoint_written(r, a);
	return r;
}

static bool all_listed(struct adapter *a) {
	for (size_t i = 0; i < a->n_watchers; i++)
		if (!watcher_synced(a->watchers[i]))
			return false;
	return true;
}

/* Every interval if something changed, and once as soon as every watch has listed
 * (polled): else a SIGKILL before the first interval loses every change since start. */
static void handle_checkpoint_timer(struct loop_timer *t, void *userdata) {
	struct adapter *a = userdata;
	uint64_t now = loop_now_usec();
	bool first = a->first_checkpoint_due && all_listed(a);
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

static void finish_drain(struct adapter *a) {
	if (a->cfg.state_dir)
		write_checkpoint(a);
	loop_quit(a->loop, 0);
}

static void handle_drain_timer(struct loop_timer *t, void *userdata) {
	struct adapter *a = userdata;
	struct queue_stats st;

	(void)t;
	sink_get_stats(a->sink, &st);
	if (st.queued == 0) {
		log_info("main", "all events delivered, exiting", LOG_INT("delivered", st.delivered),
			LOG_INT("dead_lettered", st.dead_lettered), LOG_INT("dropped", st.dropped));
		finish_drain(a);
		return;
	}
	if (loop_now_usec() >= a->drain_deadline_usec) {
		if (a->cfg.state_dir)
			log_warn("main", "drain deadline passed; undelivered events are kept in the "
					 "checkpoint and sent after the restart",
				LOG_INT("undelivered", st.queued), LOG_INT("delivered", st.delivered),
				LOG_STR("dir", a->cfg.state_dir));
		else
			log_error("main", "drain deadline passed, exiting with events undelivered "
					  "(give --state-dir to keep them)",
				LOG_INT("undelivered", st.queued), LOG_INT("delivered", st.delivered),
				LOG_INT("dropped", st.dropped));
		finish_drain(a);
		return;
	}
	loop_timer_arm_in(a->loop, &a->drain_timer, DRAIN_POLL_USEC);
}

static void handle_signal(int signo, void *userdata) {
	struct adapter *a = userdata;

	if (a->draining) {
		struct queue_stats st;

		sink_get_stats(a->sink, &st);
		if (!st.queued) {
			log_info("main", "second signal, exiting now; every event was delivered",
				LOG_INT("signal", signo), LOG_INT("delivered", st.delivered));
			finish_drain(a);
			return;
		}
		/* Non-zero: the drain was cut short. main() writes the checkpoint
		 * (with --state-dir) on the way out. */
		log_error("main",
			a->cfg.state_dir ? "second signal, exiting now with events undelivered; the "
					   "checkpoint keeps them for the restart" :
					   "second signal, exiting now; events not delivered are lost "
					   "(give --state-dir to keep them)",
			LOG_INT("signal", signo), LOG_INT("undelivered", st.queued),
			LOG_INT("in_flight", st.inflight), LOG_INT("delivered", st.delivered));
		loop_quit(a->loop, EXIT_RUNTIME);
		return;
	}
	a->draining = true;
	log_info("main", "signal received, stopping watches and draining",
		LOG_STR("signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"));
	stop_watchers(a);
	a->drain_deadline_usec = loop_now_usec() + a->cfg.drain_timeout_usec;
	loop_timer_init(&a->drain_timer, handle_drain_timer, a);
	loop_timer_arm_in(a->loop, &a->drain_timer, 0);
}

static void handle_queue_space(void *userdata) {
	struct adapter *a = userdata;

	if (a->draining)
		return;
	for (size_t i = 0; i < a->n_watchers; i++)
		watcher_resume(a->watchers[i]);
}

/* Reads --state-dir's checkpoint: its undelivered events are queued again
 * (same ids), and its watch states wait for their watches. */
static int load_checkpoint(struct adapter *a) {
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

/* Ready: every watch has listed, the sink is known (with OIDC, a token is
 * in hand), and no shutdown has begun. */
static bool handle_ready(char *reason, size_t len, void *userdata) {
	struct adapter *a = userdata;
	const char *problem;

	if (a->draining) {
		snprintf(reason, len, "shutting down");
		return false;
	}
	if (!all_listed(a)) {
		snprintf(reason, len, "not ready: waiting for the initial list of every watch "
				      "(is the API server reachable?)");
		return false;
	}
	for (size_t i = 0; i < a->n_watchers; i++)
		if (!watcher_reachable(a->watchers[i])) {
			snprintf(reason, len, "not ready: the API server is not answering a list or watch");
			return false;
		}
	if (!a->cfg.sink) {
		snprintf(reason, len, "not ready: no sink");
		return false;
	}
	if ((problem = oidc_problem(a->oidc))) {
		snprintf(reason, len, "not ready: %s", problem);
		return false;
	}
	return true;
}

static int handle_metrics(struct buf *out, void *userdata) {
	struct adapter *a = userdata;
	struct queue_stats st;
	char reason[8];

	sink_get_stats(a->sink, &st);
	return metrics_render(a->metrics, &st, handle_ready(reason, sizeof(reason), a),
		loop_now_usec(), out);
}

/* Logging as configured: K_LOGGING_CONFIG (a zap configuration) under
 * Knative; --log-level and --log-format override it; without either, JSON
 * on stderr, or text when stderr is a terminal. */
static int setup_logging(struct adapter *a) {
	struct log_options o;
	char err[300];

	log_options_default(&o);
	if (a->cfg.logging_config &&
		log_options_from_zap(a->cfg.logging_config, "apiserversource", &o, err, sizeof(err)) < 0) {
		handle_config_error("K_LOGGING_CONFIG", err, a);
		return -EINVAL;
	}
	if (a->cfg.log_level_set || !a->cfg.logging_config)
		o.level = a->cfg.log_level;
	if (a->cfg.log_format >= 0)
		o.format = (enum log_format)a->cfg.log_format;
	else if (!a->cfg.logging_config && isatty(STDERR_FILENO))
		o.format = LOG_FORMAT_TEXT;
	log_configure(&o);
	return 0;
}

static int start_endpoints(struct adapter *a) {
	static const struct probes_ops ops = { .ready = handle_ready, .metrics = handle_metrics };
	char err[400] = "";
	int r;

	if (a->cfg.metrics_protocol && strcmp(a->cfg.metrics_protocol, "prometheus") != 0 &&
		strcmp(a->cfg.metrics_protocol, "none") != 0)
		log_warn("main", "K_OBSERVABILITY_CONFIG asks for a metrics protocol this adapter "
				 "does not export; no metrics are served (use prometheus)",
			LOG_STR("protocol", a->cfg.metrics_protocol));
	if (!a->cfg.probes_addr && !a->cfg.metrics_addr)
		return 0;
	for (;;) {
		bool probes_failed;
		char **failed;

		r = probes_create(a->loop, a->cfg.probes_addr, a->cfg.metrics_addr, &ops, a,
			&a->probes, err, sizeof(err));
		if (r == 0)
			break;
		probes_failed = a->cfg.probes_addr && strstr(err, a->cfg.probes_addr) == err;
		failed = probes_failed ? &a->cfg.probes_addr : &a->cfg.metrics_addr;
		/* On the command line, outside a cluster, a default port that is
		 * taken (a local sink on 8080, say) only costs the endpoint. In a
		 * pod, or when chosen, it is an error: the kubelet needs it. */
		if (r != -EADDRINUSE || kube_in_cluster(a->kube) ||
			(probes_failed ? a->cfg.probes_addr_chosen : a->cfg.metrics_addr_chosen)) {
			log_error("main", err,
				LOG_STR("field", probes_failed ? "--probes-addr" : "--metrics-addr"));
			return r;
		}
		log_warn("main", probes_failed ?
				"default probe port taken; serving no probes (choose one with --probes-addr)" :
				"default metrics port taken; serving no metrics (choose one with --metrics-addr)",
			LOG_STR("error", err));
		free(*failed);
		*failed = NULL;
		if (!a->cfg.probes_addr && !a->cfg.metrics_addr)
			return 0;
	}
	log_info("main", "serving probes and metrics",
		LOG_INT("probes_port", probes_port(a->probes, false)),
		LOG_INT("metrics_port", probes_port(a->probes, true)));
	return 0;
}

/* What the start line names: "*" for every namespace, else the namespaces
 * watched, comma-separated (cluster-scoped kinds ignore them). */
static int namespaces_text(const struct config *cfg, struct buf *out) {
	int r = 0;

	if (cfg->all_namespaces)
		return buf_append_str(out, "*");
	for (size_t i = 0; r == 0 && i < cfg->n_namespaces; i++) {
		if (i)
			r = buf_append(out, ",", 1);
		if (r == 0)
			r = buf_append_str(out, cfg->namespaces[i]);
	}
	return r;
}

static void adapter_finish(struct adapter *a) {
	/* Joins a write in flight; its snapshot holds references to objects. */
	checkpoint_writer_destroy(a->checkpoint_writer);
	for (size_t i = 0; i < a->n_watchers; i++)
		watcher_destroy(a->watchers[i]);
	free(a->watchers);
	probes_destroy(a->probes);
	sink_destroy(a->sink);
	oidc_destroy(a->oidc);
	http_destroy(a->http);
	if (a->loop) {
		loop_timer_disarm(a->loop, &a->drain_timer);
		loop_timer_disarm(a->loop, &a->checkpoint_timer);
	}
	checkpoint_state_free(a->checkpoint);
	metrics_destroy(a->metrics);
	loop_destroy(a->loop);
	kube_destroy(a->kube);
	config_finish(&a->cfg);
}

int main(int argc, char **argv) {
	struct adapter a = { 0 };
	struct buf namespaces;
	bool bad_config;
	int r, ret = EXIT_RUNTIME;

	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("main", "cannot initialise libcurl");
		return EXIT_RUNTIME;
	}
	r = config_load(&a.cfg, argc, argv, env_lookup, NULL, handle_config_error, &a);
	if (r == -ENOMEM) {
		log_error("main", "out of memory while reading configuration");
		goto out;
	}
	if (a.cfg.help) {
		config_usage(STDOUT_FILENO);
		ret = 0;
		goto out;
	}
	if (a.cfg.version) {
		printf("apiserversource-adapter %s\n", ADAPTER_VERSION);
		ret = 0;
		goto out;
	}
	bad_config = r < 0 || setup_logging(&a) < 0;
	/* Every problem in one run: the cluster's configuration (files only, no
	 * connection) is checked even when the rest has problems, unless one of
	 * them is in what it reads: then it would report a guess. */
	if (!a.kube_input_bad && kube_load(&a.cfg, handle_config_error, &a, &a.kube) < 0)
		bad_config = true;
	if (bad_config) {
		ret = EXIT_CONFIG;
		goto out;
	}
	if (a.cfg.filter_warnings) {
		/* One line each, as Knative's adapter logs a filter it drops. */
		char *save = NULL;
		for (char *w = strtok_r(a.cfg.filter_warnings, "\n", &save); w;
			w = strtok_r(NULL, "\n", &save))
			log_warn("main", "filter dropped, as Knative's adapter drops it", LOG_STR("filter", w));
	}
	if (a.cfg.filter)
		log_info("main", "filters apply", LOG_INT("filters", filter_count(a.cfg.filter)));
	if (a.cfg.namespace_selector && !a.cfg.all_namespaces) {
		if (nsselector_resolve(&a.cfg, a.kube) < 0)
			goto out;
		if (!a.cfg.n_namespaces)
			log_warn("main", "spec.namespaceSelector matches no namespace; nothing to watch",
				LOG_STR("selector", a.cfg.namespace_selector));
	} else if (!a.cfg.all_namespaces && !a.cfg.n_namespaces) {
		/* kubectl's rule: the context's namespace, else the pod's, else default. */
		config_add_namespace(&a.cfg, kube_default_namespace(a.kube));
	}

	r = loop_create(&a.loop);
	if (r == 0)
		r = http_create(a.loop, &a.http);
	if (r == 0)
		r = sink_create(&a.cfg, a.loop, a.http, &a.sink);
	if (r == 0 && a.cfg.metrics_addr)
		r = metrics_create(&a.metrics);
	if (r == 0 && a.cfg.oidc_audience)
		r = oidc_create(a.kube, a.http, a.loop, a.cfg.namespace, a.cfg.oidc_service_account,
			/* Events that found no token wait for their retry: no callback. */
			a.cfg.oidc_audience, NULL, NULL, &a.oidc);
	if (r == 0)
		r = loop_handle_signals(a.loop, handle_signal, &a);
	if (r < 0) {
		log_error("main", "cannot start", LOG_STR("error", strerror(-r)));
		goto out;
	}
	loop_timer_init(&a.drain_timer, handle_drain_timer, &a);
	loop_timer_init(&a.checkpoint_timer, handle_checkpoint_timer, &a);
	sink_on_space(a.sink, handle_queue_space, &a);
	sink_set_metrics(a.sink, a.metrics);
	sink_set_oidc(a.sink, a.oidc);
	if (a.cfg.state_dir) {
		r = checkpoint_writer_create(a.loop, handle_checkpoint_written, &a,
			&a.checkpoint_writer);
		if (r < 0) {
			log_error("main", "cannot start", LOG_STR("error", strerror(-r)));
			goto out;
		}
	}
	if (a.cfg.state_dir && load_checkpoint(&a) < 0) {
		ret = EXIT_CONFIG;
		goto out;
	}
	a.wctx = (struct watch_context){
		.cfg = &a.cfg,
		.loop = a.loop,
		.http = a.http,
		.kube = a.kube,
		.sink = a.sink,
		.fatal = handle_fatal,
		.userdata = &a,
		.checkpoint = a.checkpoint,
		.metrics = a.metrics,
	};
	a.watchers = calloc(a.cfg.n_resources, sizeof(*a.watchers));
	if (!a.watchers)
		goto out;
	for (size_t i = 0; i < a.cfg.n_resources; i++) {
		r = watcher_create(&a.wctx, &a.cfg.resources[i], &a.watchers[i]);
		if (r < 0)
			goto out;
		a.n_watchers++;
	}
	buf_init(&namespaces, 0);
	if (namespaces_text(&a.cfg, &namespaces) < 0)
		buf_reset(&namespaces); /* out of memory: the count still says it */
	log_info("main", "adapter started", LOG_STR("version", ADAPTER_VERSION),
		LOG_STR("server", kube_server(a.kube)),
		LOG_STR("mode", a.cfg.mode == CONFIG_MODE_RESOURCE ? "Resource" : "Reference"),
		LOG_INT("resources", a.cfg.n_resources),
		LOG_STR("namespaces", namespaces.data ? namespaces.data : ""),
		LOG_INT("namespace_count", a.cfg.n_namespaces));
	buf_finish(&namespaces);
	if (start_endpoints(&a) < 0)
		goto out;
	for (size_t i = 0; i < a.n_watchers; i++)
		watcher_start(a.watchers[i]);
	if (a.cfg.state_dir) {
		a.first_checkpoint_due = true;
		a.checkpoint_next_usec = loop_now_usec() + a.cfg.checkpoint_interval_usec;
		loop_timer_arm_in(a.loop, &a.checkpoint_timer, CHECKPOINT_POLL_USEC);
	}
	ret = loop_run(a.loop);
	if (ret > 0 && a.cfg.state_dir)
		write_checkpoint(&a); /* leaving on an error: keep what is known */
	if (ret < 0) {
		log_error("main", "event loop failed", LOG_STR("error", strerror(-ret)));
		ret = EXIT_RUNTIME;
	}
out:
	adapter_finish(&a);
	curl_global_cleanup();
	return ret;
}

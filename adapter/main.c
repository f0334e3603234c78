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
#include "adapter/secrets_warning.h"
#include "adapter/sink.h"
#include "adapter/sink_headers.h"
#include "adapter/sinkref.h"
#include "adapter/checkpoint.h"
#include "adapter/util/buf.h"
#include "adapter/watcher.h"

#include "main_internal.h"

#define DRAIN_POLL_USEC (50ull * 1000ull)

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
	nsselector_stop(a->nssel);
	for (size_t i = 0; i < a->n_watchers; i++)
		watcher_stop(a->watchers[i]);
}

static void finish_drain(struct adapter *a) {
	if (a->cfg.state_dir)
		adapter_checkpoint_write(a);
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

	if (signo == SIGHUP) {
		if (a->headers)
			sink_headers_reload(a->headers); /* --header-file */
		return;
	}
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
	nsselector_destroy(a->nssel);
	probes_destroy(a->probes);
	sinkref_destroy(a->sinkref);
	sink_destroy(a->sink);
	sink_headers_destroy(a->headers);
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
	if (r == 0 && sink_headers_create(&a.cfg, handle_config_error, &a, &a.headers) < 0)
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
	secrets_warning_check(&a.cfg);
	if (a.cfg.filter)
		log_info("main", "filters apply", LOG_INT("filters", filter_count(a.cfg.filter)));
	if (!a.cfg.namespace_selector && !a.cfg.all_namespaces && !a.cfg.n_namespaces) {
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
	loop_timer_init(&a.checkpoint_timer, adapter_checkpoint_timer, &a);
	sink_on_space(a.sink, handle_queue_space, &a);
	sink_set_metrics(a.sink, a.metrics);
	sink_set_oidc(a.sink, a.oidc);
	sink_set_headers(a.sink, a.headers);
	if (a.cfg.state_dir) {
		r = checkpoint_writer_create(a.loop, adapter_checkpoint_written, &a,
			&a.checkpoint_writer);
		if (r < 0) {
			log_error("main", "cannot start", LOG_STR("error", strerror(-r)));
			goto out;
		}
	}
	if (a.cfg.state_dir && adapter_checkpoint_load(&a) < 0) {
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
	/* A live namespaceSelector, or the fallback of a forbidden all-namespaces list. */
	if ((a.cfg.namespace_selector || a.cfg.all_namespaces) &&
		nsselector_create(&a.wctx, a.cfg.all_namespaces ? NULL : a.cfg.namespace_selector,
			a.watchers, a.n_watchers, &a.nssel) < 0)
		goto out;
	for (size_t i = 0; a.nssel && i < a.n_watchers; i++)
		watcher_on_forbidden(a.watchers[i], nsselector_handle_forbidden, a.nssel);
	if (a.cfg.sink_ref.kind &&
		sinkref_create(&a.wctx, &a.cfg.sink_ref,
			a.cfg.namespace ? a.cfg.namespace : kube_default_namespace(a.kube), a.cfg.sink,
			a.sink, &a.sinkref) < 0)
		goto out;
	buf_init(&namespaces, 0);
	if (namespaces_text(&a.cfg, &namespaces) < 0)
		buf_reset(&namespaces); /* out of memory: the count still says it */
	log_info("main", "adapter started", LOG_STR("version", ADAPTER_VERSION),
		LOG_STR("server", kube_server(a.kube)),
		LOG_STR("mode", a.cfg.mode == CONFIG_MODE_RESOURCE ? "Resource" : "Reference"),
		LOG_INT("resources", a.cfg.n_resources),
		LOG_STR("namespaces", namespaces.data ? namespaces.data : ""),
		LOG_INT("namespace_count", a.cfg.n_namespaces),
		LOG_STR("namespace_selector", a.cfg.namespace_selector ? a.cfg.namespace_selector : ""));
	buf_finish(&namespaces);
	if (adapter_start_endpoints(&a) < 0)
		goto out;
	if (a.sinkref)
		sinkref_start(a.sinkref);
	for (size_t i = 0; i < a.n_watchers; i++)
		watcher_start(a.watchers[i]);
	if (!a.cfg.all_namespaces)
		nsselector_start(a.nssel);
	if (a.cfg.state_dir) {
		a.first_checkpoint_due = true;
		a.checkpoint_next_usec = loop_now_usec() + a.cfg.checkpoint_interval_usec;
		loop_timer_arm_in(a.loop, &a.checkpoint_timer, CHECKPOINT_POLL_USEC);
	}
	ret = loop_run(a.loop);
	if (ret > 0 && a.cfg.state_dir)
		adapter_checkpoint_write(&a); /* leaving on an error: keep what is known */
	if (ret < 0) {
		log_error("main", "event loop failed", LOG_STR("error", strerror(-ret)));
		ret = EXIT_RUNTIME;
	}
out:
	adapter_finish(&a);
	curl_global_cleanup();
	return ret;
}

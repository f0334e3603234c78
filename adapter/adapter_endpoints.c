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
#include "adapter/sinkref.h"
#include "adapter/watcher.h"

#include "main_internal.h"

/* Ready: every watch has listed, the sink is known (with OIDC, a token is
 * in hand), and no shutdown has begun. */
bool adapter_ready(char *reason, size_t len, void *userdata) {
	struct adapter *a = userdata;
	const char *problem;
	char why[700];

	if (a->draining) {
		snprintf(reason, len, "shutting down");
		return false;
	}
	if (!adapter_all_listed(a)) {
		snprintf(reason, len, "not ready: waiting for the initial list of every watch "
				      "(is the API server reachable?)");
		return false;
	}
	for (size_t i = 0; i < a->n_watchers; i++)
		if (!watcher_reachable(a->watchers[i])) {
			snprintf(reason, len, "not ready: the API server is not answering a list or watch");
			return false;
		}
	if (a->sinkref && !sinkref_ready(a->sinkref, why, sizeof(why))) {
		snprintf(reason, len, "not ready: %s", why);
		return false;
	}
	if (!a->sinkref && !a->cfg.sink) {
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
	return metrics_render(a->metrics, &st, adapter_ready(reason, sizeof(reason), a),
		loop_now_usec(), out);
}

int adapter_start_endpoints(struct adapter *a) {
	static const struct probes_ops ops = { .ready = adapter_ready, .metrics = handle_metrics };
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

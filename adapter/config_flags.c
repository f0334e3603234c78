#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/config.h"
#include "adapter/config_internal.h"

/* ---------------- flags ---------------- */

enum {
	OPT_RESOURCE = 1000,
	OPT_MODE,
	OPT_SINK,
	OPT_KUBECONFIG,
	OPT_CONTEXT,
	OPT_NAME,
	OPT_SOURCE_FILE,
	OPT_INITIAL_EVENTS,
	OPT_FAIL_FAST,
	OPT_LOG_LEVEL,
	OPT_DEAD_LETTER,
	OPT_STATE_DIR,
	OPT_OBJECT_STATE,
	OPT_VERSION,
	OPT_PROBES_ADDR,
	OPT_METRICS_ADDR,
	OPT_LOG_FORMAT,
	OPT_FILTER,
	OPT_NUMERIC = 2000, /* numeric_flags[i] has option OPT_NUMERIC + i */
};

enum num_kind { NUM_SECONDS_USEC, NUM_UNSIGNED, NUM_SIZE };

/* Flags taking a whole number: parsed and range-checked alike. */
static const struct numeric_flag {
	const char *name;
	unsigned long long min, max;
	const char *unit;
	size_t offset;
	enum num_kind kind;
} numeric_flags[] = {
	{ "sink-timeout", 1, 86400, "seconds", offsetof(struct config, sink_timeout_usec),
		NUM_SECONDS_USEC },
	{ "retry-max", 0, 1000000, "attempts (0: no limit)", offsetof(struct config, retry_max),
		NUM_UNSIGNED },
	{ "retry-timeout", 0, 30 * 86400, "seconds (0: no limit)",
		offsetof(struct config, retry_timeout_usec), NUM_SECONDS_USEC },
	{ "max-event-bytes", 1024, 1ull << 30, "bytes", offsetof(struct config, max_event_bytes),
		NUM_SIZE },
	{ "max-inflight", 1, 4096, "requests", offsetof(struct config, max_inflight), NUM_SIZE },
	{ "watch-timeout", 1, 3600, "seconds", offsetof(struct config, watch_timeout_sec),
		NUM_UNSIGNED },
	{ "queue-max-events", 1, 100000000, "events", offsetof(struct config, queue_max_events),
		NUM_SIZE },
	{ "queue-max-bytes", 65536, 1ull << 40, "bytes", offsetof(struct config, queue_max_bytes),
		NUM_SIZE },
	{ "drain-timeout", 0, 3600, "seconds", offsetof(struct config, drain_timeout_usec),
		NUM_SECONDS_USEC },
	{ "checkpoint-interval", 1, 3600, "seconds",
		offsetof(struct config, checkpoint_interval_usec), NUM_SECONDS_USEC },
	{ "request-timeout", 1, 3600, "seconds", offsetof(struct config, request_timeout_usec),
		NUM_SECONDS_USEC },
};

static const struct option long_options[] = {
	{ "resource", required_argument, NULL, OPT_RESOURCE },
	{ "namespace", required_argument, NULL, 'n' },
	{ "all-namespaces", no_argument, NULL, 'A' },
	{ "selector", required_argument, NULL, 'l' },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "sink", required_argument, NULL, OPT_SINK },
	{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
	{ "context", required_argument, NULL, OPT_CONTEXT },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "source-file", required_argument, NULL, OPT_SOURCE_FILE },
	{ "initial-events", no_argument, NULL, OPT_INITIAL_EVENTS },
	{ "fail-fast", no_argument, NULL, OPT_FAIL_FAST },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "dead-letter", required_argument, NULL, OPT_DEAD_LETTER },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "object-state", required_argument, NULL, OPT_OBJECT_STATE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "probes-addr", required_argument, NULL, OPT_PROBES_ADDR },
	{ "metrics-addr", required_argument, NULL, OPT_METRICS_ADDR },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "filter", required_argument, NULL, OPT_FILTER },
	{ "sink-timeout", required_argument, NULL, OPT_NUMERIC + 0 },
	{ "retry-max", required_argument, NULL, OPT_NUMERIC + 1 },
	{ "retry-timeout", required_argument, NULL, OPT_NUMERIC + 2 },
	{ "max-event-bytes", required_argument, NULL, OPT_NUMERIC + 3 },
	{ "max-inflight", required_argument, NULL, OPT_NUMERIC + 4 },
	{ "watch-timeout", required_argument, NULL, OPT_NUMERIC + 5 },
	{ "queue-max-events", required_argument, NULL, OPT_NUMERIC + 6 },
	{ "queue-max-bytes", required_argument, NULL, OPT_NUMERIC + 7 },
	{ "drain-timeout", required_argument, NULL, OPT_NUMERIC + 8 },
	{ "checkpoint-interval", required_argument, NULL, OPT_NUMERIC + 9 },
	{ "request-timeout", required_argument, NULL, OPT_NUMERIC + 10 },
	{ 0 },
};

void config_usage(int fd) {
	dprintf(fd,
		"Usage: apiserversource-adapter --resource APIVERSION/KIND [--resource ...] --sink URL|-\n"
		"                               [-n NAMESPACE ... | -A] [-l SELECTOR] [options]\n"
		"\n"
		"Watches Kubernetes resources and POSTs a CloudEvent for every add, update and delete,\n"
		"as Knative Eventing's ApiServerSource adapter does.\n"
		"\n"
		"What to watch:\n"
		"  --resource APIVERSION/KIND  a kind to watch, e.g. kool.karmalabs.local/v1/Guitar or\n"
		"                              v1/Pod (repeatable)\n"
		"  -n, --namespace NS          watch this namespace (repeatable); default: the\n"
		"                              kubeconfig context's namespace, or the pod's namespace\n"
		"  -A, --all-namespaces        watch every namespace\n"
		"  -l, --selector SELECTOR     label selector applied to every --resource\n"
		"  --initial-events            send an add for each object that exists at start\n"
		"  --source-file FILE          read an ApiServerSource manifest (YAML)\n"
		"\n"
		"Where to send:\n"
		"  --sink URL|-                the sink; - writes structured JSON lines to stdout\n"
		"  --mode Resource|Reference   event payload: the object, or a reference to it\n"
		"  --filter FILTER             send only events that pass: a CloudEvents SQL\n"
		"                              expression, or one Subscriptions API filter as JSON,\n"
		"                              e.g. '{\"prefix\":{\"type\":\"dev.knative\"}}' (repeatable:\n"
		"                              all must pass; replaces spec.filters and K_SOURCE_CONFIG's)\n"
		"                              (default Resource on the command line)\n"
		"  --sink-timeout SECONDS      bound on each delivery attempt (default 30)\n"
		"  --retry-max N               delivery attempts per event (default 0: no limit)\n"
		"  --retry-timeout SECONDS     give an event up this long after its first attempt\n"
		"  --dead-letter URL           where events the sink gives up on go\n"
		"  --queue-max-events N        queue bound; the watches pause when full (default 10000)\n"
		"  --queue-max-bytes N         queue bound in bytes (default 33554432)\n"
		"  --max-inflight N            concurrent POSTs to the sink (default 64)\n"
		"\n"
		"Cluster access:\n"
		"  --kubeconfig PATH           default $KUBECONFIG, in-cluster, then ~/.kube/config\n"
		"  --context NAME              kubeconfig context (default: current-context)\n"
		"\n"
		"Other:\n"
		"  --name NAME                 the source's name (default $NAME)\n"
		"  --fail-fast                 exit when a resource cannot be watched\n"
		"  --max-event-bytes N         longest watch event accepted (default 16777216)\n"
		"  --state-dir DIR             checkpoints: state and undelivered events survive restarts\n"
		"  --checkpoint-interval SECONDS  how often a changed state is written (default 5)\n"
		"  --drain-timeout SECONDS     delivery time left after SIGTERM (default 25)\n"
		"  --object-state full|reference  keep each object's last state, or a reference\n"
		"  --watch-timeout SECONDS     each watch asks the server to end it after this to\n"
		"                              twice this (default 300), then resumes\n"
		"  --request-timeout SECONDS   bound on each list and discovery request (default 60);\n"
		"                              a watch silent past its timeout plus this is restarted\n"
		"  --log-level LEVEL           debug, info, warn or error (default info)\n"
		"  --log-format json|text      log lines as JSON objects or as text (default: text on a\n"
		"                              terminal, JSON otherwise; K_LOGGING_CONFIG's encoding)\n"
		"  --probes-addr HOST:PORT     /health and /readiness (default :8080; off: none)\n"
		"  --metrics-addr HOST:PORT    Prometheus /metrics (default :9092; off: none)\n"
		"  -h, --help                  this text\n"
		"  --version                   the version\n"
		"\n"
		"Environment (Knative's, flags override): K_SINK, K_SOURCE_CONFIG, NAME, NAMESPACE,\n"
		"K_CE_OVERRIDES, K_SINK_TIMEOUT, K_CA_CERTS, K_LOGGING_CONFIG, K_OBSERVABILITY_CONFIG,\n"
		"K_AUDIENCE, K_OIDC_SERVICE_ACCOUNT, KUBECONFIG, KUBERNETES_SERVICE_HOST/PORT.\n");
}


void config_flag_values_finish(struct flag_values *f) {
	for (size_t i = 0; i < f->n_resources; i++)
		config_resource_finish(&f->resources[i]);
	free(f->resources);
	for (size_t i = 0; i < f->n_namespaces; i++)
		free(f->namespaces[i]);
	free(f->namespaces);
	free(f->filters);
}

void config_parse_flags(struct ctx *c, int argc, char **argv, struct flag_values *f) {
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":n:Al:h", long_options, NULL)) != -1) {
		switch (opt) {
		case OPT_RESOURCE: {
			struct config_resource res = { 0 }, *n;
			if (config_parse_resource(optarg, &res) < 0) {
				config_report(c, "--resource",
					"\"%s\" is not APIVERSION/KIND (e.g. kool.karmalabs.local/v1/Guitar, "
					"v1/Pod)",
					optarg);
				f->bad_resources++;
				break;
			}
			n = realloc(f->resources, (f->n_resources + 1) * sizeof(*n));
			if (!n)
				abort();
			f->resources = n;
			f->resources[f->n_resources++] = res;
			break;
		}
		case 'n': {
			/* kubectl takes one namespace per -n; we also accept a comma list. */
			char *copy = config_xstrdup(optarg), *save = NULL;
			for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				char **n;
				if (!config_valid_dns_label(tok)) {
					config_report(c, "--namespace", "\"%s\" is not a valid namespace name", tok);
					continue;
				}
				n = realloc(f->namespaces, (f->n_namespaces + 1) * sizeof(*n));
				if (!n)
					abort();
				f->namespaces = n;
				f->namespaces[f->n_namespaces++] = config_xstrdup(tok);
			}
			free(copy);
			break;
		}
		case 'A':
			f->all_namespaces = true;
			break;
		case 'l':
			f->selector = optarg;
			break;
		case OPT_MODE:
			f->mode = optarg;
			break;
		case OPT_SINK:
			f->sink = optarg;
			break;
		case OPT_KUBECONFIG:
			f->kubeconfig = optarg;
			break;
		case OPT_CONTEXT:
			f->context = optarg;
			break;
		case OPT_NAME:
			f->name = optarg;
			break;
		case OPT_SOURCE_FILE:
			f->source_file = optarg;
			break;
		case OPT_INITIAL_EVENTS:
			f->initial_events = true;
			break;
		case OPT_FAIL_FAST:
			f->fail_fast = true;
			break;
		case OPT_LOG_LEVEL:
			f->log_level = optarg;
			break;
		case OPT_DEAD_LETTER:
			f->dead_letter = optarg;
			break;
		case OPT_STATE_DIR:
			f->state_dir = optarg;
			break;
		case OPT_OBJECT_STATE:
			f->object_state = optarg;
			break;
		case OPT_PROBES_ADDR:
			f->probes_addr = optarg;
			break;
		case OPT_METRICS_ADDR:
			f->metrics_addr = optarg;
			break;
		case OPT_LOG_FORMAT:
			f->log_format = optarg;
			break;
		case OPT_FILTER: {
			const char **n = realloc(f->filters, (f->n_filters + 1) * sizeof(*n));
			if (!n)
				abort();
			f->filters = n;
			f->filters[f->n_filters++] = optarg;
			break;
		}
		case 'h':
			c->cfg->help = true;
			break;
		case OPT_VERSION:
			c->cfg->version = true;
			break;
		case ':':
			config_report(c, argv[optind - 1], "needs a value");
			break;
		default:
			if (opt >= OPT_NUMERIC && opt < OPT_NUMERIC + (int)N_NUMERIC) {
				f->numeric[opt - OPT_NUMERIC] = optarg;
				break;
			}
			config_report(c, argv[optind - 1], "unknown flag (see --help)");
			break;
		}
	}
	if (optind < argc)
		config_report(c, argv[optind], "unexpected argument (see --help)");
}

void config_apply_numeric_flags(struct ctx *c, const struct flag_values *f) {
	unsigned long long u;

	for (size_t i = 0; i < N_NUMERIC; i++) {
		const struct numeric_flag *nf = &numeric_flags[i];
		char flag[64];
		void *field = (char *)c->cfg + nf->offset;

		if (!f->numeric[i])
			continue;
		snprintf(flag, sizeof(flag), "--%s", nf->name);
		if (config_parse_uint(f->numeric[i], nf->max, &u) < 0 || u < nf->min) {
			config_report(c, flag, "\"%s\" is not a number of %s (%llu-%llu)", f->numeric[i], nf->unit,
				nf->min, nf->max);
			continue;
		}
		switch (nf->kind) {
		case NUM_SECONDS_USEC:
			*(uint64_t *)field = u * 1000000ull;
			break;
		case NUM_UNSIGNED:
			*(unsigned *)field = (unsigned)u;
			break;
		case NUM_SIZE:
			*(size_t *)field = (size_t)u;
			break;
		}
	}
}

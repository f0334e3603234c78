#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/config.h"
#include "adapter/config_internal.h"

/* ---------------- the option table ---------------- */

/* Every command-line option is defined once, below: getopt_long()'s array,
 * --help, the environment variables that set an option too, and the checks
 * every value gets (empty, control characters) all come from it. */

enum opt_type {
	OPT_STRING,  /* char *: a copy of the value */
	OPT_BOOL,    /* bool: the flag takes no value and sets true */
	OPT_UINT,    /* unsigned, a whole number in [min, max] */
	OPT_SIZE,    /* size_t, a whole number in [min, max] */
	OPT_SECONDS, /* uint64_t microseconds, from whole seconds in [min, max] */
	OPT_CUSTOM,  /* set() parses and stores */
};

enum {
	RULE_REPEAT = 1u << 0,	  /* every occurrence counts, in order (else the last) */
	RULE_EMPTY_OK = 1u << 1,  /* "" means something (the help says what) */
	RULE_MULTILINE = 1u << 2, /* tabs and line breaks allowed (JSON, CESQL) */
	RULE_EARLY = 1u << 3,	  /* applied while parsing: --help, --version, --source-file */
};

struct option_def;
/* Stores one value; first is true for the option's first value applied (a
 * repeated option replaces what the environment or manifest said). origin
 * names the flag ("--sink") or the variable ("K_SINK"). */
typedef void (*option_set_fn)(struct ctx *c, const char *origin, const char *value, bool first);

struct option_def {
	const char *name; /* long name, without "--" */
	char letter;	  /* short option, or 0 */
	enum opt_type type;
	size_t offset; /* of the field in struct config, type-checked by CONFIG_FIELD */
	unsigned long long min, max;
	const char *unit;
	option_set_fn set;
	const char *env; /* the variable that also sets it (flags override), or NULL */
	const char *arg; /* the value's name in --help; NULL: no value */
	const char *help;     /* lines break at '\n' */
	const char *section;  /* starts a --help section */
	const char *if_empty; /* what to do instead of giving "" */
	unsigned rules;
};

#define STRING(m) .type = OPT_STRING, .offset = CONFIG_FIELD(m, char *)
#define BOOL(m) .type = OPT_BOOL, .offset = CONFIG_FIELD(m, bool)
#define UINT(m, lo, hi, u) \
	.type = OPT_UINT, .offset = CONFIG_FIELD(m, unsigned), .min = (lo), .max = (hi), .unit = (u)
#define SIZE(m, lo, hi, u) \
	.type = OPT_SIZE, .offset = CONFIG_FIELD(m, size_t), .min = (lo), .max = (hi), .unit = (u)
#define SECONDS(m, lo, hi, u)                                                                  \
	.type = OPT_SECONDS, .offset = CONFIG_FIELD(m, uint64_t), .min = (lo), .max = (hi), \
	.unit = (u)
#define CUSTOM(fn) .type = OPT_CUSTOM, .set = (fn)

static void set_resource(struct ctx *c, const char *origin, const char *value, bool first);
static void set_namespace(struct ctx *c, const char *origin, const char *value, bool first);
static void set_all_namespaces(struct ctx *c, const char *origin, const char *value, bool first);
static void set_selector(struct ctx *c, const char *origin, const char *value, bool first);
static void set_sink(struct ctx *c, const char *origin, const char *value, bool first);
static void set_mode(struct ctx *c, const char *origin, const char *value, bool first);
static void set_filter(struct ctx *c, const char *origin, const char *value, bool first);
static void set_dead_letter(struct ctx *c, const char *origin, const char *value, bool first);
static void set_kubeconfig(struct ctx *c, const char *origin, const char *value, bool first);
static void set_state_dir(struct ctx *c, const char *origin, const char *value, bool first);
static void set_object_state(struct ctx *c, const char *origin, const char *value, bool first);

/* In --help order. Defaults are set in config_load(); the help text states them. */
static const struct option_def options[] = {
	{ "resource", 0, CUSTOM(set_resource), .arg = "APIVERSION/KIND", .rules = RULE_REPEAT,
		.section = "What to watch",
		.help = "a kind to watch, e.g. kool.karmalabs.local/v1/Guitar or\nv1/Pod (repeatable)" },
	{ "namespace", 'n', CUSTOM(set_namespace), .arg = "NS", .rules = RULE_REPEAT,
		.help = "watch this namespace (repeatable); default: the\n"
			"kubeconfig context's namespace, or the pod's namespace",
		.if_empty = "leave -n out to watch the kubeconfig context's namespace" },
	{ "all-namespaces", 'A', CUSTOM(set_all_namespaces), .help = "watch every namespace" },
	{ "selector", 'l', CUSTOM(set_selector), .arg = "SELECTOR", .rules = RULE_EMPTY_OK,
		.help = "label selector applied to every --resource (\"\": none)" },
	{ "initial-events", 0, BOOL(initial_events),
		.help = "send an add for each object that exists at start" },
	{ "source-file", 0, STRING(source_file), .arg = "FILE", .rules = RULE_EARLY,
		.help = "read an ApiServerSource manifest (YAML)" },

	{ "sink", 0, CUSTOM(set_sink), .arg = "URL|-", .env = "K_SINK", .section = "Where to send",
		.help = "the sink; - writes structured JSON lines to stdout" },
	{ "mode", 0, CUSTOM(set_mode), .arg = "Resource|Reference",
		.help = "event payload: the object, or a reference to it\n"
			"(default Resource on the command line)" },
	{ "filter", 0, CUSTOM(set_filter), .arg = "FILTER", .rules = RULE_REPEAT | RULE_MULTILINE,
		.help = "send only events that pass: a CloudEvents SQL\n"
			"expression, or one Subscriptions API filter as JSON,\n"
			"e.g. '{\"prefix\":{\"type\":\"dev.knative\"}}' (repeatable:\n"
			"all must pass; replaces spec.filters and K_SOURCE_CONFIG's)" },
	{ "sink-timeout", 0, SECONDS(sink_timeout_usec, 1, 86400, "seconds"), .arg = "SECONDS",
		.env = "K_SINK_TIMEOUT", .help = "bound on each delivery attempt (default 30)" },
	{ "retry-max", 0, UINT(retry_max, 0, 1000000, "attempts (0: no limit)"), .arg = "N",
		.help = "delivery attempts per event (default 0: no limit)" },
	{ "retry-timeout", 0, SECONDS(retry_timeout_usec, 0, 30 * 86400, "seconds (0: no limit)"),
		.arg = "SECONDS", .help = "give an event up this long after its first attempt" },
	{ "dead-letter", 0, CUSTOM(set_dead_letter), .arg = "URL",
		.help = "where events the sink gives up on go" },
	{ "queue-max-events", 0, SIZE(queue_max_events, 1, 100000000, "events"), .arg = "N",
		.help = "queue bound; the watches pause when full (default 10000)" },
	{ "queue-max-bytes", 0, SIZE(queue_max_bytes, 65536, 1ull << 40, "bytes"), .arg = "N",
		.help = "queue bound in bytes (default 2097152)" },
	{ "max-inflight", 0, SIZE(max_inflight, 1, 4096, "requests"), .arg = "N",
		.help = "concurrent POSTs to the sink (default 64)" },

	{ "kubeconfig", 0, CUSTOM(set_kubeconfig), .arg = "PATH", .env = "KUBECONFIG",
		.section = "Cluster access",
		.help = "default: in-cluster, then ~/.kube/config" },
	{ "context", 0, STRING(context), .arg = "NAME",
		.help = "kubeconfig context (default: current-context)" },

	{ "name", 0, STRING(name), .arg = "NAME", .env = "NAME", .section = "Other",
		.help = "the source's name" },
	{ "fail-fast", 0, BOOL(fail_fast), .help = "exit when a resource cannot be watched" },
	{ "max-event-bytes", 0, SIZE(max_event_bytes, 1024, 1ull << 30, "bytes"), .arg = "N",
		.help = "longest watch event accepted (default 16777216)" },
	{ "state-dir", 0, CUSTOM(set_state_dir), .arg = "DIR",
		.help = "checkpoints: state and undelivered events survive restarts\n"
			"(an existing, writable directory)",
		.if_empty = "leave --state-dir out to keep no checkpoints" },
	{ "checkpoint-interval", 0, SECONDS(checkpoint_interval_usec, 1, 3600, "seconds"),
		.arg = "SECONDS", .help = "how often a changed state is written (default 5)" },
	{ "drain-timeout", 0, SECONDS(drain_timeout_usec, 0, 3600, "seconds"), .arg = "SECONDS",
		.help = "delivery time left after SIGTERM (default 25)" },
	{ "object-state", 0, CUSTOM(set_object_state), .arg = "full|reference",
		.help = "keep each object's last state, or a reference" },
	{ "watch-timeout", 0, UINT(watch_timeout_sec, 1, 3600, "seconds"), .arg = "SECONDS",
		.help = "each watch asks the server to end it after this to\n"
			"twice this (default 300), then resumes" },
	{ "request-timeout", 0, SECONDS(request_timeout_usec, 1, 3600, "seconds"), .arg = "SECONDS",
		.help = "bound on each list and discovery request (default 60);\n"
			"a watch silent past its timeout plus this is restarted" },
	{ "log-level", 0, CUSTOM(config_set_log_level), .arg = "LEVEL",
		.help = "debug, info, warn or error (default info)" },
	{ "log-format", 0, CUSTOM(config_set_log_format), .arg = "json|text",
		.help = "log lines as JSON objects or as text (default: text on a\n"
			"terminal, JSON otherwise; K_LOGGING_CONFIG's encoding)" },
	{ "probes-addr", 0, CUSTOM(config_set_probes_addr), .arg = "HOST:PORT", .rules = RULE_EMPTY_OK,
		.help = "/health and /readiness (default :8080; off or \"\": none)" },
	{ "metrics-addr", 0, CUSTOM(config_set_metrics_addr), .arg = "HOST:PORT", .rules = RULE_EMPTY_OK,
		.help = "Prometheus /metrics (default :9092; off or \"\": none)" },
	/* What changed, extra headers (config_headers.c). */
	{ "with-changes", 0, BOOL(with_changes),
		.help = "update events carry the changedpaths extension: the\n"
			"JSON paths that changed (see the README)" },
	{ "strip-managed-fields", 0, BOOL(strip_managed_fields),
		.help = "drop metadata.managedFields from objects" },
	{ "header", 0, CUSTOM(config_set_header), .arg = "NAME=VALUE", .rules = RULE_REPEAT,
		.help = "add this header to every request to the sink\n"
			"(repeatable; not to the dead-letter sink)" },
	{ "header-file", 0, CUSTOM(config_set_header_file), .arg = "NAME=PATH",
		.rules = RULE_REPEAT,
		.help = "the same, the value read from a file (a mounted Secret):\n"
			"at start and on SIGHUP; never logged" },
	{ "sink-ref", 0, CUSTOM(config_set_sink_ref), .arg = "REF",
		.help = "APIVERSION/KIND/[NS/]NAME: send to this object's address,\n"
			"followed live: a v1 Service, or an Addressable's status\n"
			"address, e.g. eventing.knative.dev/v1/Broker/default\n"
			"(NS: the source's); --sink beside it is joined to it" },
	{ "leader-elect", 0, BOOL(leader_elect),
		.help = "run as one of several replicas: only the holder of a\n"
			"coordination.k8s.io Lease watches and delivers; the others\n"
			"stand by (the state is kept in the ConfigMap LEASE-state)" },
	{ "leader-elect-lease", 0, STRING(leader_elect_lease), .arg = "NAME",
		.help = "the Lease's name, in NAMESPACE or the kubeconfig's\n"
			"(default: the source's name, else apiserversource-adapter)" },
	{ "help", 'h', BOOL(help), .rules = RULE_EARLY, .help = "this text" },
	{ "version", 0, BOOL(version), .rules = RULE_EARLY, .help = "the version" },
	{ "content-mode", 0, CUSTOM(config_set_content_mode), .arg = "MODE",
		.section = "Content modes", .help = "binary (the default), structured or batched" },
	{ "batch-max-events", 0, SIZE(batch_max_events, 1, 100000, "events"), .arg = "N",
		.help = "events per batched request (default 100)" },
	{ "batch-max-bytes", 0, SIZE(batch_max_bytes, 1024, 1ull << 30, "bytes"), .arg = "N",
		.help = "bytes per batched request (default 1048576)" },
	{ "batch-linger", 0, CUSTOM(config_set_batch_linger), .arg = "DURATION",
		.help = "how long a batch may wait to fill (default 10ms)" },
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))
#define OPT_VAL_BASE 256 /* getopt_long's val for options without a letter: base + index */

static void *field_of(struct ctx *c, const struct option_def *o) {
	return (char *)c->cfg + o->offset;
}

/* ---------------- the setters ---------------- */

static void set_resource(struct ctx *c, const char *origin, const char *value, bool first) {
	struct config_resource res = { 0 };
	int r;

	if (first)
		config_free_resources(c->cfg); /* the command line's replace the others */
	r = config_parse_resource(value, &res);
	if (r == -ENOMEM) {
		config_oom(c);
		return;
	}
	if (r < 0) {
		config_report(c, origin,
			"\"%s\" is not APIVERSION/KIND (e.g. kool.karmalabs.local/v1/Guitar, v1/Pod)", value);
		c->bad_resources++;
		return;
	}
	if (config_add_resource(c, &res) == 0)
		c->flag_resources++;
}

static void set_namespace(struct ctx *c, const char *origin, const char *value, bool first) {
	struct config *cfg = c->cfg;
	const char *p = value;

	if (first) {
		/* The command line decides where to watch as a whole. */
		config_free_namespaces(cfg);
		cfg->all_namespaces = false;
		free(cfg->namespace_selector);
		cfg->namespace_selector = NULL;
		c->flag_namespaces = true;
	}
	/* kubectl takes one namespace per -n; we also accept a comma list. */
	for (;;) {
		size_t len = strcspn(p, ",");
		char name[64];

		if (len == 0)
			config_report(c, origin, "\"%s\" has an empty namespace name", value);
		else if (len >= sizeof(name))
			config_report(c, origin, "\"%.*s\" is not a valid namespace name", (int)len, p);
		else {
			memcpy(name, p, len);
			name[len] = '\0';
			if (!config_valid_dns_label(name))
				config_report(c, origin, "\"%s\" is not a valid namespace name", name);
			else if (config_add_namespace(cfg, name) < 0)
				config_oom(c);
		}
		if (!p[len])
			break;
		p += len + 1;
	}
}

static void set_all_namespaces(struct ctx *c, const char *origin, const char *value, bool first) {
	struct config *cfg = c->cfg;

	(void)origin, (void)value, (void)first;
	if (c->flag_namespaces) {
		config_report(c, "-A", "cannot be combined with -n");
		return;
	}
	config_free_namespaces(cfg);
	free(cfg->namespace_selector);
	cfg->namespace_selector = NULL;
	cfg->all_namespaces = true;
}

static void set_selector(struct ctx *c, const char *origin, const char *value, bool first) {
	struct config *cfg = c->cfg;

	(void)origin, (void)first;
	if (!c->flag_resources) {
		if (!c->bad_resources)
			config_report(c, "-l", "applies to --resource; give the selector with each "
					       "resource in K_SOURCE_CONFIG or the manifest instead");
		return;
	}
	/* kubectl's -l "": no selector, everything. */
	for (size_t i = 0; *value && i < cfg->n_resources; i++)
		config_set_str(c, &cfg->resources[i].label_selector, value);
}

static void set_sink(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	if (config_set_str(c, &c->cfg->sink, value) == 0)
		snprintf(c->sink_origin, sizeof(c->sink_origin), "%s", origin);
	/* A sink replaces a lower source's reference (K_SINK the manifest's);
	 * --sink with --sink-ref is a path joined to its address. */
	if (origin[0] == '-')
		c->flag_sink = true;
	if (!c->flag_sink_ref)
		config_sink_ref_finish(&c->cfg->sink_ref);
}

static void set_mode(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	if (config_parse_mode(value, &c->cfg->mode) < 0)
		config_report(c, origin, "must be Resource or Reference, not \"%s\"", value);
}

static void set_filter(struct ctx *c, const char *origin, const char *value, bool first) {
	if (first) {
		/* The command line's filters replace the configured ones. */
		filter_free(c->cfg->filter);
		c->cfg->filter = NULL;
	}
	config_add_filter(c, origin, value, strlen(value), true);
}

static void set_dead_letter(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	if (config_set_str(c, &c->cfg->dead_letter, value) == 0)
		snprintf(c->dead_letter_origin, sizeof(c->dead_letter_origin), "%s", origin);
}

static void set_kubeconfig(struct ctx *c, const char *origin, const char *value, bool first) {
	char *first_file;

	(void)first;
	if (origin[0] == '-') {
		config_set_str(c, &c->cfg->kubeconfig, value);
		return;
	}
	/* $KUBECONFIG: kubectl merges a list; we take its first file. */
	first_file = strndup(value, strcspn(value, ":"));
	if (!first_file) {
		config_oom(c);
		return;
	}
	free(c->cfg->kubeconfig);
	c->cfg->kubeconfig = first_file;
}

static void set_state_dir(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	config_check_state_dir(c, origin, value);
	config_set_str(c, &c->cfg->state_dir, value);
}

static void set_object_state(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	if (strcmp(value, "full") == 0)
		c->cfg->object_state_refs = false;
	else if (strcmp(value, "reference") == 0)
		c->cfg->object_state_refs = true;
	else
		config_report(c, origin, "must be full or reference, not \"%s\"", value);
}

/* ---------------- applying a value ---------------- */

/* The checks every value gets; false after reporting. */
static bool value_ok(struct ctx *c, const struct option_def *o, const char *origin, const char *value) {
	if (!*value && o->arg && !(o->rules & RULE_EMPTY_OK)) {
		config_report(c, origin, "empty value%s%s", o->if_empty ? "; " : "",
			o->if_empty ? o->if_empty : "");
		return false;
	}
	return config_check_control(c, origin, value, o->rules & RULE_MULTILINE);
}

static void apply_value(struct ctx *c, const struct option_def *o, const char *origin,
	const char *value, bool first) {
	unsigned long long u;

	if (!value_ok(c, o, origin, value)) {
		/* Reported: not also "nothing to watch" or "missing". */
		if (o->set == set_resource)
			c->bad_resources++;
		else if (o->set == set_sink || o->set == config_set_sink_ref)
			c->sink_rejected = true;
		return;
	}
	if (o->type == OPT_UINT || o->type == OPT_SIZE || o->type == OPT_SECONDS) {
		if (config_parse_uint(value, o->max, &u) < 0 || u < o->min) {
			config_report(c, origin, "\"%s\" is not a number of %s (%llu-%llu)", value, o->unit,
				o->min, o->max);
			return;
		}
	}
	switch (o->type) {
	case OPT_STRING:
		config_set_str(c, field_of(c, o), value);
		break;
	case OPT_BOOL:
		*(bool *)field_of(c, o) = true;
		break;
	case OPT_UINT:
		*(unsigned *)field_of(c, o) = (unsigned)u;
		break;
	case OPT_SIZE:
		*(size_t *)field_of(c, o) = (size_t)u;
		break;
	case OPT_SECONDS:
		*(uint64_t *)field_of(c, o) = u * 1000000ull;
		break;
	case OPT_CUSTOM:
		o->set(c, origin, value, first);
		break;
	}
}

void config_env_options_apply(struct ctx *c, config_getenv_fn get, void *ud) {
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *s = options[i].env ? get(options[i].env, ud) : NULL;

		/* An empty variable counts as unset, as Knative's adapter reads it. */
		if (s && *s)
			apply_value(c, &options[i], options[i].env, s, true);
	}
}

/* ---------------- the command line ---------------- */

struct config_flags {
	size_t n;
	struct occurrence {
		size_t opt;
		const char *value; /* borrowed from argv; "" for a flag without a value */
	} occ[];
};

void config_flags_free(struct config_flags *f) {
	free(f);
}

static void apply_option(struct ctx *c, const struct config_flags *f, size_t k) {
	const struct option_def *o = &options[k];
	char origin[64];
	size_t last = SIZE_MAX;
	bool first = true;

	snprintf(origin, sizeof(origin), "--%s", o->name);
	for (size_t i = 0; i < f->n; i++)
		if (f->occ[i].opt == k)
			last = i;
	for (size_t i = 0; i < f->n && last != SIZE_MAX; i++) {
		if (f->occ[i].opt != k || (!(o->rules & RULE_REPEAT) && i != last))
			continue;
		apply_value(c, o, origin, f->occ[i].value, first);
		first = false;
	}
}

int config_flags_parse(struct ctx *c, int argc, char **argv, struct config_flags **ret_flags) {
	struct option longs[N_OPTIONS + 1];
	char shorts[2 + 2 * N_OPTIONS + 1], *sp = shorts;
	struct config_flags *f;
	int opt;

	f = calloc(1, sizeof(*f) + (size_t)(argc > 0 ? argc : 1) * sizeof(f->occ[0]));
	if (!f)
		return config_oom(c);
	*sp++ = ':'; /* report a missing value as ':' */
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *o = &options[i];
		longs[i] = (struct option){ o->name, o->arg ? required_argument : no_argument, NULL,
			o->letter ? o->letter : OPT_VAL_BASE + (int)i };
		if (o->letter) {
			*sp++ = o->letter;
			if (o->arg)
				*sp++ = ':';
		}
	}
	longs[N_OPTIONS] = (struct option){ 0 };
	*sp = '\0';

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		size_t k = N_OPTIONS;

		if (opt >= OPT_VAL_BASE && opt < OPT_VAL_BASE + (int)N_OPTIONS)
			k = (size_t)(opt - OPT_VAL_BASE);
		for (size_t i = 0; k == N_OPTIONS && opt > 0 && opt < 128 && i < N_OPTIONS; i++)
			if (options[i].letter == opt)
				k = i;
		if (opt == ':')
			config_report(c, argv[optind - 1], "needs a value");
		else if (k == N_OPTIONS)
			config_report(c, argv[optind - 1], "unknown flag (see --help)");
		else
			f->occ[f->n++] = (struct occurrence){ k, optarg ? optarg : "" };
	}
	if (optind < argc)
		config_report(c, argv[optind], "unexpected argument (see --help)");
	for (size_t k = 0; k < N_OPTIONS; k++)
		if (options[k].rules & RULE_EARLY)
			apply_option(c, f, k);
	*ret_flags = f;
	return c->nomem ? -ENOMEM : 0;
}

void config_flags_apply(struct ctx *c, const struct config_flags *f) {
	/* In table order: --resource before -l, -n before -A. */
	for (size_t k = 0; k < N_OPTIONS; k++)
		if (!(options[k].rules & RULE_EARLY))
			apply_option(c, f, k);
}

bool config_option_info(size_t i, struct config_option_info *ret) {
	if (i >= N_OPTIONS)
		return false;
	*ret = (struct config_option_info){
		.name = options[i].name,
		.letter = options[i].letter,
		.has_arg = options[i].arg != NULL,
		.empty_ok = (options[i].rules & RULE_EMPTY_OK) != 0,
		.multiline = (options[i].rules & RULE_MULTILINE) != 0,
		.env = options[i].env,
	};
	return true;
}

/* ---------------- --help ---------------- */

#define HELP_COLUMN 30

void config_usage(int fd) {
	dprintf(fd,
		"Usage: apiserversource-adapter --resource APIVERSION/KIND [--resource ...] --sink URL|-\n"
		"                               [-n NAMESPACE ... | -A] [-l SELECTOR] [options]\n"
		"\n"
		"Watches Kubernetes resources and POSTs a CloudEvent for every add, update and delete,\n"
		"as Knative Eventing's ApiServerSource adapter does.\n");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *o = &options[i];
		char left[96];
		const char *h = o->help;
		int n;

		if (o->section)
			dprintf(fd, "\n%s:\n", o->section);
		if (o->letter)
			n = snprintf(left, sizeof(left), "  -%c, --%s%s%s", o->letter, o->name,
				o->arg ? " " : "", o->arg ? o->arg : "");
		else
			n = snprintf(left, sizeof(left), "  --%s%s%s", o->name, o->arg ? " " : "",
				o->arg ? o->arg : "");
		dprintf(fd, "%-*s", n < HELP_COLUMN - 1 ? HELP_COLUMN : n + 2, left);
		for (;;) {
			size_t len = strcspn(h, "\n");
			dprintf(fd, "%.*s\n", (int)len, h);
			if (!h[len])
				break;
			h += len + 1;
			dprintf(fd, "%*s", HELP_COLUMN, "");
		}
		if (o->env)
			dprintf(fd, "%*s(or $%s)\n", HELP_COLUMN, "", o->env);
	}
	dprintf(fd,
		"\n"
		"Environment (Knative's, flags override; an empty variable counts as unset): K_SINK,\n"
		"K_SOURCE_CONFIG, NAME, NAMESPACE, K_CE_OVERRIDES, K_SINK_TIMEOUT, K_CA_CERTS,\n"
		"K_LOGGING_CONFIG, K_OBSERVABILITY_CONFIG, K_AUDIENCE, K_OIDC_SERVICE_ACCOUNT, KUBECONFIG,\n"
		"KUBERNETES_SERVICE_HOST/PORT.\n");
}

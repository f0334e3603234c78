#ifndef ADAPTER_CONFIG_H
#define ADAPTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/filter.h"
#include "adapter/log.h"

/* The adapter's whole configuration, from three sources: command-line flags
 * override the environment (Knative's K_* variables), which overrides an
 * ApiServerSource manifest (--source-file). config_load() validates everything
 * and reports every problem before any connection is opened. */

enum config_mode { CONFIG_MODE_RESOURCE, CONFIG_MODE_REFERENCE };

struct config_resource {
	/* Either kind (from --resource or a manifest) or resource (a plural, from
	 * K_SOURCE_CONFIG's gvr) is set; discovery resolves the other. */
	char *group;	/* "" for the core group */
	char *version;
	char *kind;
	char *resource;
	char *label_selector; /* NULL: everything */
};

struct config_extension {
	char *name;
	char *value;
};

/* --header NAME=VALUE (value set, path NULL) or --header-file NAME=PATH
 * (path set, value NULL: sink_headers.c reads it). */
struct config_header {
	char *name;
	char *value;
	char *path;
};

struct config {
	struct config_resource *resources;
	size_t n_resources;
	char **namespaces;
	size_t n_namespaces;
	bool all_namespaces;
	char *namespace_selector; /* spec.namespaceSelector as a label selector */
	enum config_mode mode;
	char *sink; /* URL, or "-" for JSON lines on stdout */
	char *kubeconfig;
	char *context;
	char *name;	 /* NAME: the source's name */
	char *namespace; /* NAMESPACE: the source's namespace */
	char *owner_api_version;
	char *owner_kind;
	bool fail_fast;
	bool initial_events;
	struct config_extension *extensions; /* K_CE_OVERRIDES / spec.ceOverrides */
	size_t n_extensions;
	uint64_t sink_timeout_usec;
	char *ca_certs_pem; /* K_CA_CERTS: extra CAs trusted for the sink */
	unsigned retry_max; /* attempts per event, first one included; 0: no limit */
	uint64_t retry_timeout_usec; /* give up this long after the first attempt; 0: never */
	char *dead_letter; /* where undeliverable events go; NULL: log and count them */
	size_t queue_max_events; /* queued events past which the watches pause */
	size_t queue_max_bytes;
	uint64_t drain_timeout_usec;
	char *state_dir; /* checkpoints; NULL: none */
	uint64_t checkpoint_interval_usec;
	bool object_state_refs; /* keep references, not last states, per object */
	size_t max_event_bytes;
	size_t max_inflight;
	unsigned watch_timeout_sec; /* each watch asks for this to twice this */
	uint64_t request_timeout_usec; /* lists, discovery; and a watch's silence margin */
	enum log_level log_level;
	bool log_level_set; /* --log-level given: it overrides K_LOGGING_CONFIG */
	char *source_file;
	/* From the environment, for kube_load(): the in-cluster service address,
	 * $HOME for ~/.kube/config, and the service-account directory
	 * (APISERVERSOURCE_SERVICEACCOUNT_DIR overrides the standard path; tests use it). */
	char *kube_service_host;
	char *kube_service_port;
	char *home;
	char *serviceaccount_dir;
	/* Subscriptions API filters (K_SOURCE_CONFIG's filters, spec.filters, or
	 * --filter): an event is sent only when they pass. NULL: all pass. */
	struct filter *filter;
	char *filter_warnings; /* filters dropped as Knative's adapter drops them, a line each */
	/* Endpoints: NULL means not served. */
	char *probes_addr;  /* /health, /readiness: --probes-addr, default ":8080" */
	char *metrics_addr; /* /metrics: --metrics-addr, K_OBSERVABILITY_CONFIG, default ":9092" */
	char *metrics_protocol; /* K_OBSERVABILITY_CONFIG's metrics.protocol, if given */
	/* Chosen by a flag (or K_OBSERVABILITY_CONFIG), not the defaults. */
	bool probes_addr_chosen, metrics_addr_chosen;
	char *logging_config;	/* K_LOGGING_CONFIG: a zap configuration */
	int log_format;		/* --log-format: -1 unset, else enum log_format */
	/* OIDC to the sink: a token for this service account (in NAMESPACE)
	 * with this audience, from the TokenRequest API. */
	char *oidc_audience;
	char *oidc_service_account;
	bool help;
	bool version;
	/* What changed, extra headers (changes.h, strip.h, sink_headers.h). */
	bool with_changes;	   /* update events carry the changedpaths extension */
	bool strip_managed_fields; /* objects lose metadata.managedFields */
	struct config_header *headers; /* on every request to the sink, in order */
	size_t n_headers;
	/* A sink reference (spec.sink.ref, --sink-ref): events go to the
	 * referenced object's address, followed live (sinkref.c); sink, when
	 * set beside it, is a relative reference joined to that address.
	 * kind NULL: none. namespace NULL: the source's. */
	struct config_sink_ref {
		char *group; /* "" for the core group */
		char *version;
		char *kind;
		char *namespace;
		char *name;
	} sink_ref;
};

/* Looks a variable up; returns NULL when unset. Tests pass a table. */
typedef const char *(*config_getenv_fn)(const char *name, void *userdata);

/* Receives each problem found, one line each, naming the flag, the variable,
 * or file:line:column. */
typedef void (*config_error_fn)(const char *field, const char *message, void *userdata);

/* Fills cfg (zeroed first). Returns 0, -EINVAL after reporting every
 * problem through on_error, or -ENOMEM when memory ran out (problems found
 * before that were reported). cfg is always safe to config_finish(). */
int config_load(struct config *cfg, int argc, char **argv, config_getenv_fn getenv_fn,
	void *getenv_userdata, config_error_fn on_error, void *error_userdata);
void config_finish(struct config *cfg);

/* Parses "apiVersion/Kind" ("v1/Pod", "kool.karmalabs.local/v1/Guitar").
 * Returns 0, -EINVAL or -ENOMEM. Exposed for tests. */
int config_parse_resource(const char *s, struct config_resource *ret_res);
void config_resource_finish(struct config_resource *res);

/* Adds a namespace to watch (ignoring duplicates); for defaults resolved
 * after loading (the kubeconfig's namespace, a namespaceSelector). Returns 0
 * or -ENOMEM. */
int config_add_namespace(struct config *cfg, const char *ns);

/* Parses --sink-ref's "APIVERSION/KIND/[NAMESPACE/]NAME" (v1/Service/ns/name,
 * serving.knative.dev/v1/Service/name). Returns 0, -ENOMEM, or -EINVAL with
 * problem (problem_len bytes) saying what is wrong. Exposed for tests. */
int config_parse_sink_ref(const char *s, struct config_sink_ref *ret_ref, char *problem,
	size_t problem_len);
void config_sink_ref_finish(struct config_sink_ref *ref);

/* The command-line options, from the table that defines them (for tests):
 * returns false past the last. */
struct config_option_info {
	const char *name; /* long name, without "--" */
	char letter;	  /* short option, or 0 */
	bool has_arg;
	bool empty_ok;	/* "" has a meaning (-l "": no selector) */
	bool multiline; /* tabs and line breaks allowed (--filter) */
	const char *env; /* the variable that also sets it, or NULL */
};
bool config_option_info(size_t i, struct config_option_info *ret);

/* Writes the --help text, generated from the option table. */
void config_usage(int fd);

#endif

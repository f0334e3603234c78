#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "adapter/config.h"
#include "adapter/config_internal.h"
#include "adapter/http.h"
#include "adapter/probes.h"
#include "adapter/util/json.h"
#include "adapter/util/buf.h"
#include "adapter/util/fileio.h"
#include "adapter/util/yamldoc.h"

#define DEFAULT_SINK_TIMEOUT_USEC (30ull * 1000000ull)
#define DEFAULT_RETRY_MAX 0 /* no limit: retry until delivered */
#define DEFAULT_QUEUE_MAX_EVENTS 10000
/* Far more than --max-inflight events of a few KB in flight; more would only
 * hold events the API server's stream holds as well while the watch is paused
 * (README, "Memory per object"). */
#define DEFAULT_QUEUE_MAX_BYTES (2u * 1024u * 1024u)
#define DEFAULT_DRAIN_TIMEOUT_USEC (25ull * 1000000ull)
#define DEFAULT_CHECKPOINT_INTERVAL_USEC (5ull * 1000000ull)
#define DEFAULT_MAX_EVENT_BYTES (16u * 1024u * 1024u)
#define DEFAULT_MAX_INFLIGHT 64


void config_report(struct ctx *c, const char *field, const char *fmt, ...) {
	char msg[1024];
	va_list ap;

	c->errors++;
	if (c->nomem)
		return; /* what follows running out of memory is no finding */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->on_error(field, msg, c->error_userdata);
}

int config_oom(struct ctx *c) {
	c->nomem = true;
	return -ENOMEM;
}

char *config_strdup(struct ctx *c, const char *s) {
	char *d = strdup(s ? s : "");

	if (!d)
		config_oom(c);
	return d;
}

int config_set_str(struct ctx *c, char **dst, const char *s) {
	char *d = config_strdup(c, s);

	if (!d)
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

void config_resource_finish(struct config_resource *res) {
	if (!res)
		return;
	free(res->group);
	free(res->version);
	free(res->kind);
	free(res->resource);
	free(res->label_selector);
	*res = (struct config_resource){ 0 };
}

void config_free_resources(struct config *cfg) {
	for (size_t i = 0; i < cfg->n_resources; i++)
		config_resource_finish(&cfg->resources[i]);
	free(cfg->resources);
	cfg->resources = NULL;
	cfg->n_resources = 0;
}

void config_free_namespaces(struct config *cfg) {
	for (size_t i = 0; i < cfg->n_namespaces; i++)
		free(cfg->namespaces[i]);
	free(cfg->namespaces);
	cfg->namespaces = NULL;
	cfg->n_namespaces = 0;
}

void config_free_extensions(struct config *cfg) {
	for (size_t i = 0; i < cfg->n_extensions; i++) {
		free(cfg->extensions[i].name);
		free(cfg->extensions[i].value);
	}
	free(cfg->extensions);
	cfg->extensions = NULL;
	cfg->n_extensions = 0;
}

void config_finish(struct config *cfg) {
	if (!cfg)
		return;
	filter_free(cfg->filter);
	free(cfg->filter_warnings);
	free(cfg->probes_addr);
	free(cfg->metrics_addr);
	free(cfg->metrics_protocol);
	free(cfg->logging_config);
	free(cfg->oidc_audience);
	free(cfg->oidc_service_account);
	config_free_resources(cfg);
	config_free_namespaces(cfg);
	config_free_extensions(cfg);
	config_free_headers(cfg);
	free(cfg->namespace_selector);
	free(cfg->sink);
	config_sink_ref_finish(&cfg->sink_ref);
	free(cfg->kubeconfig);
	free(cfg->context);
	free(cfg->name);
	free(cfg->namespace);
	free(cfg->owner_api_version);
	free(cfg->owner_kind);
	free(cfg->ca_certs_pem);
	free(cfg->source_file);
	free(cfg->dead_letter);
	free(cfg->state_dir);
	free(cfg->leader_elect_lease);
	free(cfg->kube_service_host);
	free(cfg->kube_service_port);
	free(cfg->home);
	free(cfg->serviceaccount_dir);
	*cfg = (struct config){ 0 };
}

int config_add_resource(struct ctx *c, struct config_resource *res) {
	struct config *cfg = c->cfg;
	struct config_resource *n = realloc(cfg->resources, (cfg->n_resources + 1) * sizeof(*n));

	if (!n) {
		config_resource_finish(res);
		return config_oom(c);
	}
	cfg->resources = n;
	cfg->resources[cfg->n_resources++] = *res;
	*res = (struct config_resource){ 0 };
	return 0;
}

int config_add_namespace(struct config *cfg, const char *ns) {
	char **n, *copy;

	for (size_t i = 0; i < cfg->n_namespaces; i++)
		if (strcmp(cfg->namespaces[i], ns) == 0)
			return 0;
	n = realloc(cfg->namespaces, (cfg->n_namespaces + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	cfg->namespaces = n;
	copy = strdup(ns);
	if (!copy)
		return -ENOMEM;
	cfg->namespaces[cfg->n_namespaces++] = copy;
	return 0;
}

void config_add_filter(struct ctx *c, const char *field, const char *text, size_t len, bool one) {
	struct filter *f = NULL;
	char *warnings = NULL, err[600];
	int r;

	r = one ? filter_parse_one(text, &f, &warnings, err, sizeof(err)) :
		  filter_parse_json(text, len, &f, &warnings, err, sizeof(err));
	if (r == -ENOMEM) {
		config_oom(c);
		return;
	}
	if (r < 0) {
		config_report(c, field, "%s", err);
		return;
	}
	config_take_filter(c, f, warnings);
}

void config_take_filter(struct ctx *c, struct filter *f, char *warnings) {
	struct config *cfg = c->cfg;

	if (filter_append(&cfg->filter, f) < 0) {
		filter_free(f);
		free(warnings);
		config_oom(c);
		return;
	}
	if (warnings && cfg->filter_warnings) {
		char *joined = NULL;
		if (asprintf(&joined, "%s\n%s", cfg->filter_warnings, warnings) < 0) {
			free(warnings);
			config_oom(c);
			return;
		}
		free(cfg->filter_warnings);
		free(warnings);
		cfg->filter_warnings = joined;
	} else if (warnings) {
		cfg->filter_warnings = warnings;
	}
}

int config_add_extension(struct ctx *c, const char *name, const char *value) {
	struct config *cfg = c->cfg;
	struct config_extension *n, ext;

	for (size_t i = 0; i < cfg->n_extensions; i++)
		if (strcmp(cfg->extensions[i].name, name) == 0)
			return config_set_str(c, &cfg->extensions[i].value, value);
	n = realloc(cfg->extensions, (cfg->n_extensions + 1) * sizeof(*n));
	if (!n)
		return config_oom(c);
	cfg->extensions = n;
	ext = (struct config_extension){ .name = config_strdup(c, name), .value = config_strdup(c, value) };
	if (!ext.name || !ext.value) {
		free(ext.name);
		free(ext.value);
		return -ENOMEM;
	}
	cfg->extensions[cfg->n_extensions++] = ext;
	return 0;
}

/* Kubernetes names: DNS-1123 labels for namespaces. */
bool config_valid_dns_label(const char *s) {
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

/* CloudEvents attribute names: lower-case letters and digits. */
bool config_valid_extension_name(const char *s) {
	static const char *const reserved[] = { "id", "source", "specversion", "type",
		"datacontenttype", "dataschema", "subject", "time", "data" };

	if (!*s || strlen(s) > 20)
		return false;
	for (const char *p = s; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p)))
			return false;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(s, reserved[i]) == 0)
			return false;
	return true;
}

bool config_valid_api_version(const char *group, const char *version) {
	if (!*version)
		return false;
	for (const char *p = version; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p)))
			return false;
	for (const char *p = group; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.' || *p == '-'))
			return false;
	return true;
}

int config_split_api_version(const char *api_version, struct config_resource *res) {
	const char *slash = strchr(api_version, '/');

	if (!slash) {
		res->group = strdup("");
		res->version = strdup(api_version);
	} else {
		if (strchr(slash + 1, '/'))
			return -EINVAL;
		res->group = strndup(api_version, (size_t)(slash - api_version));
		res->version = strdup(slash + 1);
	}
	if (!res->group || !res->version)
		return -ENOMEM;
	if (slash && !*res->group)
		return -EINVAL;
	return config_valid_api_version(res->group, res->version) ? 0 : -EINVAL;
}

int config_parse_resource(const char *s, struct config_resource *ret_res) {
	struct config_resource res = { 0 };
	const char *slash = strrchr(s, '/');
	char *api_version = NULL;
	int r = -EINVAL;

	if (!slash || !slash[1] || slash == s)
		goto out;
	for (const char *p = slash + 1; *p; p++)
		if (!isalnum((unsigned char)*p))
			goto out;
	r = -ENOMEM;
	api_version = strndup(s, (size_t)(slash - s));
	if (!api_version)
		goto out;
	r = config_split_api_version(api_version, &res);
	if (r < 0)
		goto out;
	/* A lower-case last part is a resource name ("v1/pods"); a capitalised
	 * one is a Kind ("v1/Pod"). Discovery resolves either. */
	r = -ENOMEM;
	if (isupper((unsigned char)slash[1]))
		res.kind = strdup(slash + 1);
	else
		res.resource = strdup(slash + 1);
	if (!res.kind && !res.resource)
		goto out;
	*ret_res = res;
	res = (struct config_resource){ 0 };
	r = 0;
out:
	free(api_version);
	config_resource_finish(&res);
	return r;
}

int config_parse_mode(const char *s, enum config_mode *ret) {
	if (strcasecmp(s, "Resource") == 0)
		*ret = CONFIG_MODE_RESOURCE;
	else if (strcasecmp(s, "Reference") == 0)
		*ret = CONFIG_MODE_REFERENCE;
	else
		return -EINVAL;
	return 0;
}

int config_parse_uint(const char *s, unsigned long long max, unsigned long long *ret) {
	char *end;
	unsigned long long v;

	if (!*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

long config_find_control(const char *s, bool multiline) {
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (multiline && (ch == '\t' || ch == '\n' || ch == '\r'))
			continue;
		if (ch < 0x20 || ch == 0x7f)
			return (long)(p - s);
	}
	return -1;
}

bool config_check_control(struct ctx *c, const char *origin, const char *s, bool multiline) {
	long at = config_find_control(s, multiline);

	if (at < 0)
		return true;
	config_report(c, origin, "control character 0x%02x at byte %ld of the value",
		(unsigned char)s[at], at);
	return false;
}

void config_check_addr(struct ctx *c, const char *addr, const char *field) {
	char host[256];
	unsigned port;

	if (probes_parse_addr(addr, host, sizeof(host), &port) < 0)
		config_report(c, field, "\"%s\" is not HOST:PORT (e.g. :8080, 127.0.0.1:8080, [::1]:8080) "
				 "or off", addr);
}

int config_valid_http_url(const char *url) {
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	CURLUcode uc;
	int r = -ENOMEM;

	if (!u)
		return -ENOMEM;
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (uc != CURLUE_OUT_OF_MEMORY)
		r = uc == CURLUE_OK && (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
			*host;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}

void config_check_state_dir(struct ctx *c, const char *origin, const char *dir) {
	char probe[PATH_MAX];
	struct stat st;
	int fd;

	if (stat(dir, &st) < 0) {
		config_report(c, origin, "%s: %s%s", dir, strerror(errno),
			errno == ENOENT ? " (the adapter does not create it)" : "");
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		config_report(c, origin, "%s: not a directory", dir);
		return;
	}
	/* Checkpoints are written every interval: find out now, not then. */
	if (snprintf(probe, sizeof(probe), "%s/.write-probe-XXXXXX", dir) >= (int)sizeof(probe)) {
		config_report(c, origin, "path too long");
		return;
	}
	fd = mkstemp(probe);
	if (fd < 0) {
		config_report(c, origin, "%s: cannot write there (%s)", dir, strerror(errno));
		return;
	}
	close(fd);
	unlink(probe);
}

/* The refused URL is shown without its user name and password. */
static void bad_url(struct ctx *c, const char *origin, const char *url) {
	char *shown = http_url_redact(url);

	if (!shown) {
		config_oom(c);
		return;
	}
	config_report(c, origin, "\"%s\" is not an http:// or https:// URL", shown);
	free(shown);
}

static void validate_sinks(struct ctx *c) {
	struct config *cfg = c->cfg;
	int ok;


	if (cfg->sink_ref.kind) {
		config_check_sink_with_ref(c);
	} else if (!cfg->sink || !*cfg->sink) {
		if (c->sink_rejected)
			; /* said already */
		else if (c->sink_origin[0])
			config_report(c, c->sink_origin, "no sink URL");
		else
			config_report(c, "--sink", "missing: give --sink URL (or - for stdout), --sink-ref, "
					    "set K_SINK, or spec.sink in --source-file");
	} else if (strcmp(cfg->sink, "-") != 0) {
		ok = config_valid_http_url(cfg->sink);
		if (ok < 0)
			config_oom(c);
		else if (!ok)
			bad_url(c, c->sink_origin, cfg->sink);
	}
	if (cfg->dead_letter) {
		ok = config_valid_http_url(cfg->dead_letter);
		if (ok < 0)
			config_oom(c);
		else if (!ok)
			bad_url(c, c->dead_letter_origin, cfg->dead_letter);
	}
	if (cfg->dead_letter && cfg->sink && strcmp(cfg->sink, "-") == 0)
		config_report(c, c->dead_letter_origin, "the stdout sink never fails; a dead-letter sink "
						 "needs --sink URL");
}

int config_load(struct config *cfg, int argc, char **argv, config_getenv_fn getenv_fn,
	void *getenv_userdata, config_error_fn on_error, void *error_userdata) {
	struct ctx c = { .cfg = cfg, .on_error = on_error, .error_userdata = error_userdata };
	struct config_flags *f = NULL;

	*cfg = (struct config){
		.mode = CONFIG_MODE_RESOURCE,
		.sink_timeout_usec = DEFAULT_SINK_TIMEOUT_USEC,
		.retry_max = DEFAULT_RETRY_MAX,
		.max_event_bytes = DEFAULT_MAX_EVENT_BYTES,
		.max_inflight = DEFAULT_MAX_INFLIGHT,
		.watch_timeout_sec = 300,
		.request_timeout_usec = 60ull * 1000000ull,
		.queue_max_events = DEFAULT_QUEUE_MAX_EVENTS,
		.queue_max_bytes = DEFAULT_QUEUE_MAX_BYTES,
		.drain_timeout_usec = DEFAULT_DRAIN_TIMEOUT_USEC,
		.checkpoint_interval_usec = DEFAULT_CHECKPOINT_INTERVAL_USEC,
		.log_level = LOG_INFO,
		.log_format = -1,
	};
	/* --help, --version and --source-file are set while parsing. */
	if (config_flags_parse(&c, argc, argv, &f) < 0 || cfg->help || cfg->version)
		goto out;
	if (config_set_str(&c, &cfg->probes_addr, ":8080") < 0 ||
		config_set_str(&c, &cfg->metrics_addr, ":9092") < 0)
		goto out;

	/* Lowest precedence first: the manifest, then the environment, then flags. */
	if (cfg->source_file) {
		config_load_source_file(&c, cfg->source_file);
		if (c.errors)
			c.bad_resources++; /* its resources may be what failed */
	}
	config_load_env(&c, getenv_fn, getenv_userdata);
	config_flags_apply(&c, f);
	if (c.nomem)
		goto out;

	if (cfg->metrics_addr && !cfg->metrics_addr_chosen)
		config_check_addr(&c, cfg->metrics_addr, "K_OBSERVABILITY_CONFIG");
	if (cfg->metrics_protocol)
		cfg->metrics_addr_chosen = true;
	if (!cfg->oidc_audience != !cfg->oidc_service_account)
		config_report(&c, cfg->oidc_audience ? "K_OIDC_SERVICE_ACCOUNT" : "K_AUDIENCE",
			"missing: OIDC needs both K_AUDIENCE and K_OIDC_SERVICE_ACCOUNT");
	if (cfg->oidc_audience && !cfg->namespace)
		config_report(&c, "NAMESPACE", "missing: OIDC asks for a token of a service account in NAMESPACE");

	/* Whole-config checks. A --resource that was reported as invalid says
	 * what is wrong already: "nothing to watch" would only mislead. */
	if (!cfg->n_resources && !c.bad_resources)
		config_report(&c, "--resource", "nothing to watch: give --resource APIVERSION/KIND, "
					 "K_SOURCE_CONFIG, or --source-file");
	for (size_t i = 0; i < cfg->n_resources; i++) {
		const char *sel = cfg->resources[i].label_selector;
		if (sel && *sel && (strstr(sel, ",,") || sel[0] == ',' || sel[strlen(sel) - 1] == ','))
			config_report(&c, "-l", "\"%s\" is not a valid label selector", sel);
	}
	if (cfg->all_namespaces && cfg->n_namespaces && !c.flag_namespaces)
		/* K_SOURCE_CONFIG with both: allNamespaces wins, as in Knative. */
		config_free_namespaces(cfg);
	if (cfg->owner_api_version && !cfg->owner_kind && !strchr(cfg->owner_api_version, '/') &&
		strchr(cfg->owner_api_version, '.'))
		config_report(&c, "owner", "apiVersion \"%s\" needs a version", cfg->owner_api_version);
	validate_sinks(&c);
	config_check_headers_changes(&c);
out:
	config_flags_free(f);
	if (c.nomem)
		return -ENOMEM;
	return c.errors ? -EINVAL : 0;
}

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
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "adapter/config.h"
#include "adapter/config_internal.h"
#include "adapter/probes.h"
#include "adapter/util/json.h"
#include "adapter/util/buf.h"
#include "adapter/util/fileio.h"
#include "adapter/util/yamldoc.h"

/* ---------------- K_SOURCE_CONFIG (JSON, as Knative's controller writes it) -------------- */

/* Go's encoding/json matches keys case-insensitively; so do we. */
static yajl_val jget(yajl_val obj, const char *key) {
	if (!YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcasecmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

static const char *jstr(struct ctx *c, yajl_val obj, const char *key, const char *field) {
	yajl_val v = jget(obj, key);

	if (!v || YAJL_IS_NULL(v))
		return NULL;
	if (!YAJL_IS_STRING(v)) {
		config_report(c, "K_SOURCE_CONFIG", "%s: expected a string", field);
		return NULL;
	}
	if (config_find_control(YAJL_GET_STRING(v), false) >= 0) {
		config_report(c, "K_SOURCE_CONFIG", "%s.%s: control character in the value", field, key);
		return NULL;
	}
	return YAJL_GET_STRING(v);
}

/* Parses a variable's JSON; NULL after reporting. */
static yajl_val parse_env_json(struct ctx *c, const char *var, const char *json) {
	char errbuf[512];
	yajl_val root;

	root = json_parse(json, errbuf, sizeof(errbuf));
	if (!root && errno == ENOMEM) {
		config_oom(c);
	} else if (!root) {
		/* yajl's message spans lines; keep the first. */
		errbuf[strcspn(errbuf, "\n")] = '\0';
		config_report(c, var, "invalid JSON: %s", errbuf);
	}
	return root;
}

static void load_source_config(struct ctx *c, const char *json) {
	struct config *cfg = c->cfg;
	yajl_val root, v, arr;
	const char *s;

	root = parse_env_json(c, "K_SOURCE_CONFIG", json);
	if (!root)
		return;
	if (!YAJL_IS_OBJECT(root)) {
		config_report(c, "K_SOURCE_CONFIG", "expected a JSON object");
		goto out;
	}
	arr = jget(root, "namespaces");
	if (arr && !YAJL_IS_NULL(arr)) {
		if (!YAJL_IS_ARRAY(arr)) {
			config_report(c, "K_SOURCE_CONFIG", "namespaces: expected an array of strings");
		} else {
			config_free_namespaces(cfg);
			/* Where to watch comes from the environment as a whole. */
			free(cfg->namespace_selector);
			cfg->namespace_selector = NULL;
			for (size_t i = 0; i < arr->u.array.len; i++) {
				v = arr->u.array.values[i];
				if (!YAJL_IS_STRING(v) || !config_valid_dns_label(YAJL_GET_STRING(v)))
					config_report(c, "K_SOURCE_CONFIG",
						"namespaces[%zu]: expected a namespace name", i);
				else if (config_add_namespace(cfg, YAJL_GET_STRING(v)) < 0)
					config_oom(c);
			}
		}
	}
	v = jget(root, "allNamespaces");
	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
			config_report(c, "K_SOURCE_CONFIG", "allNamespaces: expected true or false");
		else
			cfg->all_namespaces = YAJL_IS_TRUE(v);
	}
	arr = jget(root, "resources");
	if (arr && !YAJL_IS_NULL(arr)) {
		if (!YAJL_IS_ARRAY(arr)) {
			config_report(c, "K_SOURCE_CONFIG", "resources: expected an array");
			arr = NULL;
		} else {
			config_free_resources(cfg);
		}
	}
	for (size_t i = 0; arr && i < arr->u.array.len; i++) {
		yajl_val item = arr->u.array.values[i], gvr = jget(item, "gvr");
		struct config_resource res = { 0 };
		const char *g, *ver, *rs, *sel;
		char field[64];

		snprintf(field, sizeof(field), "resources[%zu].gvr", i);
		if (!YAJL_IS_OBJECT(gvr)) {
			config_report(c, "K_SOURCE_CONFIG", "%s: missing or not an object", field);
			continue;
		}
		g = jstr(c, gvr, "Group", field);
		ver = jstr(c, gvr, "Version", field);
		rs = jstr(c, gvr, "Resource", field);
		if (!rs || !*rs) {
			config_report(c, "K_SOURCE_CONFIG", "%s.Resource: missing", field);
			continue;
		}
		g = g ? g : "";
		ver = ver ? ver : "";
		/* Knative's controller leaves the core group's version empty. */
		if (!*g && !*ver)
			ver = "v1";
		if (!*ver) {
			config_report(c, "K_SOURCE_CONFIG", "%s.Version: empty for group \"%s\"", field, g);
			continue;
		}
		if (!config_valid_api_version(g, ver)) {
			config_report(c, "K_SOURCE_CONFIG", "%s: \"%s/%s\" is not a valid group/version", field,
				g, ver);
			continue;
		}
		res.group = config_strdup(c, g);
		res.version = config_strdup(c, ver);
		res.resource = config_strdup(c, rs);
		snprintf(field, sizeof(field), "resources[%zu]", i);
		sel = jstr(c, item, "selector", field);
		if (sel && *sel)
			res.label_selector = config_strdup(c, sel);
		if (c->nomem)
			config_resource_finish(&res);
		else
			config_add_resource(c, &res);
	}
	v = jget(root, "owner");
	if (v && YAJL_IS_OBJECT(v)) {
		if ((s = jstr(c, v, "apiVersion", "owner")) && *s)
			config_set_str(c, &cfg->owner_api_version, s);
		if ((s = jstr(c, v, "kind", "owner")) && *s)
			config_set_str(c, &cfg->owner_kind, s);
	}
	/* Knative's adapter treats an absent mode as Resource; a manifest's mode
	 * stands unless the environment names one. */
	if (!c->mode_from_file)
		cfg->mode = CONFIG_MODE_RESOURCE;
	if ((s = jstr(c, root, "mode", "mode")) && *s && config_parse_mode(s, &cfg->mode) < 0)
		config_report(c, "K_SOURCE_CONFIG", "mode: must be Resource or Reference, not \"%s\"", s);
	v = jget(root, "failFast");
	if (v && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)))
		cfg->fail_fast = YAJL_IS_TRUE(v);
	else if (v && !YAJL_IS_NULL(v))
		config_report(c, "K_SOURCE_CONFIG", "failFast: expected true or false");
	v = jget(root, "filters");
	if (v && !YAJL_IS_NULL(v)) {
		struct buf text;

		/* The environment's filters replace the manifest's. */
		filter_free(cfg->filter);
		cfg->filter = NULL;
		buf_init(&text, 0);
		if (json_write(v, &text) < 0)
			config_oom(c);
		else
			config_add_filter(c, "K_SOURCE_CONFIG", text.data, text.len, false);
		buf_finish(&text);
	}
out:
	yajl_tree_free(root);
}

static void load_ce_overrides(struct ctx *c, const char *json) {
	yajl_val root, ext;

	root = parse_env_json(c, "K_CE_OVERRIDES", json);
	if (!root)
		return;
	ext = jget(root, "extensions");
	if (!YAJL_IS_OBJECT(root) || (ext && !YAJL_IS_NULL(ext) && !YAJL_IS_OBJECT(ext))) {
		config_report(c, "K_CE_OVERRIDES", "expected {\"extensions\":{\"name\":\"value\",...}}");
		goto out;
	}
	if (ext && YAJL_IS_OBJECT(ext)) {
		config_free_extensions(c->cfg);
		for (size_t i = 0; i < ext->u.object.len; i++) {
			const char *name = ext->u.object.keys[i];
			yajl_val val = ext->u.object.values[i];
			if (!config_valid_extension_name(name)) {
				config_report(c, "K_CE_OVERRIDES",
					"extensions.%s: not a valid CloudEvents extension name (lower-case "
					"letters and digits, not a core attribute)",
					name);
				continue;
			}
			if (!YAJL_IS_STRING(val)) {
				config_report(c, "K_CE_OVERRIDES", "extensions.%s: expected a string", name);
				continue;
			}
			/* Sent as a ce- header in binary mode: no line breaks. */
			if (config_find_control(YAJL_GET_STRING(val), false) >= 0) {
				config_report(c, "K_CE_OVERRIDES", "extensions.%s: control character in the value",
					name);
				continue;
			}
			config_add_extension(c, name, YAJL_GET_STRING(val));
		}
	}
out:
	yajl_tree_free(root);
}

/* K_OBSERVABILITY_CONFIG: only metrics.protocol and metrics.endpoint matter
 * here. "prometheus" serves /metrics (on the endpoint, else on
 * METRICS_PROMETHEUS_PORT, else 9092, the port Knative's Deployment names
 * "metrics"); "none" or nothing serves none; other protocols are not
 * supported (main warns). Tracing is not supported either. */
static void load_observability(struct ctx *c, const char *json, const char *prom_port) {
	struct config *cfg = c->cfg;
	char err[300];
	const char *proto, *endpoint;
	yajl_val root, metrics;
	unsigned long long port = 9092;

	root = json_parse(json, err, sizeof(err));
	if (!root && errno == ENOMEM) {
		config_oom(c);
		return;
	} else if (!root) {
		config_report(c, "K_OBSERVABILITY_CONFIG", "%s", err);
		return;
	}
	metrics = json_get(root, "metrics");
	proto = json_get_str(metrics, "protocol");
	endpoint = json_get_str(metrics, "endpoint");
	if (metrics && !YAJL_IS_OBJECT(metrics)) {
		config_report(c, "K_OBSERVABILITY_CONFIG", "metrics: not a JSON object");
	} else if (!proto || !*proto || strcmp(proto, "none") == 0) {
		free(cfg->metrics_addr);
		cfg->metrics_addr = NULL;
	} else if (strcmp(proto, "prometheus") == 0) {
		char addr[300];
		if (prom_port && *prom_port && (config_parse_uint(prom_port, 65535, &port) < 0 || port < 1024))
			config_report(c, "METRICS_PROMETHEUS_PORT", "\"%s\" is not a port (1024-65535)", prom_port);
		if (endpoint && *endpoint)
			snprintf(addr, sizeof(addr), "%s", endpoint);
		else
			snprintf(addr, sizeof(addr), ":%llu", port);
		config_set_str(c, &cfg->metrics_addr, addr);
	} else {
		free(cfg->metrics_addr);
		cfg->metrics_addr = NULL;
	}
	if (proto)
		config_set_str(c, &cfg->metrics_protocol, proto);
	yajl_tree_free(root);
}

/* A variable's value: NULL when unset or empty (as Knative reads it), or
 * after reporting a control character (tabs and line breaks are allowed in
 * multiline ones: JSON, PEM). */
static const char *env_get(struct ctx *c, config_getenv_fn get, void *ud, const char *name,
	bool multiline) {
	const char *s = get(name, ud);

	if (!s || !*s)
		return NULL;
	return config_check_control(c, name, s, multiline) ? s : NULL;
}

/* Variables that only fill a string. */
static const struct env_string {
	const char *name;
	size_t offset;
} env_strings[] = {
	{ "K_LOGGING_CONFIG", CONFIG_FIELD(logging_config, char *) },
	{ "K_AUDIENCE", CONFIG_FIELD(oidc_audience, char *) },
	{ "K_OIDC_SERVICE_ACCOUNT", CONFIG_FIELD(oidc_service_account, char *) },
	{ "KUBERNETES_SERVICE_HOST", CONFIG_FIELD(kube_service_host, char *) },
	{ "KUBERNETES_SERVICE_PORT", CONFIG_FIELD(kube_service_port, char *) },
	{ "HOME", CONFIG_FIELD(home, char *) },
};

void config_load_env(struct ctx *c, config_getenv_fn get, void *ud) {
	struct config *cfg = c->cfg;
	const char *s;

	if ((s = env_get(c, get, ud, "K_SOURCE_CONFIG", true))) {
		unsigned before = c->errors;
		load_source_config(c, s);
		if (c->errors != before)
			c->bad_resources++; /* its resources may be what failed */
	}
	/* K_SINK, NAME, K_SINK_TIMEOUT, KUBECONFIG: as their flags. */
	config_env_options_apply(c, get, ud);
	if ((s = env_get(c, get, ud, "NAMESPACE", false))) {
		if (!config_valid_dns_label(s))
			config_report(c, "NAMESPACE", "\"%s\" is not a valid namespace name", s);
		else
			config_set_str(c, &cfg->namespace, s);
	}
	if ((s = env_get(c, get, ud, "K_CE_OVERRIDES", true)))
		load_ce_overrides(c, s);
	if ((s = env_get(c, get, ud, "K_CA_CERTS", true))) {
		if (!strstr(s, "-----BEGIN CERTIFICATE-----"))
			config_report(c, "K_CA_CERTS", "expected PEM certificates (-----BEGIN CERTIFICATE-----)");
		else
			config_set_str(c, &cfg->ca_certs_pem, s);
	}
	if ((s = env_get(c, get, ud, "K_OBSERVABILITY_CONFIG", true)))
		load_observability(c, s, env_get(c, get, ud, "METRICS_PROMETHEUS_PORT", false));
	for (size_t i = 0; i < sizeof(env_strings) / sizeof(env_strings[0]); i++) {
		const struct env_string *e = &env_strings[i];
		if ((s = env_get(c, get, ud, e->name, strcmp(e->name, "K_LOGGING_CONFIG") == 0)))
			config_set_str(c, (char **)((char *)cfg + e->offset), s);
	}
	s = env_get(c, get, ud, "APISERVERSOURCE_SERVICEACCOUNT_DIR", false);
	config_set_str(c, &cfg->serviceaccount_dir, s ? s : "/var/run/secrets/kubernetes.io/serviceaccount");
}

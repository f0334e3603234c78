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
#include "adapter/probes.h"
#include "adapter/util/json.h"
#include "adapter/util/buf.h"
#include "adapter/util/fileio.h"
#include "adapter/util/yamldoc.h"

#define DEFAULT_SINK_TIMEOUT_USEC (30ull * 1000000ull)
#define DEFAULT_RETRY_MAX 0 /* no limit: retry until delivered */
#define DEFAULT_QUEUE_MAX_EVENTS 10000
#define DEFAULT_QUEUE_MAX_BYTES (32u * 1024u * 1024u)
#define DEFAULT_DRAIN_TIMEOUT_USEC (25ull * 1000000ull)
#define DEFAULT_CHECKPOINT_INTERVAL_USEC (5ull * 1000000ull)
#define DEFAULT_MAX_EVENT_BYTES (16u * 1024u * 1024u)
#define DEFAULT_MAX_INFLIGHT 64
#define MAX_FILE_BYTES (4u * 1024u * 1024u)

struct ctx {
	struct config *cfg;
	config_error_fn on_error;
	void *error_userdata;
	unsigned errors;
	/* Where the sink and dead-letter sink came from, for messages about them. */
	char sink_origin[256];
	char dead_letter_origin[256];
	bool mode_from_file;
};

static void report(struct ctx *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct ctx *c, const char *field, const char *fmt, ...) {
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->errors++;
	c->on_error(field, msg, c->error_userdata);
}

static char *xstrdup(const char *s) {
	char *d = strdup(s ? s : "");

	if (!d)
		abort(); /* configuration is tiny; out of memory here is not recoverable */
	return d;
}

static void set_str(char **dst, const char *s) {
	free(*dst);
	*dst = xstrdup(s);
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

static void free_resources(struct config *cfg) {
	for (size_t i = 0; i < cfg->n_resources; i++)
		config_resource_finish(&cfg->resources[i]);
	free(cfg->resources);
	cfg->resources = NULL;
	cfg->n_resources = 0;
}

static void free_namespaces(struct config *cfg) {
	for (size_t i = 0; i < cfg->n_namespaces; i++)
		free(cfg->namespaces[i]);
	free(cfg->namespaces);
	cfg->namespaces = NULL;
	cfg->n_namespaces = 0;
}

static void free_extensions(struct config *cfg) {
	for (size_t i = 0; i < cfg->n_extensions; i++) {
		free(cfg->extensions[i].name);
		free(cfg->extensions[i].value);
	}
	free(cfg->extensions);
	cfg->extensions = NULL;
	cfg->n_extensions = 0;
}

void config_finish(struct config *cfg) {
	free(cfg->probes_addr);
	free(cfg->metrics_addr);
	free(cfg->metrics_protocol);
	free(cfg->logging_config);
	free(cfg->oidc_audience);
	free(cfg->oidc_service_account);
	if (!cfg)
		return;
	free_resources(cfg);
	free_namespaces(cfg);
	free_extensions(cfg);
	free(cfg->namespace_selector);
	free(cfg->sink);
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
	free(cfg->kube_service_host);
	free(cfg->kube_service_port);
	free(cfg->home);
	free(cfg->serviceaccount_dir);
	*cfg = (struct config){ 0 };
}

static void add_resource(struct config *cfg, struct config_resource *res) {
	struct config_resource *n = realloc(cfg->resources, (cfg->n_resources + 1) * sizeof(*n));

	if (!n)
		abort();
	cfg->resources = n;
	cfg->resources[cfg->n_resources++] = *res;
	*res = (struct config_resource){ 0 };
}

static void add_namespace(struct config *cfg, const char *ns) {
	char **n;

	for (size_t i = 0; i < cfg->n_namespaces; i++)
		if (strcmp(cfg->namespaces[i], ns) == 0)
			return;
	n = realloc(cfg->namespaces, (cfg->n_namespaces + 1) * sizeof(*n));
	if (!n)
		abort();
	cfg->namespaces = n;
	cfg->namespaces[cfg->n_namespaces++] = xstrdup(ns);
}

void config_add_namespace(struct config *cfg, const char *ns) {
	add_namespace(cfg, ns);
}

static void add_extension(struct config *cfg, const char *name, const char *value) {
	struct config_extension *n;

	for (size_t i = 0; i < cfg->n_extensions; i++)
		if (strcmp(cfg->extensions[i].name, name) == 0) {
			set_str(&cfg->extensions[i].value, value);
			return;
		}
	n = realloc(cfg->extensions, (cfg->n_extensions + 1) * sizeof(*n));
	if (!n)
		abort();
	cfg->extensions = n;
	cfg->extensions[cfg->n_extensions++] =
		(struct config_extension){ .name = xstrdup(name), .value = xstrdup(value) };
}

/* Kubernetes names: DNS-1123 labels for namespaces. */
static bool valid_dns_label(const char *s) {
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

/* CloudEvents attribute names: lower-case letters and digits. */
static bool valid_extension_name(const char *s) {
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

static bool valid_api_version(const char *group, const char *version) {
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

static int split_api_version(const char *api_version, struct config_resource *res) {
	const char *slash = strchr(api_version, '/');

	if (!slash) {
		res->group = xstrdup("");
		res->version = xstrdup(api_version);
	} else {
		if (strchr(slash + 1, '/'))
			return -EINVAL;
		res->group = strndup(api_version, (size_t)(slash - api_version));
		res->version = xstrdup(slash + 1);
		if (!res->group)
			abort();
		if (!*res->group)
			return -EINVAL;
	}
	return valid_api_version(res->group, res->version) ? 0 : -EINVAL;
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
	api_version = strndup(s, (size_t)(slash - s));
	if (!api_version)
		abort();
	if (split_api_version(api_version, &res) < 0)
		goto out;
	/* A lower-case last part is a resource name ("v1/pods"); a capitalised
	 * one is a Kind ("v1/Pod"). Discovery resolves either. */
	if (isupper((unsigned char)slash[1]))
		res.kind = xstrdup(slash + 1);
	else
		res.resource = xstrdup(slash + 1);
	*ret_res = res;
	res = (struct config_resource){ 0 };
	r = 0;
out:
	free(api_version);
	config_resource_finish(&res);
	return r;
}

static int parse_mode(const char *s, enum config_mode *ret) {
	if (strcasecmp(s, "Resource") == 0)
		*ret = CONFIG_MODE_RESOURCE;
	else if (strcasecmp(s, "Reference") == 0)
		*ret = CONFIG_MODE_REFERENCE;
	else
		return -EINVAL;
	return 0;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *ret) {
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

/* ---------------- the ApiServerSource manifest (libyaml) ---------------- */

static void file_error(struct ctx *c, const char *file, yaml_node_t *n, const char *field,
	const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void file_error(struct ctx *c, const char *file, yaml_node_t *n, const char *field,
	const char *fmt, ...) {
	char where[512], msg[768];
	size_t line, col;
	va_list ap;

	yamldoc_mark(n, &line, &col);
	snprintf(where, sizeof(where), "%s:%zu:%zu", file, line, col);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(c, where, "%s: %s", field, msg);
}

/* Reads an optional scalar string; reports a non-scalar. */
static const char *file_str(struct ctx *c, const char *file, struct yamldoc *d, yaml_node_t *map,
	const char *path) {
	yaml_node_t *n = yamldoc_path(d, map, path);

	if (!n || yamldoc_is_null(n))
		return NULL;
	if (n->type != YAML_SCALAR_NODE) {
		file_error(c, file, n, path, "expected a string");
		return NULL;
	}
	return yamldoc_str(n);
}

/* Turns a LabelSelector (matchLabels, matchExpressions) into the string form
 * the API accepts. Returns NULL for an empty selector. */
static char *selector_from_yaml(struct ctx *c, const char *file, struct yamldoc *d,
	yaml_node_t *sel, const char *field) {
	struct buf b;
	yaml_node_t *k, *v, *exprs;
	char fieldbuf[256];

	buf_init(&b, 0);
	if (!sel || yamldoc_is_null(sel))
		return NULL;
	if (sel->type != YAML_MAPPING_NODE) {
		file_error(c, file, sel, field, "expected a mapping with matchLabels or matchExpressions");
		return NULL;
	}
	yaml_node_t *labels = yamldoc_get(d, sel, "matchLabels");
	if (labels && !yamldoc_is_null(labels) && labels->type != YAML_MAPPING_NODE)
		file_error(c, file, labels, field, "matchLabels: expected a mapping");
	for (size_t i = 0; yamldoc_pair(d, labels, i, &k, &v); i++) {
		const char *ks = yamldoc_str(k), *vs = yamldoc_str(v);
		if (!ks || !vs) {
			file_error(c, file, v, field, "matchLabels: keys and values must be strings");
			continue;
		}
		buf_printf(&b, "%s%s=%s", b.len ? "," : "", ks, vs);
	}
	exprs = yamldoc_get(d, sel, "matchExpressions");
	for (size_t i = 0; i < yamldoc_len(exprs); i++) {
		yaml_node_t *e = yamldoc_item(d, exprs, i), *vals;
		const char *key = yamldoc_str(yamldoc_get(d, e, "key"));
		const char *op = yamldoc_str(yamldoc_get(d, e, "operator"));

		snprintf(fieldbuf, sizeof(fieldbuf), "%s.matchExpressions[%zu]", field, i);
		if (!key || !*key || !op) {
			file_error(c, file, e, fieldbuf, "needs key and operator");
			continue;
		}
		vals = yamldoc_get(d, e, "values");
		if (strcmp(op, "In") == 0 || strcmp(op, "NotIn") == 0) {
			if (!yamldoc_len(vals)) {
				file_error(c, file, e, fieldbuf, "operator %s needs values", op);
				continue;
			}
			buf_printf(&b, "%s%s %s (", b.len ? "," : "", key,
				strcmp(op, "In") == 0 ? "in" : "notin");
			for (size_t j = 0; j < yamldoc_len(vals); j++) {
				const char *val = yamldoc_str(yamldoc_item(d, vals, j));
				buf_printf(&b, "%s%s", j ? "," : "", val ? val : "");
			}
			buf_append_str(&b, ")");
		} else if (strcmp(op, "Exists") == 0) {
			buf_printf(&b, "%s%s", b.len ? "," : "", key);
		} else if (strcmp(op, "DoesNotExist") == 0) {
			buf_printf(&b, "%s!%s", b.len ? "," : "", key);
		} else {
			file_error(c, file, yamldoc_get(d, e, "operator"), fieldbuf,
				"operator must be In, NotIn, Exists or DoesNotExist, not \"%s\"", op);
		}
	}
	if (!b.len) {
		buf_finish(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

static void load_source_file(struct ctx *c, const char *file) {
	struct config *cfg = c->cfg;
	struct yamldoc *docs = NULL;
	size_t ndocs = 0, len = 0;
	char *text = NULL, *err = NULL;
	struct yamldoc *d = NULL;
	yaml_node_t *root = NULL, *spec, *resources, *n, *k, *v;
	const char *s;
	int r;

	r = file_read_all(file, MAX_FILE_BYTES, &text, &len);
	if (r < 0) {
		report(c, "--source-file", "%s: %s", file,
			r == -E2BIG ? "file too large" : strerror(-r));
		goto out;
	}
	r = yamldoc_load_all(text, len, &docs, &ndocs, &err);
	if (r < 0) {
		char where[512];
		snprintf(where, sizeof(where), "%s:%s", file, err ? err : "?");
		report(c, where, "invalid YAML");
		goto out;
	}
	for (size_t i = 0; i < ndocs; i++) {
		yaml_node_t *rt = yamldoc_root(&docs[i]);
		s = yamldoc_str(yamldoc_get(&docs[i], rt, "kind"));
		if (s && strcmp(s, "ApiServerSource") == 0) {
			if (d) {
				file_error(c, file, rt, "kind",
					"more than one ApiServerSource in the file; give one");
				goto out;
			}
			d = &docs[i];
			root = rt;
		}
	}
	if (!d) {
		report(c, "--source-file", "%s: no document with kind: ApiServerSource", file);
		goto out;
	}
	s = file_str(c, file, d, root, "apiVersion");
	if (!s || strncmp(s, "sources.knative.dev/", 20) != 0)
		file_error(c, file, yamldoc_get(d, root, "apiVersion") ?: root, "apiVersion",
			"expected sources.knative.dev/v1, got \"%s\"", s ? s : "");
	if ((s = file_str(c, file, d, root, "metadata.name")))
		set_str(&cfg->name, s);
	if ((s = file_str(c, file, d, root, "metadata.namespace")))
		set_str(&cfg->namespace, s);
	spec = yamldoc_get(d, root, "spec");
	if (!spec || spec->type != YAML_MAPPING_NODE) {
		file_error(c, file, spec ? spec : root, "spec", "missing or not a mapping");
		goto out;
	}
	/* The API's default mode is Reference. */
	cfg->mode = CONFIG_MODE_REFERENCE;
	c->mode_from_file = true;
	if ((s = file_str(c, file, d, spec, "mode")) && parse_mode(s, &cfg->mode) < 0)
		file_error(c, file, yamldoc_get(d, spec, "mode"), "spec.mode",
			"must be Resource or Reference, not \"%s\"", s);
	resources = yamldoc_get(d, spec, "resources");
	if (!resources || resources->type != YAML_SEQUENCE_NODE || !yamldoc_len(resources))
		file_error(c, file, resources ? resources : spec, "spec.resources",
			"needs at least one resource");
	for (size_t i = 0; i < yamldoc_len(resources); i++) {
		yaml_node_t *item = yamldoc_item(d, resources, i);
		struct config_resource res = { 0 };
		char field[64];
		const char *av = file_str(c, file, d, item, "apiVersion");
		const char *kind = file_str(c, file, d, item, "kind");

		snprintf(field, sizeof(field), "spec.resources[%zu]", i);
		if (!av || !kind || !*kind) {
			file_error(c, file, item, field, "needs apiVersion and kind");
			continue;
		}
		if (split_api_version(av, &res) < 0) {
			file_error(c, file, yamldoc_get(d, item, "apiVersion"), field,
				"apiVersion \"%s\" is not group/version or v1", av);
			config_resource_finish(&res);
			continue;
		}
		res.kind = xstrdup(kind);
		snprintf(field, sizeof(field), "spec.resources[%zu].selector", i);
		res.label_selector =
			selector_from_yaml(c, file, d, yamldoc_get(d, item, "selector"), field);
		add_resource(cfg, &res);
	}
	if ((n = yamldoc_get(d, spec, "owner")) && !yamldoc_is_null(n)) {
		const char *av = file_str(c, file, d, n, "apiVersion");
		const char *kind = file_str(c, file, d, n, "kind");
		if (av)
			set_str(&cfg->owner_api_version, av);
		if (kind)
			set_str(&cfg->owner_kind, kind);
	}
	if ((s = file_str(c, file, d, spec, "sink.uri"))) {
		set_str(&cfg->sink, s);
		n = yamldoc_path(d, spec, "sink.uri");
		size_t line, col;
		yamldoc_mark(n, &line, &col);
		snprintf(c->sink_origin, sizeof(c->sink_origin), "%s:%zu:%zu: spec.sink.uri", file,
			line, col);
	} else if ((n = yamldoc_path(d, spec, "sink.ref")) && !yamldoc_is_null(n)) {
		/* Resolved later, when the environment or a flag gives no sink. */
		size_t line, col;
		yamldoc_mark(n, &line, &col);
		snprintf(c->sink_origin, sizeof(c->sink_origin),
			"%s:%zu:%zu: spec.sink.ref (references are not resolved by the adapter yet; "
			"give spec.sink.uri, K_SINK or --sink)",
			file, line, col);
	}
	if ((s = file_str(c, file, d, spec, "delivery.deadLetterSink.uri"))) {
		size_t line, col;
		set_str(&cfg->dead_letter, s);
		yamldoc_mark(yamldoc_path(d, spec, "delivery.deadLetterSink.uri"), &line, &col);
		snprintf(c->dead_letter_origin, sizeof(c->dead_letter_origin),
			"%s:%zu:%zu: spec.delivery.deadLetterSink.uri", file, line, col);
	}
	n = yamldoc_path(d, spec, "ceOverrides.extensions");
	for (size_t i = 0; yamldoc_pair(d, n, i, &k, &v); i++) {
		const char *ks = yamldoc_str(k), *vs = yamldoc_str(v);
		if (!ks || !valid_extension_name(ks)) {
			file_error(c, file, k, "spec.ceOverrides.extensions",
				"\"%s\" is not a valid CloudEvents extension name (lower-case letters and "
				"digits, not a core attribute)",
				ks ? ks : "");
			continue;
		}
		add_extension(cfg, ks, vs ? vs : "");
	}
	if ((n = yamldoc_get(d, spec, "namespaceSelector")) && !yamldoc_is_null(n)) {
		free(cfg->namespace_selector);
		cfg->namespace_selector =
			selector_from_yaml(c, file, d, n, "spec.namespaceSelector");
		if (!cfg->namespace_selector)
			/* An empty selector selects every namespace. */
			cfg->all_namespaces = true;
	}
	if (cfg->namespace && !cfg->namespace_selector && !cfg->all_namespaces)
		add_namespace(cfg, cfg->namespace);
out:
	free(err);
	free(text);
	yamldoc_free_all(docs, ndocs);
}

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
		report(c, "K_SOURCE_CONFIG", "%s: expected a string", field);
		return NULL;
	}
	return YAJL_GET_STRING(v);
}

static void load_source_config(struct ctx *c, const char *json) {
	struct config *cfg = c->cfg;
	char errbuf[512];
	yajl_val root, v, arr;
	const char *s;

	root = yajl_tree_parse(json, errbuf, sizeof(errbuf));
	if (!root) {
		/* yajl's message spans lines; keep the first. */
		char *nl = strchr(errbuf, '\n');
		if (nl)
			*nl = '\0';
		report(c, "K_SOURCE_CONFIG", "invalid JSON: %s", errbuf);
		return;
	}
	if (!YAJL_IS_OBJECT(root)) {
		report(c, "K_SOURCE_CONFIG", "expected a JSON object");
		goto out;
	}
	arr = jget(root, "namespaces");
	if (arr && !YAJL_IS_NULL(arr)) {
		if (!YAJL_IS_ARRAY(arr)) {
			report(c, "K_SOURCE_CONFIG", "namespaces: expected an array of strings");
		} else {
			free_namespaces(cfg);
			/* Where to watch comes from the environment as a whole. */
			free(cfg->namespace_selector);
			cfg->namespace_selector = NULL;
			for (size_t i = 0; i < arr->u.array.len; i++) {
				v = arr->u.array.values[i];
				if (!YAJL_IS_STRING(v) || !valid_dns_label(YAJL_GET_STRING(v)))
					report(c, "K_SOURCE_CONFIG",
						"namespaces[%zu]: expected a namespace name", i);
				else
					add_namespace(cfg, YAJL_GET_STRING(v));
			}
		}
	}
	v = jget(root, "allNamespaces");
	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
			report(c, "K_SOURCE_CONFIG", "allNamespaces: expected true or false");
		else
			cfg->all_namespaces = YAJL_IS_TRUE(v);
	}
	arr = jget(root, "resources");
	if (arr && !YAJL_IS_NULL(arr)) {
		if (!YAJL_IS_ARRAY(arr)) {
			report(c, "K_SOURCE_CONFIG", "resources: expected an array");
			arr = NULL;
		} else {
			free_resources(cfg);
		}
	}
	for (size_t i = 0; arr && i < arr->u.array.len; i++) {
		yajl_val item = arr->u.array.values[i], gvr = jget(item, "gvr");
		struct config_resource res = { 0 };
		const char *g, *ver, *rs, *sel;
		char field[64];

		snprintf(field, sizeof(field), "resources[%zu].gvr", i);
		if (!YAJL_IS_OBJECT(gvr)) {
			report(c, "K_SOURCE_CONFIG", "%s: missing or not an object", field);
			continue;
		}
		g = jstr(c, gvr, "Group", field);
		ver = jstr(c, gvr, "Version", field);
		rs = jstr(c, gvr, "Resource", field);
		if (!rs || !*rs) {
			report(c, "K_SOURCE_CONFIG", "%s.Resource: missing", field);
			continue;
		}
		g = g ? g : "";
		ver = ver ? ver : "";
		/* Knative's controller leaves the core group's version empty. */
		if (!*g && !*ver)
			ver = "v1";
		if (!*ver) {
			report(c, "K_SOURCE_CONFIG", "%s.Version: empty for group \"%s\"", field, g);
			continue;
		}
		if (!valid_api_version(g, ver)) {
			report(c, "K_SOURCE_CONFIG", "%s: \"%s/%s\" is not a valid group/version", field,
				g, ver);
			continue;
		}
		res.group = xstrdup(g);
		res.version = xstrdup(ver);
		res.resource = xstrdup(rs);
		snprintf(field, sizeof(field), "resources[%zu]", i);
		sel = jstr(c, item, "selector", field);
		if (sel && *sel)
			res.label_selector = xstrdup(sel);
		add_resource(cfg, &res);
	}
	v = jget(root, "owner");
	if (v && YAJL_IS_OBJECT(v)) {
		if ((s = jstr(c, v, "apiVersion", "owner")) && *s)
			set_str(&cfg->owner_api_version, s);
		if ((s = jstr(c, v, "kind", "owner")) && *s)
			set_str(&cfg->owner_kind, s);
	}
	/* Knative's adapter treats an absent mode as Resource; a manifest's mode
	 * stands unless the environment names one. */
	if (!c->mode_from_file)
		cfg->mode = CONFIG_MODE_RESOURCE;
	if ((s = jstr(c, root, "mode", "mode")) && *s && parse_mode(s, &cfg->mode) < 0)
		report(c, "K_SOURCE_CONFIG", "mode: must be Resource or Reference, not \"%s\"", s);
	v = jget(root, "failFast");
	if (v && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)))
		cfg->fail_fast = YAJL_IS_TRUE(v);
	else if (v && !YAJL_IS_NULL(v))
		report(c, "K_SOURCE_CONFIG", "failFast: expected true or false");
	v = jget(root, "filters");
	if (v && YAJL_IS_ARRAY(v) && v->u.array.len)
		cfg->has_filters = true;
out:
	yajl_tree_free(root);
}

static void load_ce_overrides(struct ctx *c, const char *json) {
	char errbuf[512];
	yajl_val root, ext;

	root = yajl_tree_parse(json, errbuf, sizeof(errbuf));
	if (!root) {
		char *nl = strchr(errbuf, '\n');
		if (nl)
			*nl = '\0';
		report(c, "K_CE_OVERRIDES", "invalid JSON: %s", errbuf);
		return;
	}
	ext = jget(root, "extensions");
	if (!YAJL_IS_OBJECT(root) || (ext && !YAJL_IS_NULL(ext) && !YAJL_IS_OBJECT(ext))) {
		report(c, "K_CE_OVERRIDES", "expected {\"extensions\":{\"name\":\"value\",...}}");
		goto out;
	}
	if (ext && YAJL_IS_OBJECT(ext)) {
		free_extensions(c->cfg);
		for (size_t i = 0; i < ext->u.object.len; i++) {
			const char *name = ext->u.object.keys[i];
			yajl_val val = ext->u.object.values[i];
			if (!valid_extension_name(name)) {
				report(c, "K_CE_OVERRIDES",
					"extensions.%s: not a valid CloudEvents extension name (lower-case "
					"letters and digits, not a core attribute)",
					name);
				continue;
			}
			if (!YAJL_IS_STRING(val)) {
				report(c, "K_CE_OVERRIDES", "extensions.%s: expected a string", name);
				continue;
			}
			add_extension(c->cfg, name, YAJL_GET_STRING(val));
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
	if (!root) {
		report(c, "K_OBSERVABILITY_CONFIG", "%s", err);
		return;
	}
	metrics = json_get(root, "metrics");
	proto = json_get_str(metrics, "protocol");
	endpoint = json_get_str(metrics, "endpoint");
	if (metrics && !YAJL_IS_OBJECT(metrics)) {
		report(c, "K_OBSERVABILITY_CONFIG", "metrics: not a JSON object");
	} else if (!proto || !*proto || strcmp(proto, "none") == 0) {
		free(cfg->metrics_addr);
		cfg->metrics_addr = NULL;
	} else if (strcmp(proto, "prometheus") == 0) {
		char addr[300];
		if (prom_port && *prom_port && (parse_uint(prom_port, 65535, &port) < 0 || port < 1024))
			report(c, "METRICS_PROMETHEUS_PORT", "\"%s\" is not a port (1024-65535)", prom_port);
		if (endpoint && *endpoint)
			snprintf(addr, sizeof(addr), "%s", endpoint);
		else
			snprintf(addr, sizeof(addr), ":%llu", port);
		set_str(&cfg->metrics_addr, addr);
	} else {
		free(cfg->metrics_addr);
		cfg->metrics_addr = NULL;
	}
	if (proto)
		set_str(&cfg->metrics_protocol, proto);
	yajl_tree_free(root);
}

static void load_env(struct ctx *c, config_getenv_fn get, void *ud) {
	struct config *cfg = c->cfg;
	const char *s;
	unsigned long long u;

	if ((s = get("K_SOURCE_CONFIG", ud)) && *s)
		load_source_config(c, s);
	if ((s = get("K_SINK", ud)) && *s) {
		set_str(&cfg->sink, s);
		snprintf(c->sink_origin, sizeof(c->sink_origin), "K_SINK");
	}
	if ((s = get("NAME", ud)) && *s)
		set_str(&cfg->name, s);
	if ((s = get("NAMESPACE", ud)) && *s)
		set_str(&cfg->namespace, s);
	if ((s = get("K_CE_OVERRIDES", ud)) && *s)
		load_ce_overrides(c, s);
	if ((s = get("K_SINK_TIMEOUT", ud)) && *s) {
		if (parse_uint(s, 86400, &u) < 0 || u == 0)
			report(c, "K_SINK_TIMEOUT", "\"%s\" is not a whole number of seconds (1-86400)", s);
		else
			cfg->sink_timeout_usec = u * 1000000ull;
	}
	if ((s = get("K_CA_CERTS", ud)) && *s) {
		if (!strstr(s, "-----BEGIN CERTIFICATE-----"))
			report(c, "K_CA_CERTS", "expected PEM certificates (-----BEGIN CERTIFICATE-----)");
		else
			set_str(&cfg->ca_certs_pem, s);
	}
	if ((s = get("K_LOGGING_CONFIG", ud)) && *s)
		set_str(&cfg->logging_config, s);
	if ((s = get("K_OBSERVABILITY_CONFIG", ud)) && *s)
		load_observability(c, s, get("METRICS_PROMETHEUS_PORT", ud));
	if ((s = get("K_AUDIENCE", ud)) && *s)
		set_str(&cfg->oidc_audience, s);
	if ((s = get("K_OIDC_SERVICE_ACCOUNT", ud)) && *s)
		set_str(&cfg->oidc_service_account, s);
	if ((s = get("KUBERNETES_SERVICE_HOST", ud)) && *s)
		set_str(&cfg->kube_service_host, s);
	if ((s = get("KUBERNETES_SERVICE_PORT", ud)) && *s)
		set_str(&cfg->kube_service_port, s);
	if ((s = get("HOME", ud)) && *s)
		set_str(&cfg->home, s);
	set_str(&cfg->serviceaccount_dir, (s = get("APISERVERSOURCE_SERVICEACCOUNT_DIR", ud)) && *s ?
			s :
			"/var/run/secrets/kubernetes.io/serviceaccount");
	if ((s = get("KUBECONFIG", ud)) && *s) {
		/* kubectl merges a list; we take its first file. */
		const char *colon = strchr(s, ':');
		char *first = colon ? strndup(s, (size_t)(colon - s)) : xstrdup(s);
		if (!first)
			abort();
		free(cfg->kubeconfig);
		cfg->kubeconfig = first;
	}
}

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
};
#define N_NUMERIC (sizeof(numeric_flags) / sizeof(numeric_flags[0]))

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

struct flag_values {
	struct config_resource *resources;
	size_t n_resources;
	char **namespaces;
	size_t n_namespaces;
	bool all_namespaces;
	const char *selector;
	const char *mode, *sink, *kubeconfig, *context, *name, *source_file, *log_level;
	const char *dead_letter, *state_dir, *object_state;
	const char *probes_addr, *metrics_addr, *log_format;
	const char *numeric[N_NUMERIC];
	bool initial_events, fail_fast;
};

static void flag_values_finish(struct flag_values *f) {
	for (size_t i = 0; i < f->n_resources; i++)
		config_resource_finish(&f->resources[i]);
	free(f->resources);
	for (size_t i = 0; i < f->n_namespaces; i++)
		free(f->namespaces[i]);
	free(f->namespaces);
}

static void parse_flags(struct ctx *c, int argc, char **argv, struct flag_values *f) {
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":n:Al:h", long_options, NULL)) != -1) {
		switch (opt) {
		case OPT_RESOURCE: {
			struct config_resource res = { 0 }, *n;
			if (config_parse_resource(optarg, &res) < 0) {
				report(c, "--resource",
					"\"%s\" is not APIVERSION/KIND (e.g. kool.karmalabs.local/v1/Guitar, "
					"v1/Pod)",
					optarg);
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
			char *copy = xstrdup(optarg), *save = NULL;
			for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				char **n;
				if (!valid_dns_label(tok)) {
					report(c, "--namespace", "\"%s\" is not a valid namespace name", tok);
					continue;
				}
				n = realloc(f->namespaces, (f->n_namespaces + 1) * sizeof(*n));
				if (!n)
					abort();
				f->namespaces = n;
				f->namespaces[f->n_namespaces++] = xstrdup(tok);
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
		case 'h':
			c->cfg->help = true;
			break;
		case OPT_VERSION:
			c->cfg->version = true;
			break;
		case ':':
			report(c, argv[optind - 1], "needs a value");
			break;
		default:
			if (opt >= OPT_NUMERIC && opt < OPT_NUMERIC + (int)N_NUMERIC) {
				f->numeric[opt - OPT_NUMERIC] = optarg;
				break;
			}
			report(c, argv[optind - 1], "unknown flag (see --help)");
			break;
		}
	}
	if (optind < argc)
		report(c, argv[optind], "unexpected argument (see --help)");
}

static void check_addr(struct ctx *c, const char *addr, const char *field) {
	char host[256];
	unsigned port;

	if (probes_parse_addr(addr, host, sizeof(host), &port) < 0)
		report(c, field, "\"%s\" is not HOST:PORT (e.g. :8080, 127.0.0.1:8080, [::1]:8080) "
				 "or off", addr);
}

/* A listening address from a flag: "off" or "" turns the endpoint off. */
static void set_addr(struct ctx *c, char **dst, const char *value, const char *flag) {
	if (!value)
		return;
	if (!*value || strcmp(value, "off") == 0) {
		free(*dst);
		*dst = NULL;
		return;
	}
	check_addr(c, value, flag);
	set_str(dst, value);
}

static bool valid_http_url(const char *url) {
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok;

	if (!u)
		abort();
	ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		(strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) && *host;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static void validate_sinks(struct ctx *c) {
	struct config *cfg = c->cfg;

	if (!cfg->sink || !*cfg->sink) {
		if (c->sink_origin[0])
			report(c, c->sink_origin, "no sink URL");
		else
			report(c, "--sink", "missing: give --sink URL (or - for stdout), set K_SINK, or "
					    "spec.sink.uri in --source-file");
	} else if (strcmp(cfg->sink, "-") != 0 && !valid_http_url(cfg->sink)) {
		report(c, c->sink_origin, "\"%s\" is not an http:// or https:// URL", cfg->sink);
	}
	if (cfg->dead_letter && !valid_http_url(cfg->dead_letter))
		report(c, c->dead_letter_origin, "\"%s\" is not an http:// or https:// URL",
			cfg->dead_letter);
	if (cfg->dead_letter && cfg->sink && strcmp(cfg->sink, "-") == 0)
		report(c, c->dead_letter_origin, "the stdout sink never fails; a dead-letter sink "
						 "needs --sink URL");
}

int config_load(struct config *cfg, int argc, char **argv, config_getenv_fn getenv_fn,
	void *getenv_userdata, config_error_fn on_error, void *error_userdata) {
	struct ctx c = { .cfg = cfg, .on_error = on_error, .error_userdata = error_userdata };
	struct flag_values f = { 0 };
	unsigned long long u;

	*cfg = (struct config){
		.mode = CONFIG_MODE_RESOURCE,
		.sink_timeout_usec = DEFAULT_SINK_TIMEOUT_USEC,
		.retry_max = DEFAULT_RETRY_MAX,
		.max_event_bytes = DEFAULT_MAX_EVENT_BYTES,
		.max_inflight = DEFAULT_MAX_INFLIGHT,
		.watch_timeout_sec = 300,
		.queue_max_events = DEFAULT_QUEUE_MAX_EVENTS,
		.queue_max_bytes = DEFAULT_QUEUE_MAX_BYTES,
		.drain_timeout_usec = DEFAULT_DRAIN_TIMEOUT_USEC,
		.checkpoint_interval_usec = DEFAULT_CHECKPOINT_INTERVAL_USEC,
		.log_level = LOG_INFO,
		.log_format = -1,
	};
	parse_flags(&c, argc, argv, &f);
	if (cfg->help || cfg->version)
		goto out;

	set_str(&cfg->probes_addr, ":8080");
	set_str(&cfg->metrics_addr, ":9092");

	/* Lowest precedence first: the manifest, then the environment, then flags. */
	if (f.source_file) {
		set_str(&cfg->source_file, f.source_file);
		load_source_file(&c, f.source_file);
	}
	load_env(&c, getenv_fn, getenv_userdata);

	if (f.n_resources) {
		free_resources(cfg);
		for (size_t i = 0; i < f.n_resources; i++) {
			if (f.selector)
				f.resources[i].label_selector = xstrdup(f.selector);
			add_resource(cfg, &f.resources[i]);
		}
		f.n_resources = 0;
	} else if (f.selector) {
		report(&c, "-l", "applies to --resource; give the selector with each resource in "
				 "K_SOURCE_CONFIG or the manifest instead");
	}
	if (f.n_namespaces || f.all_namespaces) {
		/* The command line decides where to watch as a whole. */
		free_namespaces(cfg);
		cfg->all_namespaces = false;
		free(cfg->namespace_selector);
		cfg->namespace_selector = NULL;
	}
	for (size_t i = 0; i < f.n_namespaces; i++)
		add_namespace(cfg, f.namespaces[i]);
	if (f.all_namespaces)
		cfg->all_namespaces = true;
	if (f.n_namespaces && f.all_namespaces)
		report(&c, "-A", "cannot be combined with -n");
	if (f.mode && parse_mode(f.mode, &cfg->mode) < 0)
		report(&c, "--mode", "must be Resource or Reference, not \"%s\"", f.mode);
	if (f.sink) {
		set_str(&cfg->sink, f.sink);
		snprintf(c.sink_origin, sizeof(c.sink_origin), "--sink");
	}
	if (f.kubeconfig)
		set_str(&cfg->kubeconfig, f.kubeconfig);
	if (f.context)
		set_str(&cfg->context, f.context);
	if (f.name)
		set_str(&cfg->name, f.name);
	if (f.initial_events)
		cfg->initial_events = true;
	if (f.fail_fast)
		cfg->fail_fast = true;
	for (size_t i = 0; i < N_NUMERIC; i++) {
		const struct numeric_flag *nf = &numeric_flags[i];
		char flag[64];
		void *field = (char *)cfg + nf->offset;

		if (!f.numeric[i])
			continue;
		snprintf(flag, sizeof(flag), "--%s", nf->name);
		if (parse_uint(f.numeric[i], nf->max, &u) < 0 || u < nf->min) {
			report(&c, flag, "\"%s\" is not a number of %s (%llu-%llu)", f.numeric[i], nf->unit,
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
	if (f.dead_letter) {
		set_str(&cfg->dead_letter, f.dead_letter);
		snprintf(c.dead_letter_origin, sizeof(c.dead_letter_origin), "--dead-letter");
	}
	if (f.state_dir)
		set_str(&cfg->state_dir, f.state_dir);
	if (f.object_state) {
		if (strcmp(f.object_state, "full") == 0)
			cfg->object_state_refs = false;
		else if (strcmp(f.object_state, "reference") == 0)
			cfg->object_state_refs = true;
		else
			report(&c, "--object-state", "must be full or reference, not \"%s\"",
				f.object_state);
	}
	if (f.log_level && log_level_from_string(f.log_level, &cfg->log_level) < 0)
		report(&c, "--log-level", "must be debug, info, warn or error, not \"%s\"", f.log_level);
	cfg->log_level_set = f.log_level != NULL;
	if (f.log_format && strcmp(f.log_format, "json") == 0)
		cfg->log_format = LOG_FORMAT_JSON;
	else if (f.log_format && strcmp(f.log_format, "text") == 0)
		cfg->log_format = LOG_FORMAT_TEXT;
	else if (f.log_format)
		report(&c, "--log-format", "must be json or text, not \"%s\"", f.log_format);
	set_addr(&c, &cfg->probes_addr, f.probes_addr, "--probes-addr");
	set_addr(&c, &cfg->metrics_addr, f.metrics_addr, "--metrics-addr");
	if (cfg->metrics_addr && !f.metrics_addr)
		check_addr(&c, cfg->metrics_addr, "K_OBSERVABILITY_CONFIG");
	if (!cfg->oidc_audience != !cfg->oidc_service_account)
		report(&c, cfg->oidc_audience ? "K_OIDC_SERVICE_ACCOUNT" : "K_AUDIENCE",
			"missing: OIDC needs both K_AUDIENCE and K_OIDC_SERVICE_ACCOUNT");
	if (cfg->oidc_audience && !cfg->namespace)
		report(&c, "NAMESPACE", "missing: OIDC asks for a token of a service account in NAMESPACE");

	/* Whole-config checks. */
	if (!cfg->n_resources)
		report(&c, "--resource", "nothing to watch: give --resource APIVERSION/KIND, "
					 "K_SOURCE_CONFIG, or --source-file");
	for (size_t i = 0; i < cfg->n_resources; i++) {
		const char *sel = cfg->resources[i].label_selector;
		if (sel && (strstr(sel, ",,") || sel[0] == ',' || sel[strlen(sel) - 1] == ','))
			report(&c, "-l", "\"%s\" is not a valid label selector", sel);
	}
	if (cfg->all_namespaces && cfg->n_namespaces && !f.n_namespaces && !f.all_namespaces)
		/* K_SOURCE_CONFIG with both: allNamespaces wins, as in Knative. */
		free_namespaces(cfg);
	if (cfg->owner_api_version && !cfg->owner_kind && !strchr(cfg->owner_api_version, '/') &&
		strchr(cfg->owner_api_version, '.'))
		report(&c, "owner", "apiVersion \"%s\" needs a version", cfg->owner_api_version);
	validate_sinks(&c);
out:
	flag_values_finish(&f);
	return c.errors ? -EINVAL : 0;
}

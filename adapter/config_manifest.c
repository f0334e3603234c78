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
	config_report(c, where, "%s: %s", field, msg);
}

/* A scalar's text, or NULL after reporting a control character (a NUL from
 * "\0" would end the string early; a line break would split a header). */
static const char *scalar_text(struct ctx *c, const char *file, yaml_node_t *n, const char *field) {
	const char *s = yamldoc_str(n);

	if (s && (strlen(s) != n->data.scalar.length || config_find_control(s, false) >= 0)) {
		file_error(c, file, n, field, "control character in the value");
		return NULL;
	}
	return s;
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
	return scalar_text(c, file, n, path);
}

/* spec.sink.ref: a KReference (apiVersion, kind, name, namespace), followed
 * live by the adapter (sinkref.c); spec.sink.uri beside it is joined to it. */
static void sink_ref_from_yaml(struct ctx *c, const char *file, struct yamldoc *d, yaml_node_t *n) {
	struct config_sink_ref ref = { 0 };
	struct config_resource av = { 0 };
	const char *api_version, *kind, *name, *ns, *field, *problem;
	char path[64];
	size_t line, col;
	unsigned before = c->errors;
	int r;

	if (n->type != YAML_MAPPING_NODE) {
		file_error(c, file, n, "spec.sink.ref", "expected a mapping with apiVersion, kind and name");
		c->sink_rejected = true;
		return;
	}
	api_version = file_str(c, file, d, n, "apiVersion");
	kind = file_str(c, file, d, n, "kind");
	name = file_str(c, file, d, n, "name");
	ns = file_str(c, file, d, n, "namespace");
	if (c->errors != before) {
		c->sink_rejected = true;
		return;
	}
	r = api_version ? config_split_api_version(api_version, &av) : 0;
	if (r == -ENOMEM) {
		config_oom(c);
		goto out;
	}
	ref = (struct config_sink_ref){ .group = av.group, .version = av.version,
		.kind = (char *)kind, .namespace = (char *)ns, .name = (char *)name };
	if (r < 0)
		problem = "is not group/version or v1", field = "apiVersion";
	else
		problem = config_sink_ref_problem(&ref, &field);
	if (problem) {
		snprintf(path, sizeof(path), "spec.sink.ref.%s", field);
		file_error(c, file, yamldoc_get(d, n, field) ? yamldoc_get(d, n, field) : n, path,
			"%s", problem);
		c->sink_rejected = true;
		goto out;
	}
	config_sink_ref_finish(&c->cfg->sink_ref);
	c->cfg->sink_ref = (struct config_sink_ref){ .group = av.group, .version = av.version,
		.kind = config_strdup(c, kind), .namespace = ns ? config_strdup(c, ns) : NULL,
		.name = config_strdup(c, name) };
	av = (struct config_resource){ 0 }; /* handed over */
	yamldoc_mark(n, &line, &col);
	snprintf(c->sink_ref_origin, sizeof(c->sink_ref_origin), "%s:%zu:%zu: spec.sink.ref", file,
		line, col);
out:
	config_resource_finish(&av);
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
		if (buf_printf(&b, "%s%s=%s", b.len ? "," : "", ks, vs) < 0)
			goto oom;
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
		if ((strcmp(op, "Exists") == 0 || strcmp(op, "DoesNotExist") == 0) && yamldoc_len(vals)) {
			/* As the API server's validation says it. */
			file_error(c, file, vals, fieldbuf, "values: may not be given with operator %s", op);
			continue;
		}
		if (strcmp(op, "In") == 0 || strcmp(op, "NotIn") == 0) {
			if (!yamldoc_len(vals)) {
				file_error(c, file, e, fieldbuf, "operator %s needs values", op);
				continue;
			}
			if (buf_printf(&b, "%s%s %s (", b.len ? "," : "", key,
				    strcmp(op, "In") == 0 ? "in" : "notin") < 0)
				goto oom;
			for (size_t j = 0; j < yamldoc_len(vals); j++) {
				const char *val = yamldoc_str(yamldoc_item(d, vals, j));
				if (buf_printf(&b, "%s%s", j ? "," : "", val ? val : "") < 0)
					goto oom;
			}
			if (buf_append_str(&b, ")") < 0)
				goto oom;
		} else if (strcmp(op, "Exists") == 0) {
			if (buf_printf(&b, "%s%s", b.len ? "," : "", key) < 0)
				goto oom;
		} else if (strcmp(op, "DoesNotExist") == 0) {
			if (buf_printf(&b, "%s!%s", b.len ? "," : "", key) < 0)
				goto oom;
		} else {
			file_error(c, file, yamldoc_get(d, e, "operator"), fieldbuf,
				"operator must be In, NotIn, Exists or DoesNotExist, not \"%s\"", op);
		}
	}
	if (!b.len) {
		buf_finish(&b);
		return NULL;
	}
	if (config_find_control(b.data, false) >= 0) {
		file_error(c, file, sel, field, "control character in a key or value");
		buf_finish(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
oom:
	buf_finish(&b);
	config_oom(c);
	return NULL;
}

void  config_load_source_file(struct ctx *c, const char *file) {
	struct config *cfg = c->cfg;
	struct yamldoc *docs = NULL;
	size_t ndocs = 0, len = 0;
	char *text = NULL, *err = NULL;
	struct yamldoc *d = NULL;
	yaml_node_t *root = NULL, *spec, *resources, *n, *k, *v;
	const char *s;
	unsigned before;
	int r;

	r = file_read_all(file, MAX_FILE_BYTES, &text, &len);
	if (r == -ENOMEM) {
		config_oom(c);
		goto out;
	}
	if (r < 0) {
		config_report(c, "--source-file", "%s: %s", file,
			r == -E2BIG ? "file too large" : strerror(-r));
		goto out;
	}
	r = yamldoc_load_all(text, len, &docs, &ndocs, &err);
	if (r == -ENOMEM) {
		config_oom(c);
		goto out;
	}
	if (r < 0) {
		/* err is "line:column: problem" (a syntax error or a yamldoc limit). */
		const char *problem = err ? strstr(err, ": ") : NULL;
		char where[512];

		snprintf(where, sizeof(where), "%s:%.*s", file, problem ? (int)(problem - err) : 3,
			problem ? err : "1:1");
		config_report(c, where, "invalid YAML: %s", problem ? problem + 2 : strerror(-r));
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
		config_report(c, "--source-file", "%s: no document with kind: ApiServerSource", file);
		goto out;
	}
	s = file_str(c, file, d, root, "apiVersion");
	if (!s || strncmp(s, "sources.knative.dev/", 20) != 0)
		file_error(c, file, yamldoc_get(d, root, "apiVersion") ?: root, "apiVersion",
			"expected sources.knative.dev/v1, got \"%s\"", s ? s : "");
	if ((s = file_str(c, file, d, root, "metadata.name")))
		config_set_str(c, &cfg->name, s);
	if ((s = file_str(c, file, d, root, "metadata.namespace"))) {
		if (!config_valid_dns_label(s))
			file_error(c, file, yamldoc_path(d, root, "metadata.namespace"), "metadata.namespace",
				"\"%s\" is not a valid namespace name", s);
		else
			config_set_str(c, &cfg->namespace, s);
	}
	spec = yamldoc_get(d, root, "spec");
	if (!spec || spec->type != YAML_MAPPING_NODE) {
		file_error(c, file, spec ? spec : root, "spec", "missing or not a mapping");
		goto out;
	}
	/* The API's default mode is Reference. */
	cfg->mode = CONFIG_MODE_REFERENCE;
	c->mode_from_file = true;
	if ((s = file_str(c, file, d, spec, "mode")) && config_parse_mode(s, &cfg->mode) < 0)
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
		before = c->errors;
		const char *av = file_str(c, file, d, item, "apiVersion");
		const char *kind = file_str(c, file, d, item, "kind");

		snprintf(field, sizeof(field), "spec.resources[%zu]", i);
		if (!av || !kind || !*kind) {
			if (c->errors == before) /* else file_str() said what is wrong */
				file_error(c, file, item, field, "needs apiVersion and kind");
			continue;
		}
		r = config_split_api_version(av, &res);
		if (r < 0) {
			if (r == -ENOMEM)
				config_oom(c);
			else
				file_error(c, file, yamldoc_get(d, item, "apiVersion"), field,
					"apiVersion \"%s\" is not group/version or v1", av);
			config_resource_finish(&res);
			continue;
		}
		res.kind = config_strdup(c, kind);
		snprintf(field, sizeof(field), "spec.resources[%zu].selector", i);
		res.label_selector =
			selector_from_yaml(c, file, d, yamldoc_get(d, item, "selector"), field);
		if (c->nomem)
			config_resource_finish(&res);
		else
			config_add_resource(c, &res);
	}
	if ((n = yamldoc_get(d, spec, "owner")) && !yamldoc_is_null(n)) {
		const char *av = file_str(c, file, d, n, "apiVersion");
		const char *kind = file_str(c, file, d, n, "kind");
		if (av)
			config_set_str(c, &cfg->owner_api_version, av);
		if (kind)
			config_set_str(c, &cfg->owner_kind, kind);
	}
	before = c->errors;
	if (!(s = file_str(c, file, d, spec, "sink.uri")) && c->errors != before) {
		c->sink_rejected = true; /* reported: not also "missing" */
	} else if (s) {
		config_set_str(c, &cfg->sink, s);
		n = yamldoc_path(d, spec, "sink.uri");
		size_t line, col;
		yamldoc_mark(n, &line, &col);
		snprintf(c->sink_origin, sizeof(c->sink_origin), "%s:%zu:%zu: spec.sink.uri", file,
			line, col);
	}
	if ((n = yamldoc_path(d, spec, "sink.ref")) && !yamldoc_is_null(n))
		sink_ref_from_yaml(c, file, d, n);
	if ((s = file_str(c, file, d, spec, "delivery.deadLetterSink.uri"))) {
		size_t line, col;
		config_set_str(c, &cfg->dead_letter, s);
		yamldoc_mark(yamldoc_path(d, spec, "delivery.deadLetterSink.uri"), &line, &col);
		snprintf(c->dead_letter_origin, sizeof(c->dead_letter_origin),
			"%s:%zu:%zu: spec.delivery.deadLetterSink.uri", file, line, col);
	}
	n = yamldoc_path(d, spec, "ceOverrides.extensions");
	for (size_t i = 0; yamldoc_pair(d, n, i, &k, &v); i++) {
		const char *ks = yamldoc_str(k), *vs = v ? scalar_text(c, file, v, "spec.ceOverrides.extensions") : NULL;
		if (v && yamldoc_str(v) && !vs)
			continue; /* reported */
		if (!ks || !config_valid_extension_name(ks)) {
			file_error(c, file, k, "spec.ceOverrides.extensions",
				"\"%s\" is not a valid CloudEvents extension name (lower-case letters and "
				"digits, not a core attribute)",
				ks ? ks : "");
			continue;
		}
		config_add_extension(c, ks, vs ? vs : "");
	}
	if ((n = yamldoc_get(d, spec, "namespaceSelector")) && !yamldoc_is_null(n)) {
		free(cfg->namespace_selector);
		cfg->namespace_selector =
			selector_from_yaml(c, file, d, n, "spec.namespaceSelector");
		if (!cfg->namespace_selector)
			/* An empty selector selects every namespace. */
			cfg->all_namespaces = true;
	}
	if ((n = yamldoc_get(d, spec, "filters")) && !yamldoc_is_null(n)) {
		struct filter *f = NULL;
		char *warnings = NULL, err[600];
		r = filter_parse_yaml(d, n, &f, &warnings, err, sizeof(err));
		if (r == -ENOMEM)
			config_oom(c);
		else if (r < 0) {
			/* err starts "line:column: ": file:line:column names the field. */
			const char *rest = strstr(err, ": ");
			char where[600];
			snprintf(where, sizeof(where), "%s:%.*s", file,
				rest ? (int)(rest - err) : 0, err);
			config_report(c, where, "spec.filters: %s", rest ? rest + 2 : err);
		}
		else
			config_take_filter(c, f, warnings);
	}
	if (cfg->namespace && !cfg->namespace_selector && !cfg->all_namespaces &&
		config_add_namespace(cfg, cfg->namespace) < 0)
		config_oom(c);
out:
	free(err);
	free(text);
	yamldoc_free_all(docs, ndocs);
}

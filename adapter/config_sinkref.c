#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/config.h"
#include "adapter/config_internal.h"

/* ---------------- sink references: --sink-ref, spec.sink.ref ---------------- */

void config_sink_ref_finish(struct config_sink_ref *ref) {
	if (!ref)
		return;
	free(ref->group);
	free(ref->version);
	free(ref->kind);
	free(ref->namespace);
	free(ref->name);
	*ref = (struct config_sink_ref){ 0 };
}

/* "v1", "v1beta2", "v2alpha1": what a Kubernetes version looks like, to
 * tell "apps/v1/Deployment/x" (a group) from "v1/Service/ns/x". */
static bool looks_like_version(const char *s, size_t n) {
	size_t i = 1;

	if (n < 2 || s[0] != 'v' || !isdigit((unsigned char)s[1]))
		return false;
	while (i < n && isdigit((unsigned char)s[i]))
		i++;
	if (i == n)
		return true;
	if (n - i > 5 && strncmp(s + i, "alpha", 5) == 0)
		i += 5;
	else if (n - i > 4 && strncmp(s + i, "beta", 4) == 0)
		i += 4;
	else
		return false;
	while (i < n && isdigit((unsigned char)s[i]))
		i++;
	return i == n;
}

/* Kubernetes object names: DNS-1123 subdomains. */
static bool valid_name(const char *s) {
	size_t n = strlen(s);

	if (n == 0 || n > 253 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' ||
			    s[i] == '.'))
			return false;
	return true;
}

static bool valid_kind(const char *s) {
	if (!isalpha((unsigned char)*s) || strlen(s) > 63)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s))
			return false;
	return true;
}

const char *config_sink_ref_problem(const struct config_sink_ref *ref, const char **ret_field) {
	*ret_field = "apiVersion";
	if (!ref->version || !*ref->version)
		return "missing";
	if (!config_valid_api_version(ref->group, ref->version))
		return "is not group/version or v1";
	*ret_field = "kind";
	if (!ref->kind || !*ref->kind)
		return "missing";
	if (!valid_kind(ref->kind))
		return "is not a kind (letters and digits, e.g. Service)";
	*ret_field = "namespace";
	if (ref->namespace && !config_valid_dns_label(ref->namespace))
		return "is not a namespace name";
	*ret_field = "name";
	if (!ref->name || !*ref->name)
		return "missing";
	if (!valid_name(ref->name))
		return "is not an object name (lower-case letters, digits, '-' and '.')";
	return NULL;
}

int config_parse_sink_ref(const char *s, struct config_sink_ref *ret_ref, char *problem,
	size_t problem_len) {
	static const char usage[] = "is not APIVERSION/KIND/[NAMESPACE/]NAME "
				    "(e.g. v1/Service/default/player)";
	struct config_sink_ref ref = { 0 };
	const char *seg[6], *field, *what;
	size_t len[6], n = 0, k = 0;
	int r = -ENOMEM;

	for (const char *p = s;; n++) {
		const char *slash = strchr(p, '/');
		if (n == 6) {
			snprintf(problem, problem_len, "%s", usage);
			return -EINVAL;
		}
		seg[n] = p;
		len[n] = slash ? (size_t)(slash - p) : strlen(p);
		if (!len[n]) {
			snprintf(problem, problem_len, "%s", usage);
			return -EINVAL;
		}
		if (!slash) {
			n++;
			break;
		}
		p = slash + 1;
	}
	/* GROUP/VERSION/KIND/[NS/]NAME, or VERSION/KIND/[NS/]NAME (the core group). */
	if (n >= 4 && looks_like_version(seg[1], len[1])) {
		ref.group = strndup(seg[0], len[0]);
		k = 1;
	} else {
		ref.group = strdup("");
	}
	if (n - k < 3 || n - k > 4) {
		snprintf(problem, problem_len, "%s", usage);
		r = -EINVAL;
		goto out;
	}
	ref.version = strndup(seg[k], len[k]);
	ref.kind = strndup(seg[k + 1], len[k + 1]);
	if (n - k == 4)
		ref.namespace = strndup(seg[k + 2], len[k + 2]);
	ref.name = strndup(seg[n - 1], len[n - 1]);
	if (!ref.group || !ref.version || !ref.kind || !ref.name || (n - k == 4 && !ref.namespace))
		goto out;
	if ((what = config_sink_ref_problem(&ref, &field))) {
		/* The part that is wrong, in the flag's own terms. */
		snprintf(problem, problem_len, "%s %s %s",
			strcmp(field, "apiVersion") == 0 ? "APIVERSION" :
			strcmp(field, "kind") == 0	 ? "KIND" :
			strcmp(field, "namespace") == 0 ? "NAMESPACE" :
							   "NAME",
			what, "(APIVERSION/KIND/[NAMESPACE/]NAME)");
		r = -EINVAL;
		goto out;
	}
	*ret_ref = ref;
	ref = (struct config_sink_ref){ 0 };
	r = 0;
out:
	config_sink_ref_finish(&ref);
	return r;
}

void config_set_sink_ref(struct ctx *c, const char *origin, const char *value, bool first) {
	struct config_sink_ref ref;
	char problem[200];
	int r;

	(void)first;
	r = config_parse_sink_ref(value, &ref, problem, sizeof(problem));
	if (r == -ENOMEM) {
		config_oom(c);
		return;
	}
	if (r < 0) {
		config_report(c, origin, "\"%s\" %s", value, problem);
		c->sink_rejected = true;
		return;
	}
	config_sink_ref_finish(&c->cfg->sink_ref);
	c->cfg->sink_ref = ref;
	snprintf(c->sink_ref_origin, sizeof(c->sink_ref_origin), "%s", origin);
	/* The command line's sink replaces the environment's or the manifest's
	 * as a whole: a --sink given with it is joined to it, no other one. */
	if (!c->flag_sink) {
		free(c->cfg->sink);
		c->cfg->sink = NULL;
		c->sink_origin[0] = '\0';
	}
	c->flag_sink_ref = true;
}

/* With a reference, the sink is a relative reference (Knative: "absolute
 * URI is not allowed when Ref exists"), joined to the address later. */
void config_check_sink_with_ref(struct ctx *c) {
	const struct config *cfg = c->cfg;
	CURLU *u = NULL;
	CURLUcode uc;

	if (!cfg->sink)
		return;
	if (strcmp(cfg->sink, "-") == 0) {
		config_report(c, c->sink_origin, "the stdout sink cannot be combined with the sink "
						 "reference %s", c->sink_ref_origin);
		return;
	}
	u = curl_url();
	if (!u) {
		config_oom(c);
		return;
	}
	/* Absolute: it parses on its own. */
	uc = curl_url_set(u, CURLUPART_URL, cfg->sink, 0);
	if (uc == CURLUE_OK) {
		config_report(c, c->sink_origin,
			"an absolute URL cannot be combined with the sink reference %s: give a "
			"relative reference (a path such as /events), joined to its address",
			c->sink_ref_origin);
		goto out;
	}
	uc = curl_url_set(u, CURLUPART_URL, "http://sink-ref.invalid/", 0);
	if (uc == CURLUE_OK)
		uc = curl_url_set(u, CURLUPART_URL, cfg->sink, 0);
	if (uc == CURLUE_OUT_OF_MEMORY)
		config_oom(c);
	else if (uc != CURLUE_OK)
		config_report(c, c->sink_origin, "\"%s\" is not a relative URL reference", cfg->sink);
out:
	curl_url_cleanup(u);
}

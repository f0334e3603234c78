#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter/changes.h"
#include "adapter/config.h"
#include "adapter/config_internal.h"

/* --header, --header-file and --with-changes: parsing and the checks that
 * involve other settings. A header's value is never part of a message. */

/* RFC 9110's token: what a field name may be. */
static bool valid_token(const char *s, size_t len) {
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			    (ch && strchr(extra, ch))))
			return false;
	}
	return true;
}

/* Headers the adapter (or libcurl for it) writes on every POST: a second
 * copy would contradict it, and the CloudEvents ones are the event. */
static const char *reserved_header(const char *name) {
	static const char *const fixed[] = { "Content-Type", "Content-Length", "Host",
		"Transfer-Encoding", "Connection", "Expect", "User-Agent", "Kn-Namespace" };

	if (strncasecmp(name, "ce-", 3) == 0)
		return "ce-*, the CloudEvent's attributes";
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcasecmp(name, fixed[i]) == 0)
			return fixed[i];
	return NULL;
}

static void add_header(struct ctx *c, const char *origin, const char *arg, bool is_file) {
	struct config *cfg = c->cfg;
	const char *eq = strchr(arg, '=');
	struct config_header h = { 0 }, *grown;
	const char *rest;
	const char *why;

	if (!eq || !valid_token(arg, (size_t)(eq - arg))) {
		/* Only the part before '=' is shown: what follows may be a secret. */
		config_report(c, origin, "\"%.*s\" is not a header name (a token: letters, digits, "
				"!#$%%&'*+-.^_`|~) followed by =%s", eq ? (int)(eq - arg) : 0, arg,
			is_file ? "PATH" : "VALUE");
		return;
	}
	rest = eq + 1;
	h.name = strndup(arg, (size_t)(eq - arg));
	if (!h.name) {
		config_oom(c);
		return;
	}
	why = reserved_header(h.name);
	if (why) {
		config_report(c, origin, "\"%s\" is a header the adapter sets itself (%s)", h.name,
			why);
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_headers; i++)
		if (strcasecmp(cfg->headers[i].name, h.name) == 0) {
			config_report(c, origin, "header \"%s\" is given twice", h.name);
			goto fail;
		}
	if (is_file && !*rest) {
		config_report(c, origin, "\"%s=\" needs a file path", h.name);
		goto fail;
	}
	/* The table refused control characters in the whole argument already. */
	if (!(is_file ? (h.path = strdup(rest)) : (h.value = strdup(rest)))) {
		config_oom(c);
		goto fail;
	}
	grown = realloc(cfg->headers, (cfg->n_headers + 1) * sizeof(*grown));
	if (!grown) {
		config_oom(c);
		goto fail;
	}
	cfg->headers = grown;
	cfg->headers[cfg->n_headers++] = h;
	return;
fail:
	free(h.name);
	free(h.value);
	free(h.path);
}

void config_set_header(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	add_header(c, origin, value, false);
}

void config_set_header_file(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	add_header(c, origin, value, true);
}

void config_check_headers_changes(struct ctx *c) {
	struct config *cfg = c->cfg;

	for (size_t i = 0; i < cfg->n_headers; i++)
		if (cfg->oidc_audience && strcasecmp(cfg->headers[i].name, "Authorization") == 0)
			config_report(c, cfg->headers[i].path ? "--header-file" : "--header",
				"\"Authorization\" is the adapter's with OIDC (K_AUDIENCE): one or "
				"the other");
	if (cfg->n_headers && cfg->sink && strcmp(cfg->sink, "-") == 0)
		config_report(c, cfg->headers[0].path ? "--header-file" : "--header",
			"headers go to an HTTP sink; --sink - writes to stdout");
	if (cfg->with_changes && cfg->object_state_refs)
		config_report(c, "--with-changes",
			"needs each object's last state: not with --object-state reference");
	for (size_t i = 0; cfg->with_changes && i < cfg->n_extensions; i++)
		if (strcmp(cfg->extensions[i].name, CHANGES_EXTENSION) == 0)
			config_report(c, "--with-changes", "sets the " CHANGES_EXTENSION
					" extension, which ceOverrides sets too");
}

void config_free_headers(struct config *cfg) {
	for (size_t i = 0; i < cfg->n_headers; i++) {
		free(cfg->headers[i].name);
		if (cfg->headers[i].value)
			explicit_bzero(cfg->headers[i].value, strlen(cfg->headers[i].value));
		free(cfg->headers[i].value);
		free(cfg->headers[i].path);
	}
	free(cfg->headers);
	cfg->headers = NULL;
	cfg->n_headers = 0;
}

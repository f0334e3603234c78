#include <curl/curl.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/config.h"
#include "adapter/log.h"
#include "adapter/tls_config.h"

/* Every variable libcurl takes a proxy from (HTTP_PROXY too, to be safe). */
static const char *const proxy_vars[] = {
	"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
};

/* true when url parses (libcurl's URL API) with the scheme http. */
static bool plain_http(const char *url) {
	CURLU *u = curl_url();
	char *scheme = NULL;
	bool plain = false;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK)
		plain = strcmp(scheme, "http") == 0;
	curl_free(scheme);
	curl_url_cleanup(u);
	return plain;
}

bool tls_config_needed(const struct config *cfg, const char *kube_server,
	const char *(*env)(const char *name)) {
	if (!kube_server || !plain_http(kube_server))
		return true;
	if (cfg->sink && strcmp(cfg->sink, "-") != 0 && !plain_http(cfg->sink))
		return true;
	if (cfg->dead_letter && !plain_http(cfg->dead_letter))
		return true;
	for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++) {
		const char *v = env(proxy_vars[i]);
		if (v && *v)
			return true;
	}
	return false;
}

static const char *lookup(const char *name) {
	return getenv(name);
}

void tls_config_prepare(const struct config *cfg, const char *kube_server) {
#ifdef ADAPTER_OPENSSL_CONFIG_LAZY
	if (!tls_config_needed(cfg, kube_server, lookup))
		return;
	/* What OpenSSL's own initialisation does: the default file (OPENSSL_CONF,
	 * else OPENSSLDIR/openssl.cnf), a missing file and its errors ignored. */
	if (CONF_modules_load_file(NULL, NULL,
		    CONF_MFLAGS_DEFAULT_SECTION | CONF_MFLAGS_IGNORE_MISSING_FILE) <= 0)
		log_warn("main", "cannot read OpenSSL's configuration; TLS uses OpenSSL's defaults");
	ERR_clear_error();
#else
	(void)cfg;
	(void)kube_server;
	(void)lookup;
#endif
}

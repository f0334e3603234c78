#include <criterion/criterion.h>
#include <string.h>

#include "adapter/config.h"
#include "adapter/tls_config.h"

/* The lean libcurl leaves OpenSSL's configuration unread; tls_config_prepare
 * reads it only when a connection may use TLS. These pin that decision. */

static const char *no_env(const char *name) {
	(void)name;
	return NULL;
}

static const char *proxy_env(const char *name) {
	return strcmp(name, "https_proxy") == 0 ? "https://proxy.example:3128" : NULL;
}

static const char *empty_proxy_env(const char *name) {
	return strcmp(name, "HTTPS_PROXY") == 0 ? "" : NULL;
}

Test(tls_config, plain_http_everywhere_needs_no_tls_config) {
	struct config cfg = { .sink = "http://sink.default.svc/" };

	cr_assert_not(tls_config_needed(&cfg, "http://127.0.0.1:8080", no_env));
	cfg.sink = "-";
	cr_assert_not(tls_config_needed(&cfg, "HTTP://10.0.0.1", no_env));
	cfg.dead_letter = "http://dls.default.svc/";
	cr_assert_not(tls_config_needed(&cfg, "http://[::1]:6443", empty_proxy_env));
}

Test(tls_config, https_api_server_needs_tls_config) {
	struct config cfg = { .sink = "http://sink/" };

	cr_assert(tls_config_needed(&cfg, "https://10.96.0.1:443", no_env));
	cr_assert(tls_config_needed(&cfg, NULL, no_env));
	cr_assert(tls_config_needed(&cfg, "not a url", no_env));
}

Test(tls_config, https_sink_or_dead_letter_needs_tls_config) {
	struct config cfg = { .sink = "https://sink.example/" };

	cr_assert(tls_config_needed(&cfg, "http://127.0.0.1:8080", no_env));
	cfg.sink = "http://sink/";
	cfg.dead_letter = "https://dls.example/";
	cr_assert(tls_config_needed(&cfg, "http://127.0.0.1:8080", no_env));
}

Test(tls_config, proxy_in_environment_needs_tls_config) {
	struct config cfg = { .sink = "http://sink/" };

	cr_assert(tls_config_needed(&cfg, "http://127.0.0.1:8080", proxy_env));
}

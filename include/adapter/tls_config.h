#ifndef ADAPTER_TLS_CONFIG_H
#define ADAPTER_TLS_CONFIG_H

#include <stdbool.h>

struct config;

/* Whether a connection of this configuration may use TLS: the API server
 * (kube_server), the sink or the dead-letter sink is not a plain http:// URL,
 * or the environment names a proxy (its URL may be https). env looks a
 * variable up (getenv in the adapter). Borrows everything. */
bool tls_config_needed(const struct config *cfg, const char *kube_server,
	const char *(*env)(const char *name));

/* Reads OpenSSL's configuration (openssl.cnf: the system's TLS policy) when the
 * adapter's libcurl left it unread and a connection may use TLS
 * (tls_config_needed). The lean libcurl (scripts/provide-lean-deps) is built
 * without OpenSSL's automatic config load, which is over half of the start-up's
 * CPU over plain http; Debian's libcurl reads it in curl_global_init, and then
 * this does nothing. Call it once, after curl_global_init and before the first
 * connection. */
void tls_config_prepare(const struct config *cfg, const char *kube_server);

#endif

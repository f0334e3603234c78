#ifndef ADAPTER_KUBE_H
#define ADAPTER_KUBE_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "adapter/config.h"

/* How to reach the API server: its URL, the CA to trust, and credentials (a
 * bearer token, re-read from its file every minute and after a 401, or a
 * client certificate). Loaded from a kubeconfig or the in-cluster service
 * account, with kubectl's precedence. */

struct kube;

/* Problems are reported through on_error like configuration problems (a
 * kubeconfig's "file:line:column: field: message"). Reads files but opens no
 * connection. Borrows cfg only during the call. */
int kube_load(const struct config *cfg, config_error_fn on_error, void *error_userdata,
	struct kube **ret_kube);
void kube_destroy(struct kube *k);

/* The server URL as configured (https://10.96.0.1:443 in a cluster), without
 * a user name or password it may hold (http_url_redact()): the CloudEvents
 * source, and what the logs name. */
const char *kube_server(const struct kube *k);
/* The namespace of the kubeconfig context, or the pod's, or "default". */
const char *kube_default_namespace(const struct kube *k);
bool kube_in_cluster(const struct kube *k);

/* Prepares an easy handle for GET server+path: URL, TLS, HTTP/1.1, Accept JSON
 * and credentials. *ret_headers is owned by the caller and must outlive the
 * transfer. */
int kube_setup_request(struct kube *k, CURL *easy, const char *path,
	struct curl_slist **ret_headers);
/* After a 401: the next request re-reads the token file. */
void kube_token_rejected(struct kube *k);

#endif

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapter/log.h"
#include "adapter/kobj.h"
#include "adapter/nsselector.h"

static int add_namespace_item(const struct kobj *obj, void *userdata) {
	return config_add_namespace(userdata, obj->name);
}

static size_t feed_list(char *data, size_t size, size_t nmemb, void *userdata) {
	return kobj_list_feed(userdata, data, size * nmemb) < 0 ? 0 : size * nmemb;
}

/* spec.namespaceSelector: resolved once at start (a later issue makes it
 * live). Blocking is fine here: nothing else runs yet. */
int nsselector_resolve(struct config *cfg, struct kube *kube) {
	struct kobj_list *list = NULL;
	struct curl_slist *headers = NULL;
	CURL *easy = curl_easy_init();
	char *esc = NULL, *path = NULL, errbuf[CURL_ERROR_SIZE] = "";
	const char *rv, *cont, *msg;
	long long scode;
	long status = 0;
	CURLcode cc;
	int r = -ENOMEM;

	if (!easy)
		goto out;
	esc = curl_easy_escape(easy, cfg->namespace_selector, 0);
	if (!esc || asprintf(&path, "/api/v1/namespaces?labelSelector=%s", esc) < 0) {
		path = NULL;
		goto out;
	}
	r = kobj_list_create(cfg->max_event_bytes, add_namespace_item, cfg, &list);
	if (r == 0)
		r = kube_setup_request(kube, easy, path, &headers);
	if (r < 0)
		goto out;
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, feed_list);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, list);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 30000L);
	cc = curl_easy_perform(easy);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK || status != 200 ||
		kobj_list_end(list, &rv, &cont, &scode, &msg) < 0) {
		log_error("main", "cannot list namespaces for spec.namespaceSelector",
			LOG_STR("selector", cfg->namespace_selector), LOG_INT("status", status),
			LOG_STR("error", cc != CURLE_OK ? errbuf : ""));
		r = -EIO;
		goto out;
	}
	log_info("main", "namespaceSelector resolved", LOG_STR("selector", cfg->namespace_selector),
		LOG_INT("namespaces", cfg->n_namespaces));
	r = 0;
out:
	kobj_list_destroy(list);
	curl_slist_free_all(headers);
	curl_free(esc);
	free(path);
	curl_easy_cleanup(easy);
	return r;
}

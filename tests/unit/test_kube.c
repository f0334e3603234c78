#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter/kube.h"

struct errs {
	char lines[16][1200];
	int n;
};

static void on_error(const char *field, const char *msg, void *ud) {
	struct errs *e = ud;

	if (e->n < 16)
		snprintf(e->lines[e->n++], sizeof(e->lines[0]), "%s: %s", field, msg);
}

static char dir[64];

static void make_dir(void) {
	snprintf(dir, sizeof(dir), "/tmp/test-kube-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void drop_dir(void) {
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static char *put(const char *name, const char *text) {
	static char path[16][128];
	static int i;
	char *p = path[i++ % 16];
	FILE *f;

	snprintf(p, 128, "%s/%s", dir, name);
	f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

static const char *auth_header(struct kube *k, struct curl_slist **keep) {
	CURL *easy = curl_easy_init();
	struct curl_slist *h = NULL;

	cr_assert_eq(kube_setup_request(k, easy, "/api/v1", &h), 0);
	curl_easy_cleanup(easy);
	*keep = h;
	for (; h; h = h->next)
		if (strncmp(h->data, "Authorization:", 14) == 0)
			return h->data;
	return NULL;
}

static const char kubeconfig[] = "apiVersion: v1\n"
				 "kind: Config\n"
				 "current-context: admin\n"
				 "clusters:\n"
				 "- name: local\n"
				 "  cluster:\n"
				 "    server: https://127.0.0.1:6443/\n"
				 "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
				 "- name: other\n"
				 "  cluster:\n"
				 "    server: https://other:6443\n"
				 "    insecure-skip-tls-verify: true\n"
				 "users:\n"
				 "- name: admin\n"
				 "  user:\n"
				 "    token: s3cret\n"
				 "- name: filer\n"
				 "  user:\n"
				 "    tokenFile: token.txt\n"
				 "- name: certs\n"
				 "  user:\n"
				 "    client-certificate-data: Y2VydA==\n"
				 "    client-key-data: a2V5\n"
				 "- name: plugin\n"
				 "  user:\n"
				 "    exec:\n"
				 "      command: gcloud\n"
				 "contexts:\n"
				 "- name: admin\n"
				 "  context: {cluster: local, user: admin, namespace: guitar-eventing}\n"
				 "- name: file\n"
				 "  context: {cluster: other, user: filer}\n"
				 "- name: certs\n"
				 "  context: {cluster: local, user: certs}\n"
				 "- name: plugin\n"
				 "  context: {cluster: local, user: plugin}\n"
				 "- name: broken\n"
				 "  context: {cluster: nowhere, user: admin}\n";

Test(kube, kubeconfig_token_and_namespace, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;
	struct curl_slist *h;

	cfg.kubeconfig = put("config", kubeconfig);
	cr_assert_eq(kube_load(&cfg, on_error, &e, &k), 0, "%s", e.lines[0]);
	cr_assert_str_eq(kube_server(k), "https://127.0.0.1:6443/");
	cr_assert_str_eq(kube_default_namespace(k), "guitar-eventing");
	cr_assert_not(kube_in_cluster(k));
	cr_assert_str_eq(auth_header(k, &h), "Authorization: Bearer s3cret");
	curl_slist_free_all(h);
	kube_destroy(k);
}

Test(kube, token_file_is_reread_after_401, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;
	struct curl_slist *h;

	cfg.kubeconfig = put("config", kubeconfig);
	put("token.txt", "first\n");
	cfg.context = "file";
	cr_assert_eq(kube_load(&cfg, on_error, &e, &k), 0, "%s", e.lines[0]);
	cr_assert_str_eq(kube_default_namespace(k), "default");
	cr_assert_str_eq(auth_header(k, &h), "Authorization: Bearer first");
	curl_slist_free_all(h);
	/* Rotation by a symlink swap, as the kubelet does. */
	put("token2.txt", "second");
	{
		char from[128], to[128];
		snprintf(from, sizeof(from), "%s/token2.txt", dir);
		snprintf(to, sizeof(to), "%s/token.txt", dir);
		cr_assert_eq(rename(from, to), 0);
	}
	cr_assert_str_eq(auth_header(k, &h), "Authorization: Bearer first"); /* cached */
	curl_slist_free_all(h);
	kube_token_rejected(k);
	cr_assert_str_eq(auth_header(k, &h), "Authorization: Bearer second");
	curl_slist_free_all(h);
	kube_destroy(k);
}

Test(kube, client_certificates, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;
	struct curl_slist *h;

	cfg.kubeconfig = put("config", kubeconfig);
	cfg.context = "certs";
	cr_assert_eq(kube_load(&cfg, on_error, &e, &k), 0, "%s", e.lines[0]);
	cr_assert_null(auth_header(k, &h));
	curl_slist_free_all(h);
	kube_destroy(k);
}

Test(kube, kubeconfig_errors, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;
	char want[256];

	cfg.kubeconfig = put("config", kubeconfig);
	cfg.context = "plugin";
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	snprintf(want, sizeof(want), "%s:27:7: user.exec: exec credential plugins are not supported",
		cfg.kubeconfig);
	cr_assert(strstr(e.lines[0], want), "%s", e.lines[0]);
	e.n = 0;
	cfg.context = "broken";
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	cr_assert(strstr(e.lines[0], "context.cluster: no cluster named \"nowhere\""), "%s", e.lines[0]);
	e.n = 0;
	cfg.context = "missing";
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	cr_assert(strstr(e.lines[0], "--context: no context named \"missing\""), "%s", e.lines[0]);
	e.n = 0;
	cfg.context = NULL;
	cfg.kubeconfig = put("bad", "clusters: [\n");
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	cr_assert(strstr(e.lines[0], "invalid kubeconfig YAML"), "%s", e.lines[0]);
	e.n = 0;
	cfg.kubeconfig = put("cafile", "current-context: c\ncontexts:\n- name: c\n  context: {cluster: "
				       "x}\nclusters:\n- name: x\n  cluster:\n    server: https://h\n"
				       "    certificate-authority: missing-ca.crt\n");
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	snprintf(want, sizeof(want), "%s:9:28: certificate-authority: cannot read CA", cfg.kubeconfig);
	cr_assert(strstr(e.lines[0], want), "%s", e.lines[0]);
}

Test(kube, in_cluster_ipv6, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;
	struct curl_slist *h;

	put("token", "sa-token\n");
	put("ca.crt", "-----BEGIN CERTIFICATE-----\n");
	put("namespace", "guitar-eventing");
	cfg.kube_service_host = "fd00::1";
	cfg.kube_service_port = "443";
	cfg.serviceaccount_dir = dir;
	cr_assert_eq(kube_load(&cfg, on_error, &e, &k), 0, "%s", e.lines[0]);
	cr_assert_str_eq(kube_server(k), "https://[fd00::1]:443");
	cr_assert(kube_in_cluster(k));
	cr_assert_str_eq(kube_default_namespace(k), "guitar-eventing");
	cr_assert_str_eq(auth_header(k, &h), "Authorization: Bearer sa-token");
	curl_slist_free_all(h);
	kube_destroy(k);

	cfg.kube_service_host = "10.96.0.1";
	cr_assert_eq(kube_load(&cfg, on_error, &e, &k), 0);
	cr_assert_str_eq(kube_server(k), "https://10.96.0.1:443");
	kube_destroy(k);
}

Test(kube, in_cluster_without_token, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;

	cfg.kube_service_host = "10.96.0.1";
	cfg.kube_service_port = "443";
	cfg.serviceaccount_dir = dir;
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	cr_assert(strstr(e.lines[0], "cannot read the service-account token"), "%s", e.lines[0]);
}

Test(kube, nothing_to_talk_to) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;

	cfg.home = "/nonexistent-home";
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	cr_assert(strstr(e.lines[0], "no cluster to talk to"), "%s", e.lines[0]);
}

/* ---------------- credentials and header values (issue 9) ---------------- */

static const char creds_config[] = "current-context: c\n"
				   "contexts:\n- name: c\n  context: {cluster: x, user: u}\n"
				   "clusters:\n- name: x\n  cluster:\n"
				   "    server: https://admin:hunter2@127.0.0.1:6443\n"
				   "users:\n- name: u\n  user:\n    token: ok\n";

Test(kube, server_credentials_not_in_source_or_log, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;

	cfg.kubeconfig = put("config", creds_config);
	cr_assert_eq(kube_load(&cfg, on_error, &e, &k), 0, "%s", e.lines[0]);
	/* kube_server() is the CloudEvents source and the start line's server. */
	cr_assert_str_eq(kube_server(k), "https://127.0.0.1:6443");
	kube_destroy(k);
}

Test(kube, kubeconfig_token_with_line_break_is_refused, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;
	char want[256];

	cfg.kubeconfig = put("config", "current-context: c\n"
				       "contexts:\n- name: c\n  context: {cluster: x, user: u}\n"
				       "clusters:\n- name: x\n  cluster:\n    server: https://h\n"
				       "users:\n- name: u\n  user:\n"
				       "    token: \"s3cret\\r\\nX-Injected: yes\"\n");
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	cr_assert_eq(e.n, 1, "one line: %s", e.lines[1]);
	snprintf(want, sizeof(want), "%s:12:12: user.token: contains a control character",
		cfg.kubeconfig);
	cr_assert(strstr(e.lines[0], want), "%s", e.lines[0]);
	cr_assert_null(strstr(e.lines[0], "s3cret"), "the token is printed: %s", e.lines[0]);
	cr_assert_null(strstr(e.lines[0], "Injected"), "%s", e.lines[0]);
}

Test(kube, token_file_with_line_break_is_refused, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;
	struct curl_slist *h;

	cfg.kubeconfig = put("config", kubeconfig);
	cfg.context = "file";
	put("token.txt", "s3cret\nX-Injected: yes\n");
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	cr_assert(strstr(e.lines[0], "user.tokenFile: cannot read"), "%s", e.lines[0]);
	cr_assert(strstr(e.lines[0], "control character"), "%s", e.lines[0]);
	cr_assert_null(strstr(e.lines[0], "s3cret"), "the token is printed: %s", e.lines[0]);

	/* A rotated token with a line break: the previous one is kept. */
	e.n = 0;
	put("token.txt", "first\n");
	cr_assert_eq(kube_load(&cfg, on_error, &e, &k), 0, "%s", e.lines[0]);
	put("token.txt", "second\r\nX-Injected: yes");
	kube_token_rejected(k);
	cr_assert_str_eq(auth_header(k, &h), "Authorization: Bearer first");
	for (struct curl_slist *l = h; l; l = l->next)
		cr_assert_null(strstr(l->data, "Injected"), "%s", l->data);
	curl_slist_free_all(h);
	kube_destroy(k);
}

Test(kube, in_cluster_token_with_line_break_is_refused, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;

	put("token", "sa\rX-Injected: yes\n");
	put("ca.crt", "-----BEGIN CERTIFICATE-----\n");
	cfg.kube_service_host = "10.96.0.1";
	cfg.kube_service_port = "443";
	cfg.serviceaccount_dir = dir;
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	cr_assert(strstr(e.lines[0], "cannot read the service-account token"), "%s", e.lines[0]);
	cr_assert(strstr(e.lines[0], "control character"), "%s", e.lines[0]);
	cr_assert_null(strstr(e.lines[0], "Injected"), "%s", e.lines[0]);
}

/* The finding: certificate-authority-data: '====' was accepted. Every *-data
 * field is decoded strictly and refused naming the file, line and field. */
Test(kube, invalid_base64_is_refused, .init = make_dir, .fini = drop_dir) {
	static const struct {
		const char *field, *value;
	} bad[] = {
		{ "certificate-authority-data", "'===='" },
		{ "certificate-authority-data", "'Y2VydA=x'" },
		{ "certificate-authority-data", "'Y2Vy dA=='" },
		{ "client-certificate-data", "Y2VydA" },
		{ "client-key-data", "'a2V5*'" },
		{ "client-key-data", "'a2V5a==='" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config cfg = { 0 };
		struct errs e = { 0 };
		struct kube *k = NULL;
		bool cluster = strcmp(bad[i].field, "certificate-authority-data") == 0;
		char text[1024], want[256];

		snprintf(text, sizeof(text),
			"current-context: c\ncontexts:\n- name: c\n  context: {cluster: x, user: u}\n"
			"clusters:\n- name: x\n  cluster:\n    server: https://h\n    %s: %s\n"
			"users:\n- name: u\n  user:\n    %s: %s\n",
			cluster ? bad[i].field : "insecure-skip-tls-verify",
			cluster ? bad[i].value : "true", cluster ? "token" : bad[i].field,
			cluster ? "t" : bad[i].value);
		cfg.kubeconfig = put("config", text);
		cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0, "%s", bad[i].value);
		snprintf(want, sizeof(want), "%s:%d:", cfg.kubeconfig, cluster ? 9 : 13);
		cr_assert(strstr(e.lines[0], want), "%s", e.lines[0]);
		snprintf(want, sizeof(want), "%s: not valid base64", bad[i].field);
		cr_assert(strstr(e.lines[0], want), "%s", e.lines[0]);
		kube_destroy(k);
	}
}

Test(kube, base64_with_line_breaks_is_accepted, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;

	cfg.kubeconfig = put("config", "current-context: c\ncontexts:\n- name: c\n"
				       "  context: {cluster: x, user: u}\nclusters:\n- name: x\n"
				       "  cluster:\n    server: https://h\n"
				       "    certificate-authority-data: \"LS0tLS1C\\nRUdJTg==\\n\"\n"
				       "users:\n- name: u\n  user: {token: t}\n");
	cr_assert_eq(kube_load(&cfg, on_error, &e, &k), 0, "%s", e.lines[0]);
	kube_destroy(k);
}

Test(kube, kubeconfig_deeply_nested_is_refused, .init = make_dir, .fini = drop_dir) {
	struct config cfg = { 0 };
	struct errs e = { 0 };
	struct kube *k = NULL;
	static char text[300000];
	char want[256];

	strcpy(text, "current-context: c\nclusters: ");
	memset(text + strlen(text), '[', 200000);
	cfg.kubeconfig = put("config", text);
	cr_assert_lt(kube_load(&cfg, on_error, &e, &k), 0);
	snprintf(want, sizeof(want), "%s:2:", cfg.kubeconfig);
	cr_assert(strstr(e.lines[0], want), "%s", e.lines[0]);
	cr_assert(strstr(e.lines[0], "invalid kubeconfig YAML: nested deeper than 64 levels"), "%s",
		e.lines[0]);
}

#include <errno.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/http.h"
#include "adapter/kube.h"
#include "adapter/log.h"
#include "adapter/loop.h"
#include "adapter/util/base64.h"
#include "adapter/util/fileio.h"
#include "adapter/util/yamldoc.h"

#define TOKEN_REREAD_USEC (60ull * 1000000ull)
#define MAX_KUBE_FILE (4u * 1024u * 1024u)

struct blob {
	char *data;
	size_t len;
};

struct kube {
	char *server;	  /* as configured */
	char *server_base; /* without a trailing slash */
	char *server_shown; /* without credentials: logs and ce-source */
	struct blob ca;
	bool insecure;
	char *tls_server_name;
	/* With tls-server-name: requests name it in the URL (so TLS verifies
	 * and sends SNI for it) and connect_to sends them to the server. */
	char *request_base;
	struct curl_slist *connect_to;
	char *token;
	char *token_file;
	uint64_t token_read_usec;
	bool token_stale;
	struct blob client_cert;
	struct blob client_key;
	char *default_namespace;
	bool in_cluster;
};

static void blob_free(struct blob *b) {
	if (b->data) {
		/* Keys and tokens are wiped before the memory is returned. */
		OPENSSL_cleanse(b->data, b->len);
		free(b->data);
	}
	*b = (struct blob){ 0 };
}

static void free_secret(char **s) {
	if (*s) {
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void kube_destroy(struct kube *k) {
	if (!k)
		return;
	free(k->server);
	free(k->server_base);
	free(k->server_shown);
	blob_free(&k->ca);
	free(k->tls_server_name);
	free(k->request_base);
	curl_slist_free_all(k->connect_to);
	free_secret(&k->token);
	free(k->token_file);
	blob_free(&k->client_cert);
	blob_free(&k->client_key);
	free(k->default_namespace);
	free(k);
}

const char *kube_server(const struct kube *k) {
	return k->server_shown;
}

const char *kube_default_namespace(const struct kube *k) {
	return k->default_namespace ? k->default_namespace : "default";
}

bool kube_in_cluster(const struct kube *k) {
	return k->in_cluster;
}

/* kubeconfig's tls-server-name: the name the server's certificate is
 * checked against (and sent as SNI) instead of the server URL's host. */
static int use_tls_server_name(struct kube *k) {
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *path = NULL, *scheme = NULL, *line = NULL;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, k->server_base, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		goto out;
	r = -ENOMEM;
	if (asprintf(&k->request_base, "%s://%s:%s%s", scheme, k->tls_server_name, port,
		    strcmp(path, "/") == 0 ? "" : path) < 0) {
		k->request_base = NULL;
		goto out;
	}
	if (asprintf(&line, "%s:%s:%s:%s", k->tls_server_name, port, host, port) < 0) {
		line = NULL;
		goto out;
	}
	k->connect_to = curl_slist_append(NULL, line);
	r = k->connect_to ? 0 : -ENOMEM;
out:
	free(line);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(scheme);
	curl_url_cleanup(u);
	return r;
}

static int set_server(struct kube *k, const char *server) {
	size_t n = strlen(server);

	k->server = strdup(server);
	while (n > 0 && server[n - 1] == '/')
		n--;
	k->server_base = strndup(server, n);
	k->server_shown = http_url_redact(server);
	return k->server && k->server_base && k->server_shown ? 0 : -ENOMEM;
}

/* Why a token file was not taken; never the token itself. */
static const char *token_problem(int r) {
	return r == -ENODATA ? "empty" :
		r == -EBADMSG ? "the token contains a control character (a line break?)" :
				strerror(-r);
}

static char *trim_token(char *t) {
	size_t n = strlen(t);

	while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' ' || t[n - 1] == '\t'))
		t[--n] = '\0';
	return t;
}

static int read_token(struct kube *k) {
	char *text = NULL;
	size_t len;
	int r;

	r = file_read_all(k->token_file, 64 * 1024, &text, &len);
	if (r < 0)
		return r;
	trim_token(text);
	if (!*text || !http_header_value_valid(text)) {
		r = *text ? -EBADMSG : -ENODATA;
		free_secret(&text);
		return r;
	}
	free_secret(&k->token);
	k->token = text;
	k->token_read_usec = loop_now_usec();
	k->token_stale = false;
	return 0;
}

/* Resolves a kubeconfig path relative to the kubeconfig's directory. */
static char *resolve_path(const char *kubeconfig, const char *p) {
	char *copy, *dir, *out = NULL;

	if (p[0] == '/')
		return strdup(p);
	copy = strdup(kubeconfig);
	if (!copy)
		return NULL;
	dir = dirname(copy);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		out = NULL;
	free(copy);
	return out;
}

struct kctx {
	const char *file;
	config_error_fn on_error;
	void *ud;
	int errors;
};

static void kerr(struct kctx *c, yaml_node_t *n, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void kerr(struct kctx *c, yaml_node_t *n, const char *field, const char *fmt, ...) {
	char where[512], msg[768], full[1100];
	size_t line, col;
	va_list ap;

	yamldoc_mark(n, &line, &col);
	if (n)
		snprintf(where, sizeof(where), "%s:%zu:%zu", c->file, line, col);
	else
		snprintf(where, sizeof(where), "%s", c->file);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "%s: %s", field, msg);
	c->errors++;
	c->on_error(where, full, c->ud);
}

/* Finds the entry named name in a kubeconfig list (clusters, users, contexts)
 * and returns its inner mapping (cluster, user, context). */
static yaml_node_t *find_named(struct yamldoc *d, yaml_node_t *root, const char *list,
	const char *inner, const char *name) {
	yaml_node_t *seq = yamldoc_get(d, root, list);

	for (size_t i = 0; i < yamldoc_len(seq); i++) {
		yaml_node_t *item = yamldoc_item(d, seq, i);
		const char *n = yamldoc_str(yamldoc_get(d, item, "name"));
		if (n && strcmp(n, name) == 0)
			return yamldoc_get(d, item, inner);
	}
	return NULL;
}

static int load_file_or_data(struct kctx *c, struct yamldoc *d, yaml_node_t *map,
	const char *file_key, const char *data_key, const char *what, struct blob *out) {
	const char *f = yamldoc_str(yamldoc_get(d, map, file_key));
	const char *data = yamldoc_str(yamldoc_get(d, map, data_key));
	int r;

	if (data && *data) {
		size_t pos = 0;

		/* Strictly, as kubectl does: '====' must not pass as a CA. */
		r = base64_decode(data, strlen(data), &out->data, &out->len, &pos);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			/* Says where, never what: the field may hold a private key. */
			if (pos < strlen(data))
				kerr(c, yamldoc_get(d, map, data_key), data_key,
					"not valid base64 (at character %zu)", pos + 1);
			else
				kerr(c, yamldoc_get(d, map, data_key), data_key,
					"not valid base64 (its length is not a multiple of 4)");
			return -EINVAL;
		}
		return 1;
	}
	if (f && *f) {
		char *path = resolve_path(c->file, f);
		if (!path)
			return -ENOMEM;
		r = file_read_all(path, MAX_KUBE_FILE, &out->data, &out->len);
		if (r < 0)
			kerr(c, yamldoc_get(d, map, file_key), file_key, "cannot read %s %s: %s", what,
				path, strerror(-r));
		free(path);
		return r < 0 ? r : 1;
	}
	return 0;
}

static int load_kubeconfig(struct kube *k, const struct config *cfg, const char *path,
	config_error_fn on_error, void *ud) {
	struct kctx c = { .file = path, .on_error = on_error, .ud = ud };
	struct yamldoc *docs = NULL;
	size_t ndocs = 0, len;
	char *text = NULL, *err = NULL;
	yaml_node_t *root, *ctx, *cluster, *user, *n;
	const char *ctx_name, *cluster_name, *user_name, *s;
	int r;

	r = file_read_all(path, YAMLDOC_MAX_BYTES, &text, &len);
	if (r < 0) {
		if (r == -E2BIG)
			kerr(&c, NULL, "kubeconfig", "file too large (more than %u MiB)",
				YAMLDOC_MAX_BYTES >> 20);
		else
			kerr(&c, NULL, "kubeconfig", "cannot read: %s", strerror(-r));
		goto out;
	}
	r = yamldoc_load_all(text, len, &docs, &ndocs, &err);
	if (r == -ENOMEM && !err) {
		kerr(&c, NULL, "kubeconfig", "out of memory");
		goto out;
	}
	if (r < 0 || ndocs == 0) {
		/* err is "line:column: problem": "file:line:column" names the place. */
		const char *problem = err ? strstr(err, ": ") : NULL;
		char where[512], msg[512];

		snprintf(where, sizeof(where), "%s:%.*s", path,
			problem ? (int)(problem - err) : 3, problem ? err : "1:1");
		snprintf(msg, sizeof(msg), "invalid kubeconfig YAML: %s",
			problem ? problem + 2 : "empty file");
		on_error(where, msg, ud);
		c.errors++;
		goto out;
	}
	root = yamldoc_root(&docs[0]);
	ctx_name = cfg->context ? cfg->context : yamldoc_str(yamldoc_get(&docs[0], root, "current-context"));
	if (!ctx_name || !*ctx_name) {
		kerr(&c, root, "current-context", "not set; give --context NAME");
		goto out;
	}
	ctx = find_named(&docs[0], root, "contexts", "context", ctx_name);
	if (!ctx) {
		kerr(&c, yamldoc_get(&docs[0], root, "contexts") ?: root,
			cfg->context ? "--context" : "current-context", "no context named \"%s\"", ctx_name);
		goto out;
	}
	cluster_name = yamldoc_str(yamldoc_get(&docs[0], ctx, "cluster"));
	user_name = yamldoc_str(yamldoc_get(&docs[0], ctx, "user"));
	if ((s = yamldoc_str(yamldoc_get(&docs[0], ctx, "namespace"))) && *s)
		k->default_namespace = strdup(s);
	cluster = cluster_name ? find_named(&docs[0], root, "clusters", "cluster", cluster_name) : NULL;
	if (!cluster) {
		kerr(&c, ctx, "context.cluster", "no cluster named \"%s\"",
			cluster_name ? cluster_name : "");
		goto out;
	}
	s = yamldoc_str(yamldoc_get(&docs[0], cluster, "server"));
	if (!s || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)) {
		kerr(&c, yamldoc_get(&docs[0], cluster, "server") ?: cluster, "cluster.server",
			"expected an https:// or http:// URL");
		goto out;
	}
	if (set_server(k, s) < 0)
		goto oom;
	n = yamldoc_get(&docs[0], cluster, "insecure-skip-tls-verify");
	k->insecure = n && (s = yamldoc_str(n)) && strcmp(s, "true") == 0;
	if ((s = yamldoc_str(yamldoc_get(&docs[0], cluster, "tls-server-name"))) && *s) {
		if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
				strlen(s) ||
			strlen(s) > 253) {
			kerr(&c, yamldoc_get(&docs[0], cluster, "tls-server-name"),
				"cluster.tls-server-name", "expected a host name");
			goto out;
		}
		k->tls_server_name = strdup(s);
		if (!k->tls_server_name || use_tls_server_name(k) == -ENOMEM)
			goto oom;
	}
	if (load_file_or_data(&c, &docs[0], cluster, "certificate-authority",
		    "certificate-authority-data", "CA", &k->ca) == -ENOMEM)
		goto oom;
	if (yamldoc_get(&docs[0], cluster, "proxy-url"))
		kerr(&c, yamldoc_get(&docs[0], cluster, "proxy-url"), "cluster.proxy-url",
			"proxies are not supported");

	user = user_name ? find_named(&docs[0], root, "users", "user", user_name) : NULL;
	if (user_name && *user_name && !user) {
		kerr(&c, ctx, "context.user", "no user named \"%s\"", user_name);
		goto out;
	}
	if (user) {
		if ((s = yamldoc_str(yamldoc_get(&docs[0], user, "token"))) && *s) {
			/* CR or LF would add headers to every API request. */
			if (!http_header_value_valid(s))
				kerr(&c, yamldoc_get(&docs[0], user, "token"), "user.token",
					"contains a control character (a line break?); refused");
			else if (!(k->token = strdup(s)))
				goto oom;
		} else if ((s = yamldoc_str(yamldoc_get(&docs[0], user, "tokenFile"))) && *s) {
			k->token_file = resolve_path(path, s);
			if (!k->token_file)
				goto oom;
			r = read_token(k);
			if (r < 0)
				kerr(&c, yamldoc_get(&docs[0], user, "tokenFile"), "user.tokenFile",
					"cannot read %s: %s", k->token_file, token_problem(r));
		}
		r = load_file_or_data(&c, &docs[0], user, "client-certificate",
			"client-certificate-data", "client certificate", &k->client_cert);
		if (r == -ENOMEM)
			goto oom;
		r = load_file_or_data(&c, &docs[0], user, "client-key", "client-key-data",
			"client key", &k->client_key);
		if (r == -ENOMEM)
			goto oom;
		if (!!k->client_cert.data != !!k->client_key.data)
			kerr(&c, user, "user", "client-certificate and client-key go together");
		if (!k->token && !k->token_file && !k->client_cert.data) {
			if ((n = yamldoc_get(&docs[0], user, "exec")))
				kerr(&c, n, "user.exec",
					"exec credential plugins are not supported; use token, tokenFile or "
					"a client certificate");
			else if ((n = yamldoc_get(&docs[0], user, "auth-provider")))
				kerr(&c, n, "user.auth-provider",
					"auth providers are not supported; use token, tokenFile or a client "
					"certificate");
			else if ((n = yamldoc_get(&docs[0], user, "username")))
				kerr(&c, n, "user.username",
					"basic authentication is not supported; use token, tokenFile or a "
					"client certificate");
		}
	}
	goto out;
oom:
	c.errors++;
	on_error(path, "out of memory", ud);
out:
	free(err);
	free(text);
	yamldoc_free_all(docs, ndocs);
	return c.errors ? -EINVAL : 0;
}

static int load_in_cluster(struct kube *k, const struct config *cfg, config_error_fn on_error,
	void *ud) {
	char *url = NULL, *path = NULL, *ns = NULL;
	const char *host = cfg->kube_service_host, *port = cfg->kube_service_port;
	size_t len;
	int r, errors = 0;

	if (!port || !*port) {
		on_error("KUBERNETES_SERVICE_PORT", "missing while KUBERNETES_SERVICE_HOST is set", ud);
		return -EINVAL;
	}
	/* IPv6 literals go in brackets, as client-go's net.JoinHostPort does. */
	if (asprintf(&url, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0)
		return -ENOMEM;
	r = set_server(k, url);
	free(url);
	if (r < 0)
		return r;
	k->in_cluster = true;
	if (asprintf(&k->token_file, "%s/token", cfg->serviceaccount_dir) < 0) {
		k->token_file = NULL;
		return -ENOMEM;
	}
	r = read_token(k);
	if (r < 0) {
		char msg[600];
		snprintf(msg, sizeof(msg), "cannot read the service-account token %s: %s",
			k->token_file, token_problem(r));
		on_error("in-cluster", msg, ud);
		errors++;
	}
	if (asprintf(&path, "%s/ca.crt", cfg->serviceaccount_dir) < 0)
		return -ENOMEM;
	r = file_read_all(path, MAX_KUBE_FILE, &k->ca.data, &k->ca.len);
	if (r < 0) {
		char msg[600];
		snprintf(msg, sizeof(msg), "cannot read the cluster CA %s: %s", path, strerror(-r));
		on_error("in-cluster", msg, ud);
		errors++;
	}
	free(path);
	path = NULL;
	if (asprintf(&path, "%s/namespace", cfg->serviceaccount_dir) < 0)
		return -ENOMEM;
	if (file_read_all(path, 4096, &ns, &len) == 0) {
		trim_token(ns);
		if (*ns)
			k->default_namespace = ns;
		else
			free(ns);
	}
	free(path);
	return errors ? -EINVAL : 0;
}

int kube_load(const struct config *cfg, config_error_fn on_error, void *error_userdata,
	struct kube **ret_kube) {
	struct kube *k = calloc(1, sizeof(*k));
	char *home_config = NULL;
	int r;

	if (!k)
		return -ENOMEM;
	/* client-go's order: an explicit kubeconfig, then in-cluster, then
	 * ~/.kube/config. */
	if (cfg->kubeconfig) {
		r = load_kubeconfig(k, cfg, cfg->kubeconfig, on_error, error_userdata);
	} else if (cfg->kube_service_host) {
		r = load_in_cluster(k, cfg, on_error, error_userdata);
	} else {
		if (!cfg->home || asprintf(&home_config, "%s/.kube/config", cfg->home) < 0) {
			home_config = NULL;
			on_error("--kubeconfig",
				"no cluster to talk to: give --kubeconfig, set KUBECONFIG, or run in a pod",
				error_userdata);
			r = -EINVAL;
		} else if (access(home_config, R_OK) < 0) {
			char msg[600];
			snprintf(msg, sizeof(msg),
				"no cluster to talk to: %s does not exist; give --kubeconfig, set "
				"KUBECONFIG, or run in a pod",
				home_config);
			on_error("--kubeconfig", msg, error_userdata);
			r = -EINVAL;
		} else {
			r = load_kubeconfig(k, cfg, home_config, on_error, error_userdata);
		}
	}
	free(home_config);
	if (r < 0) {
		kube_destroy(k);
		return r;
	}
	*ret_kube = k;
	return 0;
}

void kube_token_rejected(struct kube *k) {
	k->token_stale = true;
}

int kube_setup_request(struct kube *k, CURL *easy, const char *path,
	struct curl_slist **ret_headers) {
	struct curl_slist *h = NULL, *t;
	char *url = NULL;
	int r = -ENOMEM;

	if (k->token_file &&
		(k->token_stale || loop_now_usec() - k->token_read_usec >= TOKEN_REREAD_USEC)) {
		int rr = read_token(k);
		if (rr < 0)
			log_warn("kube", "cannot re-read the token file, keeping the previous token",
				LOG_STR("file", k->token_file), LOG_STR("error", token_problem(rr)));
		k->token_stale = false;
		k->token_read_usec = loop_now_usec();
	}
	if (asprintf(&url, "%s%s", k->request_base ? k->request_base : k->server_base, path) < 0) {
		url = NULL;
		goto out;
	}
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_CONNECT_TO, k->connect_to);
	/* One connection per watch over HTTP/1.1; see the README on HTTP/2. */
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 15L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "apiserversource-adapter/" ADAPTER_VERSION);
	if (k->ca.data) {
		struct curl_blob b = { .data = k->ca.data, .len = k->ca.len, .flags = CURL_BLOB_COPY };
		curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &b);
	}
	if (k->insecure) {
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (k->client_cert.data && k->client_key.data) {
		struct curl_blob c = { .data = k->client_cert.data,
			.len = k->client_cert.len,
			.flags = CURL_BLOB_COPY };
		struct curl_blob key = { .data = k->client_key.data,
			.len = k->client_key.len,
			.flags = CURL_BLOB_COPY };
		curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &c);
		curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
	}
	t = curl_slist_append(h, "Accept: application/json");
	if (!t)
		goto out;
	h = t;
	if (k->token) {
		char *auth = NULL;
		if (asprintf(&auth, "Authorization: Bearer %s", k->token) < 0)
			goto out;
		t = curl_slist_append(h, auth);
		OPENSSL_cleanse(auth, strlen(auth));
		free(auth);
		if (!t)
			goto out;
		h = t;
	}
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
	*ret_headers = h;
	h = NULL;
	r = 0;
out:
	curl_slist_free_all(h);
	free(url);
	return r;
}

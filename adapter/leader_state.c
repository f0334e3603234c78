#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <zlib.h>

#include "adapter/kcall.h"
#include "adapter/leader_state.h"
#include "adapter/util/base64.h"
#include "adapter/util/json.h"

/* The successor's state in a ConfigMap (leader_state.h). */

#define ANSWER_MAX (4u * 1024u * 1024u)
#define TIMEOUT_MS 10000L
#define DATA_KEY "checkpoint.ndjson.zlib"
#define FORMAT "apiserversource-adapter checkpoint, version 2, zlib, base64"

struct leader_state {
	struct kcall call;
	char *ns, *name, *holder;
	char *collection_path, *item_path;
	char rv[64];
	bool exists; /* known to exist (rv holds its version) */
	leader_state_loaded_fn loaded;
	leader_state_saved_fn saved;
	void *userdata;
};

int leader_state_encode(const char *data, size_t len, char **ret_text, size_t *ret_len) {
	uLongf zlen = compressBound((uLong)len);
	unsigned char *z = malloc(zlen);
	char *text = NULL;
	int n;

	if (!z)
		return -ENOMEM;
	if (compress2(z, &zlen, (const Bytef *)data, (uLong)len, Z_BEST_SPEED) != Z_OK) {
		free(z);
		return -EIO;
	}
	text = malloc(4 * ((zlen + 2) / 3) + 1);
	if (!text) {
		free(z);
		return -ENOMEM;
	}
	n = EVP_EncodeBlock((unsigned char *)text, z, (int)zlen);
	free(z);
	text[n] = '\0';
	*ret_text = text;
	*ret_len = (size_t)n;
	return 0;
}

int leader_state_decode(
	const char *text, size_t len, size_t max_out, char **ret_data, size_t *ret_len) {
	char *z = NULL, *out = NULL, *p;
	size_t zlen = 0, pos, cap = 0, have = 0;
	z_stream st = { 0 };
	int r, zr = Z_OK;

	r = base64_decode(text, len, &z, &zlen, &pos);
	if (r < 0)
		return r == -ENOMEM ? r : -EBADMSG;
	if (inflateInit(&st) != Z_OK) {
		free(z);
		return -ENOMEM;
	}
	st.next_in = (Bytef *)z;
	st.avail_in = (uInt)zlen;
	while (zr != Z_STREAM_END) {
		if (have == cap) {
			size_t ncap = cap ? cap * 2 : zlen * 4 + 4096;

			if (cap >= max_out) {
				r = -E2BIG;
				goto out;
			}
			if (ncap > max_out)
				ncap = max_out;
			p = realloc(out, ncap + 1);
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			out = p;
			cap = ncap;
		}
		st.next_out = (Bytef *)out + have;
		st.avail_out = (uInt)(cap - have);
		zr = inflate(&st, Z_NO_FLUSH);
		have = cap - st.avail_out;
		if (zr != Z_OK && zr != Z_STREAM_END) {
			r = zr == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
			goto out;
		}
		if (zr == Z_OK && st.avail_in == 0 && st.avail_out != 0) {
			r = -EBADMSG; /* cut short */
			goto out;
		}
	}
	if (st.avail_in != 0) {
		r = -EBADMSG; /* bytes after the end */
		goto out;
	}
	out[have] = '\0';
	*ret_data = out;
	*ret_len = have;
	out = NULL;
	r = 0;
out:
	inflateEnd(&st);
	free(out);
	free(z);
	return r;
}

static char *configmap_json(
	struct leader_state *s, const char *b64, size_t b64_len, size_t raw_len) {
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *out;
	size_t len;
	char count[32], *text = NULL;

#define S(str) yajl_gen_string(g, (const unsigned char *)(str), strlen(str))
	if (!g)
		return NULL;
	snprintf(count, sizeof(count), "%zu", raw_len);
	yajl_gen_map_open(g);
	S("apiVersion");
	S("v1");
	S("kind");
	S("ConfigMap");
	S("metadata");
	yajl_gen_map_open(g);
	S("name");
	S(s->name);
	S("namespace");
	S(s->ns);
	if (s->exists) {
		S("resourceVersion");
		S(s->rv);
	}
	S("labels");
	yajl_gen_map_open(g);
	S("app.kubernetes.io/managed-by");
	S("apiserversource-adapter");
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	S("data");
	yajl_gen_map_open(g);
	S("format");
	S(FORMAT);
	S("holder");
	S(s->holder);
	S("bytes"); /* uncompressed */
	S(count);
	yajl_gen_map_close(g);
	S("binaryData");
	yajl_gen_map_open(g);
	S(DATA_KEY);
	yajl_gen_string(g, (const unsigned char *)b64, b64_len);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
#undef S
	if (yajl_gen_get_buf(g, &out, &len) == yajl_gen_status_ok)
		text = strndup((const char *)out, len);
	yajl_gen_free(g);
	return text;
}

/* Remembers the ConfigMap's resourceVersion from an answer. */
static int take_rv(struct leader_state *s, const char *body, size_t len, yajl_val *ret_root) {
	yajl_val root = json_parse_bounded(body, len, JSON_MAX_DEPTH, NULL, 0);
	const char *rv = json_get_str(json_get(root, "metadata"), "resourceVersion");

	if (!rv || strlen(rv) >= sizeof(s->rv)) {
		yajl_tree_free(root);
		return -EBADMSG;
	}
	snprintf(s->rv, sizeof(s->rv), "%s", rv);
	s->exists = true;
	if (ret_root)
		*ret_root = root;
	else
		yajl_tree_free(root);
	return 0;
}

static void handle_loaded(
	int err, long status, const char *body, size_t len, const char *errbuf, void *userdata) {
	struct leader_state *s = userdata;
	yajl_val root = NULL, v;
	const char *text;
	char *data = NULL;
	size_t n = 0;
	int r;

	(void)errbuf;
	if (err) {
		s->loaded(err, NULL, 0, s->userdata);
		return;
	}
	if (status == 404) {
		s->exists = false;
		s->loaded(0, "", 0, s->userdata);
		return;
	}
	if (status != 200) {
		s->loaded(status == 403 ? -EACCES : -EIO, NULL, 0, s->userdata);
		return;
	}
	r = take_rv(s, body, len, &root);
	v = json_get(json_get(root, "binaryData"), DATA_KEY);
	text = v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
	/* Without the key, it exists but holds nothing yet. */
	if (r == 0 && text)
		r = leader_state_decode(text, strlen(text), LEADER_STATE_MAX_INFLATED, &data, &n);
	yajl_tree_free(root);
	s->loaded(r, r == 0 && data ? data : "", r == 0 ? n : 0, s->userdata);
	free(data);
}

static void handle_saved(
	int err, long status, const char *body, size_t len, const char *errbuf, void *userdata) {
	struct leader_state *s = userdata;
	int r = err;

	(void)errbuf;
	if (!err && (status == 200 || status == 201))
		r = take_rv(s, body, len, NULL);
	else if (!err && status == 404)
		s->exists = false; /* deleted meanwhile: created again next time */
	if (!err && status == 404)
		r = -ENOENT;
	else if (!err && status != 200 && status != 201)
		r = status == 409       ? -EBUSY
			: status == 403 ? -EACCES
			: status == 413 ? -E2BIG
					: -EIO;
	s->saved(r, s->userdata);
}

int leader_state_load(struct leader_state *s, leader_state_loaded_fn done, void *userdata) {
	s->loaded = done;
	s->userdata = userdata;
	return kcall_start(&s->call, "GET", s->item_path, NULL, TIMEOUT_MS, handle_loaded, s);
}

int leader_state_save(struct leader_state *s, const char *data, size_t len, size_t raw_len,
	leader_state_saved_fn done, void *userdata) {
	char *b64 = NULL, *body;
	size_t n = 0;
	int r;

	r = leader_state_encode(data, len, &b64, &n);
	if (r < 0)
		return r;
	if (n > LEADER_STATE_MAX_BYTES) {
		free(b64);
		return -E2BIG;
	}
	body = configmap_json(s, b64, n, raw_len);
	free(b64);
	if (!body)
		return -ENOMEM;
	s->saved = done;
	s->userdata = userdata;
	return kcall_start(&s->call, s->exists ? "PUT" : "POST",
		s->exists ? s->item_path : s->collection_path, body, TIMEOUT_MS, handle_saved, s);
}

bool leader_state_busy(const struct leader_state *s) {
	return s && s->call.busy;
}

int leader_state_create(struct kube *kube, struct http *http, const char *ns, const char *name,
	const char *holder, struct leader_state **ret_state) {
	struct leader_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	kcall_init(&s->call, kube, http, ANSWER_MAX);
	s->ns = strdup(ns);
	s->name = strdup(name);
	s->holder = strdup(holder);
	if (!s->ns || !s->name || !s->holder ||
		asprintf(&s->collection_path, "/api/v1/namespaces/%s/configmaps", ns) < 0) {
		s->collection_path = NULL;
		leader_state_destroy(s);
		return -ENOMEM;
	}
	if (asprintf(&s->item_path, "%s/%s", s->collection_path, name) < 0) {
		s->item_path = NULL;
		leader_state_destroy(s);
		return -ENOMEM;
	}
	*ret_state = s;
	return 0;
}

void leader_state_destroy(struct leader_state *s) {
	if (!s)
		return;
	kcall_finish(&s->call);
	free(s->ns);
	free(s->name);
	free(s->holder);
	free(s->collection_path);
	free(s->item_path);
	free(s);
}

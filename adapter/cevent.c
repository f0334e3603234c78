#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "adapter/cevent.h"
#include "adapter/changes.h"

/* The namespace of our v5 ids; any fixed UUID works, this one is ours. */
static const unsigned char id_namespace[16] = { 0x6b, 0x6e, 0x61, 0x74, 0x69, 0x76, 0x65, 0x2d,
	0x61, 0x70, 0x69, 0x73, 0x72, 0x63, 0x76, 0x31 };

const char *cevent_type(enum config_mode mode, enum cevent_op op) {
	static const char *const resource[] = { "dev.knative.apiserver.resource.add",
		"dev.knative.apiserver.resource.update", "dev.knative.apiserver.resource.delete" };
	static const char *const ref[] = { "dev.knative.apiserver.ref.add",
		"dev.knative.apiserver.ref.update", "dev.knative.apiserver.ref.delete" };

	return mode == CONFIG_MODE_REFERENCE ? ref[op] : resource[op];
}

int cevent_plural_guess(const char *kind, struct buf *out) {
	size_t n = strlen(kind), start = out->len;
	int r;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = (char)tolower((unsigned char)kind[i]);
		r = buf_append(out, &c, 1);
		if (r < 0)
			return r;
	}
	switch (out->data[start + n - 1]) {
	case 's':
		return buf_append_str(out, "es");
	case 'y':
		out->len--;
		return buf_append_str(out, "ies");
	default:
		return buf_append_str(out, "s");
	}
}

int cevent_subject(const char *api_version, const char *namespace, const char *kind,
	const char *name, struct buf *out) {
	int r;

	/* Knative writes the namespace segment even for cluster-scoped objects
	 * (then empty: "/namespaces//"); triggers written for it match on that. */
	r = buf_printf(out, "/apis/%s", api_version);
	if (r == 0 && strchr(api_version, '.') && !strchr(api_version, '/'))
		r = buf_append_str(out, "/versionUnknown");
	if (r == 0)
		r = buf_printf(out, "/namespaces/%s/", namespace);
	if (r == 0)
		r = cevent_plural_guess(kind, out);
	if (r == 0)
		r = buf_printf(out, "/%s", name);
	return r;
}

int cevent_percent_encode(const char *value, struct buf *out) {
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		char enc[3];
		int r;
		/* The binding: space, double quote, percent and anything outside
		 * printable ASCII are encoded (UTF-8 bytes, each as %XX). */
		if (*p <= 0x20 || *p == '"' || *p == '%' || *p >= 0x7f) {
			enc[0] = '%';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			r = buf_append(out, enc, 3);
		} else {
			r = buf_append(out, p, 1);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

void cevent_make_id(const char *uid, const char *resource_version, enum cevent_op op,
	char ret_id[40]) {
	static const char *const ops[] = { "add", "update", "delete" };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	memset(md, 0, sizeof(md));
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL)) {
		EVP_DigestUpdate(ctx, id_namespace, sizeof(id_namespace));
		EVP_DigestUpdate(ctx, uid, strlen(uid));
		EVP_DigestUpdate(ctx, "/", 1);
		EVP_DigestUpdate(ctx, resource_version, strlen(resource_version));
		EVP_DigestUpdate(ctx, "/", 1);
		EVP_DigestUpdate(ctx, ops[op], strlen(ops[op]));
		EVP_DigestFinal_ex(ctx, md, &mdlen);
	}
	EVP_MD_CTX_free(ctx);
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(ret_id, 40,
		"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0],
		md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12],
		md[13], md[14], md[15]);
}

void cevent_destroy(struct cevent *ev) {
	if (!ev)
		return;
	free(ev->source);
	free(ev->subject);
	free(ev->kind);
	free(ev->name);
	free(ev->namespace);
	free(ev->api_version);
	free(ev->data);
	free(ev->key);
	free(ev->changed_paths);
	free(ev);
}

static void gen_str(yajl_gen g, const char *s) {
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* A JSON map of string pairs from yajl's generator (so a quote or a newline
 * in a value is escaped, not spliced), appended to out; pairs whose value is
 * NULL are left out, and the map is left open when close is false. */
static int gen_pairs(const char *const pairs[][2], size_t n, bool close, struct buf *out) {
	const unsigned char *text;
	size_t len;
	yajl_gen g = yajl_gen_alloc(NULL);
	int r = -ENOMEM;

	if (!g)
		return r;
	yajl_gen_config(g, yajl_gen_validate_utf8, 0);
	yajl_gen_map_open(g);
	for (size_t i = 0; i < n; i++) {
		if (!pairs[i][1])
			continue;
		gen_str(g, pairs[i][0]);
		gen_str(g, pairs[i][1]);
	}
	if (close)
		yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &text, &len) == yajl_gen_status_ok)
		r = buf_append(out, text, len);
	yajl_gen_free(g);
	return r;
}

int cevent_reference_json(const char *kind, const char *ns, const char *name,
	const char *api_version, struct buf *out) {
	/* corev1.ObjectReference's field order, empty fields left out. */
	const char *const pairs[][2] = {
		{ "kind", kind },
		{ "namespace", *ns ? ns : NULL },
		{ "name", name },
		{ "apiVersion", api_version },
	};

	return gen_pairs(pairs, 4, true, out);
}

/* {"apiVersion":A,"kind":K — the start of a map. */
static int type_prefix(const char *kind, const char *api_version, struct buf *out) {
	const char *const pairs[][2] = { { "apiVersion", api_version }, { "kind", kind } };

	return gen_pairs(pairs, 2, false, out);
}

/* Copies the object, adding apiVersion and kind after the opening brace when
 * the API server left them out (list items of built-in kinds). */
static int resource_data(const struct kobj *obj, const char *kind, const char *api_version,
	bool add_type, struct buf *b) {
	const char *p = obj->json, *end = obj->json + obj->json_len;
	int r;

	if (!add_type)
		return buf_append(b, obj->json, obj->json_len);
	while (p < end && *p != '{')
		p++;
	if (p == end)
		return -EBADMSG;
	p++;
	r = type_prefix(kind, api_version, b);
	{
		const char *q = p;
		while (q < end && isspace((unsigned char)*q))
			q++;
		if (r == 0 && q < end && *q != '}')
			r = buf_append(b, ",", 1);
	}
	if (r == 0)
		r = buf_append(b, p, (size_t)(end - p));
	return r;
}

/* A raw CR or LF in JSON can only be whitespace between tokens (yajl, which
 * parsed the object, refuses one inside a string), so a space means the same:
 * the data of a pretty-printed list item then fits on one line (of --sink -
 * output, say). */
static void one_line(char *data, size_t len) {
	for (char *p = data, *end = data + len; p < end; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

int cevent_create(const struct cevent_params *params, const struct kobj *obj, enum cevent_op op,
	struct cevent **ret_event) {
	struct cevent *ev = NULL;
	struct buf subject, data;
	struct timespec now;
	struct tm tm;
	const char *kind = obj->kind[0] ? obj->kind : params->default_kind;
	const char *api_version = obj->api_version[0] ? obj->api_version :
							params->default_api_version;
	int r = -ENOMEM;

	buf_init(&subject, 0);
	buf_init(&data, 0);
	kind = kind ? kind : "";
	api_version = api_version ? api_version : "";
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		goto out;
	ev->op = op;
	ev->mode = params->mode;
	ev->type = cevent_type(params->mode, op);
	if (obj->uid[0])
		cevent_make_id(obj->uid, obj->resource_version, op, ev->id);
	else {
		/* No uid (not from a real API server): name the change instead. */
		char key[2 * KOBJ_NAME_MAX + 2];
		snprintf(key, sizeof(key), "%s/%s", obj->namespace, obj->name);
		cevent_make_id(key, obj->resource_version, op, ev->id);
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ev->time, sizeof(ev->time), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		(int)(now.tv_nsec / 1000));
	r = cevent_subject(api_version, obj->namespace, kind, obj->name, &subject);
	if (r < 0)
		goto out;
	ev->subject = buf_steal(&subject, NULL);
	ev->source = strdup(params->source);
	ev->kind = strdup(kind);
	ev->name = strdup(obj->name);
	ev->namespace = strdup(obj->namespace);
	ev->api_version = strdup(api_version);
	if (obj->uid[0])
		ev->key = strdup(obj->uid);
	else if (asprintf(&ev->key, "%s/%s", obj->namespace, obj->name) < 0)
		ev->key = NULL;
	r = -ENOMEM;
	if (!ev->source || !ev->kind || !ev->name || !ev->namespace || !ev->api_version || !ev->key)
		goto out;
	if (obj->changed_paths && !(ev->changed_paths = strdup(obj->changed_paths)))
		goto out;
	ev->overrides = params->overrides;
	ev->n_overrides = params->n_overrides;
	if (params->mode == CONFIG_MODE_REFERENCE)
		r = cevent_reference_json(kind, obj->namespace, obj->name, api_version, &data);
	else
		r = resource_data(obj, kind, api_version, !obj->kind[0] || !obj->api_version[0],
			&data);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	ev->data = buf_steal(&data, &ev->data_len);
	if (!ev->data)
		goto out;
	one_line(ev->data, ev->data_len);
	ev->bytes = sizeof(*ev) + ev->data_len + strlen(ev->subject) + strlen(ev->source) + 256 +
		(ev->changed_paths ? strlen(ev->changed_paths) : 0);
	*ret_event = ev;
	ev = NULL;
	r = 0;
out:
	buf_finish(&subject);
	buf_finish(&data);
	cevent_destroy(ev);
	return r;
}

static int add_header(struct curl_slist **headers, const char *name, const char *value) {
	struct buf b;
	struct curl_slist *n;
	int r;

	buf_init(&b, 0);
	/* curl sends "Name;" as a header with an empty value. */
	r = *value ? buf_printf(&b, "%s: ", name) : buf_printf(&b, "%s;", name);
	if (r == 0)
		r = cevent_percent_encode(value, &b);
	if (r < 0) {
		buf_finish(&b);
		return r;
	}
	n = curl_slist_append(*headers, b.data);
	buf_finish(&b);
	if (!n)
		return -ENOMEM;
	*headers = n;
	return 0;
}

/* The context attributes and extensions in one list, for both content
 * modes: binary writes them as ce-* headers, structured as JSON members. */
struct attribute {
	const char *name;
	const char *value;
};

static size_t attributes(const struct cevent *ev, struct attribute *out, size_t max) {
	size_t n = 0;
	const struct attribute fixed[] = {
		{ "specversion", "1.0" }, { "id", ev->id }, { "source", ev->source },
		{ "type", ev->type }, { "subject", ev->subject }, { "time", ev->time },
		{ "kind", ev->kind }, { "name", ev->name }, { "namespace", ev->namespace },
		{ "apiversion", ev->api_version },
	};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]) && n < max; i++)
		out[n++] = fixed[i];
	if (ev->changed_paths && n < max)
		out[n++] = (struct attribute){ CHANGES_EXTENSION, ev->changed_paths };
	for (size_t i = 0; i < ev->n_overrides && n < max; i++)
		out[n++] = (struct attribute){ ev->overrides[i].name, ev->overrides[i].value };
	return n;
}

#define MAX_ATTRIBUTES 64

int cevent_http_headers(const struct cevent *ev, struct curl_slist **headers) {
	struct attribute attrs[MAX_ATTRIBUTES];
	size_t n = attributes(ev, attrs, MAX_ATTRIBUTES);
	char name[64];
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		snprintf(name, sizeof(name), "ce-%s", attrs[i].name);
		r = add_header(headers, name, attrs[i].value);
	}
	if (r == 0) {
		struct curl_slist *l = curl_slist_append(*headers, "Content-Type: application/json");
		r = l ? (*headers = l, 0) : -ENOMEM;
	}
	return r;
}

int cevent_structured(const struct cevent *ev, struct buf *out) {
	struct attribute attrs[MAX_ATTRIBUTES];
	size_t n = attributes(ev, attrs, MAX_ATTRIBUTES);
	const unsigned char *text;
	size_t len;
	yajl_gen g = yajl_gen_alloc(NULL);
	int r = -ENOMEM;

	if (!g)
		return r;
	yajl_gen_config(g, yajl_gen_validate_utf8, 0);
	yajl_gen_map_open(g);
	for (size_t i = 0; i < n; i++) {
		gen_str(g, attrs[i].name);
		gen_str(g, attrs[i].value);
	}
	gen_str(g, "datacontenttype");
	gen_str(g, "application/json");
	gen_str(g, "data");
	/* yajl_gen_number writes its text verbatim: the object's bytes as the API
	 * server sent them, with no re-serialisation. */
	yajl_gen_number(g, ev->data, ev->data_len);
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &text, &len) == yajl_gen_status_ok)
		r = buf_append(out, text, len);
	yajl_gen_free(g);
	return r;
}

int cevent_filter_attr(const char *name, struct cesql_value *ret_value, void *userdata) {
	const struct cevent *ev = userdata;
	const struct attribute seen[] = {
		{ "specversion", "1.0" }, { "source", ev->source }, { "type", ev->type },
		{ "subject", ev->subject }, { "datacontenttype", "application/json" },
		{ "kind", ev->kind }, { "name", ev->name }, { "namespace", ev->namespace },
		{ "apiversion", ev->api_version }, { CHANGES_EXTENSION, ev->changed_paths },
	};

	for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++)
		if (strcmp(name, seen[i].name) == 0) {
			if (!seen[i].value || !*seen[i].value)
				return 0; /* an empty extension is not sent: missing */
			ret_value->type = CESQL_STRING;
			ret_value->s = seen[i].value;
			ret_value->len = strlen(seen[i].value);
			return 1;
		}
	return 0;
}

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>
#include <yajl/yajl_gen.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
	size_t n = strlen(kind);
	char *o;
	int r;

	if (!n)
		return 0;
	r = buf_reserve(out, n + 2); /* the lower-cased kind and "es", or "ies" for its 'y' */
	if (r < 0)
		return r;
	o = out->data + out->len;
	for (size_t i = 0; i < n; i++)
		o[i] = (char)tolower((unsigned char)kind[i]);
	switch (o[n - 1]) {
	case 's':
		memcpy(o + n, "es", 2);
		n += 2;
		break;
	case 'y':
		memcpy(o + n - 1, "ies", 3);
		n += 2;
		break;
	default:
		o[n++] = 's';
	}
	out->len += n;
	out->data[out->len] = '\0';
	return 0;
}

int cevent_subject(const char *api_version, const char *namespace, const char *kind,
	const char *name, struct buf *out) {
	size_t la = strlen(api_version), ln = strlen(namespace), lm = strlen(name);
	bool unversioned = memchr(api_version, '.', la) && !memchr(api_version, '/', la);
	char *o;
	int r;

	/* Knative writes the namespace segment even for cluster-scoped objects
	 * (then empty: "/namespaces//"); triggers written for it match on that.
	 * Room for all but the plural reserved once: this runs once per event. */
	r = buf_reserve(out, 6 + la + 15 + 12 + ln + 1);
	if (r < 0)
		return r;
	o = out->data + out->len;
	memcpy(o, "/apis/", 6);
	o += 6;
	memcpy(o, api_version, la);
	o += la;
	if (unversioned) {
		memcpy(o, "/versionUnknown", 15);
		o += 15;
	}
	memcpy(o, "/namespaces/", 12);
	o += 12;
	memcpy(o, namespace, ln);
	o += ln;
	*o++ = '/';
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
	r = cevent_plural_guess(kind, out);
	if (r == 0)
		r = buf_append(out, "/", 1);
	if (r == 0)
		r = buf_append(out, name, lm);
	return r;
}

/* The binding: space, double quote, percent and anything outside printable
 * ASCII are encoded (UTF-8 bytes, each as %XX). */
static const bool encoded_byte[256] = {
	[0 ... 0x20] = true, ['"'] = true, ['%'] = true, [0x7f ... 0xff] = true,
};

/* How many bytes from p on (up to end) are sent as they are: sixteen at a
 * time with SSE2 (every x86-64 CPU), for the header values of every event. */
static size_t plain_run(const unsigned char *p, const unsigned char *end) {
	const unsigned char *s = p;

#ifdef __SSE2__
	const __m128i first = _mm_set1_epi8(0x21), span = _mm_set1_epi8(0x7e - 0x21);
	const __m128i quote = _mm_set1_epi8('"'), percent = _mm_set1_epi8('%');

	while (end - p >= 16) {
		__m128i c = _mm_loadu_si128((const __m128i *)p);
		__m128i x = _mm_sub_epi8(c, first); /* printable: 0 .. 0x7e - 0x21 */
		__m128i ok = _mm_cmpeq_epi8(_mm_min_epu8(x, span), x);
		__m128i bad = _mm_or_si128(_mm_cmpeq_epi8(c, quote), _mm_cmpeq_epi8(c, percent));
		unsigned int bits = (unsigned int)_mm_movemask_epi8(_mm_andnot_si128(bad, ok));

		if (bits != 0xffff)
			return (size_t)(p - s) + (size_t)__builtin_ctz(~bits);
		p += 16;
	}
#endif
	while (p < end && !encoded_byte[*p])
		p++;
	return (size_t)(p - s);
}

int cevent_percent_encode(const char *value, struct buf *out) {
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)value, *end = p + strlen(value);

	/* Runs of bytes sent as they are go in one append: most values have
	 * nothing to encode. */
	while (*p) {
		const unsigned char *run = p;
		int r;

		p += plain_run(p, end);
		if (p > run) {
			r = buf_append(out, run, (size_t)(p - run));
			if (r < 0)
				return r;
		}
		if (*p) {
			char enc[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			r = buf_append(out, enc, 3);
			if (r < 0)
				return r;
			p++;
		}
	}
	return 0;
}

static EVP_MD *sha1_md;
static once_flag sha1_once = ONCE_FLAG_INIT;

/* Fetched once: EVP_sha1() makes every EVP_DigestInit_ex() fetch it again
 * from the provider (a third of an id's cost). Never freed: one per process. */
static void fetch_sha1(void) {
	sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
}

void cevent_make_id(const char *uid, const char *resource_version, enum cevent_op op,
	char ret_id[40]) {
	static const char *const ops[] = { "add", "update", "delete" };
	static const char hex[] = "0123456789abcdef";
	/* One context per thread, kept: a new one per event (allocation, and
	 * its set-up on the first Init) cost more than the digest itself. */
	static _Thread_local EVP_MD_CTX *ctx;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *o = ret_id;

	if (!ctx) {
		call_once(&sha1_once, fetch_sha1);
		ctx = EVP_MD_CTX_new();
	}
	memset(md, 0, sizeof(md));
	if (ctx && EVP_DigestInit_ex(ctx, sha1_md ? sha1_md : EVP_sha1(), NULL)) {
		/* The namespace, then "uid/resourceVersion/op", in one update
		 * when it fits (it nearly always does): each update is a call
		 * through OpenSSL's provider table. */
		const void *parts[] = { id_namespace, uid, "/", resource_version, "/", ops[op] };
		size_t lens[] = { sizeof(id_namespace), strlen(uid), 1, strlen(resource_version), 1,
			strlen(ops[op]) };
		unsigned char in[256];
		size_t total = 0;

		for (size_t i = 0; i < 6; i++)
			total += lens[i];
		if (total <= sizeof(in)) {
			for (size_t i = 0, at = 0; i < 6; at += lens[i], i++)
				memcpy(in + at, parts[i], lens[i]);
			EVP_DigestUpdate(ctx, in, total);
		} else {
			for (size_t i = 0; i < 6; i++)
				EVP_DigestUpdate(ctx, parts[i], lens[i]);
		}
		EVP_DigestFinal_ex(ctx, md, &mdlen);
	}
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	/* 8-4-4-4-12 lower-case hex digits, written by hand (no printf per event). */
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[md[i] >> 4];
		*o++ = hex[md[i] & 15];
	}
	*o = '\0';
}

/* RFC 3339 UTC with microseconds, as Knative's adapter writes ce-time. The
 * date and time of day are formatted once per second (per thread), the
 * microseconds by hand. */
static void format_time(char ret[64]) {
	static _Thread_local time_t cached_sec = -1;
	static _Thread_local char cached[32]; /* "YYYY-MM-DDTHH:MM:SS." */
	static _Thread_local size_t cached_len;
	struct timespec now;
	unsigned usec;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec != cached_sec) {
		struct tm tm;
		int n;
		gmtime_r(&now.tv_sec, &tm);
		n = snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d.",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		cached_len = n > 0 && (size_t)n < sizeof(cached) ? (size_t)n : 0;
		cached_sec = now.tv_sec;
	}
	memcpy(ret, cached, cached_len);
	usec = (unsigned)(now.tv_nsec / 1000);
	for (int i = 5; i >= 0; i--) {
		ret[cached_len + (size_t)i] = (char)('0' + usec % 10);
		usec /= 10;
	}
	ret[cached_len + 6] = 'Z';
	ret[cached_len + 7] = '\0';
}

/* cevent_create() puts the strings in the event's own allocation, after the
 * struct; an event built field by field has each allocated on its own. */
static void free_field(const struct cevent *ev, char *s) {
	const char *strs = (const char *)(ev + 1);

	if (s < strs || s >= strs + ev->strs_len)
		free(s);
}

void cevent_destroy(struct cevent *ev) {
	if (!ev)
		return;
	free_field(ev, ev->source);
	free_field(ev, ev->subject);
	free_field(ev, ev->kind);
	free_field(ev, ev->name);
	free_field(ev, ev->namespace);
	free_field(ev, ev->api_version);
	free_field(ev, ev->key);
	free_field(ev, ev->changed_paths);
	free(ev->data);
	free(ev);
}

/* Copies s (n bytes) to *at, with its NUL; returns the copy. */
static char *put_str(char **at, const char *s, size_t n) {
	char *p = *at;

	memcpy(p, s, n);
	p[n] = '\0';
	*at = p + n + 1;
	return p;
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

	/* One allocation of the right size, not doublings from 256 bytes. */
	r = buf_reserve(b, obj->json_len + (add_type ? 64 + strlen(kind) + strlen(api_version) : 0));
	if (r < 0)
		return r;
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
	/* memchr, not a loop per byte: a watch line holds no raw newline, so
	 * this is a scan that finds nothing, once per event. */
	for (char *p = data, *end = data + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		*p = ' ';
	for (char *p = data, *end = data + len; (p = memchr(p, '\r', (size_t)(end - p))); p++)
		*p = ' ';
}

int cevent_create(const struct cevent_params *params, const struct kobj *obj, enum cevent_op op,
	struct cevent **ret_event) {
	struct cevent *ev = NULL;
	struct buf subject, data;
	const char *kind = obj->kind[0] ? obj->kind : params->default_kind;
	const char *api_version = obj->api_version[0] ? obj->api_version :
							params->default_api_version;
	size_t l_source, l_kind, l_name, l_ns, l_api, l_key, l_changed;
	char *at;
	int r = -ENOMEM;

	buf_init(&subject, 0);
	buf_init(&data, 0);
	kind = kind ? kind : "";
	api_version = api_version ? api_version : "";
	r = cevent_subject(api_version, obj->namespace, kind, obj->name, &subject);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	/* The struct and its strings in one allocation (cevent_destroy). */
	l_source = strlen(params->source);
	l_kind = strlen(kind);
	l_name = strlen(obj->name);
	l_ns = strlen(obj->namespace);
	l_api = strlen(api_version);
	l_key = obj->uid[0] ? strlen(obj->uid) : l_ns + 1 + l_name;
	l_changed = obj->changed_paths ? strlen(obj->changed_paths) : 0;
	{
		size_t strs = subject.len + l_source + l_kind + l_name + l_ns + l_api + l_key +
			(obj->changed_paths ? l_changed + 1 : 0) + 7;

		ev = malloc(sizeof(*ev) + strs);
		if (!ev)
			goto out;
		memset(ev, 0, sizeof(*ev));
		ev->strs_len = strs;
	}
	at = (char *)(ev + 1);
	ev->subject = put_str(&at, subject.data ? subject.data : "", subject.len);
	ev->source = put_str(&at, params->source, l_source);
	ev->kind = put_str(&at, kind, l_kind);
	ev->name = put_str(&at, obj->name, l_name);
	ev->namespace = put_str(&at, obj->namespace, l_ns);
	ev->api_version = put_str(&at, api_version, l_api);
	if (obj->uid[0])
		ev->key = put_str(&at, obj->uid, l_key);
	else {
		ev->key = put_str(&at, obj->namespace, l_ns);
		at[-1] = '/';
		put_str(&at, obj->name, l_name);
	}
	if (obj->changed_paths)
		ev->changed_paths = put_str(&at, obj->changed_paths, l_changed);
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
	format_time(ev->time);
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
	ev->bytes = sizeof(*ev) + ev->data_len + ev->strs_len + 256;
	*ret_event = ev;
	ev = NULL;
	r = 0;
out:
	buf_finish(&subject);
	buf_finish(&data);
	cevent_destroy(ev);
	return r;
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

/* One header line, NUL-terminated: "ce-NAME: VALUE", or "ce-NAME;" for an
 * empty value (curl sends that as a header with an empty value). Room for
 * the longest encoding is reserved once and the line written in place: this
 * runs a dozen times per event. */
static int header_line(struct buf *out, const char *name, const char *value) {
	static const char hex[] = "0123456789ABCDEF";
	size_t nlen = strlen(name), vlen = strlen(value);
	char *o;
	int r;

	if (vlen > (SIZE_MAX - nlen - 8) / 3)
		return -E2BIG;
	r = buf_reserve(out, 3 + nlen + 2 + 3 * vlen + 1);
	if (r < 0)
		return r;
	o = out->data + out->len;
	memcpy(o, "ce-", 3);
	memcpy(o + 3, name, nlen);
	o += 3 + nlen;
	if (vlen) {
		*o++ = ':';
		*o++ = ' ';
	} else {
		*o++ = ';';
	}
	/* Runs of bytes sent as they are are copied whole. */
	for (const unsigned char *p = (const unsigned char *)value, *end = p + vlen; p < end;) {
		const unsigned char *run = p;

		p += plain_run(p, end);
		memcpy(o, run, (size_t)(p - run));
		o += p - run;
		if (p < end) {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
			p++;
		}
	}
	*o++ = '\0';
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0'; /* buf's terminator, after the line's own */
	return 0;
}

int cevent_http_header_lines(const struct cevent *ev, struct buf *out) {
	static const char content_type[] = "Content-Type: application/json";
	struct attribute attrs[MAX_ATTRIBUTES];
	size_t n = attributes(ev, attrs, MAX_ATTRIBUTES);
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++)
		r = header_line(out, attrs[i].name, attrs[i].value);
	if (r == 0)
		r = buf_append(out, content_type, sizeof(content_type));
	return r;
}

size_t cevent_attributes(const struct cevent *ev, struct cevent_attr *out, size_t max) {
	struct attribute attrs[MAX_ATTRIBUTES];
	size_t n = attributes(ev, attrs, max < MAX_ATTRIBUTES ? max : MAX_ATTRIBUTES);

	for (size_t i = 0; i < n; i++)
		out[i] = (struct cevent_attr){ attrs[i].name, attrs[i].value };
	return n;
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

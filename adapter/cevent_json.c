#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_gen.h>

#include "adapter/cevent_json.h"

/* Every event the adapter makes carries JSON: the object, or a reference. */
#define EVENT_CONTENT_TYPE "application/json"

static int gen_ok(yajl_gen_status st) {
	switch (st) {
	case yajl_gen_status_ok:
		return 0;
	case yajl_gen_invalid_string:
		return -EILSEQ;
	default:
		return -ENOMEM;
	}
}

static int gen_str(yajl_gen g, const char *s) {
	return gen_ok(yajl_gen_string(g, (const unsigned char *)s, strlen(s)));
}

static int gen_pair(yajl_gen g, const char *name, const char *value) {
	int r = gen_str(g, name);

	return r < 0 ? r : gen_str(g, value);
}

/* Standard base64 (RFC 4648 section 4) of len bytes as a member. */
static int gen_base64_pair(yajl_gen g, const char *name, const char *data, size_t len) {
	unsigned char *enc;
	int r;

	if (len > (size_t)INT32_MAX / 4 * 3)
		return -E2BIG;
	enc = malloc(4 * ((len + 2) / 3) + 1);
	if (!enc)
		return -ENOMEM;
	EVP_EncodeBlock(enc, (const unsigned char *)data, (int)len);
	r = gen_pair(g, name, (const char *)enc);
	free(enc);
	return r;
}

bool cevent_json_media_type(const char *content_type) {
	size_t len = strcspn(content_type, ";");

	while (len && (content_type[len - 1] == ' ' || content_type[len - 1] == '\t'))
		len--;
	if ((len == 16 && strncasecmp(content_type, "application/json", 16) == 0) ||
		(len == 9 && strncasecmp(content_type, "text/json", 9) == 0))
		return true;
	return len > 5 && memchr(content_type, '/', len) &&
		strncasecmp(content_type + len - 5, "+json", 5) == 0;
}

int cevent_json_gen_data(yajl_gen g, const char *content_type, const char *data, size_t len) {
	int r;

	if (!len)
		return 0;
	if (!cevent_json_media_type(content_type))
		return gen_base64_pair(g, "data_base64", data, len);
	r = gen_str(g, "data");
	/* yajl_gen_number writes its text verbatim: the object's bytes as the
	 * API server sent them (JSON that yajl parsed), with no
	 * re-serialisation. */
	return r < 0 ? r : gen_ok(yajl_gen_number(g, data, len));
}

static int gen_error(yajl_gen g, const struct cevent_json_error *err) {
	char code[24];
	int r;

	snprintf(code, sizeof(code), "%ld", err->code);
	r = gen_pair(g, "knativeerrordest", err->dest ? err->dest : "");
	if (r == 0)
		r = gen_pair(g, "knativeerrorcode", code);
	if (r == 0 && err->data && *err->data)
		r = gen_base64_pair(g, "knativeerrordata", err->data, strlen(err->data));
	return r;
}

int cevent_json_gen_event(yajl_gen g, const struct cevent *ev, const struct cevent_json_error *err) {
	struct cevent_attr attrs[CEVENT_MAX_ATTRIBUTES];
	size_t n = cevent_attributes(ev, attrs, CEVENT_MAX_ATTRIBUTES);
	int r = gen_ok(yajl_gen_map_open(g));

	for (size_t i = 0; r == 0 && i < n; i++)
		r = gen_pair(g, attrs[i].name, attrs[i].value);
	if (r == 0 && err)
		r = gen_error(g, err);
	if (r == 0)
		r = gen_pair(g, "datacontenttype", EVENT_CONTENT_TYPE);
	if (r == 0)
		r = cevent_json_gen_data(g, EVENT_CONTENT_TYPE, ev->data, ev->data_len);
	if (r == 0)
		r = gen_ok(yajl_gen_map_close(g));
	return r;
}

/* A generator writing compact JSON; strings are escaped, not checked, as
 * in binary mode's headers. */
static yajl_gen gen_new(void) {
	yajl_gen g = yajl_gen_alloc(NULL);

	if (g)
		yajl_gen_config(g, yajl_gen_validate_utf8, 0);
	return g;
}

static int gen_take(yajl_gen g, struct buf *out) {
	const unsigned char *text;
	size_t len;

	if (yajl_gen_get_buf(g, &text, &len) != yajl_gen_status_ok)
		return -ENOMEM;
	return buf_append(out, text, len);
}

int cevent_json_event(const struct cevent *ev, const struct cevent_json_error *err, struct buf *out) {
	yajl_gen g = gen_new();
	int r;

	if (!g)
		return -ENOMEM;
	r = cevent_json_gen_event(g, ev, err);
	if (r == 0)
		r = gen_take(g, out);
	yajl_gen_free(g);
	return r;
}

int cevent_structured(const struct cevent *ev, struct buf *out) {
	return cevent_json_event(ev, NULL, out);
}

int cevent_json_array(const char *const *texts, const size_t *lens, size_t n, struct buf *out) {
	yajl_gen g = gen_new();
	int r;

	if (!g)
		return -ENOMEM;
	r = gen_ok(yajl_gen_array_open(g));
	/* Each element is an object cevent_json_event() wrote: verbatim. */
	for (size_t i = 0; r == 0 && i < n; i++)
		r = gen_ok(yajl_gen_number(g, texts[i], lens[i]));
	if (r == 0)
		r = gen_ok(yajl_gen_array_close(g));
	if (r == 0)
		r = gen_take(g, out);
	yajl_gen_free(g);
	return r;
}

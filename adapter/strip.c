#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "adapter/strip.h"

/* yajl's event parser (iterative, its own stack) finds the member's bytes:
 * yajl_get_bytes_consumed() inside a callback is the offset just past the
 * token it reports. */
struct finder {
	yajl_handle h;
	const char *json;
	unsigned depth;	       /* 1: inside the top-level map */
	bool top_key_metadata; /* the top-level key whose value comes next */
	bool in_metadata;      /* depth 2 is metadata's map */
	bool at_key;	       /* metadata's current key is managedFields */
	unsigned value_depth;  /* nesting inside its value, once it began */
	size_t key_end, value_end;
	bool found;
};

static size_t pos(struct finder *f) {
	return yajl_get_bytes_consumed(f->h);
}

/* A whole value ended at the current position. */
static int value_done(struct finder *f) {
	if (f->at_key && f->value_depth == 0 && f->depth == 2) {
		f->value_end = pos(f);
		f->found = true;
		return 0; /* stop: found */
	}
	return 1;
}

static int on_scalar(struct finder *f) {
	if (f->depth == 1)
		f->top_key_metadata = false;
	return value_done(f);
}

static int on_null(void *ud) {
	return on_scalar(ud);
}

static int on_bool(void *ud, int b) {
	(void)b;
	return on_scalar(ud);
}

static int on_number(void *ud, const char *s, size_t len) {
	(void)s, (void)len;
	return on_scalar(ud);
}

static int on_string(void *ud, const unsigned char *s, size_t len) {
	(void)s, (void)len;
	return on_scalar(ud);
}

static int on_key(void *ud, const unsigned char *s, size_t len) {
	struct finder *f = ud;

	if (f->depth == 1)
		f->top_key_metadata = len == 8 && memcmp(s, "metadata", 8) == 0;
	else if (f->depth == 2 && f->in_metadata) {
		f->at_key = len == 13 && memcmp(s, "managedFields", 13) == 0;
		if (f->at_key)
			f->key_end = pos(f);
	}
	return 1;
}

static int on_open(void *ud) {
	struct finder *f = ud;

	if (f->at_key && f->depth >= 2)
		f->value_depth++;
	if (f->depth == 1) {
		f->in_metadata = f->top_key_metadata;
		f->top_key_metadata = false;
	}
	f->depth++;
	return 1;
}

static int on_close(void *ud) {
	struct finder *f = ud;

	f->depth--;
	if (f->depth == 1)
		f->in_metadata = false;
	if (f->at_key && f->value_depth > 0 && --f->value_depth == 0)
		return value_done(f);
	return 1;
}

static const yajl_callbacks callbacks = {
	.yajl_null = on_null,
	.yajl_boolean = on_bool,
	.yajl_number = on_number,
	.yajl_string = on_string,
	.yajl_start_map = on_open,
	.yajl_map_key = on_key,
	.yajl_end_map = on_close,
	.yajl_start_array = on_open,
	.yajl_end_array = on_close,
};

int strip_managed_fields(const char *json, size_t len, struct buf *out) {
	struct finder f = { .json = json };
	size_t key_start, cut_start, cut_end;
	yajl_status st;
	int r;

	f.h = yajl_alloc(&callbacks, NULL, &f);
	if (!f.h)
		return -ENOMEM;
	/* As kobj.c parses the object: its bytes pass through as they came. */
	yajl_config(f.h, yajl_dont_validate_strings, 1);
	st = yajl_parse(f.h, (const unsigned char *)json, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(f.h);
	yajl_free(f.h);
	if (!f.found)
		return st == yajl_status_ok ? 0 : -EBADMSG;
	/* The key's opening quote: the decoded key holds no quote, so its raw
	 * form holds none but the two around it. */
	key_start = f.key_end - 1;
	while (key_start > 0 && json[key_start - 1] != '"')
		key_start--;
	if (key_start == 0)
		return -EBADMSG;
	key_start--;
	cut_start = key_start;
	cut_end = f.value_end;
	{
		size_t p = key_start;
		while (p > 0 && isspace((unsigned char)json[p - 1]))
			p--;
		if (p > 0 && json[p - 1] == ',') {
			cut_start = p - 1; /* ", managedFields: [...]" */
		} else {
			size_t q = f.value_end;
			while (q < len && isspace((unsigned char)json[q]))
				q++;
			if (q < len && json[q] == ',')
				cut_end = q + 1; /* "managedFields: [...], " */
		}
	}
	r = buf_append(out, json, cut_start);
	if (r == 0)
		r = buf_append(out, json + cut_end, len - cut_end);
	return r < 0 ? r : 1;
}

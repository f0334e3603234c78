#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "adapter/util/buf.h"
#include "adapter/util/json.h"

/* The pre-pass: yajl's event parser (which keeps its own explicit stack and
 * does not recurse) with callbacks that only count nesting and look inside
 * strings, so a hostile document is refused before any tree is built. */
struct check {
	unsigned depth, max_depth;
	bool too_deep, nul;
};

static int check_string(void *ud, const unsigned char *s, size_t len) {
	struct check *c = ud;

	c->nul = memchr(s, '\0', len) != NULL;
	return !c->nul;
}

static int check_open(void *ud) {
	struct check *c = ud;

	c->too_deep = ++c->depth > c->max_depth;
	return !c->too_deep;
}

static int check_close(void *ud) {
	struct check *c = ud;

	c->depth--;
	return 1;
}

static const yajl_callbacks check_callbacks = {
	.yajl_string = check_string,
	.yajl_start_map = check_open,
	.yajl_map_key = check_string,
	.yajl_end_map = check_close,
	.yajl_start_array = check_open,
	.yajl_end_array = check_close,
};

static int check(const char *text, size_t len, unsigned max_depth, char *errbuf, size_t errlen) {
	struct check c = { .max_depth = max_depth };
	yajl_handle h = yajl_alloc(&check_callbacks, NULL, &c);
	yajl_status st;
	int r = 0;

	if (!h) {
		snprintf(errbuf, errlen, "out of memory");
		errno = ENOMEM;
		return -ENOMEM;
	}
	yajl_config(h, yajl_allow_comments, 1); /* as yajl_tree_parse() does */
	st = yajl_parse(h, (const unsigned char *)text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (st != yajl_status_ok) {
		size_t at = yajl_get_bytes_consumed(h);

		if (c.too_deep) {
			snprintf(errbuf, errlen, "nested deeper than %u levels (at byte %zu)", max_depth,
				at);
		} else if (c.nul) {
			snprintf(errbuf, errlen, "a string contains \\u0000 (at byte %zu)", at);
		} else {
			unsigned char *msg = yajl_get_error(h, 0, NULL, 0);

			/* yajl's message may span lines; keep the first. */
			snprintf(errbuf, errlen, "not valid JSON: %s", msg ? (char *)msg : "parse error");
			errbuf[strcspn(errbuf, "\r\n")] = '\0';
			yajl_free_error(h, msg);
		}
		r = -EBADMSG;
		errno = EBADMSG;
	}
	yajl_free(h);
	return r;
}

yajl_val json_parse_bounded(const char *text, size_t len, unsigned max_depth, char *errbuf,
	size_t errlen) {
	char scratch[8], err[256] = "";
	char *copy = NULL;
	yajl_val v;

	if (!errbuf) {
		errbuf = scratch;
		errlen = sizeof(scratch);
	}
	if (check(text, len, max_depth, errbuf, errlen) < 0)
		return NULL;
	/* yajl_tree_parse() wants a terminated string. The pre-pass refused any
	 * NUL byte inside text[0, len), so the copy is whole. */
	copy = strndup(text, len);
	if (!copy) {
		snprintf(errbuf, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	v = yajl_tree_parse(copy, err, sizeof(err));
	free(copy);
	if (!v) {
		err[strcspn(err, "\r\n")] = '\0';
		/* The pre-pass found the text valid: a failure now is memory. */
		errno = strcasestr(err, "memory") ? ENOMEM : EBADMSG;
		snprintf(errbuf, errlen, "%s%s", errno == ENOMEM ? "" : "not valid JSON: ",
			errno == ENOMEM ? "out of memory" : (*err ? err : "parse error"));
	}
	return v;
}

yajl_val json_parse(const char *text, char *errbuf, size_t errlen) {
	return json_parse_bounded(text, strlen(text), JSON_MAX_DEPTH, errbuf, errlen);
}

yajl_val json_get(yajl_val obj, const char *key) {
	if (!YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

const char *json_get_str(yajl_val obj, const char *key) {
	yajl_val v = json_get(obj, key);

	return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

static void gen(yajl_gen g, yajl_val v) {
	if (YAJL_IS_STRING(v)) {
		yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
	} else if (YAJL_IS_NUMBER(v)) {
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	} else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(v));
	} else if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			yajl_gen_string(g, (const unsigned char *)v->u.object.keys[i],
				strlen(v->u.object.keys[i]));
			gen(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			gen(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
	} else {
		yajl_gen_null(g);
	}
}

int json_write(yajl_val v, struct buf *out) {
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *text;
	size_t len;
	int r = -ENOMEM;

	if (!g)
		return -ENOMEM;
	/* The tree came from json_parse_bounded(): its depth is bounded, and so
	 * is the recursion of gen(). */
	yajl_gen_config(g, yajl_gen_validate_utf8, 0);
	gen(g, v);
	if (yajl_gen_get_buf(g, &text, &len) == yajl_gen_status_ok)
		r = buf_append(out, text, len);
	yajl_gen_free(g);
	return r;
}

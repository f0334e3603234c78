#include <stdio.h>
#include <string.h>

#include <errno.h>
#include <yajl/yajl_gen.h>

#include "adapter/util/buf.h"
#include "adapter/util/json.h"

bool json_depth_ok(const char *text, size_t len, unsigned max_depth) {
	unsigned depth = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return false;
		} else if ((c == ']' || c == '}') && depth) {
			depth--;
		}
	}
	return true;
}

yajl_val json_parse(const char *text, char *errbuf, size_t errlen) {
	char err[256] = "";
	yajl_val v;

	if (!json_depth_ok(text, strlen(text), JSON_MAX_DEPTH)) {
		snprintf(errbuf, errlen, "nested deeper than %d levels", JSON_MAX_DEPTH);
		return NULL;
	}
	v = yajl_tree_parse(text, err, sizeof(err));
	if (!v) {
		err[strcspn(err, "\n")] = '\0';
		snprintf(errbuf, errlen, "not valid JSON: %s", *err ? err : "parse error");
	}
	return v;
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
	/* The tree came from json_parse(): its depth is bounded. */
	yajl_gen_config(g, yajl_gen_validate_utf8, 0);
	gen(g, v);
	if (yajl_gen_get_buf(g, &text, &len) == yajl_gen_status_ok)
		r = buf_append(out, text, len);
	yajl_gen_free(g);
	return r;
}

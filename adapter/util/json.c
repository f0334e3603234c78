#include <stdio.h>
#include <string.h>

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

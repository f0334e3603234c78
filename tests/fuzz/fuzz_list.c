/* A list response (a LIST page) fed in chunks: items, then resourceVersion,
 * continue and a Status. The first input byte picks the chunk size. Oracle:
 * an accepted page's resourceVersion and continue token are what yajl's tree
 * parser reads from the same bytes (never cut short). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "adapter/kobj.h"
#include "fuzz.h"

#define MAX_ITEM (64 * 1024)

static int on_item(const struct kobj *obj, void *userdata) {
	size_t *n = userdata;

	/* Touch what the watch reads from an item. */
	*n += strlen(obj->uid) + strlen(obj->name) + obj->json_len;
	if (obj->json_len && !obj->json)
		abort();
	return 0;
}

static size_t count(const uint8_t *data, size_t size, const char *needle) {
	size_t n = 0, len = strlen(needle);

	for (size_t i = 0; i + len <= size; i++)
		n += memcmp(data + i, needle, len) == 0;
	return n;
}

/* Only for a plain document: one such key, shallow nesting (the tree parser
 * recurses), no NUL (yajl_tree_parse takes a C string). */
static void check_metadata(const uint8_t *data, size_t size, const char *key, const char *got) {
	const char *path[] = { "metadata", key, NULL };
	char quoted[32];
	char *text;
	yajl_val root, v;

	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	if (count(data, size, quoted) != 1 || count(data, size, "\"metadata\"") != 1 ||
		count(data, size, "[") + count(data, size, "{") > 1000 || memchr(data, 0, size))
		return;
	text = fuzz_cstr(data, size);
	root = yajl_tree_parse(text, NULL, 0);
	v = root ? yajl_tree_get(root, path, yajl_t_string) : NULL;
	if (v && strcmp(YAJL_GET_STRING(v), got) != 0)
		abort(); /* accepted, but not what the page says */
	yajl_tree_free(root);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct kobj_list *l = NULL;
	size_t chunk, seen = 0;
	int r = 0;

	fuzz_quiet_logs();
	if (size < 1)
		return 0;
	chunk = 1 + data[0] % 64u * 61u;
	data++;
	size--;
	if (kobj_list_create(MAX_ITEM, on_item, &seen, &l) < 0)
		abort();
	for (size_t off = 0; r == 0 && off < size; off += chunk)
		r = kobj_list_feed(l, (const char *)data + off, size - off < chunk ? size - off : chunk);
	if (r == 0) {
		const char *rv = NULL, *cont = NULL, *message = NULL;
		long long code = 0;
		if (kobj_list_end(l, &rv, &cont, &code, &message) == 0) {
			if (!rv || !cont)
				abort();
			check_metadata(data, size, "resourceVersion", rv);
			check_metadata(data, size, "continue", cont);
		}
	}
	kobj_list_destroy(l);
	return 0;
}

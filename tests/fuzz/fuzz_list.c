/* A list response (a LIST page) fed in chunks: items, then resourceVersion,
 * continue and a Status. The first input byte picks the chunk size. */
#include <stdlib.h>
#include <string.h>

#include "adapter/ndjson.h"
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct ndjson_list *l = NULL;
	size_t chunk, seen = 0;
	int r = 0;

	fuzz_quiet_logs();
	if (size < 1)
		return 0;
	chunk = 1 + data[0] % 64u * 61u;
	data++;
	size--;
	if (ndjson_list_create(MAX_ITEM, on_item, &seen, &l) < 0)
		abort();
	for (size_t off = 0; r == 0 && off < size; off += chunk)
		r = ndjson_list_feed(l, (const char *)data + off, size - off < chunk ? size - off : chunk);
	if (r == 0) {
		const char *rv = NULL, *cont = NULL, *message = NULL;
		long long code = 0;
		if (ndjson_list_end(l, &rv, &cont, &code, &message) == 0 && (!rv || !cont))
			abort();
	}
	ndjson_list_destroy(l);
	return 0;
}

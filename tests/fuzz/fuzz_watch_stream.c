/* The watch stream: bytes in chunks -> lines (ndjson_feed) -> events
 * (kobj_parse_event) -> CloudEvents in both modes. Oracles beyond the
 * sanitizers: every structured event is valid JSON, and no header value
 * carries CR or LF. The first input byte picks the chunk size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "adapter/cevent.h"
#include "adapter/kobj.h"
#include "adapter/ndjson.h"
#include "fuzz.h"

#define MAX_LINE (64 * 1024) /* --max-event-bytes is at least 1024 */

static void check_json(const char *text, size_t len) {
	yajl_handle h = yajl_alloc(NULL, NULL, NULL);

	if (!h)
		abort();
	yajl_config(h, yajl_dont_validate_strings, 1);
	if (yajl_parse(h, (const unsigned char *)text, len) != yajl_status_ok ||
		yajl_complete_parse(h) != yajl_status_ok) {
		unsigned char *err = yajl_get_error(h, 1, (const unsigned char *)text, len);
		fprintf(stderr, "fuzz_watch_stream: invalid JSON event (%s): %.*s\n", (char *)err,
			(int)(len < 2048 ? len : 2048), text);
		abort(); /* the adapter would send (or checkpoint) broken JSON */
	}
	yajl_free(h);
}

static void check_event(const struct cevent *ev) {
	struct buf out;

	buf_init(&out, 0);
	if (cevent_structured(ev, &out) == 0)
		check_json(out.data, out.len);
	buf_reset(&out);
	/* NUL-separated lines: a CR or LF anywhere would be header injection. */
	if (cevent_http_header_lines(ev, &out) == 0 && out.len &&
		(memchr(out.data, '\r', out.len) || memchr(out.data, '\n', out.len)))
		abort();
	buf_finish(&out);
}

static int on_line(const char *line, size_t len, void *userdata) {
	struct kobj_event e;
	static const struct config_extension overrides[] = { { "team", "guitars" } };

	if (kobj_parse_event(line, len, &e) < 0)
		return 0;
	if (e.type != KOBJ_ADDED && e.type != KOBJ_MODIFIED && e.type != KOBJ_DELETED)
		return 0;
	for (int mode = CONFIG_MODE_RESOURCE; mode <= CONFIG_MODE_REFERENCE; mode++) {
		struct cevent_params params = { .mode = mode, .source = "https://10.96.0.1:443",
			.overrides = overrides, .n_overrides = 1, .default_kind = "Pod",
			.default_api_version = "v1" };
		struct cevent *ev = NULL;
		enum cevent_op op = e.type == KOBJ_ADDED ? CEVENT_ADD :
			e.type == KOBJ_MODIFIED ? CEVENT_UPDATE : CEVENT_DELETE;
		if (cevent_create(&params, &e.obj, op, &ev) == 0)
			check_event(ev);
		cevent_destroy(ev);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct ndjson p;
	size_t chunk;

	fuzz_quiet_logs();
	if (size < 1)
		return 0;
	chunk = 1 + data[0] % 64u * 61u; /* 1 .. 3844 bytes */
	data++;
	size--;
	ndjson_init(&p, MAX_LINE);
	for (size_t off = 0; off < size; off += chunk)
		ndjson_feed(&p, (const char *)data + off, size - off < chunk ? size - off : chunk, on_line,
			NULL);
	ndjson_finish(&p);
	return 0;
}

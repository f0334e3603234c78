#ifndef ADAPTER_NDJSON_H
#define ADAPTER_NDJSON_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/util/buf.h"

/* Line framing of what the API server streams, without I/O or logging: byte
 * chunks of a watch stream (or a checkpoint file) -> complete lines (LF or
 * CRLF), with a cap on line length. Memory stays bounded by the cap: an
 * over-long line is never held whole. What a line says is kobj.c's business. */

typedef int (*ndjson_line_fn)(const char *line, size_t len, void *userdata);

struct ndjson {
	struct buf line;
	size_t max_line;
	bool discarding; /* inside a line that was already too long */
};

void ndjson_init(struct ndjson *p, size_t max_line);
void ndjson_finish(struct ndjson *p);
void ndjson_reset(struct ndjson *p);
/* Calls fn for each complete non-empty line (line ending removed). Returns
 * the number of lines, -E2BIG when a line is longer than max_line (the rest of
 * that line is then skipped), or the first negative value fn returns. */
int ndjson_feed(struct ndjson *p, const char *data, size_t len, ndjson_line_fn fn,
	void *userdata);
/* Bytes of an incomplete line held. */
size_t ndjson_pending(const struct ndjson *p);

#endif

#include <errno.h>
#include <string.h>

#include "adapter/ndjson.h"

void ndjson_init(struct ndjson *p, size_t max_line) {
	buf_init(&p->line, 0);
	p->max_line = max_line;
	p->discarding = false;
}

void ndjson_finish(struct ndjson *p) {
	if (!p)
		return;
	buf_finish(&p->line);
}

void ndjson_reset(struct ndjson *p) {
	buf_reset(&p->line);
	p->discarding = false;
}

size_t ndjson_pending(const struct ndjson *p) {
	return p->line.len;
}

static int emit_line(const char *s, size_t n, ndjson_line_fn fn, void *ud) {
	int r;

	if (n && s[n - 1] == '\r')
		n--;
	if (!n)
		return 0;
	r = fn(s, n, ud);
	return r < 0 ? r : 1;
}

int ndjson_feed(struct ndjson *p, const char *data, size_t len, ndjson_line_fn fn,
	void *userdata) {
	int count = 0, r;

	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;

		if (p->discarding) {
			if (nl)
				p->discarding = false;
		} else if (p->line.len + take > p->max_line) {
			/* Stop here: a later line must not be taken (and its version
			 * counted as seen) when this one was not. */
			buf_reset(&p->line);
			p->discarding = !nl;
			return -E2BIG;
		} else if (nl && !p->line.len) {
			/* The common case: the whole line is in this chunk; no copy. */
			r = emit_line(data, take, fn, userdata);
			if (r < 0)
				return r;
			count += r;
		} else {
			r = buf_append(&p->line, data, take);
			if (r < 0)
				return r;
			if (nl) {
				r = emit_line(p->line.data, p->line.len, fn, userdata);
				buf_reset(&p->line);
				if (r < 0)
					return r;
				count += r;
			}
		}
		if (!nl)
			break;
		len -= take + 1;
		data += take + 1;
	}
	return count;
}

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/util/buf.h"

void buf_init(struct buf *b, size_t max_len) {
	*b = (struct buf){ .max_len = max_len };
}

void buf_finish(struct buf *b) {
	if (!b)
		return;
	free(b->data);
	*b = (struct buf){ .max_len = b->max_len };
}

static int reserve(struct buf *b, size_t extra) {
	size_t need, ncap;
	char *n;

	if (extra > SIZE_MAX / 2 - b->len)
		return -E2BIG;
	need = b->len + extra + 1;
	if (b->max_len && b->len + extra > b->max_len)
		return -E2BIG;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	n = realloc(b->data, ncap);
	if (!n)
		return -ENOMEM;
	b->data = n;
	b->cap = ncap;
	return 0;
}

int buf_reserve(struct buf *b, size_t extra) {
	return reserve(b, extra);
}

int buf_append(struct buf *b, const void *data, size_t len) {
	int r = reserve(b, len);

	if (r < 0)
		return r;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *s) {
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...) {
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_consume(struct buf *b, size_t n) {
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void buf_reset(struct buf *b) {
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *buf_steal(struct buf *b, size_t *ret_len) {
	char *d = b->data;

	if (!d)
		d = calloc(1, 1);
	if (ret_len)
		*ret_len = b->len;
	*b = (struct buf){ .max_len = b->max_len };
	return d;
}

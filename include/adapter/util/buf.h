#ifndef ADAPTER_UTIL_BUF_H
#define ADAPTER_UTIL_BUF_H

#include <stddef.h>

/* A growable byte buffer with a hard cap. The data is always NUL-terminated
 * (the terminator is not counted in len), so text can be passed to C string
 * functions and parsers that want a terminator. */
struct buf {
	char *data;
	size_t len;
	size_t cap;	 /* allocated bytes, terminator included */
	size_t max_len; /* 0: unlimited */
};

void buf_init(struct buf *b, size_t max_len);
void buf_finish(struct buf *b);
/* Returns 0, -E2BIG if max_len would be exceeded (nothing appended), -ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t len);
/* Makes room for extra more bytes (so the appends that follow do not
 * reallocate). Returns 0, -E2BIG or -ENOMEM, as buf_append(). */
int buf_reserve(struct buf *b, size_t extra);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Hands the data to the caller (who frees it) and resets the buffer. */
char *buf_steal(struct buf *b, size_t *ret_len);

#endif

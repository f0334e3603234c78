#ifndef ADAPTER_UTIL_FILEIO_H
#define ADAPTER_UTIL_FILEIO_H

#include <stddef.h>

/* Reads a whole file of at most max_len bytes into a NUL-terminated malloc'd
 * buffer. Returns 0, -errno, or -E2BIG. */
int file_read_all(const char *path, size_t max_len, char **ret_text, size_t *ret_len);

#endif

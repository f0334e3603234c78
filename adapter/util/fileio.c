#include <errno.h>
#include <stdio.h>

#include "adapter/util/buf.h"
#include "adapter/util/fileio.h"

int file_read_all(const char *path, size_t max_len, char **ret_text, size_t *ret_len) {
	FILE *f = fopen(path, "re");
	struct buf b;
	char chunk[8192];
	size_t n;
	int r = 0;

	if (!f)
		return -errno;
	buf_init(&b, max_len);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		r = buf_append(&b, chunk, n);
		if (r < 0)
			break;
	}
	if (!r && ferror(f))
		r = -EIO;
	fclose(f);
	if (r < 0) {
		buf_finish(&b);
		return r;
	}
	*ret_text = buf_steal(&b, ret_len);
	return 0;
}

#ifndef ADAPTER_OBJECTS_SPILL_H
#define ADAPTER_OBJECTS_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/util/buf.h"

/* The object table's spill file: append-only records of each object's last
 * fields, read back by offset (objects_store.h says why and when). Appends go
 * through a small buffer; objects_spill_flush() puts them on the file. */

/* One object's fields, in and out. Strings are NUL-terminated. */
struct objects_spill_fields {
	const char *name;
	const char *ns;
	const char *kind;	 /* NULL: the resource's (references from a checkpoint) */
	const char *api_version; /* likewise */
	const char *json;	 /* NULL: only a reference is kept */
	size_t json_len;
	bool typed; /* json has its own apiVersion and kind */
};

struct objects_spill {
	int fd;
	unsigned refs;
	uint64_t end;  /* where the buffer goes in the file: a multiple of wcap */
	uint64_t live; /* bytes of records still in use (kept by the store) */
	char *wbuf;
	size_t wlen;   /* bytes in the buffer (all of them may be on the file too) */
	size_t wcap;   /* its size: 16 KiB, doubled up to 256 KiB as the file grows */
};

/* An unlinked file (O_TMPFILE) in dir, else $TMPDIR, else /tmp, else a
 * memfd. One reference. */
int objects_spill_open(const char *dir, struct objects_spill **ret_spill);
void objects_spill_ref(struct objects_spill *sp);
/* Closes it with the last reference. NULL is fine. */
void objects_spill_unref(struct objects_spill *sp);
int objects_spill_flush(struct objects_spill *sp);
/* Appends a record of f. Returns 0 and its offset, length and checksum. */
int objects_spill_write(struct objects_spill *sp, const struct objects_spill_fields *f,
	uint64_t *ret_off, uint32_t *ret_len, uint32_t *ret_sum);
/* Reads the record at off back into scratch, fields pointing into it, and
 * checks it against len and sum (-EIO when it does not match). file_only:
 * from another thread, which may read only what was flushed before it was
 * handed the file. */
int objects_spill_read(const struct objects_spill *sp, uint64_t off, uint32_t len, uint32_t sum,
	bool file_only, struct buf *scratch, struct objects_spill_fields *ret);
/* A record's bytes as they are, for copying it to another file. */
int objects_spill_read_raw(const struct objects_spill *sp, uint64_t off, size_t len, char *dst);
int objects_spill_append_raw(struct objects_spill *sp, const char *data, size_t len,
	uint64_t *ret_off);

#endif

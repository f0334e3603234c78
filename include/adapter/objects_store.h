#ifndef ADAPTER_OBJECTS_STORE_H
#define ADAPTER_OBJECTS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "adapter/objects_spill.h"
#include "adapter/util/buf.h"

/* The object table's storage (objects.c keeps the logic): per object a
 * compact record in memory, and its last bytes in a spill file.
 *
 * In memory, per object: one fixed record (struct objects_store_rec, 48
 * bytes) in a dense array, and a 4-byte slot in an open-addressing index of
 * those records. No malloc per object: a uid (a UUID) is kept as its 16 bytes
 * and a numeric resourceVersion as a number; any other key or version goes to
 * one shared string arena.
 *
 * On disk, per object: a spill record (name, namespace, optional kind and
 * apiVersion, and unless only references are kept the object's bytes as the
 * API server sent them), appended to a file nobody else sees: an unlinked
 * file (O_TMPFILE) in the directory given (--state-dir) or $TMPDIR (else
 * /tmp), or a memfd when neither can be had. Writes go through a small
 * buffer; a record is read back (pread) only for a delete a relist finds, a
 * checkpoint, or the previous state of an update. A change appends a new
 * record; once the garbage outgrows both the live bytes and
 * OBJECTS_STORE_MIN_GARBAGE the live records are copied to a new file.
 * Each record carries a checksum in memory: a read that does not match (the
 * file changed under us) fails with -EIO instead of sending wrong bytes. */

#define OBJECTS_STORE_MIN_GARBAGE (16u << 20)

struct objects_store_rec {
	uint8_t key[16]; /* a UUID's bytes, or the key's place in the arena */
	uint64_t rv;	 /* a number, or its place in the arena */
	uint64_t off;	 /* the spill record's offset (low 48 bits) and flags */
	uint32_t khash;	 /* the key's hash */
	uint32_t len;	 /* the spill record's bytes */
	uint32_t sum;	 /* their checksum */
	uint32_t generation;
};

struct objects_store {
	struct objects_store_rec *recs; /* dense: 0..n-1 */
	size_t n, cap;
	uint32_t *slots; /* index + 1 of a record, 0 when free (linear probing) */
	size_t nslots;
	char *strs; /* the arena: keys and versions that are not a UUID or a number */
	size_t strs_len, strs_cap, strs_garbage;
	struct objects_spill *spill; /* opened with the first record */
	const char *dir;
};

/* dir (may be NULL: $TMPDIR) is borrowed and must outlive the store. */
void objects_store_init(struct objects_store *st, const char *dir);
/* Frees the records and drops the spill file (kept open by frozen copies
 * still alive). A zeroed store is fine. */
void objects_store_finish(struct objects_store *st);
/* The record's index, or -1. */
ssize_t objects_store_find(const struct objects_store *st, const char *key);

/* A key prepared once (its hash, and its bytes when it is a UUID) for a find
 * and a put of the same key; s must outlive it. */
struct objects_store_key {
	const char *s;
	size_t len;
	uint32_t hash; /* both halves of FNV-1a's, folded */
	bool uuid;
	uint8_t bytes[16];
};
void objects_store_key_of(const char *key, struct objects_store_key *k);
ssize_t objects_store_find_key(const struct objects_store *st, const struct objects_store_key *k);
/* Records key's fields and resourceVersion, replacing what it had. Returns
 * its index, or a negative errno (-ENOMEM, or the spill file's) and then the
 * store is as it was. Indices of other records do not change. */
ssize_t objects_store_put(struct objects_store *st, const char *key, const char *rv,
	const struct objects_spill_fields *f, unsigned generation);
ssize_t objects_store_put_key(struct objects_store *st, const struct objects_store_key *k,
	const char *rv, const struct objects_spill_fields *f, unsigned generation);
/* Forgets record i; the last record takes its index. */
void objects_store_remove(struct objects_store *st, size_t i);
bool objects_store_rv_is(const struct objects_store *st, size_t i, const char *rv);
void objects_store_rv(const struct objects_store *st, size_t i, char *buf, size_t len);
void objects_store_key(const struct objects_store *st, size_t i, char *buf, size_t len);
/* Reads record i's fields into scratch (they point into it). Returns 0 or a
 * negative errno (-EIO when the file no longer holds what was written). */
int objects_store_read(const struct objects_store *st, size_t i, struct buf *scratch,
	struct objects_spill_fields *ret);
/* The spill file's size in bytes, and the bytes of it still in use. */
void objects_store_disk(const struct objects_store *st, uint64_t *ret_size, uint64_t *ret_live);

/* A copy of the records as they are now, readable from another thread while
 * the store goes on changing: it keeps the spill file open, and records are
 * only ever appended to it. Created and freed on the store's thread. */
struct objects_store_frozen;

int objects_store_freeze(struct objects_store *st, struct objects_store_frozen **ret_frozen);
size_t objects_store_frozen_count(const struct objects_store_frozen *fz);
/* Record i's key, resourceVersion (into key and rv, KEY_MAX and 64 bytes)
 * and fields (into scratch). Returns 0 or a negative errno. Any thread. */
int objects_store_frozen_read(const struct objects_store_frozen *fz, size_t i, char *key,
	size_t key_len, char *rv, size_t rv_len, struct buf *scratch,
	struct objects_spill_fields *ret);
void objects_store_frozen_free(struct objects_store_frozen *fz);

#endif

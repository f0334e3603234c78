#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/objects_store.h"

static struct objects_store st;
static struct buf scratch;

static void setup(void) {
	objects_store_init(&st, NULL);
	buf_init(&scratch, 0);
}

static void teardown(void) {
	objects_store_finish(&st);
	buf_finish(&scratch);
}

TestSuite(objects_store, .init = setup, .fini = teardown);

/* Object i's key: a UUID for most, namespace/name for every 7th (objects
 * without a uid), and a resourceVersion that is not a number for every 5th. */
static void key_of(size_t i, char *key, size_t len) {
	if (i % 7 == 0)
		snprintf(key, len, "ns-%zu/name-%zu", i % 13, i);
	else
		snprintf(key, len, "%08zx-1234-4abc-8def-%012zx", i, i * 2654435761u);
}

static void rv_of(size_t i, unsigned version, char *rv, size_t len) {
	if (i % 5 == 0)
		snprintf(rv, len, "v%zu.%u", i, version);
	else
		snprintf(rv, len, "%zu", i * 1000 + version);
}

static void json_of(size_t i, unsigned version, char *json, size_t len) {
	snprintf(json, len, "{\"metadata\":{\"name\":\"name-%zu\",\"v\":%u},\"spec\":\"%0*d\"}", i,
		version, (int)(i % 300), 0);
}

static ssize_t put(size_t i, unsigned version) {
	char key[128], rv[64], json[512], name[64];
	struct objects_spill_fields f = { .name = name, .ns = "default", .json = json, .typed = true };

	key_of(i, key, sizeof(key));
	rv_of(i, version, rv, sizeof(rv));
	json_of(i, version, json, sizeof(json));
	snprintf(name, sizeof(name), "name-%zu", i);
	f.json_len = strlen(json);
	return objects_store_put(&st, key, rv, &f, version);
}

static void check(size_t i, unsigned version) {
	char key[128], rv[64], json[512], got[64];
	struct objects_spill_fields f;
	ssize_t k;

	key_of(i, key, sizeof(key));
	k = objects_store_find(&st, key);
	cr_assert_geq(k, 0, "object %zu lost", i);
	rv_of(i, version, rv, sizeof(rv));
	cr_assert(objects_store_rv_is(&st, (size_t)k, rv), "object %zu: not at %s", i, rv);
	objects_store_rv(&st, (size_t)k, got, sizeof(got));
	cr_assert_str_eq(got, rv);
	objects_store_key(&st, (size_t)k, got, sizeof(got));
	cr_assert_str_eq(got, key);
	cr_assert_eq(objects_store_read(&st, (size_t)k, &scratch, &f), 0);
	json_of(i, version, json, sizeof(json));
	cr_assert_eq(f.json_len, strlen(json));
	cr_assert(memcmp(f.json, json, f.json_len) == 0, "object %zu: other bytes", i);
	cr_assert_str_eq(f.ns, "default");
	cr_assert(f.typed);
}

/* Puts, replacements and removals over thousands of keys keep every record
 * findable (the index moves entries back on removal, the dense array moves
 * its last record into the hole), with the bytes last written. */
Test(objects_store, many_objects_survive_updates_and_removals) {
	enum { N = 20000 };

	for (size_t i = 0; i < N; i++)
		cr_assert_geq(put(i, 1), 0);
	for (size_t i = 0; i < N; i += 3) {
		char key[128];
		ssize_t k;

		key_of(i, key, sizeof(key));
		k = objects_store_find(&st, key);
		cr_assert_geq(k, 0);
		objects_store_remove(&st, (size_t)k);
	}
	for (size_t i = 1; i < N; i += 3)
		cr_assert_geq(put(i, 2), 0);
	cr_assert_eq(st.n, N - (N + 2) / 3);
	for (size_t i = 0; i < N; i++) {
		char key[128];

		if (i % 3 == 0) {
			key_of(i, key, sizeof(key));
			cr_assert_lt(objects_store_find(&st, key), 0, "object %zu not forgotten", i);
			continue;
		}
		check(i, i % 3 == 1 ? 2 : 1);
	}
	/* A resourceVersion that only looks like a number is kept as written. */
	struct objects_spill_fields f = { .name = "z", .ns = "default" };
	char rv[64];
	ssize_t k = objects_store_put(&st, "zero/z", "007", &f, 1);
	cr_assert_geq(k, 0);
	objects_store_rv(&st, (size_t)k, rv, sizeof(rv));
	cr_assert_str_eq(rv, "007");
	cr_assert(!objects_store_rv_is(&st, (size_t)k, "7"));
}

/* Replacing objects leaves garbage in the spill file; once it outgrows the
 * live bytes and the minimum, the live records move to a new file, and a
 * frozen copy taken before still reads the old bytes from the old one. */
Test(objects_store, spill_file_is_compacted_and_frozen_copies_survive_it) {
	enum { BIG = 1 << 20 };
	char *json = malloc(BIG), key[128], rv[64];
	struct objects_spill_fields f = { .name = "big", .ns = "default", .json = json,
		.json_len = BIG };
	struct objects_store_frozen *fz = NULL;
	struct objects_spill *first;
	uint64_t size, live;

	cr_assert_not_null(json);
	memset(json, 'a', BIG);
	cr_assert_eq(objects_store_put(&st, "default/big", "1", &f, 1), 0);
	cr_assert_eq(objects_store_freeze(&st, &fz), 0);
	first = st.spill;
	for (unsigned v = 2; v < 60; v++) {
		memset(json, 'a' + (int)(v % 26), BIG);
		snprintf(rv, sizeof(rv), "%u", v);
		cr_assert_eq(objects_store_put(&st, "default/big", rv, &f, v), 0);
		objects_store_disk(&st, &size, &live);
		cr_assert_leq(size, 2 * live + OBJECTS_STORE_MIN_GARBAGE + BIG,
			"version %u: %llu bytes on disk for %llu live", v, (unsigned long long)size,
			(unsigned long long)live);
	}
	cr_assert_neq(st.spill, first, "never compacted");
	{
		struct objects_spill_fields got;

		cr_assert_eq(objects_store_frozen_count(fz), 1);
		cr_assert_eq(objects_store_frozen_read(fz, 0, key, sizeof(key), rv, sizeof(rv),
				     &scratch, &got),
			0);
		cr_assert_str_eq(key, "default/big");
		cr_assert_str_eq(rv, "1");
		cr_assert_eq(got.json_len, BIG);
		cr_assert_eq(got.json[0], 'a');
		cr_assert_eq(got.json[BIG - 1], 'a');
	}
	objects_store_frozen_free(fz);
	/* The table itself has the last version. */
	struct objects_spill_fields now;
	cr_assert_eq(objects_store_read(&st, 0, &scratch, &now), 0);
	cr_assert_eq(now.json[0], 'a' + 59 % 26);
	free(json);
}

/* More objects, until the write buffer has gone to the file whole and record
 * 0 is read back from the file, not from the buffer. */
static void push_past_buffer(void) {
	for (size_t i = 1000; st.spill->end == 0; i++)
		cr_assert_geq(put(i, 1), 0);
}

/* The file changed under the table (another process, a bad disk): the read
 * fails, no wrong bytes are handed out. */
Test(objects_store, damaged_spill_record_is_refused) {
	struct objects_spill_fields got;

	cr_assert_geq(put(1, 1), 0);
	push_past_buffer();
	cr_assert_eq(pwrite(st.spill->fd, "X", 1, 40), 1);
	cr_assert_eq(objects_store_read(&st, 0, &scratch, &got), -EIO);
}

/* Any one byte of a record changed, wherever it sits in the checksum's lanes
 * (32 bytes at a time, then 8, then single bytes): refused. */
Test(objects_store, any_damaged_byte_is_refused) {
	struct objects_spill_fields f = { .name = "n", .ns = "default", .typed = true }, got;
	char json[301];
	uint32_t len;

	memset(json, 'j', sizeof(json) - 1);
	json[sizeof(json) - 1] = '\0';
	f.json = json;
	f.json_len = sizeof(json) - 1;
	cr_assert_geq(objects_store_put(&st, "default/n", "1", &f, 1), 0);
	push_past_buffer();
	len = st.recs[0].len;
	cr_assert_gt(len, 300);
	for (uint32_t at = 0; at < len; at++) {
		char b, x;

		cr_assert_eq(pread(st.spill->fd, &b, 1, at), 1);
		x = (char)(b ^ 0x20);
		cr_assert_eq(pwrite(st.spill->fd, &x, 1, at), 1);
		cr_assert_eq(objects_store_read(&st, 0, &scratch, &got), -EIO, "byte %u of %u", at, len);
		cr_assert_eq(pwrite(st.spill->fd, &b, 1, at), 1);
	}
	cr_assert_eq(objects_store_read(&st, 0, &scratch, &got), 0);
	cr_assert_eq(got.json_len, 300);
}

/* The write buffer goes to the file whole, at multiples of its size, and
 * grows with the file to 256 KiB; records straddle its ends. Each of 6,000
 * objects (about 6 MB) reads back from the table (file, buffer, or both) and
 * from a frozen copy taken with a part-filled buffer (the file alone). */
Test(objects_store, records_across_the_write_buffer_read_back) {
	struct objects_store_frozen *fz = NULL;
	char key[128], rv[64], json[512];
	enum { N = 6000 };

	for (size_t i = 0; i < N; i++) {
		char big[1200], name[64];
		struct objects_spill_fields f = { .name = name, .ns = "default", .json = big,
			.typed = true };

		key_of(i, key, sizeof(key));
		rv_of(i, 1, rv, sizeof(rv));
		json_of(i, 1, json, sizeof(json));
		/* 300 to 1,100 bytes: record ends fall anywhere in the buffer */
		f.json_len = (size_t)snprintf(big, sizeof(big), "%s%*s", json, (int)(i * 37 % 800), "");
		snprintf(name, sizeof(name), "name-%zu", i);
		cr_assert_geq(objects_store_put(&st, key, rv, &f, 1), 0);
	}
	cr_assert_eq(st.spill->wcap, 256u << 10);
	cr_assert_eq(st.spill->end % st.spill->wcap, 0);
	cr_assert_gt(st.spill->wlen, 0);
	for (size_t i = 0; i < N; i++) {
		struct objects_spill_fields f;
		ssize_t k;

		key_of(i, key, sizeof(key));
		k = objects_store_find(&st, key);
		cr_assert_geq(k, 0);
		cr_assert_eq(objects_store_read(&st, (size_t)k, &scratch, &f), 0, "object %zu", i);
		json_of(i, 1, json, sizeof(json));
		cr_assert(memcmp(f.json, json, strlen(json)) == 0, "object %zu: other bytes", i);
		cr_assert_eq(f.json_len, strlen(json) + i * 37 % 800, "object %zu", i);
	}
	cr_assert_eq(objects_store_freeze(&st, &fz), 0);
	cr_assert_eq(objects_store_frozen_count(fz), N);
	for (size_t i = 0; i < N; i++) {
		struct objects_spill_fields f;
		char got_key[128], got_rv[64];

		cr_assert_eq(objects_store_frozen_read(fz, i, got_key, sizeof(got_key), got_rv,
				     sizeof(got_rv), &scratch, &f),
			0, "frozen record %zu", i);
		json_of(i, 1, json, sizeof(json));
		cr_assert(memcmp(f.json, json, strlen(json)) == 0, "frozen record %zu", i);
	}
	objects_store_frozen_free(fz);
}

/* References only: the spill record holds the name and namespace, no bytes. */
Test(objects_store, reference_records_have_no_bytes) {
	struct objects_spill_fields f = { .name = "c", .ns = "default" }, got;

	cr_assert_eq(objects_store_put(&st, "uid-c", "3", &f, 1), 0);
	cr_assert_eq(objects_store_read(&st, 0, &scratch, &got), 0);
	cr_assert_null(got.json);
	cr_assert_str_eq(got.name, "c");
	cr_assert_str_eq(got.ns, "default");
	cr_assert_null(got.kind);
}

/* Under --state-dir the spill file is there but unlinked: nothing is left
 * in the directory, whatever the exit. */
Test(objects_store, spill_file_in_the_state_dir_leaves_nothing) {
	char dir[] = "/tmp/objects-store-XXXXXX";
	struct dirent *e;
	DIR *d;
	int entries = 0;

	cr_assert_not_null(mkdtemp(dir));
	objects_store_finish(&st);
	objects_store_init(&st, dir);
	cr_assert_geq(put(2, 1), 0);
	cr_assert_not_null(st.spill);
	d = opendir(dir);
	while ((e = readdir(d)))
		entries += e->d_name[0] != '.';
	closedir(d);
	cr_assert_eq(entries, 0);
	check(2, 1);
	objects_store_finish(&st);
	cr_assert_eq(rmdir(dir), 0);
}

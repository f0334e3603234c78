#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/objects_store.h"

/* The format and the trade-off are in objects_store.h. */

#define OFF_MASK ((UINT64_C(1) << 48) - 1)
#define F_KEY_UUID (UINT64_C(1) << 63)
#define F_RV_NUM (UINT64_C(1) << 62)

#define ARENA_MIN_GARBAGE (64u << 10)

_Static_assert(sizeof(struct objects_store_rec) == 48, "a record is 48 bytes");

/* ---------------- hashing ---------------- */

static uint64_t hash_key(const char *s, size_t *ret_len) {
	uint64_t h = UINT64_C(1469598103934665603);
	const char *p = s;

	for (; *p; p++) {
		h ^= (unsigned char)*p;
		h *= UINT64_C(1099511628211);
	}
	*ret_len = (size_t)(p - s);
	return h;
}

/* ---------------- keys and versions ---------------- */

#define qkey objects_store_key

static int hexval(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A lowercase UUID (as Kubernetes writes uids) fits in 16 bytes, exactly. */
static bool parse_uuid(const char *s, size_t len, uint8_t out[16]) {
	size_t j = 0;

	if (len != 36)
		return false;
	for (size_t i = 0; i < 36;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return false;
			continue;
		}
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[j++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return true;
}

static void format_uuid(const uint8_t b[16], char *out) {
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 15];
	}
	*p = '\0';
}

void objects_store_key_of(const char *key, struct qkey *q) {
	uint64_t h = hash_key(key, &q->len);

	q->s = key;
	q->hash = (uint32_t)(h ^ (h >> 32));
	q->uuid = parse_uuid(key, q->len, q->bytes);
}

/* A resourceVersion is opaque, but the API server's are decimal numbers:
 * those (without a leading zero, up to 18 digits) are kept as one. */
static bool rv_number(const char *rv, uint64_t *ret) {
	uint64_t v = 0;
	size_t n = 0;

	if (rv[0] == '0' && rv[1])
		return false;
	for (; rv[n]; n++) {
		if (rv[n] < '0' || rv[n] > '9' || n == 18)
			return false;
		v = v * 10 + (uint64_t)(rv[n] - '0');
	}
	if (!n)
		return false;
	*ret = v;
	return true;
}

static void arena_ref(uint64_t packed, const char *strs, const char **ret, size_t *ret_len) {
	*ret = strs + (packed >> 16);
	*ret_len = (size_t)(packed & 0xffff);
}

static uint64_t key_packed(const struct objects_store_rec *r) {
	uint64_t v;

	memcpy(&v, r->key, sizeof(v));
	return v;
}

static void write_key(const struct objects_store_rec *r, const char *strs, char *buf, size_t len) {
	const char *s;
	size_t n;

	if (r->off & F_KEY_UUID) {
		char u[37];

		format_uuid(r->key, u);
		snprintf(buf, len, "%s", u);
		return;
	}
	arena_ref(key_packed(r), strs, &s, &n);
	snprintf(buf, len, "%.*s", (int)n, s);
}

static void write_rv(const struct objects_store_rec *r, const char *strs, char *buf, size_t len) {
	const char *s;
	size_t n;

	if (r->off & F_RV_NUM) {
		snprintf(buf, len, "%llu", (unsigned long long)r->rv);
		return;
	}
	arena_ref(r->rv, strs, &s, &n);
	snprintf(buf, len, "%.*s", (int)n, s);
}

static bool key_equal(const struct objects_store *st, const struct objects_store_rec *r,
	const struct qkey *q) {
	const char *s;
	size_t n;

	if (r->khash != (uint32_t)q->hash)
		return false;
	if (q->uuid)
		return (r->off & F_KEY_UUID) && memcmp(r->key, q->bytes, 16) == 0;
	if (r->off & F_KEY_UUID)
		return false;
	arena_ref(key_packed(r), st->strs, &s, &n);
	return n == q->len && memcmp(s, q->s, n) == 0;
}

/* Appends a string to the arena. Returns its place, packed, or -ENOMEM. */
static int arena_add(struct objects_store *st, const char *s, size_t len, uint64_t *ret) {
	if (st->strs_len + len > st->strs_cap) {
		size_t cap = st->strs_cap ? st->strs_cap : 4096;
		char *n;

		while (cap < st->strs_len + len)
			cap *= 2;
		n = realloc(st->strs, cap);
		if (!n)
			return -ENOMEM;
		st->strs = n;
		st->strs_cap = cap;
	}
	memcpy(st->strs + st->strs_len, s, len);
	*ret = (uint64_t)st->strs_len << 16 | len;
	st->strs_len += len;
	return 0;
}

/* ---------------- the index ---------------- */

static size_t slot_of(const struct objects_store *st, size_t i) {
	size_t mask = st->nslots - 1, s = st->recs[i].khash & mask;

	while (st->slots[s] != i + 1)
		s = (s + 1) & mask;
	return s;
}

static int index_grow(struct objects_store *st, size_t want) {
	size_t n = st->nslots ? st->nslots : 64, mask;
	uint32_t *slots;

	while (want * 4 > n * 3)
		n *= 2;
	if (n == st->nslots)
		return 0;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	mask = n - 1;
	for (size_t i = 0; i < st->n; i++) {
		size_t s = st->recs[i].khash & mask;

		while (slots[s])
			s = (s + 1) & mask;
		slots[s] = (uint32_t)(i + 1);
	}
	free(st->slots);
	st->slots = slots;
	st->nslots = n;
	return 0;
}

/* Empties slot s, moving later entries of its run back (no tombstones). */
static void slot_clear(struct objects_store *st, size_t s) {
	size_t mask = st->nslots - 1, j = s;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!st->slots[j])
			break;
		home = st->recs[st->slots[j] - 1].khash & mask;
		/* Stays when its home lies cyclically in (s, j]. */
		if (s <= j ? (home > s && home <= j) : (home > s || home <= j))
			continue;
		st->slots[s] = st->slots[j];
		s = j;
	}
	st->slots[s] = 0;
}

static ssize_t find(const struct objects_store *st, const struct qkey *q) {
	size_t mask, s;

	if (!st->nslots)
		return -1;
	mask = st->nslots - 1;
	for (s = (uint32_t)q->hash & mask; st->slots[s]; s = (s + 1) & mask)
		if (key_equal(st, &st->recs[st->slots[s] - 1], q))
			return (ssize_t)st->slots[s] - 1;
	return -1;
}

/* ---------------- the store ---------------- */

void objects_store_init(struct objects_store *st, const char *dir) {
	*st = (struct objects_store){ .dir = dir };
}

void objects_store_finish(struct objects_store *st) {
	if (!st)
		return;
	free(st->recs);
	free(st->slots);
	free(st->strs);
	objects_spill_unref(st->spill);
	*st = (struct objects_store){ .dir = st->dir };
}

ssize_t objects_store_find(const struct objects_store *st, const char *key) {
	struct qkey q;

	objects_store_key_of(key, &q);
	return find(st, &q);
}

ssize_t objects_store_find_key(const struct objects_store *st, const struct objects_store_key *k) {
	return find(st, k);
}

static bool arena_key(const struct objects_store_rec *r) {
	return !(r->off & F_KEY_UUID);
}

static bool arena_rv(const struct objects_store_rec *r) {
	return !(r->off & F_RV_NUM);
}

/* Rewrites the arena without its garbage, once that is most of it. */
static void arena_compact(struct objects_store *st) {
	char *n;
	size_t len = 0, cap;

	if (st->strs_garbage < ARENA_MIN_GARBAGE || st->strs_garbage * 2 < st->strs_len)
		return;
	cap = st->strs_len - st->strs_garbage + 1;
	n = malloc(cap);
	if (!n)
		return; /* later */
	for (size_t i = 0; i < st->n; i++) {
		struct objects_store_rec *r = &st->recs[i];
		const char *s;
		size_t sl;
		uint64_t v;

		if (arena_key(r)) {
			arena_ref(key_packed(r), st->strs, &s, &sl);
			memcpy(n + len, s, sl);
			v = (uint64_t)len << 16 | sl;
			memcpy(r->key, &v, sizeof(v));
			len += sl;
		}
		if (arena_rv(r)) {
			arena_ref(r->rv, st->strs, &s, &sl);
			memcpy(n + len, s, sl);
			r->rv = (uint64_t)len << 16 | sl;
			len += sl;
		}
	}
	free(st->strs);
	st->strs = n;
	st->strs_len = len;
	st->strs_cap = cap;
	st->strs_garbage = 0;
}

/* Copies the live records to a new spill file once the garbage outgrows
 * them (so the file stays under twice its live bytes plus the minimum):
 * O(live bytes), amortised over at least as many bytes appended. A frozen
 * copy still reading the old file keeps it open. On failure the old file
 * stays. */
static void spill_compact(struct objects_store *st) {
	struct objects_spill *old = st->spill, *sp = NULL;
	uint64_t size, *offs = NULL;
	struct buf scratch;
	int r;

	if (!old)
		return;
	size = old->end + old->wlen;
	if (size - old->live <= old->live || size - old->live <= OBJECTS_STORE_MIN_GARBAGE)
		return;
	buf_init(&scratch, 0);
	offs = malloc((st->n ? st->n : 1) * sizeof(*offs));
	r = offs ? objects_spill_open(st->dir, &sp) : -ENOMEM;
	for (size_t i = 0; r == 0 && i < st->n; i++) {
		struct objects_store_rec *rec = &st->recs[i];

		if (scratch.cap < rec->len + 1u) {
			char *n = realloc(scratch.data, rec->len + 1u);

			if (!n) {
				r = -ENOMEM;
				break;
			}
			scratch.data = n;
			scratch.cap = rec->len + 1u;
		}
		r = objects_spill_read_raw(old, rec->off & OFF_MASK, rec->len, scratch.data);
		if (r == 0)
			r = objects_spill_append_raw(sp, scratch.data, rec->len, &offs[i]);
	}
	if (r == 0) {
		for (size_t i = 0; i < st->n; i++)
			st->recs[i].off = (st->recs[i].off & ~OFF_MASK) | offs[i];
		st->spill = sp;
		sp = old;
	}
	objects_spill_unref(sp);
	free(offs);
	buf_finish(&scratch);
}

ssize_t objects_store_put(struct objects_store *st, const char *key, const char *rv,
	const struct objects_spill_fields *f, unsigned generation) {
	struct qkey q;

	objects_store_key_of(key, &q);
	return objects_store_put_key(st, &q, rv, f, generation);
}

ssize_t objects_store_put_key(struct objects_store *st, const struct objects_store_key *k,
	const char *rv, const struct objects_spill_fields *f, unsigned generation) {
	struct objects_store_rec *r;
	const struct qkey q = *k;
	const char *key = k->s;
	uint64_t off, rvv = 0, kv = 0;
	uint32_t len, sum;
	ssize_t i;
	bool rv_num;
	int e;

	if (q.len > 0xffff)
		return -EINVAL;
	i = find(st, &q);
	if (i < 0) {
		/* Room first, so that nothing below fails half-way. */
		if (st->n == st->cap) {
			size_t cap = st->cap ? st->cap * 2 : 64;
			struct objects_store_rec *n = realloc(st->recs, cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			st->recs = n;
			st->cap = cap;
		}
		e = index_grow(st, st->n + 1);
		if (e < 0)
			return e;
	}
	if (!st->spill) {
		e = objects_spill_open(st->dir, &st->spill);
		if (e < 0)
			return e;
	}
	rv_num = rv_number(rv, &rvv);
	if (!rv_num) {
		e = arena_add(st, rv, strlen(rv), &rvv);
		if (e < 0)
			return e;
	}
	if (i < 0 && !q.uuid) {
		e = arena_add(st, key, q.len, &kv);
		if (e < 0) {
			if (!rv_num)
				st->strs_len -= rvv & 0xffff;
			return e;
		}
	}
	e = objects_spill_write(st->spill, f, &off, &len, &sum);
	if (e < 0) {
		/* The strings just added are the last in the arena. */
		st->strs_len -= (i < 0 && !q.uuid ? q.len : 0) + (rv_num ? 0 : (rvv & 0xffff));
		return e;
	}
	if (i < 0) {
		i = (ssize_t)st->n++;
		r = &st->recs[i];
		memset(r, 0, sizeof(*r));
		r->khash = (uint32_t)q.hash;
		if (q.uuid)
			memcpy(r->key, q.bytes, 16);
		else
			memcpy(r->key, &kv, sizeof(kv));
		r->off = q.uuid ? F_KEY_UUID : 0;
		{
			size_t s = (uint32_t)q.hash & (st->nslots - 1);

			while (st->slots[s])
				s = (s + 1) & (st->nslots - 1);
			st->slots[s] = (uint32_t)(i + 1);
		}
	} else {
		r = &st->recs[i];
		if (arena_rv(r))
			st->strs_garbage += r->rv & 0xffff;
		st->spill->live -= r->len;
	}
	r->rv = rvv;
	r->off = (r->off & F_KEY_UUID) | (rv_num ? F_RV_NUM : 0) | off;
	r->len = len;
	r->sum = sum;
	r->generation = generation;
	arena_compact(st);
	spill_compact(st);
	return i;
}

void objects_store_remove(struct objects_store *st, size_t i) {
	struct objects_store_rec *r = &st->recs[i];
	size_t last = st->n - 1;

	if (arena_key(r))
		st->strs_garbage += key_packed(r) & 0xffff;
	if (arena_rv(r))
		st->strs_garbage += r->rv & 0xffff;
	if (st->spill)
		st->spill->live -= r->len;
	slot_clear(st, slot_of(st, i));
	if (i != last) {
		st->slots[slot_of(st, last)] = (uint32_t)(i + 1);
		st->recs[i] = st->recs[last];
	}
	st->n--;
	arena_compact(st);
	spill_compact(st);
}

bool objects_store_rv_is(const struct objects_store *st, size_t i, const char *rv) {
	const struct objects_store_rec *r = &st->recs[i];
	const char *s;
	size_t n;
	uint64_t v;

	if (r->off & F_RV_NUM)
		return rv_number(rv, &v) && v == r->rv;
	arena_ref(r->rv, st->strs, &s, &n);
	return strlen(rv) == n && memcmp(rv, s, n) == 0;
}

void objects_store_rv(const struct objects_store *st, size_t i, char *buf, size_t len) {
	write_rv(&st->recs[i], st->strs, buf, len);
}

void objects_store_key(const struct objects_store *st, size_t i, char *buf, size_t len) {
	write_key(&st->recs[i], st->strs, buf, len);
}

int objects_store_read(const struct objects_store *st, size_t i, struct buf *scratch,
	struct objects_spill_fields *ret) {
	const struct objects_store_rec *r = &st->recs[i];

	if (!st->spill)
		return -EIO;
	return objects_spill_read(st->spill, r->off & OFF_MASK, r->len, r->sum, false, scratch, ret);
}

void objects_store_disk(const struct objects_store *st, uint64_t *ret_size, uint64_t *ret_live) {
	*ret_size = st->spill ? st->spill->end + st->spill->wlen : 0;
	*ret_live = st->spill ? st->spill->live : 0;
}

/* ---------------- frozen copies ---------------- */

struct objects_store_frozen {
	struct objects_store_rec *recs;
	size_t n;
	char *strs;
	struct objects_spill *spill;
};

int objects_store_freeze(struct objects_store *st, struct objects_store_frozen **ret_frozen) {
	struct objects_store_frozen *fz = calloc(1, sizeof(*fz));
	int r = -ENOMEM;

	if (!fz)
		return r;
	/* The other thread reads the file only: everything must be on it. */
	r = objects_spill_flush(st->spill);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	fz->n = st->n;
	fz->recs = malloc((st->n ? st->n : 1) * sizeof(*fz->recs));
	fz->strs = malloc(st->strs_len + 1);
	if (!fz->recs || !fz->strs)
		goto fail;
	if (st->n)
		memcpy(fz->recs, st->recs, st->n * sizeof(*fz->recs));
	if (st->strs_len)
		memcpy(fz->strs, st->strs, st->strs_len);
	fz->spill = st->spill;
	if (fz->spill)
		objects_spill_ref(fz->spill);
	*ret_frozen = fz;
	return 0;
fail:
	objects_store_frozen_free(fz);
	return r;
}

size_t objects_store_frozen_count(const struct objects_store_frozen *fz) {
	return fz->n;
}

int objects_store_frozen_read(const struct objects_store_frozen *fz, size_t i, char *key,
	size_t key_len, char *rv, size_t rv_len, struct buf *scratch,
	struct objects_spill_fields *ret) {
	const struct objects_store_rec *r = &fz->recs[i];

	write_key(r, fz->strs, key, key_len);
	write_rv(r, fz->strs, rv, rv_len);
	if (!fz->spill)
		return -EIO;
	return objects_spill_read(fz->spill, r->off & OFF_MASK, r->len, r->sum, true, scratch, ret);
}

void objects_store_frozen_free(struct objects_store_frozen *fz) {
	if (!fz)
		return;
	free(fz->recs);
	free(fz->strs);
	objects_spill_unref(fz->spill);
	free(fz);
}

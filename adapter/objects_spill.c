#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "adapter/objects_spill.h"

/* The object table's spill file (objects_store.h says why and when). */

/* The write buffer goes to the file only whole, at an offset that is a
 * multiple of its size (a record may straddle two), and grows with the file
 * to 256 KiB, staying under an eighth of it: the page cache takes aligned
 * writes of 256 KiB in large folios, at half the kernel time per byte of
 * the 16 KiB writes at any offset it had before (bench/profile --record:
 * ext4's write_begin per page was most of pwrite's share). */
#define WBUF_MIN (16u << 10)
#define WBUF_MAX (256u << 10)

/* A spill record: this header, then name, namespace, kind and apiVersion
 * (each NUL-terminated; kind and apiVersion only when flagged), then the
 * object's bytes. */
enum { H_TYPED = 1, H_JSON = 2, H_KIND = 4, H_API = 8 };
struct spill_hdr {
	uint16_t name_len, ns_len, kind_len, api_len;
	uint32_t json_len;
	uint32_t flags;
};

/* A checksum of bytes, a word at a time (objects are a few KB). */
static uint64_t lane(uint64_t h, const unsigned char *s) {
	uint64_t w;

	memcpy(&w, s, 8);
	h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
	return h ^ (h >> 29);
}

static uint64_t mix(uint64_t h, const void *p, size_t n) {
	const unsigned char *s = p;

	/* Four independent lanes over 32 bytes at a time: one chain waits for
	 * each multiply (about five cycles per 8 bytes of every object). */
	if (n >= 32) {
		uint64_t a = h, b = ~h, c = h ^ UINT64_C(0x5555555555555555), d = h + 1;

		for (; n >= 32; s += 32, n -= 32) {
			a = lane(a, s);
			b = lane(b, s + 8);
			c = lane(c, s + 16);
			d = lane(d, s + 24);
		}
		h = a ^ (b << 16 | b >> 48) ^ (c << 32 | c >> 32) ^ (d << 48 | d >> 16);
	}
	for (; n >= 8; s += 8, n -= 8) {
		uint64_t w;

		memcpy(&w, s, 8);
		h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
		h ^= h >> 29;
	}
	for (; n; s++, n--)
		h = (h ^ *s) * UINT64_C(1099511628211);
	return h;
}

static uint32_t fold(uint64_t h) {
	return (uint32_t)(h ^ (h >> 32));
}

/* ---------------- the spill file ---------------- */

static int write_at(int fd, const void *p, size_t len, uint64_t off) {
	const char *s = p;

	while (len) {
		ssize_t n = pwrite(fd, s, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		s += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int read_at(int fd, void *p, size_t len, uint64_t off) {
	char *s = p;

	while (len) {
		ssize_t n = pread(fd, s, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO; /* cut short: not what was written */
		s += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

void objects_spill_ref(struct objects_spill *sp) {
	sp->refs++;
}

void objects_spill_unref(struct objects_spill *sp) {
	if (!sp || --sp->refs)
		return;
	close(sp->fd);
	free(sp->wbuf);
	free(sp);
}

int objects_spill_open(const char *dir, struct objects_spill **ret) {
	struct objects_spill *sp = calloc(1, sizeof(*sp));
	const char *d = dir;

	if (!sp)
		return -ENOMEM;
	sp->wbuf = malloc(WBUF_MIN);
	sp->wcap = WBUF_MIN;
	if (!sp->wbuf) {
		free(sp);
		return -ENOMEM;
	}
	if (!d)
		d = getenv("TMPDIR");
	if (!d || !*d)
		d = "/tmp";
	/* Unlinked from the start: nothing is left behind, whatever the exit. */
	sp->fd = open(d, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (sp->fd < 0)
		sp->fd = memfd_create("objects", MFD_CLOEXEC);
	if (sp->fd < 0) {
		int r = -errno;

		free(sp->wbuf);
		free(sp);
		return r;
	}
	sp->refs = 1;
	*ret = sp;
	return 0;
}

/* Puts what the buffer holds on the file. The buffer keeps it: it goes
 * again, whole, when it is full (the same bytes over the same bytes). */
int objects_spill_flush(struct objects_spill *sp) {
	if (!sp || !sp->wlen)
		return 0;
	return write_at(sp->fd, sp->wbuf, sp->wlen, sp->end);
}

/* Writes the full buffer and starts the next one, twice as big when the
 * file has grown to eight times that (then end is a multiple of it). */
static int write_full(struct objects_spill *sp) {
	int r = write_at(sp->fd, sp->wbuf, sp->wcap, sp->end);

	if (r < 0)
		return r;
	sp->end += sp->wcap;
	sp->wlen = 0;
	if (sp->wcap < WBUF_MAX && sp->end >= 16 * (uint64_t)sp->wcap &&
		sp->end % (2 * sp->wcap) == 0) {
		char *n = realloc(sp->wbuf, 2 * sp->wcap);

		if (n) {
			sp->wbuf = n;
			sp->wcap *= 2;
		}
	}
	return 0;
}

/* Appends a record made of n parts. Returns 0 and its offset. */
static int spill_append(struct objects_spill *sp, const struct iovec *parts, int n,
	uint64_t *ret_off) {
	uint64_t off = sp->end + sp->wlen;

	for (int i = 0; i < n; i++) {
		const char *p = parts[i].iov_base;
		size_t len = parts[i].iov_len;

		while (len) {
			size_t k;

			if (sp->wlen == sp->wcap) {
				int r = write_full(sp);

				if (r < 0)
					return r; /* the caller drops the record */
			}
			k = sp->wcap - sp->wlen < len ? sp->wcap - sp->wlen : len;
			memcpy(sp->wbuf + sp->wlen, p, k);
			sp->wlen += k;
			p += k;
			len -= k;
		}
	}
	*ret_off = off;
	return 0;
}

/* Reads len bytes at off. file_only: from another thread, which sees only
 * what was flushed before it was handed the file. */
static int spill_read(const struct objects_spill *sp, uint64_t off, size_t len, char *dst,
	bool file_only) {
	if (!file_only && off + len > sp->end) {
		/* In the buffer, or its start on the file and the rest in the
		 * buffer (a record may straddle a full buffer's end). */
		size_t head = off < sp->end ? (size_t)(sp->end - off) : 0;

		if (off + len - sp->end > sp->wlen)
			return -EIO;
		if (head) {
			int r = read_at(sp->fd, dst, head, off);

			if (r < 0)
				return r;
		}
		memcpy(dst + head, sp->wbuf + (off + head - sp->end), len - head);
		return 0;
	}
	return read_at(sp->fd, dst, len, off);
}

/* The record's parts for f: a header and the strings in hs (at least
 * 4 * 513 bytes), then the object's bytes. Returns the total length. */
static size_t build(const struct objects_spill_fields *f, struct spill_hdr *h, char *hs,
	struct iovec parts[3]) {
	size_t sl = 0;
	const char *strs[4] = { f->name ? f->name : "", f->ns ? f->ns : "", f->kind,
		f->api_version };
	uint16_t *lens[4] = { &h->name_len, &h->ns_len, &h->kind_len, &h->api_len };

	memset(h, 0, sizeof(*h));
	for (int i = 0; i < 4; i++) {
		size_t n;

		if (!strs[i]) {
			*lens[i] = 0;
			continue;
		}
		n = strnlen(strs[i], 512);
		*lens[i] = (uint16_t)n;
		memcpy(hs + sl, strs[i], n);
		hs[sl + n] = '\0';
		sl += n + 1;
	}
	h->flags = (f->typed ? H_TYPED : 0) | (f->json ? H_JSON : 0) | (f->kind ? H_KIND : 0) |
		(f->api_version ? H_API : 0);
	h->json_len = f->json ? (uint32_t)f->json_len : 0;
	parts[0] = (struct iovec){ h, sizeof(*h) };
	parts[1] = (struct iovec){ hs, sl };
	parts[2] = (struct iovec){ (void *)(f->json ? f->json : ""), h->json_len };
	return sizeof(*h) + sl + h->json_len;
}

static uint32_t checksum(const struct iovec parts[3]) {
	uint64_t h = UINT64_C(0x243f6a8885a308d3);

	for (int i = 0; i < 3; i++)
		h = mix(h, parts[i].iov_base, parts[i].iov_len);
	return fold(h);
}

/* Reads a record (len bytes, checksum sum) into scratch and points ret at
 * its fields. */
int objects_spill_read(const struct objects_spill *sp, uint64_t off, uint32_t len, uint32_t sum,
	bool file_only, struct buf *scratch, struct objects_spill_fields *ret) {
	struct spill_hdr h;
	struct iovec parts[3];
	const char *p, *strs[4] = { 0 };
	size_t sl = 0;
	uint16_t lens[4];
	int r;

	if (!sp || len < sizeof(h))
		return -EIO;
	if (scratch->cap < (size_t)len + 1) {
		char *n = realloc(scratch->data, (size_t)len + 1);

		if (!n)
			return -ENOMEM;
		scratch->data = n;
		scratch->cap = (size_t)len + 1;
	}
	r = spill_read(sp, off, len, scratch->data, file_only);
	if (r < 0)
		return r;
	scratch->len = len;
	scratch->data[len] = '\0';
	memcpy(&h, scratch->data, sizeof(h));
	lens[0] = h.name_len;
	lens[1] = h.ns_len;
	lens[2] = h.kind_len;
	lens[3] = h.api_len;
	p = scratch->data + sizeof(h);
	for (int i = 0; i < 4; i++) {
		if (i >= 2 && !(h.flags & (i == 2 ? H_KIND : H_API)))
			continue;
		if (sizeof(h) + sl + lens[i] + 1 > len)
			return -EIO;
		strs[i] = p + sl;
		sl += (size_t)lens[i] + 1;
	}
	if (sizeof(h) + sl + h.json_len != len)
		return -EIO;
	parts[0] = (struct iovec){ scratch->data, sizeof(h) };
	parts[1] = (struct iovec){ (void *)p, sl };
	parts[2] = (struct iovec){ (void *)(p + sl), h.json_len };
	if (checksum(parts) != sum)
		return -EIO;
	*ret = (struct objects_spill_fields){ .name = strs[0], .ns = strs[1], .kind = strs[2],
		.api_version = strs[3], .json = h.flags & H_JSON ? p + sl : NULL,
		.json_len = h.json_len, .typed = h.flags & H_TYPED };
	return 0;
}


int objects_spill_write(struct objects_spill *sp, const struct objects_spill_fields *f,
	uint64_t *ret_off, uint32_t *ret_len, uint32_t *ret_sum) {
	struct spill_hdr h;
	struct iovec parts[3];
	char hs[4 * 513];
	size_t total = build(f, &h, hs, parts);
	int r;

	if (total > UINT32_MAX)
		return -E2BIG;
	r = spill_append(sp, parts, 3, ret_off);
	if (r < 0)
		return r;
	*ret_len = (uint32_t)total;
	*ret_sum = checksum(parts);
	sp->live += total;
	return 0;
}

int objects_spill_read_raw(const struct objects_spill *sp, uint64_t off, size_t len, char *dst) {
	return spill_read(sp, off, len, dst, false);
}

int objects_spill_append_raw(struct objects_spill *sp, const char *data, size_t len,
	uint64_t *ret_off) {
	struct iovec part = { (void *)data, len };
	int r = spill_append(sp, &part, 1, ret_off);

	if (r == 0)
		sp->live += len;
	return r;
}

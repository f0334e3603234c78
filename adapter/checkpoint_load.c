#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <yajl/yajl_parse.h>

#include "adapter/checkpoint.h"
#include "checkpoint_internal.h"

/* The checkpoint file's loader: its own reader of header lines and payloads
 * (the format is in checkpoint.h), with a flat yajl callback parser. */

#define HEADER_MAX 16384 /* a record's header line: names, ids and counts */

/* ---------------- loading ---------------- */

/* One record's header: a flat JSON object of strings, integers and booleans. */
struct header {
	char type[16];
	char key[2 * KOBJ_NAME_MAX + 2];
	char rv[128];
	char name[KOBJ_NAME_MAX];
	char ns[KOBJ_NAME_MAX];
	char kind[256];
	char api_version[KOBJ_NAME_MAX];
	char uid[64];
	char op[8];
	char id[40];
	char time[64];
	char sha256[72];
	long long version, bytes, records;
	bool relist, typed;
	bool has_bytes;
	unsigned depth;
	const struct field *cur; /* the key just read; NULL: ignored */
	bool bad;
};

enum field_type { FIELD_STR, FIELD_INT, FIELD_BOOL };

struct field {
	const char *name;
	enum field_type type;
	size_t off, size;
};

#define STR(n, m) { n, FIELD_STR, offsetof(struct header, m), sizeof(((struct header *)0)->m) }
#define NUM(n, m) { n, FIELD_INT, offsetof(struct header, m), 0 }
#define FLAG(n, m) { n, FIELD_BOOL, offsetof(struct header, m), 0 }

static const struct field fields[] = {
	STR("type", type), STR("key", key), STR("rv", rv), STR("name", name),
	STR("namespace", ns), STR("kind", kind), STR("apiVersion", api_version), STR("uid", uid),
	STR("op", op), STR("id", id), STR("time", time), STR("sha256", sha256),
	NUM("version", version), NUM("bytes", bytes), NUM("records", records),
	FLAG("relist", relist), FLAG("typed", typed),
};

static int on_bad(void *ctx) {
	((struct header *)ctx)->bad = true;
	return 0;
}

static int on_bool(void *ctx, int value) {
	struct header *h = ctx;

	if (!h->cur || h->cur->type != FIELD_BOOL)
		return on_bad(ctx);
	*(bool *)((char *)h + h->cur->off) = value;
	return 1;
}

static int on_integer(void *ctx, long long value) {
	struct header *h = ctx;

	if (!h->cur || h->cur->type != FIELD_INT || value < 0)
		return on_bad(ctx);
	*(long long *)((char *)h + h->cur->off) = value;
	if (h->cur->off == offsetof(struct header, bytes))
		h->has_bytes = true;
	return 1;
}

static int on_string(void *ctx, const unsigned char *s, size_t len) {
	struct header *h = ctx;
	char *to;

	if (!h->cur || h->cur->type != FIELD_STR || len >= h->cur->size || memchr(s, 0, len))
		return on_bad(ctx);
	to = (char *)h + h->cur->off;
	memcpy(to, s, len);
	to[len] = '\0';
	return 1;
}

static int on_double(void *ctx, double value) {
	(void)value;
	return on_bad(ctx);
}

static int on_start_map(void *ctx) {
	struct header *h = ctx;

	/* Only the outer object: no nesting, whatever the line holds. */
	return h->depth++ ? on_bad(ctx) : 1;
}

static int on_key(void *ctx, const unsigned char *s, size_t len) {
	struct header *h = ctx;

	h->cur = NULL;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strlen(fields[i].name) == len && memcmp(fields[i].name, s, len) == 0)
			h->cur = &fields[i];
	/* An unknown key is refused too: a later format says so in its version. */
	return h->cur ? 1 : on_bad(ctx);
}

static int on_end_map(void *ctx) {
	(void)ctx;
	return 1;
}

static const yajl_callbacks header_callbacks = {
	.yajl_null = on_bad,
	.yajl_boolean = on_bool,
	.yajl_integer = on_integer,
	.yajl_double = on_double,
	.yajl_string = on_string,
	.yajl_start_map = on_start_map,
	.yajl_map_key = on_key,
	.yajl_end_map = on_end_map,
	.yajl_start_array = on_bad,
	.yajl_end_array = on_bad,
};

struct loader {
	FILE *f;
	EVP_MD_CTX *md; /* over every byte before the end record */
	size_t max_record;
	size_t newlines; /* lines read so far */
	size_t records;
	char line[HEADER_MAX + 1];
	size_t len;
	struct header h;
	struct checkpoint_state *cp;
	const struct cevent_params *params;
	struct checkpoint_watch *cur;
	struct checkpoint_load_error *err;
};

/* Records what is wrong and where (the record's line); returns -EBADMSG. */
static int damaged(struct loader *l, size_t line, const char *fmt, ...) {
	va_list ap;
	int n;

	l->err->line = line;
	n = snprintf(l->err->reason, sizeof(l->err->reason), "damaged checkpoint: ");
	va_start(ap, fmt);
	vsnprintf(l->err->reason + n, sizeof(l->err->reason) - (size_t)n, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static void digest(struct loader *l, const void *p, size_t len) {
	EVP_DigestUpdate(l->md, p, len);
}

/* Reads one header line into l->line. Returns 0, 1 at the end of the file,
 * or -EBADMSG. */
static int read_header(struct loader *l) {
	size_t n = 0;
	int c;

	while ((c = getc_unlocked(l->f)) != EOF && c != '\n') {
		if (n == HEADER_MAX)
			return damaged(l, l->newlines + 1, "a record header over %d bytes", HEADER_MAX);
		l->line[n++] = (char)c;
	}
	if (c == EOF && ferror(l->f))
		return damaged(l, l->newlines + 1, "read error: %s", strerror(errno));
	if (c == EOF && n == 0)
		return 1;
	if (c == EOF)
		return damaged(l, l->newlines + 1, "the last line is cut short (no newline)");
	l->line[n] = '\0';
	l->len = n;
	l->newlines++;
	return 0;
}

static int parse_header(struct loader *l) {
	yajl_handle y;
	yajl_status st;

	memset(&l->h, 0, sizeof(l->h));
	y = yajl_alloc(&header_callbacks, NULL, &l->h);
	if (!y)
		return -ENOMEM;
	yajl_config(y, yajl_dont_validate_strings, 1);
	st = yajl_parse(y, (const unsigned char *)l->line, l->len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(y);
	yajl_free(y);
	if (st != yajl_status_ok || l->h.bad || !l->h.type[0])
		return damaged(l, l->newlines, "not a record header");
	return 0;
}

/* Reads the payload the header announces: exactly that many bytes, then a
 * newline. Returns it (malloc'd, NUL-terminated) in *ret. */
static int read_payload(struct loader *l, char **ret) {
	size_t line = l->newlines, len;
	char *p;

	if (!l->h.has_bytes)
		return damaged(l, line, "a %s record without its bytes", l->h.type);
	if ((unsigned long long)l->h.bytes > l->max_record)
		return damaged(l, line, "a record of %lld bytes, over the limit of %zu", l->h.bytes,
			l->max_record);
	len = (size_t)l->h.bytes;
	p = malloc(len + 1);
	if (!p)
		return -ENOMEM;
	if (fread(p, 1, len, l->f) != len || getc_unlocked(l->f) != '\n') {
		free(p);
		return damaged(l, line, "a record's %zu bytes are cut short", len);
	}
	p[len] = '\0';
	digest(l, p, len);
	digest(l, "\n", 1);
	l->newlines++;
	for (const char *q = p; (q = memchr(q, '\n', (size_t)(p + len - q))); q++)
		l->newlines++;
	*ret = p;
	return 0;
}

static char *dup_or_null(const char *s) {
	return *s ? strdup(s) : NULL;
}

static int load_watch(struct loader *l) {
	struct checkpoint_watch *n;

	if (!l->h.key[0] || !l->h.rv[0])
		return damaged(l, l->newlines, "a WATCH record without its key or rv");
	n = realloc(l->cp->watches, (l->cp->n_watches + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	l->cp->watches = n;
	l->cur = &n[l->cp->n_watches++];
	*l->cur = (struct checkpoint_watch){ .key = strdup(l->h.key), .rv = strdup(l->h.rv),
		.relist = l->h.relist };
	hashmap_init(&l->cur->objects);
	return l->cur->key && l->cur->rv ? 0 : -ENOMEM;
}

static int load_object(struct loader *l, bool ref) {
	struct checkpoint_object *o, *old;
	size_t line = l->newlines;
	int r;

	if (!l->cur)
		return damaged(l, line, "an object before any WATCH record");
	if (!l->h.key[0] || !l->h.name[0] || !l->h.rv[0])
		return damaged(l, line, "an object without its key, name or rv");
	if (ref && l->h.has_bytes)
		return damaged(l, line, "an OBJECT_REF record with bytes");
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	if (!ref) {
		r = read_payload(l, &o->json);
		if (r < 0) {
			free(o);
			return r;
		}
		o->json_len = (size_t)l->h.bytes;
		o->typed = l->h.typed;
	}
	r = -ENOMEM;
	o->rv = strdup(l->h.rv);
	o->name = strdup(l->h.name);
	o->ns = strdup(l->h.ns);
	o->kind = dup_or_null(l->h.kind);
	o->api_version = dup_or_null(l->h.api_version);
	if (!o->rv || !o->name || !o->ns || (l->h.kind[0] && !o->kind) ||
		(l->h.api_version[0] && !o->api_version))
		goto fail;
	/* A key twice (a file written by hand, or damaged): the last one wins. */
	old = hashmap_get(&l->cur->objects, l->h.key);
	if (hashmap_put(&l->cur->objects, l->h.key, o) < 0)
		goto fail;
	if (old)
		checkpoint_object_free(old);
	else
		l->cp->n_objects++;
	return 0;
fail:
	checkpoint_object_free(o);
	return r;
}

static int load_event(struct loader *l) {
	static const char *const ops[] = { "add", "update", "delete" };
	struct cevent *ce = NULL, **n;
	struct kobj obj;
	size_t line = l->newlines;
	char *data = NULL;
	int r, op = -1;

	for (int i = 0; i < 3; i++)
		if (strcmp(l->h.op, ops[i]) == 0)
			op = i;
	if (op < 0 || !l->h.id[0] || !l->h.time[0] || !l->h.name[0])
		return damaged(l, line, "an EVENT record without its op, id, time or name");
	r = read_payload(l, &data);
	if (r < 0)
		return r;
	/* The data is sent as written; the header says whom it is about. */
	memset(&obj, 0, sizeof(obj));
	obj.json = data;
	obj.json_len = (size_t)l->h.bytes;
	snprintf(obj.kind, sizeof(obj.kind), "%s", l->h.kind);
	snprintf(obj.api_version, sizeof(obj.api_version), "%s", l->h.api_version);
	snprintf(obj.name, sizeof(obj.name), "%s", l->h.name);
	snprintf(obj.namespace, sizeof(obj.namespace), "%s", l->h.ns);
	snprintf(obj.uid, sizeof(obj.uid), "%s", l->h.uid);
	r = cevent_create(l->params, &obj, (enum cevent_op)op, &ce);
	free(data);
	if (r < 0)
		return r == -ENOMEM ? r : damaged(l, line, "an event that cannot be rebuilt");
	snprintf(ce->id, sizeof(ce->id), "%s", l->h.id);
	snprintf(ce->time, sizeof(ce->time), "%s", l->h.time);
	n = realloc(l->cp->events, (l->cp->n_events + 1) * sizeof(*n));
	if (!n) {
		cevent_destroy(ce);
		return -ENOMEM;
	}
	l->cp->events = n;
	l->cp->events[l->cp->n_events++] = ce;
	return 0;
}

/* The end record must match what came before it, and be the last. */
static int load_end(struct loader *l) {
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	size_t line = l->newlines;

	if ((unsigned long long)l->h.records != l->records)
		return damaged(l, line, "the end record counts %lld records, the file holds %zu",
			l->h.records, l->records);
	if (!EVP_DigestFinal_ex(l->md, md, &n))
		return -EIO;
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * n] = '\0';
	if (strcmp(hex, l->h.sha256) != 0)
		return damaged(l, line, "the SHA-256 in the end record does not match the file");
	if (getc_unlocked(l->f) != EOF)
		return damaged(l, line + 1, "data after the end record");
	return 0;
}

static int load_record(struct loader *l) {
	const char *t = l->h.type;

	if (strcmp(t, "WATCH") == 0)
		return load_watch(l);
	if (strcmp(t, "OBJECT") == 0)
		return load_object(l, false);
	if (strcmp(t, "OBJECT_REF") == 0)
		return load_object(l, true);
	if (strcmp(t, "EVENT") == 0)
		return load_event(l);
	return damaged(l, l->newlines, "an unknown record type \"%s\"", t);
}

static int load_records(struct loader *l) {
	int r;

	for (;;) {
		r = read_header(l);
		if (r == 1)
			return damaged(l, l->newlines, "no end record (the file is cut short)");
		if (r < 0)
			return r;
		if (l->records == 0 && strncmp(l->line, "{\"type\":\"CHECKPOINT\",\"object\"", 29) == 0)
			return damaged(l, 1, "written in format 1 by an older adapter, which this "
					     "one does not read");
		r = parse_header(l);
		if (r < 0)
			return r;
		if (strcmp(l->h.type, "END") == 0)
			return load_end(l);
		digest(l, l->line, l->len);
		digest(l, "\n", 1);
		if (l->records == 0) {
			if (strcmp(l->h.type, "CHECKPOINT") != 0)
				return damaged(l, 1, "no CHECKPOINT header");
			if (l->h.version != CHECKPOINT_VERSION)
				return damaged(l, 1, "format %lld, this adapter reads format %d",
					l->h.version, CHECKPOINT_VERSION);
		} else {
			r = load_record(l);
			if (r < 0)
				return r;
		}
		l->records++;
	}
}

/* Opens DIR/checkpoint.ndjson without following a link, and only a regular
 * file: a FIFO planted there must not block the start. */
static int open_checkpoint(const char *dir, struct loader *l) {
	struct stat st;
	char *path = NULL;
	int fd, r;

	if (asprintf(&path, "%s/" CHECKPOINT_FILE, dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	free(path);
	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0 && errno == ELOOP)
		return damaged(l, 0, "a symbolic link, not a regular file; not followed");
	if (fd < 0) {
		r = -errno;
		snprintf(l->err->reason, sizeof(l->err->reason), "cannot open the checkpoint: %s",
			strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return damaged(l, 0, "not a regular file");
	}
	if (fcntl(fd, F_SETFL, 0) < 0 || !(l->f = fdopen(fd, "r"))) {
		r = -errno;
		close(fd);
		return r;
	}
	return 0;
}

static void describe(const char *dir, int r, struct checkpoint_load_error *e) {
	char line[32] = "";

	if (!e->reason[0])
		snprintf(e->reason, sizeof(e->reason), "cannot read the checkpoint: %s", strerror(-r));
	if (e->line)
		snprintf(line, sizeof(line), ":%zu", e->line);
	snprintf(e->message, sizeof(e->message), "%.1000s/" CHECKPOINT_FILE "%s: %s%s", dir, line,
		e->reason,
		r == -EBADMSG ? "; move it away to start afresh (changes made while the adapter "
				"was down are then not reported)" :
				"");
}

int checkpoint_load(const char *dir, const struct cevent_params *params, size_t max_record,
	struct checkpoint_state **ret_checkpoint, struct checkpoint_load_error *ret_error) {
	struct loader *l = calloc(1, sizeof(*l));
	int r = -ENOMEM;

	memset(ret_error, 0, sizeof(*ret_error));
	if (!l)
		goto out;
	l->params = params;
	l->max_record = max_record;
	l->err = ret_error;
	r = open_checkpoint(dir, l);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	l->cp = calloc(1, sizeof(*l->cp));
	l->md = EVP_MD_CTX_new();
	if (!l->cp || !l->md || !EVP_DigestInit_ex(l->md, EVP_sha256(), NULL))
		goto out;
	r = load_records(l);
	if (r < 0)
		goto out;
	*ret_checkpoint = l->cp;
	l->cp = NULL;
out:
	if (r < 0 && r != -ENOENT)
		describe(dir, r, ret_error);
	if (l) {
		if (l->f)
			fclose(l->f);
		EVP_MD_CTX_free(l->md);
		checkpoint_state_free(l->cp);
		free(l);
	}
	return r;
}

struct checkpoint_watch *checkpoint_find_watch(struct checkpoint_state *cp, const char *key) {
	char hashed[80];

	key = checkpoint_stored_key(key, hashed);
	for (size_t i = 0; cp && i < cp->n_watches; i++)
		if (strcmp(cp->watches[i].key, key) == 0)
			return &cp->watches[i];
	return NULL;
}

void checkpoint_state_free(struct checkpoint_state *cp) {
	if (!cp)
		return;
	for (size_t i = 0; i < cp->n_watches; i++) {
		if (!cp->watches[i].adopted)
			checkpoint_objects_clear(&cp->watches[i].objects);
		free(cp->watches[i].key);
		free(cp->watches[i].rv);
	}
	free(cp->watches);
	for (size_t i = 0; i < cp->n_events; i++)
		cevent_destroy(cp->events[i]);
	free(cp->events);
	free(cp);
}

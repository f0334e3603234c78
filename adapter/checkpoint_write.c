#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <yajl/yajl_gen.h>

#include "adapter/checkpoint.h"
#include "checkpoint_internal.h"

/* The checkpoint file's writer (the format is in checkpoint.h). */

/* ---------------- writing ---------------- */

struct checkpoint_file {
	char *mem; /* a memory writer's records */
	size_t mem_len;
	char *path;
	char *tmp;
	char *dir;
	FILE *f;
	yajl_gen g;
	EVP_MD_CTX *md; /* a file writer's: SHA-256 of every byte before the end record */
	size_t records;
	int error;
};

static void put(struct checkpoint_file *w, const void *p, size_t len) {
	if (w->error || !len)
		return;
	if (fwrite(p, 1, len, w->f) != len) {
		w->error = errno ? -errno : -EIO;
		return;
	}
	if (w->md && !EVP_DigestUpdate(w->md, p, len))
		w->error = -EIO;
}

static void put_str(yajl_gen g, const char *s) {
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void put_kv(yajl_gen g, const char *key, const char *value) {
	if (!value)
		return;
	put_str(g, key);
	put_str(g, value);
}

static void begin(struct checkpoint_file *w, const char *type) {
	yajl_gen_map_open(w->g);
	put_kv(w->g, "type", type);
}

/* Closes the header and writes it as one line (yajl escapes every control
 * character: a header never holds a raw newline), then the payload, if any:
 * its length is in the header, so nothing in it can split the record. */
static int end_record(struct checkpoint_file *w, const char *payload, size_t len) {
	const unsigned char *out;
	size_t n;

	if (payload) {
		put_str(w->g, "bytes");
		yajl_gen_integer(w->g, (long long)len);
	}
	yajl_gen_map_close(w->g);
	if (yajl_gen_get_buf(w->g, &out, &n) != yajl_gen_status_ok) {
		w->error = w->error ?: -EINVAL;
	} else {
		put(w, out, n);
		put(w, "\n", 1);
	}
	if (payload) {
		put(w, payload, len);
		put(w, "\n", 1);
	}
	yajl_gen_clear(w->g);
	yajl_gen_reset(w->g, NULL);
	w->records++;
	return w->error;
}

void checkpoint_file_abort(struct checkpoint_file *w) {
	if (!w)
		return;
	if (w->f) {
		fclose(w->f);
		if (w->tmp)
			unlink(w->tmp);
	}
	free(w->mem);
	if (w->g)
		yajl_gen_free(w->g);
	EVP_MD_CTX_free(w->md);
	free(w->path);
	free(w->tmp);
	free(w->dir);
	free(w);
}

static struct checkpoint_file *writer_new(void) {
	struct checkpoint_file *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->g = yajl_gen_alloc(NULL);
	if (!w->g) {
		free(w);
		return NULL;
	}
	yajl_gen_config(w->g, yajl_gen_validate_utf8, 0);
	return w;
}

int checkpoint_file_open(const char *dir, struct checkpoint_file **ret_writer) {
	struct checkpoint_file *w = writer_new();
	int r = -ENOMEM, fd;

	if (!w)
		return r;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	w->dir = strdup(dir);
	if (!w->dir || asprintf(&w->path, "%s/" CHECKPOINT_FILE, dir) < 0) {
		w->path = NULL;
		goto fail;
	}
	if (asprintf(&w->tmp, "%s/." CHECKPOINT_FILE ".tmp", dir) < 0) {
		w->tmp = NULL;
		goto fail;
	}
	/* Whatever is at the temporary path (a file a crash left, a symbolic
	 * link or a FIFO someone planted) goes: the file is created anew, and
	 * never through a link. */
	if (unlink(w->tmp) < 0 && errno != ENOENT) {
		r = -errno;
		goto fail;
	}
	fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	w->f = fdopen(fd, "w");
	if (!w->f) {
		r = -errno;
		close(fd);
		unlink(w->tmp);
		goto fail;
	}
	w->md = EVP_MD_CTX_new();
	if (!w->md || !EVP_DigestInit_ex(w->md, EVP_sha256(), NULL)) {
		r = -ENOMEM;
		goto fail;
	}
	begin(w, "CHECKPOINT");
	put_str(w->g, "version");
	yajl_gen_integer(w->g, CHECKPOINT_VERSION);
	r = end_record(w, NULL, 0);
	if (r < 0)
		goto fail;
	*ret_writer = w;
	return 0;
fail:
	checkpoint_file_abort(w);
	return r;
}

int checkpoint_file_open_memory(struct checkpoint_file **ret_writer) {
	struct checkpoint_file *w = writer_new();
	int r = -ENOMEM;

	if (!w)
		return r;
	w->f = open_memstream(&w->mem, &w->mem_len);
	if (!w->f) {
		r = -errno;
		goto fail;
	}
	*ret_writer = w;
	return 0;
fail:
	checkpoint_file_abort(w);
	return r;
}

int checkpoint_file_take_memory(struct checkpoint_file *w, char **ret_records, size_t *ret_len,
	size_t *ret_count) {
	int r = w->error;

	if (fclose(w->f) != 0 && r == 0)
		r = -errno;
	w->f = NULL;
	if (r == 0) {
		*ret_records = w->mem;
		*ret_len = w->mem_len;
		*ret_count = w->records;
		w->mem = NULL;
	}
	checkpoint_file_abort(w);
	return r;
}

int checkpoint_file_raw(struct checkpoint_file *w, const char *records, size_t len, size_t count) {
	put(w, records, len);
	w->records += count;
	return w->error;
}

int checkpoint_file_watch(struct checkpoint_file *w, const char *key, const char *rv, bool relist) {
	char hashed[80];

	begin(w, "WATCH");
	put_kv(w->g, "key", checkpoint_stored_key(key, hashed));
	put_kv(w->g, "rv", rv);
	put_str(w->g, "relist");
	yajl_gen_bool(w->g, relist);
	return end_record(w, NULL, 0);
}

int checkpoint_file_object(struct checkpoint_file *w, const char *key,
	const struct checkpoint_object *o) {
	begin(w, o->json ? "OBJECT" : "OBJECT_REF");
	put_kv(w->g, "key", key);
	put_kv(w->g, "name", o->name);
	put_kv(w->g, "namespace", o->ns);
	put_kv(w->g, "rv", o->rv);
	put_kv(w->g, "kind", o->kind);
	put_kv(w->g, "apiVersion", o->api_version);
	if (o->json) {
		put_str(w->g, "typed");
		yajl_gen_bool(w->g, o->typed);
	}
	/* The object's bytes, as the API server sent them. */
	return end_record(w, o->json, o->json_len);
}

int checkpoint_file_event(struct checkpoint_file *w, const struct cevent *ev) {
	static const char *const ops[] = { "add", "update", "delete" };

	begin(w, "EVENT");
	put_kv(w->g, "op", ops[ev->op]);
	put_kv(w->g, "id", ev->id);
	put_kv(w->g, "time", ev->time);
	/* Who it is about, then the data as it will be sent (which in Resource
	 * mode may be a reference, after a relist with --object-state reference). */
	put_kv(w->g, "apiVersion", ev->api_version);
	put_kv(w->g, "kind", ev->kind);
	put_kv(w->g, "name", ev->name);
	put_kv(w->g, "namespace", ev->namespace);
	if (!strchr(ev->key, '/'))
		put_kv(w->g, "uid", ev->key);
	return end_record(w, ev->data ? ev->data : "", ev->data_len);
}

/* The end record: how many records came before it, and their bytes' SHA-256. */
static void write_end(struct checkpoint_file *w) {
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	if (w->error)
		return;
	if (!EVP_DigestFinal_ex(w->md, md, &n)) {
		w->error = -EIO;
		return;
	}
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * n] = '\0';
	EVP_MD_CTX_free(w->md);
	w->md = NULL;
	begin(w, "END");
	put_str(w->g, "records");
	yajl_gen_integer(w->g, (long long)w->records);
	put_kv(w->g, "sha256", hex);
	end_record(w, NULL, 0);
}

int checkpoint_file_commit(struct checkpoint_file *w) {
	int r, dfd;

	write_end(w);
	r = w->error;
	if (r == 0 && fflush(w->f) != 0)
		r = -errno;
	if (r == 0 && fsync(fileno(w->f)) < 0)
		r = -errno;
	if (fclose(w->f) != 0 && r == 0)
		r = -errno;
	w->f = NULL;
	if (r == 0 && rename(w->tmp, w->path) < 0)
		r = -errno;
	if (r < 0)
		unlink(w->tmp);
	/* The rename itself must reach the disk. */
	if (r == 0 && (dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		if (fsync(dfd) < 0)
			r = -errno;
		close(dfd);
	}
	checkpoint_file_abort(w);
	return r;
}

/* Keys name what a watch watches and can be long (a label selector); the
 * record stores at most a Kubernetes name's length, else the key's SHA-256. */
const char *checkpoint_stored_key(const char *key, char out[80]) {
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (strlen(key) < 200)
		return key;
	EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL);
	strcpy(out, "sha256:");
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return out;
}

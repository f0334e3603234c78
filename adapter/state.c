#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <yajl/yajl_gen.h>

#include "adapter/kobj.h"
#include "adapter/ndjson.h"
#include "adapter/state.h"
#include "adapter/util/buf.h"

#define CHECKPOINT_FILE "checkpoint.ndjson"
#define CHECKPOINT_VERSION "1"

void state_object_free(struct state_object *o) {
	if (!o)
		return;
	if (o->refs) {
		o->refs--; /* a checkpoint snapshot still holds it */
		return;
	}
	free(o->rv);
	free(o->name);
	free(o->ns);
	free(o->json);
	free(o->kind);
	free(o->api_version);
	free(o);
}

void state_objects_clear(struct hashmap *objects) {
	struct hashmap_iter it = { 0 };
	void *v;

	while (hashmap_next(objects, &it, NULL, &v))
		state_object_free(v);
	hashmap_finish(objects);
}

/* ---------------- writing ---------------- */

struct state_writer {
	char *mem; /* a memory writer's lines */
	size_t mem_len;
	char *path;
	char *tmp;
	char *dir;
	FILE *f;
	yajl_gen g;
	int error;
};

static void put_str(yajl_gen g, const char *s) {
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* Writes the generator's buffer as one line and resets it for the next. */
static void end_line(struct state_writer *w) {
	const unsigned char *out;
	size_t len;

	if (yajl_gen_get_buf(w->g, &out, &len) != yajl_gen_status_ok) {
		w->error = w->error ?: -EINVAL;
	} else if (fwrite(out, 1, len, w->f) != len || fputc('\n', w->f) == EOF) {
		w->error = w->error ?: -errno;
	}
	yajl_gen_clear(w->g);
	yajl_gen_reset(w->g, NULL);
}

/* {"kind":K,"metadata":{"name":N,"resourceVersion":RV}} with extra fields. */
static void stub(yajl_gen g, const char *api_version, const char *kind, const char *name,
	const char *ns, const char *uid, const char *rv) {
	yajl_gen_map_open(g);
	if (api_version) {
		put_str(g, "apiVersion");
		put_str(g, api_version);
	}
	put_str(g, "kind");
	put_str(g, kind);
	put_str(g, "metadata");
	yajl_gen_map_open(g);
	put_str(g, "name");
	put_str(g, name);
	if (ns && *ns) {
		put_str(g, "namespace");
		put_str(g, ns);
	}
	if (uid) {
		put_str(g, "uid");
		put_str(g, uid);
	}
	if (rv) {
		put_str(g, "resourceVersion");
		put_str(g, rv);
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

void state_writer_abort(struct state_writer *w) {
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
	free(w->path);
	free(w->tmp);
	free(w->dir);
	free(w);
}

int state_writer_open(const char *dir, struct state_writer **ret_writer) {
	struct state_writer *w = calloc(1, sizeof(*w));
	int r = -ENOMEM, fd;

	if (!w)
		return r;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	w->dir = strdup(dir);
	if (!w->dir || asprintf(&w->path, "%s/" CHECKPOINT_FILE, dir) < 0 ||
		asprintf(&w->tmp, "%s/." CHECKPOINT_FILE ".tmp", dir) < 0) {
		w->path = w->tmp = NULL;
		goto fail;
	}
	fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
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
	w->g = yajl_gen_alloc(NULL);
	if (!w->g)
		goto fail;
	yajl_gen_config(w->g, yajl_gen_validate_utf8, 0);
	yajl_gen_map_open(w->g);
	put_str(w->g, "type");
	put_str(w->g, "CHECKPOINT");
	put_str(w->g, "object");
	stub(w->g, NULL, "Checkpoint", CHECKPOINT_VERSION, NULL, NULL, NULL);
	yajl_gen_map_close(w->g);
	end_line(w);
	*ret_writer = w;
	return 0;
fail:
	state_writer_abort(w);
	return r;
}

int state_writer_open_memory(struct state_writer **ret_writer) {
	struct state_writer *w = calloc(1, sizeof(*w));
	int r = -ENOMEM;

	if (!w)
		return r;
	w->f = open_memstream(&w->mem, &w->mem_len);
	if (!w->f) {
		r = -errno;
		goto fail;
	}
	w->g = yajl_gen_alloc(NULL);
	if (!w->g)
		goto fail;
	yajl_gen_config(w->g, yajl_gen_validate_utf8, 0);
	*ret_writer = w;
	return 0;
fail:
	state_writer_abort(w);
	return r;
}

int state_writer_take_memory(struct state_writer *w, char **ret_lines, size_t *ret_len) {
	int r = w->error;

	if (fclose(w->f) != 0 && r == 0)
		r = -errno;
	w->f = NULL;
	if (r == 0) {
		*ret_lines = w->mem;
		*ret_len = w->mem_len;
		w->mem = NULL;
	}
	state_writer_abort(w);
	return r;
}

int state_writer_raw(struct state_writer *w, const char *lines, size_t len) {
	if (len && fwrite(lines, 1, len, w->f) != len)
		w->error = w->error ?: -errno;
	return w->error;
}

/* Keys name what a watch watches and can be long (a label selector); the
 * line stores at most a Kubernetes name's length, else the key's SHA-256. */
static const char *stored_key(const char *key, char out[80]) {
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

int state_writer_watch(struct state_writer *w, const char *key, const char *rv, bool relist) {
	char hashed[80];

	yajl_gen_map_open(w->g);
	put_str(w->g, "type");
	put_str(w->g, "WATCH");
	put_str(w->g, "object");
	stub(w->g, NULL, relist ? "WatchRelist" : "Watch", stored_key(key, hashed), NULL, NULL, rv);
	yajl_gen_map_close(w->g);
	end_line(w);
	return w->error;
}

int state_writer_object(struct state_writer *w, const char *uid, const struct state_object *o) {
	yajl_gen_map_open(w->g);
	put_str(w->g, "type");
	put_str(w->g, o->json ? "OBJECT" : "OBJECT_REF");
	put_str(w->g, "object");
	if (o->json)
		/* The object's bytes, as the API server sent them. */
		yajl_gen_number(w->g, o->json, o->json_len);
	else
		stub(w->g, o->api_version, o->kind ? o->kind : "", o->name, o->ns,
			strchr(uid, '/') ? NULL : uid, o->rv);
	yajl_gen_map_close(w->g);
	end_line(w);
	return w->error;
}

int state_writer_event(struct state_writer *w, const struct cevent *ev) {
	static const char *const types[] = { "EVENT_ADD", "EVENT_UPDATE", "EVENT_DELETE" };

	yajl_gen_map_open(w->g);
	put_str(w->g, "type");
	put_str(w->g, types[ev->op]);
	put_str(w->g, "id");
	put_str(w->g, ev->id);
	put_str(w->g, "time");
	put_str(w->g, ev->time);
	/* Who it is about, then the data as it will be sent (which in Resource
	 * mode may be a reference, after a relist with --object-state reference). */
	put_str(w->g, "object");
	stub(w->g, ev->api_version, ev->kind, ev->name, ev->namespace,
		strchr(ev->key, '/') ? NULL : ev->key, NULL);
	put_str(w->g, "data");
	yajl_gen_number(w->g, ev->data, ev->data_len);
	yajl_gen_map_close(w->g);
	end_line(w);
	return w->error;
}

int state_writer_commit(struct state_writer *w) {
	int r = w->error, dfd;

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
	state_writer_abort(w);
	return r;
}

/* ---------------- loading ---------------- */

struct loader {
	struct state_checkpoint *cp;
	const struct cevent_params *params;
	struct state_watch *cur;
	size_t line;
	bool header;
	int error;
};

static char *dup_or_null(const char *s) {
	return s && *s ? strdup(s) : NULL;
}

static int load_object(struct loader *l, const struct kobj *obj, bool ref) {
	struct state_object *o;
	char key[2 * KOBJ_NAME_MAX + 2];

	if (!l->cur)
		return -EBADMSG;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->rv = strdup(obj->resource_version);
	o->name = strdup(obj->name);
	o->ns = strdup(obj->namespace);
	o->kind = dup_or_null(obj->kind);
	o->api_version = dup_or_null(obj->api_version);
	if (!ref) {
		o->typed = obj->kind[0] && obj->api_version[0];
		o->json = strndup(obj->json, obj->json_len);
		o->json_len = obj->json_len;
		if (!o->json)
			goto oom;
	}
	if (!o->rv || !o->name || !o->ns)
		goto oom;
	if (obj->uid[0])
		snprintf(key, sizeof(key), "%s", obj->uid);
	else
		snprintf(key, sizeof(key), "%s/%s", obj->namespace, obj->name);
	if (hashmap_put(&l->cur->objects, key, o) < 0)
		goto oom;
	l->cp->n_objects++;
	return 0;
oom:
	state_object_free(o);
	return -ENOMEM;
}

static int load_event(struct loader *l, const struct kobj_event *ev, enum cevent_op op) {
	struct cevent *ce = NULL, **n;
	struct kobj obj = ev->obj;
	int r;

	if (!ev->data)
		return -EBADMSG;
	/* The data is sent as written; the stub says whom it is about. */
	obj.json = ev->data;
	obj.json_len = ev->data_len;
	r = cevent_create(l->params, &obj, op, &ce);
	if (r < 0)
		return r;
	if (ev->id[0])
		snprintf(ce->id, sizeof(ce->id), "%s", ev->id);
	if (ev->time[0])
		snprintf(ce->time, sizeof(ce->time), "%s", ev->time);
	n = realloc(l->cp->events, (l->cp->n_events + 1) * sizeof(*n));
	if (!n) {
		cevent_destroy(ce);
		return -ENOMEM;
	}
	l->cp->events = n;
	l->cp->events[l->cp->n_events++] = ce;
	return 0;
}

static int handle_checkpoint_line(const char *line, size_t len, void *userdata) {
	struct loader *l = userdata;
	struct kobj_event ev;
	int r;

	l->line++;
	r = kobj_parse_event(line, len, &ev);
	if (r < 0)
		return r;
	if (!l->header) {
		if (strcmp(ev.type_name, "CHECKPOINT") != 0 || strcmp(ev.obj.name, CHECKPOINT_VERSION))
			return -EBADMSG;
		l->header = true;
		return 0;
	}
	if (strcmp(ev.type_name, "WATCH") == 0) {
		struct state_watch *n = realloc(l->cp->watches, (l->cp->n_watches + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->cp->watches = n;
		l->cur = &n[l->cp->n_watches++];
		*l->cur = (struct state_watch){ .key = strdup(ev.obj.name),
			.rv = strdup(ev.obj.resource_version),
			.relist = strcmp(ev.obj.kind, "WatchRelist") == 0 };
		hashmap_init(&l->cur->objects);
		return l->cur->key && l->cur->rv ? 0 : -ENOMEM;
	}
	if (strcmp(ev.type_name, "OBJECT") == 0)
		return load_object(l, &ev.obj, false);
	if (strcmp(ev.type_name, "OBJECT_REF") == 0)
		return load_object(l, &ev.obj, true);
	if (strcmp(ev.type_name, "EVENT_ADD") == 0)
		return load_event(l, &ev, CEVENT_ADD);
	if (strcmp(ev.type_name, "EVENT_UPDATE") == 0)
		return load_event(l, &ev, CEVENT_UPDATE);
	if (strcmp(ev.type_name, "EVENT_DELETE") == 0)
		return load_event(l, &ev, CEVENT_DELETE);
	return -EBADMSG;
}

int state_load(const char *dir, const struct cevent_params *params, size_t max_line,
	struct state_checkpoint **ret_checkpoint, size_t *ret_line) {
	struct loader l = { .params = params };
	struct ndjson lines;
	char *path = NULL, chunk[65536];
	FILE *f = NULL;
	size_t n;
	bool cut;
	int r;

	*ret_line = 0;
	if (asprintf(&path, "%s/" CHECKPOINT_FILE, dir) < 0)
		return -ENOMEM;
	f = fopen(path, "re");
	free(path);
	if (!f)
		return -errno;
	l.cp = calloc(1, sizeof(*l.cp));
	if (!l.cp) {
		fclose(f);
		return -ENOMEM;
	}
	ndjson_init(&lines, max_line);
	r = 0;
	while (r >= 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		r = ndjson_feed(&lines, chunk, n, handle_checkpoint_line, &l);
	if (r >= 0 && ferror(f))
		r = -EIO;
	/* A line without its newline means the file was cut short. */
	cut = ndjson_pending(&lines) > 0;
	if (r >= 0 && (cut || !l.header))
		r = -EBADMSG;
	ndjson_finish(&lines);
	fclose(f);
	if (r < 0) {
		*ret_line = l.line + (cut ? 1 : 0);
		state_checkpoint_free(l.cp);
		return r == -E2BIG ? -EBADMSG : r;
	}
	*ret_checkpoint = l.cp;
	return 0;
}

struct state_watch *state_find_watch(struct state_checkpoint *cp, const char *key) {
	char hashed[80];

	key = stored_key(key, hashed);
	for (size_t i = 0; cp && i < cp->n_watches; i++)
		if (strcmp(cp->watches[i].key, key) == 0)
			return &cp->watches[i];
	return NULL;
}

void state_checkpoint_free(struct state_checkpoint *cp) {
	if (!cp)
		return;
	for (size_t i = 0; i < cp->n_watches; i++) {
		if (!cp->watches[i].adopted)
			state_objects_clear(&cp->watches[i].objects);
		free(cp->watches[i].key);
		free(cp->watches[i].rv);
	}
	free(cp->watches);
	for (size_t i = 0; i < cp->n_events; i++)
		cevent_destroy(cp->events[i]);
	free(cp->events);
	free(cp);
}

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/objects.h"

const char *objects_key(const struct kobj *obj, char *buf, size_t len) {
	if (obj->uid[0])
		return obj->uid;
	snprintf(buf, len, "%s/%s", obj->namespace, obj->name);
	return buf;
}

static void changed(struct objects *o) {
	if (o->changes)
		(*o->changes)++;
}

void objects_init(struct objects *o, bool keep_json, const char *spill_dir, uint64_t *changes) {
	objects_store_init(&o->store, spill_dir);
	buf_init(&o->scratch, 0);
	o->generation = 0;
	o->keep_json = keep_json;
	o->changes = changes;
}

void objects_finish(struct objects *o) {
	if (!o)
		return;
	objects_store_finish(&o->store);
	buf_finish(&o->scratch);
}

int objects_adopt(struct objects *o, struct hashmap *map) {
	struct hashmap_iter it = { 0 };
	const char *key;
	void *v;
	ssize_t r = 0;

	objects_store_finish(&o->store);
	while (r >= 0 && hashmap_next(map, &it, &key, &v)) {
		const struct checkpoint_object *c = v;
		struct objects_spill_fields f = { .name = c->name, .ns = c->ns, .kind = c->kind,
			.api_version = c->api_version, .json = c->json, .json_len = c->json_len,
			.typed = c->typed };

		r = objects_store_put(&o->store, key, c->rv, &f, o->generation);
	}
	checkpoint_objects_clear(map);
	hashmap_init(map);
	if (r < 0) {
		objects_store_finish(&o->store);
		return (int)r;
	}
	changed(o);
	return 0;
}

size_t objects_count(const struct objects *o) {
	return o->store.n;
}

bool objects_rv(const struct objects *o, const char *key, char *buf, size_t len) {
	ssize_t i = objects_store_find(&o->store, key);

	if (i < 0)
		return false;
	objects_store_rv(&o->store, (size_t)i, buf, len);
	return true;
}

int objects_last_bytes(const struct objects *o, const char *key, struct buf *out) {
	ssize_t i = objects_store_find(&o->store, key);
	struct objects_spill_fields f;
	struct buf scratch;
	int r;

	if (i < 0)
		return -ENOENT;
	buf_init(&scratch, 0);
	r = objects_store_read(&o->store, (size_t)i, &scratch, &f);
	if (r == 0)
		r = f.json ? buf_append(out, f.json, f.json_len) : -ENOENT;
	buf_finish(&scratch);
	return r;
}

void objects_list_begin(struct objects *o) {
	o->generation++;
}

/* Records the object's latest state, seen by the current list. Returns 0 or
 * a negative errno (then the table is as it was). */
static int record(struct objects *o, const struct objects_store_key *key, const struct kobj *obj) {
	struct objects_spill_fields f = { .name = obj->name, .ns = obj->namespace,
		.typed = obj->kind[0] && obj->api_version[0] };
	ssize_t r;

	if (o->keep_json) {
		f.json = obj->json;
		f.json_len = obj->json_len;
	}
	r = objects_store_put_key(&o->store, key, obj->resource_version, &f, o->generation);
	if (r < 0)
		return (int)r;
	changed(o);
	return 0;
}

/* Marks an object known at this resourceVersion as seen by the current list.
 * Returns false when it is new or changed. */
static bool unchanged(struct objects *o, ssize_t i, const struct kobj *obj) {
	if (i < 0 || !objects_store_rv_is(&o->store, (size_t)i, obj->resource_version))
		return false;
	o->store.recs[i].generation = o->generation;
	return true;
}

int objects_list_item(struct objects *o, const struct kobj *obj, enum objects_report report,
	objects_emit_fn fn, void *userdata) {
	char kbuf[OBJECTS_KEY_MAX];
	struct objects_store_key key;
	ssize_t i;
	int r;

	objects_store_key_of(objects_key(obj, kbuf, sizeof(kbuf)), &key);
	i = objects_store_find_key(&o->store, &key);
	if (unchanged(o, i, obj))
		return 0;
	if (report != OBJECTS_QUIET) {
		enum cevent_op op = i >= 0 && report == OBJECTS_CHANGES ? CEVENT_UPDATE : CEVENT_ADD;

		r = fn(op, obj, userdata);
		if (r < 0)
			return r;
	}
	return record(o, &key, obj);
}

int objects_update(struct objects *o, const struct kobj *obj, bool added, objects_emit_fn fn,
	void *userdata) {
	char kbuf[OBJECTS_KEY_MAX];
	struct objects_store_key key;
	ssize_t i;
	int r;

	objects_store_key_of(objects_key(obj, kbuf, sizeof(kbuf)), &key);
	i = objects_store_find_key(&o->store, &key);
	if (unchanged(o, i, obj))
		return 0;
	r = fn(added || i < 0 ? CEVENT_ADD : CEVENT_UPDATE, obj, userdata);
	if (r < 0)
		return r;
	r = record(o, &key, obj);
	return r < 0 ? r : 1;
}

int objects_delete(struct objects *o, const struct kobj *obj, objects_emit_fn fn, void *userdata) {
	char kbuf[OBJECTS_KEY_MAX];
	const char *key = objects_key(obj, kbuf, sizeof(kbuf));
	ssize_t i = objects_store_find(&o->store, key);
	struct kobj last = *obj;
	int r;

	if (i >= 0)
		objects_store_rv(&o->store, (size_t)i, last.resource_version,
			sizeof(last.resource_version));
	r = fn(CEVENT_DELETE, &last, userdata);
	if (r < 0)
		return r;
	/* fn may have read the table (objects_last_bytes): look again. */
	i = objects_store_find(&o->store, key);
	if (i >= 0)
		objects_store_remove(&o->store, (size_t)i);
	changed(o);
	return 0;
}

/* The object a delete found by a sweep carries: its last state, or (when
 * only references are kept, or its bytes cannot be read back) a reference
 * written into ref. Returns 0, or -ENOMEM (the sweep stops; the next list
 * finds the object again). */
static int stale_object(struct objects *o, size_t i, const char *kind, const char *api_version,
	struct buf *ref, struct kobj *ret) {
	struct objects_spill_fields f = { 0 };
	char key[OBJECTS_KEY_MAX];
	int r;

	memset(ret, 0, sizeof(*ret));
	objects_store_key(&o->store, i, key, sizeof(key));
	r = objects_store_read(&o->store, i, &o->scratch, &f);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		/* The spill file failed us: the delete still goes, with what the
		 * key tells (namespace/name, when the key is one). */
		const char *slash = strchr(key, '/');

		memset(&f, 0, sizeof(f));
		f.name = slash ? slash + 1 : "";
		f.ns = "";
		if (slash)
			snprintf(ret->namespace, sizeof(ret->namespace), "%.*s", (int)(slash - key), key);
	}
	if (f.json) {
		ret->json = f.json;
		ret->json_len = f.json_len;
		if (f.typed) {
			/* The stored object has them: nothing to splice in. */
			snprintf(ret->kind, sizeof(ret->kind), "%s", kind);
			snprintf(ret->api_version, sizeof(ret->api_version), "%s", api_version);
		}
	} else {
		/* From yajl's generator: a quote in a kind cannot end the string. */
		buf_reset(ref);
		if (cevent_reference_json(kind, f.ns[0] ? f.ns : ret->namespace, f.name, api_version,
			    ref) == 0) {
			ret->json = ref->data;
			ret->json_len = ref->len;
		}
		snprintf(ret->kind, sizeof(ret->kind), "%s", kind);
		snprintf(ret->api_version, sizeof(ret->api_version), "%s", api_version);
	}
	snprintf(ret->name, sizeof(ret->name), "%s", f.name);
	if (f.ns[0])
		snprintf(ret->namespace, sizeof(ret->namespace), "%s", f.ns);
	objects_store_rv(&o->store, i, ret->resource_version, sizeof(ret->resource_version));
	if (!strchr(key, '/'))
		snprintf(ret->uid, sizeof(ret->uid), "%.63s", key);
	return 0;
}

int objects_sweep(struct objects *o, bool with_events, const char *kind, const char *api_version,
	objects_emit_fn fn, void *userdata) {
	struct buf ref;
	int n = 0, r;

	buf_init(&ref, 0);
	/* Removing record i moves the last one into its place: i is looked at
	 * again. */
	for (size_t i = 0; i < o->store.n;) {
		struct kobj obj;

		if (o->store.recs[i].generation == o->generation) {
			i++;
			continue;
		}
		if (with_events) {
			r = stale_object(o, i, kind ? kind : "", api_version ? api_version : "",
				&ref, &obj);
			if (r == 0)
				r = fn(CEVENT_DELETE, &obj, userdata);
			if (r < 0) {
				buf_finish(&ref);
				return r;
			}
		}
		objects_store_remove(&o->store, i);
		changed(o);
		n++;
	}
	buf_finish(&ref);
	return n;
}

/* ---------------- checkpoints ---------------- */

/* What the writer thread reads a watch's objects from. */
struct source {
	struct objects_store_frozen *fz;
	struct buf scratch;
	char key[OBJECTS_KEY_MAX];
	char rv[64];
};

static int source_read(void *data, size_t i, const char **ret_key, struct checkpoint_object *ret) {
	struct source *s = data;
	struct objects_spill_fields f;
	int r;

	r = objects_store_frozen_read(s->fz, i, s->key, sizeof(s->key), s->rv, sizeof(s->rv),
		&s->scratch, &f);
	if (r < 0)
		return r;
	*ret = (struct checkpoint_object){ .rv = s->rv, .name = (char *)f.name,
		.ns = (char *)f.ns, .json = (char *)f.json, .json_len = f.json_len,
		.kind = (char *)f.kind, .api_version = (char *)f.api_version, .typed = f.typed };
	*ret_key = s->key;
	return 0;
}

static void source_release(void *data) {
	struct source *s = data;

	objects_store_frozen_free(s->fz);
	buf_finish(&s->scratch);
	free(s);
}

int objects_checkpoint(struct objects *o, struct checkpoint_snapshot *cs) {
	struct source *s = calloc(1, sizeof(*s));
	struct checkpoint_source src = { .read = source_read, .release = source_release, .data = s };
	int r;

	if (!s)
		return -ENOMEM;
	buf_init(&s->scratch, 0);
	r = objects_store_freeze(&o->store, &s->fz);
	if (r < 0) {
		source_release(s);
		return r;
	}
	src.count = objects_store_frozen_count(s->fz);
	return checkpoint_snapshot_source(cs, &src);
}

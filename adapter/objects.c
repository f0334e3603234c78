#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/objects.h"

static const char *key_of(const struct kobj *obj, char *buf, size_t len) {
	if (obj->uid[0])
		return obj->uid;
	snprintf(buf, len, "%s/%s", obj->namespace, obj->name);
	return buf;
}

static void changed(struct objects *o) {
	if (o->changes)
		(*o->changes)++;
}

void objects_init(struct objects *o, bool keep_json, uint64_t *changes) {
	hashmap_init(&o->map);
	checkpoint_mirror_init(&o->mirror);
	o->generation = 0;
	o->keep_json = keep_json;
	o->changes = changes;
}

void objects_finish(struct objects *o) {
	if (!o)
		return;
	checkpoint_objects_clear(&o->map);
	checkpoint_mirror_finish(&o->mirror);
}

void objects_adopt(struct objects *o, struct hashmap *map) {
	checkpoint_objects_clear(&o->map);
	o->map = *map;
	hashmap_init(map);
	checkpoint_mirror_reset(&o->mirror);
}

size_t objects_count(const struct objects *o) {
	return o->map.count;
}

const struct checkpoint_object *objects_get(const struct objects *o, const char *key) {
	return hashmap_get(&o->map, key);
}

int objects_last_bytes(const struct objects *o, const char *key, struct buf *out) {
	const struct checkpoint_object *s = hashmap_get(&o->map, key);

	if (!s || !s->json)
		return -ENOENT;
	return buf_append(out, s->json, s->json_len);
}

bool objects_next(struct objects *o, struct hashmap_iter *it, const char **ret_key,
	const struct checkpoint_object **ret_object) {
	void *v;

	if (!hashmap_next(&o->map, it, ret_key, &v))
		return false;
	*ret_object = v;
	return true;
}

void objects_list_begin(struct objects *o) {
	o->generation++;
}

/* Records the object's latest state, seen by the current list. Returns 0 or
 * -ENOMEM (then the table is as it was). */
static int record(struct objects *o, const char *key, const struct kobj *obj) {
	struct checkpoint_object *old = hashmap_get(&o->map, key), *n = NULL;
	int r = -ENOMEM;

	n = calloc(1, sizeof(*n));
	if (!n)
		goto out;
	n->rv = strdup(obj->resource_version);
	n->name = strdup(obj->name);
	n->ns = strdup(obj->namespace);
	if (!n->rv || !n->name || !n->ns)
		goto out;
	if (o->keep_json) {
		n->json = malloc(obj->json_len + 1);
		if (!n->json)
			goto out;
		memcpy(n->json, obj->json, obj->json_len);
		n->json[obj->json_len] = '\0';
		n->json_len = obj->json_len;
	}
	n->generation = o->generation;
	n->typed = obj->kind[0] && obj->api_version[0];
	r = hashmap_put(&o->map, key, n);
	if (r < 0)
		goto out;
	checkpoint_mirror_touch(&o->mirror, key);
	n = NULL; /* the table's now */
	checkpoint_object_free(old);
	changed(o);
out:
	checkpoint_object_free(n);
	return r;
}

/* Marks an object known at this resourceVersion as seen by the current list.
 * Returns the stored object, or NULL when it is new or changed. */
static struct checkpoint_object *unchanged(struct objects *o, const char *key,
	const struct kobj *obj) {
	struct checkpoint_object *s = hashmap_get(&o->map, key);

	if (!s || strcmp(s->rv, obj->resource_version) != 0)
		return NULL;
	s->generation = o->generation;
	return s;
}

int objects_list_item(struct objects *o, const struct kobj *obj, enum objects_report report,
	objects_emit_fn fn, void *userdata) {
	char kbuf[OBJECTS_KEY_MAX];
	const char *key = key_of(obj, kbuf, sizeof(kbuf));
	bool known = hashmap_get(&o->map, key) != NULL;
	int r;

	if (unchanged(o, key, obj))
		return 0;
	if (report != OBJECTS_QUIET) {
		enum cevent_op op = known && report == OBJECTS_CHANGES ? CEVENT_UPDATE : CEVENT_ADD;

		r = fn(op, obj, userdata);
		if (r < 0)
			return r;
	}
	return record(o, key, obj);
}

int objects_update(struct objects *o, const struct kobj *obj, bool added, objects_emit_fn fn,
	void *userdata) {
	char kbuf[OBJECTS_KEY_MAX];
	const char *key = key_of(obj, kbuf, sizeof(kbuf));
	bool known = hashmap_get(&o->map, key) != NULL;
	int r;

	if (unchanged(o, key, obj))
		return 0;
	r = fn(added || !known ? CEVENT_ADD : CEVENT_UPDATE, obj, userdata);
	if (r < 0)
		return r;
	r = record(o, key, obj);
	return r < 0 ? r : 1;
}

int objects_delete(struct objects *o, const struct kobj *obj, objects_emit_fn fn, void *userdata) {
	char kbuf[OBJECTS_KEY_MAX];
	const char *key = key_of(obj, kbuf, sizeof(kbuf));
	struct checkpoint_object *s = hashmap_get(&o->map, key);
	struct kobj last = *obj;
	int r;

	if (s)
		snprintf(last.resource_version, sizeof(last.resource_version), "%s", s->rv);
	r = fn(CEVENT_DELETE, &last, userdata);
	if (r < 0)
		return r;
	checkpoint_object_free(hashmap_remove(&o->map, key));
	checkpoint_mirror_touch(&o->mirror, key);
	changed(o);
	return 0;
}

/* The object a delete found by a sweep carries: its last state, or (when
 * only references are kept) a reference written into ref. */
static void stale_object(const char *key, const struct checkpoint_object *s, const char *kind,
	const char *api_version, struct buf *ref, struct kobj *ret) {
	memset(ret, 0, sizeof(*ret));
	if (s->json) {
		ret->json = s->json;
		ret->json_len = s->json_len;
		if (s->typed) {
			/* The stored object has them: nothing to splice in. */
			snprintf(ret->kind, sizeof(ret->kind), "%s", kind);
			snprintf(ret->api_version, sizeof(ret->api_version), "%s", api_version);
		}
	} else {
		/* From yajl's generator: a quote in a kind cannot end the string. */
		buf_reset(ref);
		if (cevent_reference_json(kind, s->ns, s->name, api_version, ref) == 0) {
			ret->json = ref->data;
			ret->json_len = ref->len;
		}
		snprintf(ret->kind, sizeof(ret->kind), "%s", kind);
		snprintf(ret->api_version, sizeof(ret->api_version), "%s", api_version);
	}
	snprintf(ret->name, sizeof(ret->name), "%s", s->name);
	snprintf(ret->namespace, sizeof(ret->namespace), "%s", s->ns);
	snprintf(ret->resource_version, sizeof(ret->resource_version), "%s", s->rv);
	if (!strchr(key, '/'))
		snprintf(ret->uid, sizeof(ret->uid), "%s", key);
}

int objects_sweep(struct objects *o, bool with_events, const char *kind, const char *api_version,
	objects_emit_fn fn, void *userdata) {
	struct hashmap_iter it = { 0 };
	struct buf ref;
	const char *key;
	void *v;
	int n = 0, r;

	buf_init(&ref, 0);
	while (hashmap_next(&o->map, &it, &key, &v)) {
		struct checkpoint_object *s = v;
		struct kobj obj;

		if (s->generation == o->generation)
			continue;
		if (with_events) {
			stale_object(key, s, kind ? kind : "", api_version ? api_version : "", &ref,
				&obj);
			r = fn(CEVENT_DELETE, &obj, userdata);
			if (r < 0) {
				buf_finish(&ref);
				return r;
			}
		}
		checkpoint_mirror_touch(&o->mirror, key); /* before the key goes with its entry */
		hashmap_remove(&o->map, key);
		checkpoint_object_free(s);
		changed(o);
		n++;
	}
	buf_finish(&ref);
	return n;
}

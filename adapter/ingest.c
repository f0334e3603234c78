#include <errno.h>
#include <string.h>

#include "adapter/changes.h"
#include "adapter/ingest.h"
#include "adapter/strip.h"

int ingest_begin(struct ingest *in, const struct config *cfg, const struct objects *table,
	const struct kobj *obj, objects_emit_fn fn, void *userdata) {
	int r;

	in->obj = obj;
	in->cfg = cfg;
	in->table = table;
	in->fn = fn;
	in->userdata = userdata;
	buf_init(&in->stripped, 0);
	if (!cfg->strip_managed_fields || !obj->json_len)
		return 0;
	r = strip_managed_fields(obj->json, obj->json_len, &in->stripped);
	if (r == -ENOMEM)
		return r;
	if (r == 1) {
		in->copy = *obj;
		in->copy.json = in->stripped.data;
		in->copy.json_len = in->stripped.len;
		in->obj = &in->copy;
	}
	return 0;
}

int ingest_emit(enum cevent_op op, const struct kobj *obj, void *userdata) {
	struct ingest *in = userdata;
	struct buf prev, paths;
	struct kobj annotated;
	char key[OBJECTS_KEY_MAX];
	int r;

	if (op != CEVENT_UPDATE || !in->cfg->with_changes)
		return in->fn(op, obj, in->userdata);
	buf_init(&prev, 0);
	buf_init(&paths, 0);
	r = objects_last_bytes(in->table, objects_key(obj, key, sizeof(key)), &prev);
	if (r == 0)
		r = changes_diff(prev.data, prev.len, obj->json, obj->json_len, KOBJ_MAX_DEPTH,
			&paths);
	buf_finish(&prev);
	if (r == -ENOMEM) {
		buf_finish(&paths);
		return r; /* reported again: the change is not lost */
	}
	if (r < 0) {
		/* Unknown previous state, or one that cannot be diffed: no extension. */
		buf_finish(&paths);
		return in->fn(op, obj, in->userdata);
	}
	annotated = *obj;
	annotated.changed_paths = paths.data ? paths.data : "";
	r = in->fn(op, &annotated, in->userdata);
	buf_finish(&paths);
	return r;
}

void ingest_end(struct ingest *in) {
	buf_finish(&in->stripped);
}

#ifndef ADAPTER_OBJECTS_H
#define ADAPTER_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/cevent.h"
#include "adapter/checkpoint.h"
#include "adapter/kobj.h"
#include "adapter/objects_store.h"
#include "adapter/util/buf.h"
#include "adapter/util/hashmap.h"

/* The objects one watch has seen, and the diff a relist makes against them.
 * No I/O and no logging: each change is handed to the caller's fn, which
 * queues its event, and is recorded only once fn has succeeded. When fn fails,
 * nothing is recorded, so the next list or watch event reports the same change
 * again: a change that could not be queued is never lost.
 *
 * Objects are keyed by uid, or namespace/name when an object has none. Each
 * carries the generation of the last list that saw it; a complete list sweeps
 * those it did not see (deleted in the gap).
 *
 * Storage (objects_store.h): a compact record per object in memory, its last
 * bytes (or, with references only, its name and namespace) in a spill file,
 * read back for a delete a relist finds, a checkpoint, objects_last_bytes(). */

#define OBJECTS_KEY_MAX (2 * KOBJ_NAME_MAX + 2)

/* Queues the event for one change. Returns >= 0 once it is queued (or
 * deliberately left out), a negative errno when it could not be. */
typedef int (*objects_emit_fn)(enum cevent_op op, const struct kobj *obj, void *userdata);

struct objects {
	struct objects_store store;
	unsigned generation; /* of the list in progress, or the last one */
	bool keep_json;      /* keep last states (for the deletes a relist finds) */
	uint64_t *changes;   /* bumped on every change recorded; may be NULL */
	struct buf scratch;  /* a record read back */
};

/* keep_json: keep each object's last state, not only its reference.
 * spill_dir: where the spill file goes (NULL: $TMPDIR, else /tmp). changes
 * and spill_dir are borrowed and must outlive the table. */
void objects_init(struct objects *o, bool keep_json, const char *spill_dir, uint64_t *changes);
/* Frees every object. A zeroed table is fine. */
void objects_finish(struct objects *o);
/* Takes over a checkpoint's objects (key -> struct checkpoint_object), which
 * it frees, leaving map empty. Whatever the table held is dropped. Returns 0
 * or a negative errno (-ENOMEM, the spill file's), and then the table is
 * empty. */
int objects_adopt(struct objects *o, struct hashmap *map);
size_t objects_count(const struct objects *o);
/* The resourceVersion recorded for key, into buf: false when unknown. */
bool objects_rv(const struct objects *o, const char *key, char *buf, size_t len);
/* Adds the objects, as they are now, to the snapshot's current watch (a copy
 * of the records, O(objects) memcpy; the writer thread reads the bytes back
 * from the spill file). */
int objects_checkpoint(struct objects *o, struct checkpoint_snapshot *cs);
/* The last state recorded under key, appended to out (--with-changes), read
 * back from the spill file. Returns 0, -ENOENT when the object is unknown or
 * only its reference is kept, or a negative errno (buf_append()'s, the
 * file's). */
/* An object's key in the table: its uid, else "namespace/name" written into
 * buf (OBJECTS_KEY_MAX bytes). */
const char *objects_key(const struct kobj *obj, char *buf, size_t len);
int objects_last_bytes(const struct objects *o, const char *key, struct buf *out);

/* A new list begins (not a next page): objects it lists are marked with a new
 * generation, and objects_sweep() finds the others when it is complete. */
void objects_list_begin(struct objects *o);
/* What a list reports of the items it finds new or changed. */
enum objects_report {
	OBJECTS_QUIET,	 /* nothing: the first list, without initial events */
	OBJECTS_ADDS,	 /* CEVENT_ADD for each: the first list, with initial events */
	OBJECTS_CHANGES, /* CEVENT_ADD when new, CEVENT_UPDATE when changed: a relist */
};

/* One list item. Unchanged since last seen: marked as listed, fn not called.
 * New or changed: fn gets the event report asks for first (none when quiet),
 * then it is recorded. Returns 0, fn's negative return or -ENOMEM; on failure
 * nothing is recorded. */
int objects_list_item(struct objects *o, const struct kobj *obj, enum objects_report report,
	objects_emit_fn fn, void *userdata);
/* A watch event ADDED (added) or MODIFIED. Already known at this
 * resourceVersion: nothing to do. Otherwise fn gets CEVENT_ADD (ADDED, or a
 * MODIFIED of an unknown object) or CEVENT_UPDATE, then the object is recorded.
 * Returns 1 when fn was called, 0 when unchanged, or a negative errno (fn's, or
 * -ENOMEM recording it; fn will then be called again for the same change). */
int objects_update(struct objects *o, const struct kobj *obj, bool added, objects_emit_fn fn,
	void *userdata);
/* A watch event DELETED: fn gets CEVENT_DELETE with the object's last known
 * resourceVersion (so the delete a relist finds and this one share an id),
 * then the object is forgotten. Returns 0 or fn's negative return. */
int objects_delete(struct objects *o, const struct kobj *obj, objects_emit_fn fn, void *userdata);
/* After a complete list: the objects it did not list. with_events: fn gets
 * CEVENT_DELETE with each one's last state (or a reference carrying kind and
 * api_version), and the object is forgotten once fn succeeds; the first
 * failure stops the sweep and is returned, and the rest stay for the next
 * list's sweep. Without events they are forgotten quietly. Returns the number
 * forgotten, or a negative errno. */
int objects_sweep(struct objects *o, bool with_events, const char *kind, const char *api_version,
	objects_emit_fn fn, void *userdata);

#endif

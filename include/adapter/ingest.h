#ifndef ADAPTER_INGEST_H
#define ADAPTER_INGEST_H

#include "adapter/config.h"
#include "adapter/kobj.h"
#include "adapter/objects.h"
#include "adapter/util/buf.h"

/* What happens to one change between the watch (a list item or a watch
 * event) and the object table and its event: --strip-managed-fields cuts
 * metadata.managedFields out of the object (so neither the table, the
 * checkpoints nor the events hold it), and --with-changes gives an update the
 * paths that changed since the state the table holds (changes.h), read
 * through objects_last_bytes(). No logging: a diff that cannot be made
 * leaves the extension out, the event is sent all the same.
 *
 *	struct ingest in;
 *	r = ingest_begin(&in, cfg, &wa->objects, obj, owner_emit, owner_userdata);
 *	if (r == 0)
 *		r = objects_update(&wa->objects, in.obj, added, ingest_emit, &in);
 *	ingest_end(&in);
 */

struct ingest {
	const struct kobj *obj; /* what to record and send: obj, or the stripped copy */
	/* Private. */
	const struct config *cfg;
	const struct objects *table;
	objects_emit_fn fn;
	void *userdata;
	struct kobj copy;
	struct buf stripped;
};

/* Borrows cfg, table and obj, which must outlive ingest_end(). Returns 0 or
 * -ENOMEM; in is safe to ingest_end() either way. An object that cannot be
 * stripped (not valid JSON) goes on as it came. */
int ingest_begin(struct ingest *in, const struct config *cfg, const struct objects *table,
	const struct kobj *obj, objects_emit_fn fn, void *userdata);
/* An objects_emit_fn (userdata: the struct ingest): adds the changed paths
 * to an update, then calls the fn given to ingest_begin(). */
int ingest_emit(enum cevent_op op, const struct kobj *obj, void *userdata);
void ingest_end(struct ingest *in);

#endif

#ifndef ADAPTER_CHECKPOINT_H
#define ADAPTER_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/cevent.h"
#include "adapter/loop.h"
#include "adapter/state.h"

/* Checkpoints written off the loop thread (STYLE.md, "The event loop").
 *
 * The loop takes a snapshot: for each watch its key, resourceVersion and
 * relist flag, and a reference to each of its objects (struct state_object is
 * never changed once recorded: a change records a new one, so a reference
 * costs a pointer copy, not a copy of the object). Undelivered events are few
 * (the queue is bounded) and owned by the queue, so they are serialised at
 * once. A worker thread then writes the file in the format of state.c,
 * fsyncs and renames it, and reports through an eventfd; the loop joins the
 * thread and drops the snapshot's references. One checkpoint at a time. */

struct checkpoint_snapshot;

/* dir is copied. */
int checkpoint_snapshot_create(const char *dir, struct checkpoint_snapshot **ret_snapshot);
/* Drops the snapshot's references. Loop thread only. NULL is fine. */
void checkpoint_snapshot_free(struct checkpoint_snapshot *s);
/* Starts a watch: the objects added next are its. */
int checkpoint_snapshot_watch(struct checkpoint_snapshot *s, const char *key, const char *rv,
	bool relist);
/* Takes a reference to o. What the file holds of it (rv, name, ns, json, kind,
 * api_version, typed) must not change until the snapshot is freed: objects.c
 * replaces an object that changes; only its generation, which the writer does
 * not read, is updated in place. */
int checkpoint_snapshot_object(struct checkpoint_snapshot *s, const char *key,
	struct state_object *o);
/* Serialises ev now (the queue keeps it). */
int checkpoint_snapshot_event(struct checkpoint_snapshot *s, const struct cevent *ev);
/* Writes DIR/checkpoint.ndjson from the snapshot: temporary file, fsync,
 * rename, fsync of the directory. Touches only the snapshot (and reads its
 * objects), so any thread that owns the snapshot may call it; once. */
int checkpoint_snapshot_write(struct checkpoint_snapshot *s);
size_t checkpoint_snapshot_objects(const struct checkpoint_snapshot *s);

/* The worker. done runs on the loop thread with the write's result. */
typedef void (*checkpoint_done_fn)(int result, void *userdata);
struct checkpoint_writer;

/* Borrows loop, which must outlive the writer. */
int checkpoint_writer_create(struct loop *loop, checkpoint_done_fn done, void *userdata,
	struct checkpoint_writer **ret_writer);
/* Joins a write in flight (without calling done) and frees the writer. */
void checkpoint_writer_destroy(struct checkpoint_writer *w);
/* Takes ownership of s and writes it on a new thread. -EBUSY while one is in
 * flight (s is then still the caller's). */
int checkpoint_writer_start(struct checkpoint_writer *w, struct checkpoint_snapshot *s);
bool checkpoint_writer_busy(const struct checkpoint_writer *w);
/* Blocks until the write in flight, if any, is done, and calls done for it.
 * For shutdown, before a last checkpoint written in place. */
void checkpoint_writer_wait(struct checkpoint_writer *w);

#endif

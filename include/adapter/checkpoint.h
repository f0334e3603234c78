#ifndef ADAPTER_CHECKPOINT_H
#define ADAPTER_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/cevent.h"
#include "adapter/loop.h"
#include "adapter/util/hashmap.h"

/* checkpoint.c: the objects' references and snapshots, and the writer thread;
 * checkpoint_write.c: the file's writer; checkpoint_load.c: its loader. */

/* What the adapter remembers, and its checkpoints (--state-dir).
 *
 * Per watch: every object's uid, resourceVersion, name, namespace and (unless
 * only references are kept) its last state, so a relist can report what
 * changed and deletes can carry the last state.
 *
 * A checkpoint is one file, DIR/checkpoint.ndjson, written whole to a
 * temporary file, fsync'd and renamed over the old one. It is a sequence of
 * records. Each starts with a header line: a flat JSON object (strings,
 * integers, booleans) from yajl's generator, so it holds no raw newline. A
 * record that carries bytes (an object as the API server sent it, an event's
 * data) says how many in "bytes"; they follow the header, then a newline.
 * Records are framed by their length: nothing in an object (a pretty-printed
 * list item, say) can split one.
 *   {"type":"CHECKPOINT","version":2}
 *   {"type":"WATCH","key":KEY,"rv":RV,"relist":BOOL}
 *   {"type":"OBJECT","key":K,"name":N,"namespace":NS,"rv":RV,"typed":BOOL,"bytes":LEN}
 *   LEN bytes of the object (of the WATCH above)
 *   {"type":"OBJECT_REF","key":K,"name":N,"namespace":NS,"rv":RV[,"kind","apiVersion"]}
 *   {"type":"EVENT","op":"add|update|delete","id":ID,"time":T,"apiVersion":A,
 *    "kind":K,"name":N,"namespace":NS[,"uid":U],"bytes":LEN}
 *   LEN bytes of the event's data
 *   {"type":"END","records":COUNT,"sha256":HEX}
 * The END record counts the records before it and holds the SHA-256 of every
 * byte before it: a file cut short (even at a line end) or changed is
 * refused as damaged, as are unknown keys or record types, a symbolic link
 * or anything but a regular file. Format 1 (the one-line records of earlier
 * versions) is refused with a message saying so: move it away (the restart
 * then lists afresh). EVENT records are events accepted but not yet
 * delivered; they are sent again
 * after a restart, with the same ids. */

struct checkpoint_object {
	char *rv;
	char *name;
	char *ns;
	char *json; /* NULL when only references are kept */
	size_t json_len;
	char *kind; /* for references: NULL means the resource's */
	char *api_version;
	bool typed; /* json has its own apiVersion and kind (watch events and CR lists do) */
	unsigned generation;
	/* While a snapshot is alive, freed objects wait here (checkpoint.c). */
	struct checkpoint_object *next_freed;
};

/* Frees the object; while any snapshot is alive (one may point at it), only
 * once the last one is freed. Loop thread only. */
void checkpoint_object_free(struct checkpoint_object *o);
/* Frees every checkpoint_object in the map and the map's entries. */
void checkpoint_objects_clear(struct hashmap *objects);

/* A watch's state read from a checkpoint. */
struct checkpoint_watch {
	char *key;
	char *rv;
	struct hashmap objects; /* uid (or namespace/name) -> struct checkpoint_object */
	bool relist;		/* written in the middle of a relist: list again */
	bool adopted;		/* taken over by a running watch */
};

struct checkpoint_state {
	struct checkpoint_watch *watches;
	size_t n_watches;
	struct cevent **events; /* undelivered, in the order written */
	size_t n_events;
	size_t n_objects;
};

/* What is wrong with a checkpoint that cannot be loaded. */
struct checkpoint_load_error {
	size_t line;	   /* of the record at fault; 0 for the file as a whole */
	char reason[256]; /* what is wrong */
	/* One line for the log: "DIR/checkpoint.ndjson:LINE: REASON", and for a
	 * damaged file what to do about it. */
	char message[1600];
};

/* Reads DIR/checkpoint.ndjson. Returns 0, -ENOENT when there is none,
 * -EBADMSG for a damaged or refused file, or another negative errno; on
 * failure other than -ENOENT, ret_error says why. Records carrying more than
 * max_record bytes are refused. Events are rebuilt with params (the current
 * source and overrides) and keep their ids and times. */
int checkpoint_load(const char *dir, const struct cevent_params *params, size_t max_record,
	struct checkpoint_state **ret_checkpoint, struct checkpoint_load_error *ret_error);
struct checkpoint_watch *checkpoint_find_watch(struct checkpoint_state *cp, const char *key);
void checkpoint_state_free(struct checkpoint_state *cp);

struct checkpoint_file;

int checkpoint_file_open(const char *dir, struct checkpoint_file **ret_writer);
/* relist: the objects are in the middle of a relist; the restart lists again.
 * A key longer than a Kubernetes name is written as its SHA-256 (find it with
 * checkpoint_find_watch(), which does the same). */
int checkpoint_file_watch(struct checkpoint_file *w, const char *key, const char *rv, bool relist);
int checkpoint_file_object(struct checkpoint_file *w, const char *key,
	const struct checkpoint_object *o);
int checkpoint_file_event(struct checkpoint_file *w, const struct cevent *ev);
/* A writer into memory, without the header record: records to append to a
 * file writer later with checkpoint_file_raw(). */
int checkpoint_file_open_memory(struct checkpoint_file **ret_writer);
/* Hands over the memory writer's records (malloc'd, the caller's to free) and
 * their count, and frees the writer, or frees it and returns its error. */
int checkpoint_file_take_memory(struct checkpoint_file *w, char **ret_records, size_t *ret_len,
	size_t *ret_count);
/* Appends count complete records as they are. */
int checkpoint_file_raw(struct checkpoint_file *w, const char *records, size_t len, size_t count);
/* Writes the end record, flushes, fsyncs and renames into place (never
 * through a link), then frees the writer. */
int checkpoint_file_commit(struct checkpoint_file *w);
/* Drops the temporary file and frees the writer. NULL is fine. */
void checkpoint_file_abort(struct checkpoint_file *w);

/* Checkpoints written off the loop thread (STYLE.md, "The event loop").
 *
 * The loop takes a snapshot: for each watch its key, resourceVersion and
 * relist flag, and its objects: a running watch's as a source (below: a copy
 * of its table's compact records, whose bytes the writer thread reads back from
 * the table's spill file), a loaded checkpoint's by pointer (struct
 * checkpoint_object is never changed once recorded; objects freed while a
 * snapshot is alive are freed with it). Undelivered events are few (the queue is bounded) and owned by the
 * queue, so they are serialised at once. A worker thread (at SCHED_IDLE) then
 * writes the file in the format above, fsyncs and renames it, and reports
 * through an eventfd; the loop joins the thread and frees the snapshot. One
 * checkpoint at a time. */

struct checkpoint_snapshot;

/* dir is copied. */
int checkpoint_snapshot_create(const char *dir, struct checkpoint_snapshot **ret_snapshot);
/* Drops the snapshot's references. Loop thread only. NULL is fine. */
void checkpoint_snapshot_free(struct checkpoint_snapshot *s);
/* Starts a watch: the objects added next are its. */
int checkpoint_snapshot_watch(struct checkpoint_snapshot *s, const char *key, const char *rv,
	bool relist);
/* Points at o, which stays allocated until the snapshot is freed (objects
 * freed meanwhile wait for it). What the file holds of it (rv, name, ns, json,
 * kind, api_version, typed) must not change meanwhile: objects.c replaces an
 * object that changes; only its generation, which the writer does not read,
 * is updated in place. */
int checkpoint_snapshot_object(struct checkpoint_snapshot *s, const char *key,
	struct checkpoint_object *o);
/* A watch's objects read by the writer thread, one by one: read() fills
 * ret_key (the source's buffer) and ret (pointing into the source's buffers,
 * valid until the next read) for object i < count, and returns 0 or a negative
 * errno. release() runs on the loop thread when the snapshot is freed. */
struct checkpoint_source {
	size_t count;
	int (*read)(void *data, size_t i, const char **ret_key, struct checkpoint_object *ret);
	void (*release)(void *data);
	void *data;
};

/* Adds src's objects to the snapshot's current watch; the snapshot takes
 * ownership of src->data (released even when this fails). */
int checkpoint_snapshot_source(struct checkpoint_snapshot *s, const struct checkpoint_source *src);
/* checkpoint_snapshot_object() for every object of a table (key ->
 * struct checkpoint_object), faster than one by one through hashmap_next(). */
int checkpoint_snapshot_table(struct checkpoint_snapshot *s, const struct hashmap *objects);
/* Adds every watch of a loaded checkpoint not taken over by a running watch
 * (its kind not served yet), unchanged. cp may be NULL. */
int checkpoint_snapshot_unadopted(struct checkpoint_snapshot *s, struct checkpoint_state *cp);
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

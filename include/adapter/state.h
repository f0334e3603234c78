#ifndef ADAPTER_STATE_H
#define ADAPTER_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/cevent.h"
#include "adapter/util/hashmap.h"

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

struct state_object {
	char *rv;
	char *name;
	char *ns;
	char *json; /* NULL when only references are kept */
	size_t json_len;
	char *kind; /* for references: NULL means the resource's */
	char *api_version;
	bool typed; /* json has its own apiVersion and kind (watch events and CR lists do) */
	unsigned generation;
	/* References beyond the owner's: checkpoint snapshots (checkpoint.c)
	 * that write it from another thread. Only the loop thread counts. */
	unsigned refs;
};

/* Drops a reference; frees the object when it was the last one. */
void state_object_free(struct state_object *o);
/* Frees every state_object in the map and the map's entries. */
void state_objects_clear(struct hashmap *objects);

/* A watch's state read from a checkpoint. */
struct state_watch {
	char *key;
	char *rv;
	struct hashmap objects; /* uid (or namespace/name) -> struct state_object */
	bool relist;		/* written in the middle of a relist: list again */
	bool adopted;		/* taken over by a running watch */
};

struct state_checkpoint {
	struct state_watch *watches;
	size_t n_watches;
	struct cevent **events; /* undelivered, in the order written */
	size_t n_events;
	size_t n_objects;
};

/* What is wrong with a checkpoint that cannot be loaded. */
struct state_load_error {
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
int state_load(const char *dir, const struct cevent_params *params, size_t max_record,
	struct state_checkpoint **ret_checkpoint, struct state_load_error *ret_error);
struct state_watch *state_find_watch(struct state_checkpoint *cp, const char *key);
void state_checkpoint_free(struct state_checkpoint *cp);

struct state_writer;

int state_writer_open(const char *dir, struct state_writer **ret_writer);
/* relist: the objects are in the middle of a relist; the restart lists again.
 * A key longer than a Kubernetes name is written as its SHA-256 (find it with
 * state_find_watch(), which does the same). */
int state_writer_watch(struct state_writer *w, const char *key, const char *rv, bool relist);
int state_writer_object(struct state_writer *w, const char *uid, const struct state_object *o);
int state_writer_event(struct state_writer *w, const struct cevent *ev);
/* A writer into memory, without the header record: records to append to a
 * file writer later with state_writer_raw(). */
int state_writer_open_memory(struct state_writer **ret_writer);
/* Hands over the memory writer's records (malloc'd, the caller's to free) and
 * their count, and frees the writer, or frees it and returns its error. */
int state_writer_take_memory(struct state_writer *w, char **ret_records, size_t *ret_len,
	size_t *ret_count);
/* Appends count complete records as they are. */
int state_writer_raw(struct state_writer *w, const char *records, size_t len, size_t count);
/* Writes the end record, flushes, fsyncs and renames into place (never
 * through a link), then frees the writer. */
int state_writer_commit(struct state_writer *w);
/* Drops the temporary file and frees the writer. NULL is fine. */
void state_writer_abort(struct state_writer *w);

#endif

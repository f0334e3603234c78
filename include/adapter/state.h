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
 * temporary file, fsync'd and renamed over the old one: one JSON object per
 * line, read back with the watch-stream parser (bounded by the longest line):
 *   {"type":"CHECKPOINT","object":{"kind":"Checkpoint","metadata":{"name":"1"}}}
 *   {"type":"WATCH","object":{"kind":"Watch"|"WatchRelist","metadata":{"name":KEY,"resourceVersion":RV}}}
 *   {"type":"OBJECT","object":OBJECT}                       (of the WATCH above)
 *   {"type":"OBJECT_REF","object":{"kind",...,"metadata":{...}}} (references only)
 *   {"type":"EVENT_ADD|EVENT_UPDATE|EVENT_DELETE","id":ID,"time":T,
 *    "object":{"apiVersion","kind","metadata":{"name","namespace","uid"}},"data":DATA}
 * EVENT lines are events accepted but not yet delivered; they are sent again
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

/* Reads DIR/checkpoint.ndjson. Returns 0, -ENOENT when there is none, or
 * -EBADMSG with *ret_line set for a damaged file. Events are rebuilt with
 * params (the current source and overrides) and keep their ids and times. */
int state_load(const char *dir, const struct cevent_params *params, size_t max_line,
	struct state_checkpoint **ret_checkpoint, size_t *ret_line);
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
/* A writer into memory, without the header line: lines to append to a file
 * writer later with state_writer_raw(). */
int state_writer_open_memory(struct state_writer **ret_writer);
/* Hands over the memory writer's lines (malloc'd, the caller's to free) and
 * frees the writer, or frees it and returns its error. */
int state_writer_take_memory(struct state_writer *w, char **ret_lines, size_t *ret_len);
/* Appends complete lines as they are. */
int state_writer_raw(struct state_writer *w, const char *lines, size_t len);
/* Flushes, fsyncs and renames into place, then frees the writer. */
int state_writer_commit(struct state_writer *w);
/* Drops the temporary file and frees the writer. NULL is fine. */
void state_writer_abort(struct state_writer *w);

#endif

#ifndef ADAPTER_CHANGES_H
#define ADAPTER_CHANGES_H

#include <stddef.h>

#include "adapter/util/buf.h"

/* --with-changes: the JSON paths that differ between two states of one
 * Kubernetes object, for the `changedpaths` extension of update events. No
 * I/O, no logging.
 *
 * The value is a comma-separated list of paths, in key order within each map:
 * - a path is the keys from the top, joined by dots:
 *   metadata.labels.helloknative;
 * - in a key, a dot, a comma and a backslash are escaped with a backslash (as
 *   kubectl's jsonpath escapes dots): metadata.labels.app\.kubernetes\.io/name;
 *   control characters (C0, DEL, and C1 as UTF-8) are written \xNN, byte by
 *   byte, so the value is a valid CloudEvents String;
 * - an array is compared as a whole: when anything in it changed, its own
 *   path is listed (spec.containers), never indexes, which shift on insertion;
 * - a map that appeared or disappeared lists each key inside it, as if the
 *   other side were an empty map (labels added to an object that had none:
 *   metadata.labels.helloknative); an empty map lists its own path; a value
 *   whose type changed lists its path;
 * - left out, as noise a filter never wants: metadata.resourceVersion and
 *   metadata.managedFields (they change on every write) and
 *   metadata.generation (bumped by the server when spec changes, which is
 *   listed itself).
 * Bounded: at most CHANGES_MAX_PATHS paths and CHANGES_MAX_BYTES bytes; when
 * more changed, the list ends with the entry CHANGES_TRUNCATED ("..."), which
 * no real path can be (dots in keys are escaped). An empty value means only
 * the ignored fields changed. */

#define CHANGES_EXTENSION "changedpaths"
#define CHANGES_MAX_PATHS 64
#define CHANGES_MAX_BYTES 1024
#define CHANGES_TRUNCATED "..."

/* Appends the paths that differ between old_json and new_json (each a JSON
 * object of at most max_depth levels) to out. Returns the number of paths
 * listed (the truncation marker not counted), -EBADMSG when either is not
 * valid JSON (UTF-8 included) or nests deeper than max_depth, or -ENOMEM.
 * On failure out holds what it held before. */
int changes_diff(const char *old_json, size_t old_len, const char *new_json, size_t new_len,
	unsigned max_depth, struct buf *out);

#endif

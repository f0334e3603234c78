#ifndef ADAPTER_LEADER_STATE_H
#define ADAPTER_LEADER_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/http.h"
#include "adapter/kube.h"

/* What a successor needs, kept in the cluster: one ConfigMap (NAME, in the
 * Lease's namespace) whose binaryData holds the leader's checkpoint (the
 * --state-dir format, checkpoint.h: per watch the resourceVersion its events
 * were all accepted up to, the object table, and the events not delivered
 * yet), zlib-compressed. Writes carry the resourceVersion last read or
 * written, so a write by a replica that no longer leads fails (409). A
 * ConfigMap holds at most 1 MiB: a state compressing to more is not written
 * (-E2BIG). */

/* base64 of the compressed state, at most (the rest of the 1 MiB is room for
 * the metadata). */
#define LEADER_STATE_MAX_BYTES (1000u * 1000u)
/* The most a state may inflate to when loaded. */
#define LEADER_STATE_MAX_INFLATED (1024ull * 1024ull * 1024ull)

struct leader_state;

/* r: 0 with the state (len 0: none recorded yet), or a negative errno
 * (-EBADMSG: damaged). data is valid during the call. */
typedef void (*leader_state_loaded_fn)(int r, const char *data, size_t len, void *userdata);
/* r: 0, -EBUSY when another replica wrote since (409), -E2BIG, or another
 * negative errno. */
typedef void (*leader_state_saved_fn)(int r, void *userdata);

/* Borrows kube and http; copies the strings. */
int leader_state_create(struct kube *kube, struct http *http, const char *ns, const char *name,
	const char *holder, struct leader_state **ret_state);
/* Cancels a request in flight (no callback). NULL is fine. */
void leader_state_destroy(struct leader_state *s);
/* Reads the ConfigMap and remembers its resourceVersion for the saves. */
int leader_state_load(struct leader_state *s, leader_state_loaded_fn done, void *userdata);
/* Compresses and writes data (a checkpoint file's bytes). */
int leader_state_save(struct leader_state *s, const char *data, size_t len, size_t raw_len,
	leader_state_saved_fn done, void *userdata);
bool leader_state_busy(const struct leader_state *s);

/* zlib, then base64 (no line breaks): a malloc'd, NUL-terminated string. */
int leader_state_encode(const char *data, size_t len, char **ret_text, size_t *ret_len);
/* The reverse, refusing more than max_out bytes inflated (-E2BIG) and
 * anything damaged (-EBADMSG). */
int leader_state_decode(
	const char *text, size_t len, size_t max_out, char **ret_data, size_t *ret_len);

#endif

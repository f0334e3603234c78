#ifndef ADAPTER_CHECKPOINT_INTERNAL_H
#define ADAPTER_CHECKPOINT_INTERNAL_H

/* Shared by checkpoint_write.c and checkpoint_load.c. */

#define CHECKPOINT_FILE "checkpoint.ndjson"
#define CHECKPOINT_VERSION 2

/* Keys name what a watch watches and can be long (a label selector): a key
 * of 200 bytes or more is stored as "sha256:" and its hex digest, in out. */
const char *checkpoint_stored_key(const char *key, char out[80]);

#endif

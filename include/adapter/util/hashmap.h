#ifndef ADAPTER_UTIL_HASHMAP_H
#define ADAPTER_UTIL_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>

/* A string-keyed hash map with separate chaining. Keys are copied; values are
 * borrowed pointers the caller owns. */
struct hashmap_entry {
	struct hashmap_entry *next;
	void *value;
	size_t hash;
	char key[];
};

struct hashmap {
	struct hashmap_entry **slots;
	size_t nslots;
	size_t count;
};

void hashmap_init(struct hashmap *m);
/* Frees the entries, not the values. */
void hashmap_finish(struct hashmap *m);
void *hashmap_get(const struct hashmap *m, const char *key);
/* Inserts or replaces. Returns 0 or -ENOMEM. */
int hashmap_put(struct hashmap *m, const char *key, void *value);
/* Removes the key and returns its value, or NULL. */
void *hashmap_remove(struct hashmap *m, const char *key);

/* For a caller that looks a key up, adds it when absent and removes it later
 * (one hash, no second lookup, no key compare on removal): the hash of key,
 * a lookup with it, an insert of a key known to be absent (returns its entry,
 * whose key is the map's copy, or NULL when out of memory), and the removal
 * of that entry (freed; the value is the caller's). */
size_t hashmap_hash(const char *key);
void *hashmap_get_hashed(const struct hashmap *m, const char *key, size_t hash);
struct hashmap_entry *hashmap_add_hashed(struct hashmap *m, const char *key, size_t hash,
	void *value);
void hashmap_remove_entry(struct hashmap *m, struct hashmap_entry *e);

/* Iteration: it starts zeroed; returns false when done. The map must not be
 * changed during iteration, except by hashmap_remove() of the current key. */
struct hashmap_iter {
	size_t slot;
	struct hashmap_entry *cur, *next;
};
bool hashmap_next(struct hashmap *m, struct hashmap_iter *it, const char **ret_key,
	void **ret_value);

#endif

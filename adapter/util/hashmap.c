#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/util/hashmap.h"

size_t hashmap_hash(const char *s) {
	/* FNV-1a: keys are uids and names, short and not adversarial enough to
	 * need a keyed hash (they come from the API server, not the network). */
	uint64_t h = UINT64_C(1469598103934665603);

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(1099511628211);
	}
	return (size_t)h;
}

void hashmap_init(struct hashmap *m) {
	*m = (struct hashmap){ 0 };
}

void hashmap_finish(struct hashmap *m) {
	if (!m)
		return;
	for (size_t i = 0; i < m->nslots; i++) {
		struct hashmap_entry *e = m->slots[i];
		while (e) {
			struct hashmap_entry *n = e->next;
			free(e);
			e = n;
		}
	}
	free(m->slots);
	*m = (struct hashmap){ 0 };
}

static struct hashmap_entry **find(const struct hashmap *m, const char *key, size_t h) {
	struct hashmap_entry **pp;

	if (!m->nslots)
		return NULL;
	for (pp = &m->slots[h & (m->nslots - 1)]; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			return pp;
	return NULL;
}

void *hashmap_get(const struct hashmap *m, const char *key) {
	return hashmap_get_hashed(m, key, hashmap_hash(key));
}

static int grow(struct hashmap *m) {
	size_t n = m->nslots ? m->nslots * 2 : 64;
	struct hashmap_entry **slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->nslots; i++) {
		struct hashmap_entry *e = m->slots[i];
		while (e) {
			struct hashmap_entry *next = e->next;
			e->next = slots[e->hash & (n - 1)];
			slots[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = n;
	return 0;
}

int hashmap_put(struct hashmap *m, const char *key, void *value) {
	size_t h = hashmap_hash(key);
	struct hashmap_entry **pp = find(m, key, h);

	if (pp) {
		(*pp)->value = value;
		return 0;
	}
	return hashmap_add_hashed(m, key, h, value) ? 0 : -ENOMEM;
}

void *hashmap_get_hashed(const struct hashmap *m, const char *key, size_t hash) {
	struct hashmap_entry **pp = find(m, key, hash);

	return pp ? (*pp)->value : NULL;
}

struct hashmap_entry *hashmap_add_hashed(struct hashmap *m, const char *key, size_t hash,
	void *value) {
	size_t klen = strlen(key);
	struct hashmap_entry *e;

	if (m->count + 1 > m->nslots && grow(m) < 0)
		return NULL;
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		return NULL;
	memcpy(e->key, key, klen + 1);
	e->hash = hash;
	e->value = value;
	e->next = m->slots[hash & (m->nslots - 1)];
	m->slots[hash & (m->nslots - 1)] = e;
	m->count++;
	return e;
}

void hashmap_remove_entry(struct hashmap *m, struct hashmap_entry *e) {
	struct hashmap_entry **pp = &m->slots[e->hash & (m->nslots - 1)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	free(e);
	m->count--;
}

void *hashmap_remove(struct hashmap *m, const char *key) {
	struct hashmap_entry **pp = find(m, key, hashmap_hash(key)), *e;
	void *v;

	if (!pp)
		return NULL;
	e = *pp;
	*pp = e->next;
	v = e->value;
	free(e);
	m->count--;
	return v;
}

bool hashmap_next(struct hashmap *m, struct hashmap_iter *it, const char **ret_key,
	void **ret_value) {
	if (it->cur)
		it->cur = it->next;
	while (!it->cur) {
		if (it->slot >= m->nslots)
			return false;
		it->cur = m->slots[it->slot++];
	}
	it->next = it->cur->next;
	if (ret_key)
		*ret_key = it->cur->key;
	if (ret_value)
		*ret_value = it->cur->value;
	return true;
}

#include <criterion/criterion.h>
#include <stdio.h>

#include "adapter/util/hashmap.h"

Test(hashmap, put_get_remove_many) {
	struct hashmap m;
	char key[32];

	hashmap_init(&m);
	for (long i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "uid-%ld", i);
		cr_assert_eq(hashmap_put(&m, key, (void *)(i + 1)), 0);
	}
	cr_assert_eq(m.count, 5000);
	cr_assert_eq((long)hashmap_get(&m, "uid-4242"), 4243);
	cr_assert_eq((long)hashmap_remove(&m, "uid-4242"), 4243);
	cr_assert_null(hashmap_get(&m, "uid-4242"));
	cr_assert_eq(hashmap_put(&m, "uid-1", (void *)7L), 0);
	cr_assert_eq((long)hashmap_get(&m, "uid-1"), 7);
	cr_assert_eq(m.count, 4999);
	hashmap_finish(&m);
}

Test(hashmap, iterate_and_remove_current) {
	struct hashmap m;
	struct hashmap_iter it = { 0 };
	const char *k;
	void *v;
	int n = 0;

	hashmap_init(&m);
	hashmap_put(&m, "a", (void *)1L);
	hashmap_put(&m, "b", (void *)2L);
	hashmap_put(&m, "c", (void *)3L);
	while (hashmap_next(&m, &it, &k, &v)) {
		n++;
		hashmap_remove(&m, k);
	}
	cr_assert_eq(n, 3);
	cr_assert_eq(m.count, 0);
	hashmap_finish(&m);
}

/* The hashed calls the delivery queue uses: entries added with a kept hash
 * survive the table's growth, and each is removed by its entry, from the
 * middle of a bucket's list as well as its head, leaving the others found. */
Test(hashmap, add_hashed_then_remove_each_entry) {
	struct hashmap m;
	struct hashmap_entry *e[3000];
	char key[32];

	hashmap_init(&m);
	for (long i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "ns/obj-%ld", i);
		size_t h = hashmap_hash(key);
		cr_assert_null(hashmap_get_hashed(&m, key, h));
		e[i] = hashmap_add_hashed(&m, key, h, (void *)(i + 1));
		cr_assert_not_null(e[i]);
		cr_assert_str_eq(e[i]->key, key);
		cr_assert_eq((long)hashmap_get_hashed(&m, key, h), i + 1);
	}
	cr_assert_eq(m.count, 3000);
	/* every other one, then the rest backwards */
	for (long i = 0; i < 3000; i += 2)
		hashmap_remove_entry(&m, e[i]);
	cr_assert_eq(m.count, 1500);
	for (long i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "ns/obj-%ld", i);
		if (i % 2)
			cr_assert_eq((long)hashmap_get(&m, key), i + 1, "%s", key);
		else
			cr_assert_null(hashmap_get(&m, key), "%s", key);
	}
	for (long i = 2999; i > 0; i -= 2)
		hashmap_remove_entry(&m, e[i]);
	cr_assert_eq(m.count, 0);
	for (size_t s = 0; s < m.nslots; s++)
		cr_assert_null(m.slots[s]);
	hashmap_finish(&m);
}

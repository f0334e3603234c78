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

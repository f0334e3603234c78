#include <criterion/criterion.h>

#include "adapter/util/backoff.h"

Test(backoff, doubles_up_to_the_cap) {
	/* rnd 1.0-epsilon gives the full delay, 0 gives half of it. */
	cr_assert_eq(backoff_delay(100000, 30000000, 1, 0.0), 50000);
	cr_assert_eq(backoff_delay(100000, 30000000, 2, 0.0), 100000);
	cr_assert_eq(backoff_delay(100000, 30000000, 3, 0.0), 200000);
	cr_assert_eq(backoff_delay(100000, 30000000, 20, 0.0), 15000000);
	cr_assert_eq(backoff_delay(100000, 30000000, 1000, 0.0), 15000000);
}

Test(backoff, jitter_stays_in_range) {
	for (int i = 0; i < 1000; i++) {
		uint64_t d = backoff_delay(100000, 30000000, 4, backoff_random());
		cr_assert(d >= 400000 && d <= 800000, "delay %lu", (unsigned long)d);
	}
}

Test(backoff, next_and_reset) {
	struct backoff b;

	backoff_init(&b, 1000, 8000);
	cr_assert_leq(backoff_next(&b), 1000);
	cr_assert_leq(backoff_next(&b), 2000);
	cr_assert_geq(backoff_next(&b), 2000);
	backoff_reset(&b);
	cr_assert_leq(backoff_next(&b), 1000);
	cr_assert_eq(backoff_delay(1000, 8000, 0, 0.5), 0);
}

#include <stdlib.h>
#include <sys/random.h>

#include "adapter/util/backoff.h"

void backoff_init(struct backoff *b, uint64_t initial_usec, uint64_t max_usec) {
	*b = (struct backoff){ .initial_usec = initial_usec, .max_usec = max_usec };
}

double backoff_random(void) {
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
		v = (uint64_t)random() << 31 ^ (uint64_t)random();
	return (double)(v >> 11) / (double)(UINT64_C(1) << 53);
}

uint64_t backoff_delay(uint64_t initial_usec, uint64_t max_usec, unsigned attempt, double rnd) {
	uint64_t d = initial_usec;

	if (attempt == 0)
		return 0;
	for (unsigned i = 1; i < attempt && d < max_usec; i++)
		d *= 2;
	if (d > max_usec)
		d = max_usec;
	/* Half fixed, half random: spreads retries of many clients without ever
	 * retrying immediately. */
	return d / 2 + (uint64_t)((double)(d / 2) * rnd);
}

uint64_t backoff_next(struct backoff *b) {
	b->attempt++;
	return backoff_delay(b->initial_usec, b->max_usec, b->attempt, backoff_random());
}

void backoff_reset(struct backoff *b) {
	b->attempt = 0;
}

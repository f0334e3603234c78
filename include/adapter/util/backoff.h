#ifndef ADAPTER_UTIL_BACKOFF_H
#define ADAPTER_UTIL_BACKOFF_H

#include <stdint.h>

/* Capped exponential backoff with full jitter in [delay/2, delay]: the n-th
 * failure waits about initial * 2^(n-1), never more than max. */
struct backoff {
	uint64_t initial_usec;
	uint64_t max_usec;
	unsigned attempt; /* failures so far */
};

void backoff_init(struct backoff *b, uint64_t initial_usec, uint64_t max_usec);
/* Records one more failure and returns how long to wait before the next try. */
uint64_t backoff_next(struct backoff *b);
/* The delay for the given attempt number (1-based), without state; jitter uses
 * rnd in [0, 1). Exposed for tests. */
uint64_t backoff_delay(uint64_t initial_usec, uint64_t max_usec, unsigned attempt, double rnd);
void backoff_reset(struct backoff *b);
/* Uniform random double in [0, 1). */
double backoff_random(void);

#endif

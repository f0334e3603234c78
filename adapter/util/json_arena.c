#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/util/json_arena.h"

/* Each block: 16 bytes holding its size, then the block, rounded up to 16. */
#define HDR 16

static size_t rounded(size_t n) {
	return (n + 15) & ~(size_t)15;
}

static int owns(const struct json_arena *a, const void *p) {
	return (const char *)p >= a->base && (const char *)p < a->base + a->cap;
}

static size_t size_of(const void *p) {
	size_t n;

	memcpy(&n, (const char *)p - HDR, sizeof(n));
	return n;
}

static int is_last(const struct json_arena *a, const void *p) {
	return (const char *)p + rounded(size_of(p)) == a->base + a->used;
}

static void *arena_malloc(void *ctx, size_t n) {
	struct json_arena *a = ctx;
	char *p;

	if (n > a->cap || rounded(n) + HDR > a->cap - a->used)
		return malloc(n);
	p = a->base + a->used + HDR;
	memcpy(p - HDR, &n, sizeof(n));
	a->used += HDR + rounded(n);
	return p;
}

static void arena_free(void *ctx, void *p) {
	struct json_arena *a = ctx;

	if (!owns(a, p)) {
		free(p);
		return;
	}
	if (is_last(a, p))
		a->used = (size_t)((char *)p - HDR - a->base);
}

static void *arena_realloc(void *ctx, void *p, size_t n) {
	struct json_arena *a = ctx;
	size_t old;
	void *q;

	if (!p)
		return arena_malloc(ctx, n);
	if (!owns(a, p))
		return realloc(p, n);
	old = size_of(p);
	if (is_last(a, p) && n <= a->cap && rounded(n) <= a->cap - (size_t)((char *)p - a->base)) {
		/* The last block grows or shrinks in place. */
		memcpy((char *)p - HDR, &n, sizeof(n));
		a->used = (size_t)((char *)p - a->base) + rounded(n);
		return p;
	}
	q = arena_malloc(ctx, n);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	arena_free(ctx, p);
	return q;
}

void json_arena_init(struct json_arena *a, void *base, size_t cap, yajl_alloc_funcs *ret_funcs) {
	*a = (struct json_arena){ .base = base, .cap = cap };
	*ret_funcs = (yajl_alloc_funcs){ .malloc = arena_malloc, .realloc = arena_realloc,
		.free = arena_free, .ctx = a };
}

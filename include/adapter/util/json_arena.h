#pragma once

#include <stddef.h>
#include <yajl/yajl_common.h>

/* yajl's allocations for one short-lived parser (its handle, lexer, state
 * stack and string buffer, about 2.5 KB) from a caller's buffer, usually on
 * the stack, instead of malloc: a watch event's parse made a dozen allocations
 * and frees. What does not fit goes to malloc; nothing needs freeing after
 * yajl_free() beyond the buffer itself. */
struct json_arena {
	char *base;
	size_t used, cap;
};

/* base must be aligned to 16 bytes (alignas(16) char[N]). */
void json_arena_init(struct json_arena *a, void *base, size_t cap, yajl_alloc_funcs *ret_funcs);

/* yajl's allocations from a caller's buffer (adapter/util/json_arena.c): blocks
 * inside it, growth in place, a move to malloc once full, and whole parses
 * with a buffer too small for them (run under ASan in the sanitizer tier, so a
 * block lost or freed twice fails it). */
#include <criterion/criterion.h>
#include <stdalign.h>
#include <stdint.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "adapter/util/json_arena.h"

Test(json_arena, blocks_grow_in_place_then_move_to_malloc) {
	alignas(16) char mem[256];
	struct json_arena a;
	yajl_alloc_funcs f;
	char *p, *q, *r;

	json_arena_init(&a, mem, sizeof(mem), &f);
	p = f.malloc(f.ctx, 10);
	cr_assert(p >= mem && p < mem + sizeof(mem));
	cr_assert_eq((uintptr_t)p % 16, 0);
	memcpy(p, "0123456789", 10);
	/* The last block grows where it is. */
	q = f.realloc(f.ctx, p, 100);
	cr_assert_eq(q, p);
	cr_assert_arr_eq(q, "0123456789", 10);
	r = f.malloc(f.ctx, 16);
	cr_assert(r >= mem && r < mem + sizeof(mem));
	/* Not the last block any more: it moves, out of the full buffer. */
	q = f.realloc(f.ctx, p, 200);
	cr_assert(q < mem || q >= mem + sizeof(mem));
	cr_assert_arr_eq(q, "0123456789", 10);
	/* Larger than the buffer: malloc, and realloc of it is realloc. */
	p = f.malloc(f.ctx, 1000);
	cr_assert(p < mem || p >= mem + sizeof(mem));
	p = f.realloc(f.ctx, p, 5000);
	cr_assert_not_null(p);
	f.free(f.ctx, p);
	f.free(f.ctx, q);
	/* Freeing the last block gives its room back. */
	f.free(f.ctx, r);
	p = f.malloc(f.ctx, 16);
	cr_assert_eq(p, r);
	f.free(f.ctx, p);
	f.free(f.ctx, NULL);
}

struct seen {
	size_t strings;
	size_t longest;
};

static int on_string(void *ctx, const unsigned char *s, size_t len) {
	struct seen *g = ctx;

	(void)s;
	g->strings++;
	if (len > g->longest)
		g->longest = len;
	return 1;
}

static const yajl_callbacks cbs = { .yajl_string = on_string };

static void parse_with(size_t cap, const char *text, size_t len, struct seen *g) {
	alignas(16) static char mem[8192];
	struct json_arena a;
	yajl_alloc_funcs f;
	yajl_handle h;

	cr_assert_leq(cap, sizeof(mem));
	memset(g, 0, sizeof(*g));
	json_arena_init(&a, mem, cap, &f);
	h = yajl_alloc(&cbs, &f, g);
	cr_assert_not_null(h);
	cr_assert_eq(yajl_parse(h, (const unsigned char *)text, len), yajl_status_ok);
	cr_assert_eq(yajl_complete_parse(h), yajl_status_ok);
	yajl_free(h);
}

Test(json_arena, parses_whole_with_any_buffer) {
	/* Escaped strings go through yajl's decode buffer (2 KB, grown), and
	 * a deep nesting through its state stack. */
	static char text[40000];
	size_t n = 0;
	struct seen g;

	for (int i = 0; i < 300; i++)
		text[n++] = '[';
	text[n++] = '"';
	for (int i = 0; i < 5000; i++) {
		memcpy(text + n, "\\n", 2);
		n += 2;
	}
	text[n++] = '"';
	for (int i = 0; i < 300; i++)
		text[n++] = ']';
	for (size_t cap = 0; cap <= 8192; cap += cap < 512 ? 16 : 1024) {
		parse_with(cap, text, n, &g);
		cr_assert_eq(g.strings, 1);
		cr_assert_eq(g.longest, 5000, "cap %zu", cap);
	}
}

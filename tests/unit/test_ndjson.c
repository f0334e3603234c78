#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/ndjson.h"

struct lines {
	char got[16][256];
	int n;
};

static int collect(const char *line, size_t len, void *ud) {
	struct lines *l = ud;

	memcpy(l->got[l->n], line, len);
	l->got[l->n][len] = '\0';
	l->n++;
	return 0;
}

Test(ndjson, line_split_across_chunks) {
	struct ndjson p;
	struct lines l = { 0 };

	ndjson_init(&p, 1024);
	cr_assert_eq(ndjson_feed(&p, "{\"type\":\"ADD", 12, collect, &l), 0);
	cr_assert_eq(ndjson_feed(&p, "ED\",\"object\":{}}\n", 17, collect, &l), 1);
	cr_assert_str_eq(l.got[0], "{\"type\":\"ADDED\",\"object\":{}}");
	ndjson_finish(&p);
}

Test(ndjson, many_lines_in_one_chunk_crlf_and_blank) {
	struct ndjson p;
	struct lines l = { 0 };
	const char *in = "a\r\nb\n\n\r\nc\nd";

	ndjson_init(&p, 1024);
	cr_assert_eq(ndjson_feed(&p, in, strlen(in), collect, &l), 3);
	cr_assert_str_eq(l.got[0], "a");
	cr_assert_str_eq(l.got[1], "b");
	cr_assert_str_eq(l.got[2], "c");
	cr_assert_eq(ndjson_pending(&p), 1);
	cr_assert_eq(ndjson_feed(&p, "\n", 1, collect, &l), 1);
	cr_assert_str_eq(l.got[3], "d");
	ndjson_finish(&p);
}

Test(ndjson, every_byte_its_own_chunk) {
	struct ndjson p;
	struct lines l = { 0 };
	const char *in = "{\"x\":1}\n{\"y\":2}\r\n";

	ndjson_init(&p, 1024);
	for (size_t i = 0; i < strlen(in); i++)
		cr_assert_geq(ndjson_feed(&p, in + i, 1, collect, &l), 0);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.got[1], "{\"y\":2}");
	ndjson_finish(&p);
}

Test(ndjson, overlong_line_is_an_error_and_skipped) {
	struct ndjson p;
	struct lines l = { 0 };

	ndjson_init(&p, 8);
	cr_assert_eq(ndjson_feed(&p, "0123456789", 10, collect, &l), -E2BIG);
	cr_assert_eq(ndjson_feed(&p, "abc\nok\n", 7, collect, &l), 1);
	cr_assert_str_eq(l.got[0], "ok");
	ndjson_finish(&p);
}

Test(ndjson, nothing_after_an_overlong_line_in_the_same_chunk) {
	struct ndjson p;
	struct lines l = { 0 };
	const char *in = "0123456789abcdef\n{\"later\":1}\n";

	/* The later line must not be taken: its version would count as seen. */
	ndjson_init(&p, 8);
	cr_assert_eq(ndjson_feed(&p, in, strlen(in), collect, &l), -E2BIG);
	cr_assert_eq(l.n, 0);
	ndjson_finish(&p);
}

static int count_line(const char *line, size_t len, void *ud) {
	(*(int *)ud)++;
	return 0;
}

/* The watch-stream side of issue 9's 16 MiB string: framing refuses the line
 * as soon as it passes the cap and holds nothing of it afterwards. */
Test(ndjson, watch_line_of_16mib_is_refused_with_bounded_memory) {
	size_t chunk = 16 * 1024, total = 16 << 20;
	char *c = malloc(chunk);
	struct ndjson p;
	int lines = 0, errors = 0, r;

	ndjson_init(&p, 1024);
	cr_assert_eq(ndjson_feed(&p, "{\"type\":\"ADDED\",\"object\":{\"x\":\"", 31, count_line, &lines),
		0);
	memset(c, 'x', chunk);
	for (size_t off = 0; off < total; off += chunk) {
		r = ndjson_feed(&p, c, chunk, count_line, &lines);
		cr_assert(r == 0 || r == -E2BIG, "%d", r);
		errors += r == -E2BIG;
		cr_assert_leq(ndjson_pending(&p), 1024);
		cr_assert_leq(p.line.cap, 2 * chunk + 1024);
	}
	cr_assert_eq(errors, 1);
	cr_assert_eq(ndjson_pending(&p), 0);
	cr_assert_eq(ndjson_feed(&p, "\"}}\n{\"next\":1}\n", 15, count_line, &lines), 1);
	cr_assert_eq(lines, 1);
	ndjson_finish(&p);
	free(c);
}

/* yajl's string lexing, as the adapter links it: with the lean build that is the
 * project's patched yajl (scripts/lean-deps-patches/yajl-2.1-string-scan.patch scans
 * sixteen bytes at a time), else Debian's. Every byte the scan must stop on (quote,
 * backslash, control characters, bytes >= 0x80 when checking UTF-8) and its neighbours
 * (0x1f/0x20, 0x7f) are put at every offset of strings up to 48 bytes long, whole and
 * split across two yajl_parse calls at every point: the decoded string, an error and
 * its position must be what the JSON grammar says. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#define MAXS 2048

struct got {
	char s[MAXS];
	size_t len;
	int strings;
};

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	struct got *g = ctx;
	cr_assert_lt(len, sizeof g->s);
	memcpy(g->s, s, len);
	g->len = len;
	g->strings++;
	return 1;
}

static const yajl_callbacks cbs = {.yajl_string = on_string};

/* Parses the JSON text (in two calls, split at `split`, when split < len) and returns
 * 1 when it is accepted; *g has the decoded string. */
static int parse(const char *text, size_t len, size_t split, int validate, struct got *g)
{
	memset(g, 0, sizeof *g);
	yajl_handle h = yajl_alloc(&cbs, NULL, g);
	cr_assert_not_null(h);
	if (!validate)
		yajl_config(h, yajl_dont_validate_strings, 1);
	yajl_status st;
	if (split < len) {
		st = yajl_parse(h, (const unsigned char *)text, split);
		if (st == yajl_status_ok)
			st = yajl_parse(h, (const unsigned char *)text + split, len - split);
	} else {
		st = yajl_parse(h, (const unsigned char *)text, len);
	}
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	yajl_free(h);
	return st == yajl_status_ok;
}

/* A JSON string of `n` filler bytes with `raw` (rawlen bytes) at offset `at`, in
 * quotes; `want` gets what it decodes to when `dec` (declen bytes) is its decoding. */
static size_t build(char *out, size_t n, size_t at, const char *raw, size_t rawlen)
{
	size_t k = 0;
	out[k++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (i == at) {
			memcpy(out + k, raw, rawlen);
			k += rawlen;
		}
		out[k++] = (char)('a' + i % 26);
	}
	if (at >= n) {
		memcpy(out + k, raw, rawlen);
		k += rawlen;
	}
	out[k++] = '"';
	return k;
}

struct kind {
	const char *raw; /* the bytes inside the JSON string */
	size_t rawlen;
	const char *dec; /* what they decode to; NULL: the text must be rejected */
	size_t declen;
	int validate; /* yajl checks UTF-8 */
};

static void check_kind(const struct kind *k)
{
	char text[MAXS], want[MAXS];
	struct got g;
	for (size_t n = 0; n <= 48; n++) {
		for (size_t at = 0; at <= n; at++) {
			size_t len = build(text, n, at, k->raw, k->rawlen);
			size_t wl = 0;
			if (k->dec) {
				for (size_t i = 0; i < n; i++) {
					if (i == at) {
						memcpy(want + wl, k->dec, k->declen);
						wl += k->declen;
					}
					want[wl++] = (char)('a' + i % 26);
				}
				if (at >= n) {
					memcpy(want + wl, k->dec, k->declen);
					wl += k->declen;
				}
			}
			for (size_t split = 0; split <= len; split++) {
				int ok = parse(text, len, split, k->validate, &g);
				if (!k->dec) {
					cr_assert_not(ok, "accepted a string with byte 0x%02x at %zu of %zu (split %zu)",
						(unsigned char)k->raw[0], at, n, split);
					continue;
				}
				cr_assert(ok, "rejected a string with byte 0x%02x at %zu of %zu (split %zu)",
					(unsigned char)k->raw[0], at, n, split);
				cr_assert_eq(g.strings, 1);
				cr_assert_eq(g.len, wl, "length %zu, want %zu (0x%02x at %zu of %zu, split %zu)", g.len,
					wl, (unsigned char)k->raw[0], at, n, split);
				cr_assert_arr_eq(g.s, want, wl, "decoded bytes differ (0x%02x at %zu of %zu, split %zu)",
					(unsigned char)k->raw[0], at, n, split);
			}
		}
	}
}

#define RAW(s) s, sizeof(s) - 1

Test(yajl_scan, escapes_at_every_offset_decode)
{
	const struct kind kinds[] = {
		{RAW("\\\""), RAW("\""), 1},
		{RAW("\\\\"), RAW("\\"), 1},
		{RAW("\\n"), RAW("\n"), 0},
		{RAW("\\/"), RAW("/"), 1},
		{RAW("\\u00e9"), RAW("\xc3\xa9"), 1},
		{RAW("\\ud83d\\ude00"), RAW("\xf0\x9f\x98\x80"), 0},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		check_kind(&kinds[i]);
}

Test(yajl_scan, boundary_bytes_pass_verbatim)
{
	const struct kind kinds[] = {
		{RAW(" "), RAW(" "), 1},         /* 0x20: the first byte that is not a control */
		{RAW("\x7f"), RAW("\x7f"), 1},   /* DEL is allowed in JSON strings */
		{RAW("!"), RAW("!"), 1},         /* 0x21, next to the quote */
		{RAW("]"), RAW("]"), 1},         /* 0x5d, next to the backslash */
		{RAW("\xc3\xa9"), RAW("\xc3\xa9"), 1},
		{RAW("\xe2\x82\xac"), RAW("\xe2\x82\xac"), 1},
		{RAW("\xf0\x9f\x98\x80"), RAW("\xf0\x9f\x98\x80"), 1},
		{RAW("\xff"), RAW("\xff"), 0},   /* not checked: passed through */
		{RAW("\x80"), RAW("\x80"), 0},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		check_kind(&kinds[i]);
}

Test(yajl_scan, control_bytes_and_bad_utf8_are_rejected_at_every_offset)
{
	const struct kind kinds[] = {
		{"\x00", 1, NULL, 0, 1},
		{RAW("\x01"), NULL, 0, 0},
		{RAW("\t"), NULL, 0, 1},
		{RAW("\n"), NULL, 0, 0},
		{RAW("\x1f"), NULL, 0, 1},
		{RAW("\xff"), NULL, 0, 1},       /* checked: never valid UTF-8 */
		{RAW("\x80"), NULL, 0, 1},       /* a continuation byte alone */
		{RAW("\xc3("), NULL, 0, 1},      /* a lead byte without its continuation */
		{RAW("\\x"), NULL, 0, 1},        /* not an escape */
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		check_kind(&kinds[i]);
}

Test(yajl_scan, long_strings_with_a_quote_in_the_last_block)
{
	/* 1,100 filler bytes (a watch event's data) then an escaped quote at each of the
	 * last 40 positions: the scan's whole blocks and its byte tail both see it. */
	static char text[1200], want[1200];
	struct got g;
	for (size_t at = 1060; at <= 1100; at++) {
		size_t k = 0, wl = 0;
		text[k++] = '"';
		for (size_t i = 0; i < 1100; i++) {
			if (i == at) {
				memcpy(text + k, "\\\"", 2);
				k += 2;
				want[wl++] = '"';
			}
			text[k++] = 'x';
			want[wl++] = 'x';
		}
		if (at == 1100) {
			memcpy(text + k, "\\\"", 2);
			k += 2;
			want[wl++] = '"';
		}
		text[k++] = '"';
		cr_assert_lt(wl, sizeof g.s);
		cr_assert(parse(text, k, k, 1, &g), "rejected, escaped quote at %zu", at);
		cr_assert_eq(g.len, wl);
		cr_assert_arr_eq(g.s, want, wl);
	}
}

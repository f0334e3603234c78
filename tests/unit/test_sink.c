#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/http.h"
#include "adapter/sink.h"

Test(sink, classification_table) {
	static const struct {
		int err;
		long status;
		enum queue_result want;
	} cases[] = {
		{ 0, 200, QUEUE_DELIVERED }, { 0, 202, QUEUE_DELIVERED }, { 0, 204, QUEUE_DELIVERED },
		{ 0, 299, QUEUE_DELIVERED }, { 0, 404, QUEUE_RETRY }, { 0, 408, QUEUE_RETRY },
		{ 0, 425, QUEUE_RETRY }, { 0, 429, QUEUE_RETRY }, { 0, 500, QUEUE_RETRY },
		{ 0, 502, QUEUE_RETRY }, { 0, 503, QUEUE_RETRY }, { 0, 599, QUEUE_RETRY },
		{ 0, 400, QUEUE_DROP }, { 0, 401, QUEUE_DROP }, { 0, 403, QUEUE_DROP },
		{ 0, 409, QUEUE_DROP }, { 0, 413, QUEUE_DROP }, { 0, 301, QUEUE_DROP },
		{ 0, 100, QUEUE_DROP }, { -ECONNREFUSED, 0, QUEUE_RETRY },
		{ -ETIMEDOUT, 0, QUEUE_RETRY }, { -ECONNRESET, 0, QUEUE_RETRY },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(sink_classify(cases[i].err, cases[i].status), cases[i].want,
			"err %d status %ld", cases[i].err, cases[i].status);
}

Test(sink, retry_after_seconds_and_dates) {
	uint64_t d;

	cr_assert_eq(http_parse_retry_after(" 3\r\n", &d), 0);
	cr_assert_eq(d, 3000000);
	cr_assert_eq(http_parse_retry_after("0", &d), 0);
	cr_assert_eq(d, 0);
	/* A date in the past means now. */
	cr_assert_eq(http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", &d), 0);
	cr_assert_eq(d, 0);
	cr_assert_eq(http_parse_retry_after("Fri, 31 Dec 2100 23:59:59 GMT", &d), 0);
	cr_assert_gt(d, 1000000ull * 3600 * 24 * 365);
	cr_assert_eq(http_parse_retry_after("soon", &d), -EINVAL);
	cr_assert_eq(http_parse_retry_after("-5", &d), -EINVAL);
	cr_assert_eq(http_parse_retry_after("5x", &d), -EINVAL);
}

/* ---------------- credentials and header values (issue 9) ---------------- */

Test(sink, url_redact_drops_userinfo) {
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "https://user:pass@sink.example:8443/path?x=1", "https://sink.example:8443/path?x=1" },
		{ "http://user@sink/", "http://sink/" },
		{ "https://u:p@127.0.0.1:6443", "https://127.0.0.1:6443" },
		{ "https://u:p@[fd00::1]:443", "https://[fd00::1]:443" },
		{ "https://:p@h", "https://h" },
		{ "https://sink.example", "https://sink.example" }, /* unchanged, as configured */
		{ "http://sink/a%20b?q=%0A", "http://sink/a%20b?q=%0A" },
		{ "http://a b@c d", "(a URL that cannot be parsed)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = http_url_redact(cases[i].in);
		cr_assert_str_eq(out, cases[i].want, "%s", cases[i].in);
		free(out);
	}
}

Test(sink, header_values_with_control_characters_are_invalid) {
	cr_assert(http_header_value_valid("eyJhbGciOiJSUzI1NiJ9.e30.sig-_~+/="));
	cr_assert(http_header_value_valid(""));
	cr_assert_not(http_header_value_valid("tok\r\nX-Injected: 1"));
	cr_assert_not(http_header_value_valid("tok\n"));
	cr_assert_not(http_header_value_valid("tok\tx"));
	cr_assert_not(http_header_value_valid("tok\x7f"));
}

Test(sink, ce_override_with_line_break_is_percent_encoded) {
	struct config_extension ext = { .name = "team", .value = "a\r\nX-Injected: yes" };
	struct cevent ev = { .id = "1", .type = "t", .source = "s", .subject = "x", .time = "0",
		.kind = "Pod", .name = "p", .namespace = "n\nX-Ns: 1", .api_version = "v1",
		.overrides = &ext, .n_overrides = 1 };
	struct curl_slist *h = NULL;
	struct http_headers hh = { 0 };
	bool seen = false;

	cr_assert_eq(cevent_http_header_lines(&ev, &hh.lines), 0);
	cr_assert_eq(http_headers_link(&hh, &h), 0);
	for (struct curl_slist *l = h; l; l = l->next) {
		cr_assert_null(strpbrk(l->data, "\r\n"), "a line break in a header: %s", l->data);
		if (strcmp(l->data, "ce-team: a%0D%0AX-Injected:%20yes") == 0)
			seen = true;
	}
	cr_assert(seen, "ce-team not percent-encoded");
	http_headers_finish(&hh);
}

/* The sink's header list is our own nodes over NUL-separated lines, kept
 * between requests: linked in order, the last node ends the list, a reset
 * keeps the memory (no allocation per line once warm) and zeroes a line
 * that held a token. */
Test(sink, header_list_reused_without_allocation) {
	struct http_headers h = { 0 };
	struct curl_slist *l = NULL;
	char *lines, *nodes;
	const char *token_at;

	cr_assert_eq(http_headers_add(&h, "ce-id: 1"), 0);
	cr_assert_eq(buf_append_str(&h.lines, "ce-source: "), 0);
	cr_assert_eq(buf_append_str(&h.lines, "s"), 0);
	cr_assert_eq(http_headers_end_line(&h), 0);
	cr_assert_eq(http_headers_add(&h, "Expect:"), 0);
	cr_assert_eq(http_headers_link(&h, &l), 0);
	cr_assert_str_eq(l->data, "ce-id: 1");
	cr_assert_str_eq(l->next->data, "ce-source: s");
	cr_assert_str_eq(l->next->next->data, "Expect:");
	cr_assert_null(l->next->next->next);
	lines = h.lines.data;
	nodes = (char *)h.nodes;

	http_headers_reset(&h);
	h.secret = true;
	cr_assert_eq(http_headers_add(&h, "Authorization: Bearer sekrit"), 0);
	cr_assert_eq(http_headers_link(&h, &l), 0);
	cr_assert_str_eq(l->data, "Authorization: Bearer sekrit");
	cr_assert_null(l->next);
	cr_assert_eq(h.lines.data, lines); /* same memory, nothing reallocated */
	cr_assert_eq((char *)h.nodes, nodes);
	token_at = h.lines.data + strlen("Authorization: Bearer ");
	http_headers_reset(&h);
	cr_assert_eq(memcmp(token_at, "\0\0\0\0\0\0", 6), 0);
	cr_assert_not(h.secret);
	cr_assert_eq(http_headers_link(&h, &l), 0);
	cr_assert_null(l);
	http_headers_finish(&h);
}

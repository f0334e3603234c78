#include <criterion/criterion.h>
#include <errno.h>

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

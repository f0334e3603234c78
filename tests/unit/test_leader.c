#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "adapter/leader.h"
#include "adapter/leader_state.h"
#include "adapter/util/json.h"

Test(leader, lease_record_round_trip) {
	struct leader_record rec = { .duration_sec = 15, .transitions = 3 }, back;
	char *json;

	strcpy(rec.holder, "replica-a_0a1b2c3d");
	strcpy(rec.acquire_time, "2026-12-02T17:00:00.000001Z");
	strcpy(rec.renew_time, "2026-12-02T17:00:02.500000Z");
	strcpy(rec.rv, "4711");
	json = leader_record_json("guitar-eventing", "guitar-adapter", &rec);
	cr_assert_not_null(json);
	cr_assert(strstr(json, "\"apiVersion\":\"coordination.k8s.io/v1\""), "%s", json);
	cr_assert(strstr(json, "\"resourceVersion\":\"4711\""), "%s", json);
	cr_assert_eq(leader_record_parse(json, strlen(json), &back), 0);
	cr_assert_str_eq(back.holder, rec.holder);
	cr_assert_str_eq(back.rv, "4711");
	cr_assert_str_eq(back.renew_time, rec.renew_time);
	cr_assert_eq(back.duration_sec, 15);
	cr_assert_eq(back.transitions, 3);
	free(json);
}

Test(leader, lease_record_holder_is_escaped) {
	struct leader_record rec = { .duration_sec = 1 }, back;
	char *json;

	strcpy(rec.holder, "a\"b\\c");
	json = leader_record_json("ns", "n", &rec);
	cr_assert_not_null(json);
	cr_assert_eq(leader_record_parse(json, strlen(json), &back), 0);
	cr_assert_str_eq(back.holder, "a\"b\\c");
	cr_assert_null(strstr(json, "resourceVersion"), "no rv: a create");
	free(json);
}

Test(leader, lease_record_released_and_bad) {
	struct leader_record back;
	const char *released =
		"{\"metadata\":{\"resourceVersion\":\"9\"},\"spec\":{\"holderIdentity\":"
		"\"\",\"leaseDurationSeconds\":1,\"leaseTransitions\":2}}";

	cr_assert_eq(leader_record_parse(released, strlen(released), &back), 0);
	cr_assert_str_eq(back.holder, "");
	cr_assert_eq(back.duration_sec, 1);
	cr_assert_eq(leader_record_parse("[]", 2, &back), -EBADMSG);
	cr_assert_eq(leader_record_parse("{", 1, &back), -EBADMSG);
}

Test(leader_state, encode_decode_round_trip) {
	size_t n = 300000, tlen = 0, dlen = 0;
	char *data = malloc(n), *text = NULL, *back = NULL;

	for (size_t i = 0; i < n; i++)
		data[i] = (char)("{\"type\":\"OBJECT\"}\n"[i % 18] + (i % 977 == 0));
	cr_assert_eq(leader_state_encode(data, n, &text, &tlen), 0);
	cr_assert_lt(tlen, n / 10, "compressed: %zu", tlen);
	cr_assert_eq(strlen(text), tlen);
	cr_assert_eq(leader_state_decode(text, tlen, LEADER_STATE_MAX_INFLATED, &back, &dlen), 0);
	cr_assert_eq(dlen, n);
	cr_assert_eq(memcmp(back, data, n), 0);
	free(back);
	/* The same limit a bomb meets. */
	cr_assert_eq(leader_state_decode(text, tlen, n - 1, &back, &dlen), -E2BIG);
	free(text);
	free(data);
}

Test(leader_state, damaged_is_refused) {
	char *text = NULL, *back = NULL;
	size_t tlen = 0, dlen = 0;

	cr_assert_eq(leader_state_encode("hello, successor", 16, &text, &tlen), 0);
	/* Cut short (a whole base64 quantum off), not base64, and not zlib. */
	cr_assert_eq(leader_state_decode(text, tlen - 4, 1 << 20, &back, &dlen), -EBADMSG);
	cr_assert_eq(leader_state_decode("!!!!", 4, 1 << 20, &back, &dlen), -EBADMSG);
	cr_assert_eq(leader_state_decode("aGVsbG8=", 8, 1 << 20, &back, &dlen), -EBADMSG);
	cr_assert_eq(leader_state_decode(text, tlen, 1 << 20, &back, &dlen), 0);
	cr_assert_str_eq(back, "hello, successor");
	free(back);
	free(text);
}

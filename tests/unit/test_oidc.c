#include <errno.h>
#include <criterion/criterion.h>
#include <stdlib.h>

#include "adapter/oidc.h"

Test(oidc, parse_token_request_answer) {
	char *token = NULL;
	int64_t exp = 0;

	cr_assert_eq(oidc_parse_answer("{\"kind\":\"TokenRequest\",\"apiVersion\":"
				       "\"authentication.k8s.io/v1\",\"spec\":{\"audiences\":[\"a\"]},"
				       "\"status\":{\"token\":\"eyJ.x.y\",\"expirationTimestamp\":"
				       "\"2026-12-02T12:00:00Z\"}}",
			     &token, &exp),
		0);
	cr_assert_str_eq(token, "eyJ.x.y");
	cr_assert_eq(exp, 1796212800);
	free(token);
	const char *bad[] = { "", "{}", "{\"status\":{}}", "{\"status\":{\"token\":\"\"}}",
		"{\"status\":{\"token\":\"t\"}}",
		"{\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"soon\"}}",
		"{\"status\":{\"token\":5,\"expirationTimestamp\":\"2026-12-02T12:00:00Z\"}}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(oidc_parse_answer(bad[i], &token, &exp), -EBADMSG, "%s", bad[i]);
}

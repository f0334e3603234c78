#include <errno.h>
#include <criterion/criterion.h>

#include "adapter/probes.h"

Test(probes, parse_addr) {
	char host[64];
	unsigned port;

	cr_assert_eq(probes_parse_addr(":8080", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "");
	cr_assert_eq(port, 8080);
	cr_assert_eq(probes_parse_addr("127.0.0.1:0", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "127.0.0.1");
	cr_assert_eq(port, 0);
	cr_assert_eq(probes_parse_addr("[::1]:9092", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "::1");
	cr_assert_eq(port, 9092);
	cr_assert_eq(probes_parse_addr("localhost:1", host, sizeof(host), &port), 0);
	const char *bad[] = { "8080", ":", ":x", ":65536", "::1:80", "[::1]", "[::1]80", "a:-1",
		":80 ", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(probes_parse_addr(bad[i], host, sizeof(host), &port), -EINVAL, "%s",
			bad[i]);
}

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/config.h"

/* The content-mode options' parsers (--content-mode, --batch-linger). */

int config_parse_content_mode(const char *s, enum config_content_mode *ret_mode) {
	static const struct {
		const char *name;
		enum config_content_mode mode;
	} modes[] = {
		{ "binary", CONFIG_CONTENT_BINARY },
		{ "structured", CONFIG_CONTENT_STRUCTURED },
		{ "batched", CONFIG_CONTENT_BATCHED },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(s, modes[i].name) == 0) {
			*ret_mode = modes[i].mode;
			return 0;
		}
	return -EINVAL;
}

int config_parse_duration(const char *s, uint64_t max_usec, uint64_t *ret_usec) {
	static const struct {
		const char *unit;
		uint64_t usec;
	} units[] = { { "", 1000000u }, { "s", 1000000u }, { "ms", 1000u }, { "us", 1u } };
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (v > max_usec / units[i].usec)
			return -EINVAL;
		*ret_usec = v * units[i].usec;
		return 0;
	}
	return -EINVAL;
}

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/config.h"
#include "adapter/config_internal.h"

/* The content-mode options' parsers and setters (--content-mode,
 * --batch-linger; the option table is in config_flags.c). */

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

void config_set_content_mode(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	if (config_parse_content_mode(value, &c->cfg->content_mode) < 0)
		config_report(c, origin, "must be binary, structured or batched, not \"%s\"", value);
}

void config_set_batch_linger(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	if (config_parse_duration(value, 60ull * 1000000ull, &c->cfg->batch_linger_usec) < 0)
		config_report(c, origin, "\"%s\" is not a duration up to 60s (seconds, or e.g. 10ms, 1s)",
			value);
	c->cfg->batch_linger_set = true;
}

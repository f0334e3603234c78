/* The option table's setters for logging and the probe and metrics
 * endpoints (config_flags.c holds the table). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/config.h"
#include "adapter/config_internal.h"
#include "adapter/log.h"

void config_set_log_level(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	if (log_level_from_string(value, &c->cfg->log_level) < 0)
		config_report(c, origin, "must be debug, info, warn or error, not \"%s\"", value);
	c->cfg->log_level_set = true; /* it overrides K_LOGGING_CONFIG's */
}

void config_set_log_format(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	if (strcmp(value, "json") == 0)
		c->cfg->log_format = LOG_FORMAT_JSON;
	else if (strcmp(value, "text") == 0)
		c->cfg->log_format = LOG_FORMAT_TEXT;
	else
		config_report(c, origin, "must be json or text, not \"%s\"", value);
}

/* A listening address: "off" or "" turns the endpoint off. */
static void set_listen_addr(struct ctx *c, char **dst, const char *value, const char *origin) {
	if (!*value || strcmp(value, "off") == 0) {
		free(*dst);
		*dst = NULL;
		return;
	}
	config_check_addr(c, value, origin);
	config_set_str(c, dst, value);
}

void config_set_probes_addr(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	set_listen_addr(c, &c->cfg->probes_addr, value, origin);
	c->cfg->probes_addr_chosen = true;
}

void config_set_metrics_addr(struct ctx *c, const char *origin, const char *value, bool first) {
	(void)first;
	set_listen_addr(c, &c->cfg->metrics_addr, value, origin);
	c->cfg->metrics_addr_chosen = true;
}

#include <strings.h>

#include "adapter/log.h"
#include "adapter/secrets_warning.h"

static bool is_secrets(const struct config_resource *res) {
	/* The core group, from --resource v1/Secret or K_SOURCE_CONFIG's
	 * gvr (resource "secrets"). */
	if (!res->group || *res->group || !res->version || strcasecmp(res->version, "v1") != 0)
		return false;
	return (res->kind && strcasecmp(res->kind, "Secret") == 0) ||
		(res->resource && strcasecmp(res->resource, "secrets") == 0);
}

bool secrets_warning_needed(const struct config *cfg) {
	if (cfg->mode != CONFIG_MODE_RESOURCE)
		return false;
	for (size_t i = 0; i < cfg->n_resources; i++)
		if (is_secrets(&cfg->resources[i]))
			return true;
	return false;
}

bool secrets_warning_check(const struct config *cfg) {
	if (!secrets_warning_needed(cfg))
		return false;
	log_warn("main", "Secrets are watched in Resource mode: every event carries the Secret's "
			 "data to the sink (and to checkpoints with --state-dir); --mode Reference "
			 "sends only a reference",
		LOG_STR("resource", "v1/Secret"));
	return true;
}

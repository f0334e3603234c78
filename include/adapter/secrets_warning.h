#ifndef ADAPTER_SECRETS_WARNING_H
#define ADAPTER_SECRETS_WARNING_H

#include <stdbool.h>

#include "adapter/config.h"

/* In Resource mode an event carries the whole object: watching core v1
 * Secrets sends their data (base64, not encrypted) to the sink, and keeps it
 * in checkpoints with --state-dir. */

/* True when cfg watches core v1 Secrets in Resource mode. */
bool secrets_warning_needed(const struct config *cfg);
/* Logs one warning at start when secrets_warning_needed(), suggesting
 * Reference mode; returns whether it did. */
bool secrets_warning_check(const struct config *cfg);

#endif

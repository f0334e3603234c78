/* K_LOGGING_CONFIG: Knative's map ({"zap-logger-config": "...",
 * "loglevel.<component>": ...}) or a zap JSON object. */
#include <stdlib.h>

#include "adapter/log.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct log_options opts;
	char err[256];
	char *text = fuzz_cstr(data, size);

	fuzz_quiet_logs();
	log_options_default(&opts);
	log_options_from_zap(text, "apiserversource-adapter", &opts, err, sizeof(err));
	free(text);
	return 0;
}

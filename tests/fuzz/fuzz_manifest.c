/* An ApiServerSource manifest (--source-file): resources, selectors
 * (matchLabels, matchExpressions), namespaceSelector, filters, ceOverrides. */
#include "adapter/config.h"
#include "fuzz.h"

static const char *no_env(const char *name, void *userdata) {
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct config cfg;
	char *argv[] = { "apiserversource-adapter", "--source-file", NULL, NULL };

	fuzz_quiet_logs();
	argv[2] = (char *)fuzz_write_file("source.yaml", data, size);
	config_load(&cfg, 3, argv, no_env, NULL, fuzz_on_error, NULL);
	config_finish(&cfg);
	return 0;
}

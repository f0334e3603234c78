/* A label selector from -l, through config_load()'s validation. */
#include <stdlib.h>

#include "adapter/config.h"
#include "fuzz.h"

static const char *no_env(const char *name, void *userdata) {
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct config cfg;
	char *text = fuzz_cstr(data, size);
	char *argv[] = { "apiserversource-adapter", "--resource", "v1/Pod", "--sink", "-", "-l", text,
		NULL };

	fuzz_quiet_logs();
	config_load(&cfg, 7, argv, no_env, NULL, fuzz_on_error, NULL);
	config_finish(&cfg);
	free(text);
	return 0;
}

/* K_SOURCE_CONFIG, as Knative's controller sets it, through config_load(). */
#include <stdlib.h>
#include <string.h>

#include "adapter/config.h"
#include "fuzz.h"

static const char *env(const char *name, void *userdata) {
	if (strcmp(name, "K_SOURCE_CONFIG") == 0)
		return userdata;
	if (strcmp(name, "K_SINK") == 0)
		return "http://sink.example:8080";
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct config cfg;
	char *argv[] = { "apiserversource-adapter", NULL };
	char *text = fuzz_cstr(data, size);

	fuzz_quiet_logs();
	config_load(&cfg, 1, argv, env, text, fuzz_on_error, NULL);
	config_finish(&cfg);
	free(text);
	return 0;
}

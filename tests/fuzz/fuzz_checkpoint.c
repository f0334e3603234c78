/* A checkpoint file (DIR/checkpoint.ndjson) read back by the loader. */
#include "adapter/state.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const struct config_extension overrides[] = { { "team", "guitars" } };
	struct cevent_params params = { .mode = CONFIG_MODE_RESOURCE,
		.source = "https://10.96.0.1:443", .overrides = overrides, .n_overrides = 1,
		.default_kind = "Pod", .default_api_version = "v1" };
	struct state_checkpoint *cp = NULL;
	size_t line = 0;

	fuzz_quiet_logs();
	fuzz_write_file("checkpoint.ndjson", data, size);
	if (state_load(fuzz_dir(), &params, 64 * 1024, &cp, &line) == 0)
		state_find_watch(cp, "v1/Pod/default");
	state_checkpoint_free(cp);
	return 0;
}

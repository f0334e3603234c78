/* A checkpoint file (DIR/checkpoint.ndjson) read back by the loader. */
#include "adapter/checkpoint.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const struct config_extension overrides[] = { { "team", "guitars" } };
	struct cevent_params params = { .mode = CONFIG_MODE_RESOURCE,
		.source = "https://10.96.0.1:443", .overrides = overrides, .n_overrides = 1,
		.default_kind = "Pod", .default_api_version = "v1" };
	struct checkpoint_state *cp = NULL;
	struct checkpoint_load_error err;

	fuzz_quiet_logs();
	fuzz_write_file("checkpoint.ndjson", data, size);
	if (checkpoint_load(fuzz_dir(), &params, 64 * 1024, &cp, &err) == 0)
		checkpoint_find_watch(cp, "v1/Pod/default");
	checkpoint_state_free(cp);
	return 0;
}

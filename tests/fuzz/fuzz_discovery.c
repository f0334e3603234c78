/* A discovery document (APIResourceList), looked up by kind and by plural. */
#include "adapter/discovery.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct discovery_result res;

	fuzz_quiet_logs();
	discovery_parse((const char *)data, size, "Guitar", NULL, &res);
	discovery_parse((const char *)data, size, NULL, "pods", &res);
	return 0;
}

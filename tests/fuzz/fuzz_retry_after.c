/* Retry-After: a header line as libcurl hands it over, and its value. */
#include <stdlib.h>

#include "adapter/http.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	uint64_t delay;
	char *text = fuzz_cstr(data, size);

	fuzz_quiet_logs();
	http_parse_retry_after(text, &delay);
	http_retry_after_header((const char *)data, size, &delay);
	free(text);
	return 0;
}

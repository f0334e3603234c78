/* Subscriptions API filters as JSON (K_SOURCE_CONFIG's "filters", --filter),
 * then matched against a Pod add event. */
#include <stdlib.h>

#include "adapter/filter.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct filter *f = NULL;
	char *warnings = NULL, err[256];
	char *text = fuzz_cstr(data, size);

	fuzz_quiet_logs();
	if (filter_parse_json(text, size, &f, &warnings, err, sizeof(err)) == 0)
		filter_match(f, cevent_filter_attr, (void *)fuzz_event());
	filter_free(f);
	free(warnings);
	f = NULL;
	warnings = NULL;
	if (filter_parse_one(text, &f, &warnings, err, sizeof(err)) == 0)
		filter_match(f, cevent_filter_attr, (void *)fuzz_event());
	filter_free(f);
	free(warnings);
	free(text);
	return 0;
}

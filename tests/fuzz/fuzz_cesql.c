/* A CESQL expression: parsed, then evaluated against a Pod add event. */
#include <stdlib.h>

#include "adapter/cesql.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct cesql_expr *e = NULL;
	char err[256];
	char *text = fuzz_cstr(data, size);

	fuzz_quiet_logs();
	if (cesql_parse(text, &e, err, sizeof(err)) == 0) {
		struct cesql_result res;
		cesql_eval(e, cevent_filter_attr, (void *)fuzz_event(), &res);
		cesql_result_passes(&res);
		cesql_result_finish(&res);
	}
	cesql_expr_free(e);
	free(text);
	return 0;
}

/* Subscriptions API filters as YAML (a manifest's spec.filters): the
 * document's root is the sequence. Then matched against a Pod add event. */
#include <stdlib.h>

#include "adapter/filter.h"
#include "adapter/util/yamldoc.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct yamldoc *docs = NULL;
	size_t n = 0;
	char *load_err = NULL, err[256];

	fuzz_quiet_logs();
	if (yamldoc_load_all((const char *)data, size, &docs, &n, &load_err) < 0) {
		free(load_err);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct filter *f = NULL;
		char *warnings = NULL;
		yaml_node_t *root = yamldoc_root(&docs[i]);
		if (root && filter_parse_yaml(&docs[i], root, &f, &warnings, err, sizeof(err)) == 0)
			filter_match(f, cevent_filter_attr, (void *)fuzz_event());
		filter_free(f);
		free(warnings);
	}
	yamldoc_free_all(docs, n);
	return 0;
}

/* A kubeconfig file, as --kubeconfig names it; every context is tried by
 * loading it with --context set to "admin" (a name the seeds use) and unset. */
#include <stdlib.h>

#include "adapter/kube.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const char *contexts[] = { NULL, "admin" };

	fuzz_quiet_logs();
	for (size_t i = 0; i < 2; i++) {
		struct config cfg = { 0 };
		struct kube *k = NULL;
		cfg.kubeconfig = (char *)fuzz_write_file("kubeconfig", data, size);
		cfg.context = (char *)contexts[i];
		cfg.home = (char *)fuzz_dir();
		if (kube_load(&cfg, fuzz_on_error, NULL, &k) == 0 && !kube_server(k))
			abort();
		kube_destroy(k);
	}
	return 0;
}

#ifndef ADAPTER_MAIN_INTERNAL_H
#define ADAPTER_MAIN_INTERNAL_H

/* The adapter's top level, shared by main.c and the adapter_*.c files that
 * hold its parts: checkpoint orchestration and the probe/metrics endpoints. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/checkpoint.h"
#include "adapter/config.h"
#include "adapter/loop.h"
#include "adapter/watch.h"

#define EXIT_CONFIG 2
#define EXIT_RUNTIME 1
#define CHECKPOINT_POLL_USEC (50ull * 1000ull)

struct adapter {
	struct config cfg;
	struct kube *kube;
	struct loop *loop;
	struct http *http;
	struct sink *sink;
	struct watch_context wctx;
	struct watcher **watchers;
	size_t n_watchers;
	struct loop_timer drain_timer;
	uint64_t drain_deadline_usec;
	bool draining;
	unsigned config_errors;
	bool kube_input_bad; /* a reported problem is in what kube_load() reads */
	struct checkpoint_state *checkpoint;
	struct loop_timer checkpoint_timer;
	uint64_t checkpointed_signature; /* what the last checkpoint reflected */
	struct checkpoint_writer *checkpoint_writer; /* with --state-dir */
	uint64_t checkpoint_signature;		     /* what the one in flight reflects */
	uint64_t checkpoint_started_usec;
	uint64_t checkpoint_next_usec; /* the next interval's turn */
	bool first_checkpoint_due;     /* once every watch has listed */
	struct metrics *metrics;
	struct probes *probes;
	struct oidc *oidc;
	struct sink_headers *headers; /* --header, --header-file */
	struct nsselector *nssel; /* namespaceSelector, or every namespace */
	struct sinkref *sinkref; /* with a sink reference */
};

/* adapter_checkpoint.c */
void adapter_checkpoint_written(int r, void *userdata);
int adapter_checkpoint_write(struct adapter *a);
void adapter_checkpoint_timer(struct loop_timer *t, void *userdata);
int adapter_checkpoint_load(struct adapter *a);
bool adapter_all_listed(struct adapter *a);

/* adapter_endpoints.c */
bool adapter_ready(char *reason, size_t len, void *userdata);
int adapter_start_endpoints(struct adapter *a);

#endif

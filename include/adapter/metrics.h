#ifndef ADAPTER_METRICS_H
#define ADAPTER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter/queue.h"
#include "adapter/util/buf.h"

/* Counters, gauges and one histogram, rendered as Prometheus text (format
 * 0.0.4). The modules that see a thing count it here; nothing here does I/O
 * or logs. Every function accepts a NULL metrics (metrics off) and does
 * nothing then, so callers need no guard. */

struct metrics;

/* What a watch event was, for apiserversource_watch_events_total. */
enum metrics_watch_event {
	METRICS_EV_LISTED, /* an item of a list (initial list or relist) */
	METRICS_EV_ADDED,
	METRICS_EV_MODIFIED,
	METRICS_EV_DELETED,
	METRICS_EV_BOOKMARK,
	METRICS_EV_ERROR,
	METRICS_EV_COUNT
};

/* One resource's counters. Owned by the metrics; lives as long as it. */
struct metrics_resource {
	char *label; /* "guitars.kool.karmalabs.local/v1" */
	uint64_t events[METRICS_EV_COUNT];
	uint64_t watch_restarts; /* watch streams opened again after the first */
	uint64_t relists;
	uint64_t expired; /* 410 Gone / Expired answers and events */
	struct metrics_resource *next;
};

/* One namespace's watch of a resource: when it last heard from the server. */
struct metrics_watch {
	struct metrics_resource *res;
	char *namespace; /* "" cluster-wide */
	uint64_t last_event_usec; /* monotonic: last event, bookmark or list */
	struct metrics_watch *next;
};

int metrics_create(struct metrics **ret_metrics);
void metrics_destroy(struct metrics *m);

/* Finds or adds the resource with this label. NULL when m is NULL or out of
 * memory (then nothing is counted for it). */
struct metrics_resource *metrics_resource(struct metrics *m, const char *label);
/* Registers a watch; metrics_watch_remove() before the watch goes. */
struct metrics_watch *metrics_watch_add(struct metrics *m, struct metrics_resource *res,
	const char *namespace);
void metrics_watch_remove(struct metrics *m, struct metrics_watch *w);

void metrics_count_event(struct metrics_resource *r, struct metrics_watch *w,
	enum metrics_watch_event ev, uint64_t now_usec);

/* One attempt to POST to the sink (or the dead-letter sink): err is the
 * transfer's negative errno (then status is ignored), else the HTTP status. */
void metrics_count_request(struct metrics *m, int err, long status);
/* A finished event: the time from its watch event's arrival to the sink's
 * final answer, in the latency histogram. */
void metrics_observe_delivery(struct metrics *m, uint64_t latency_usec);
/* Events left out by the filters. */
void metrics_count_filtered(struct metrics *m);

/* Appends the whole exposition. queue is the delivery queue's current
 * statistics; ready is the readiness verdict. */
int metrics_render(const struct metrics *m, const struct queue_stats *queue, bool ready,
	uint64_t now_usec, struct buf *out);

#endif

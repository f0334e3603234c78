#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/metrics.h"

/* Upper bounds of the latency buckets, in microseconds (+Inf is implicit). */
static const uint64_t latency_bounds_usec[] = { 1000, 5000, 10000, 25000, 50000, 100000, 250000,
	500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 300000000 };
#define N_BOUNDS (sizeof(latency_bounds_usec) / sizeof(latency_bounds_usec[0]))

/* Attempt outcomes by class: an HTTP status class or a transport error. */
enum { CLASS_1XX, CLASS_2XX, CLASS_3XX, CLASS_4XX, CLASS_5XX, CLASS_ERROR, CLASS_COUNT };
static const char *const class_names[CLASS_COUNT] = { "1xx", "2xx", "3xx", "4xx", "5xx",
	"error" };

static const char *const event_names[METRICS_EV_COUNT] = { "LISTED", "ADDED", "MODIFIED",
	"DELETED", "BOOKMARK", "ERROR" };

struct metrics {
	struct metrics_resource *resources;
	struct metrics_watch *watches;
	uint64_t requests[CLASS_COUNT];
	uint64_t filtered;
	uint64_t latency_buckets[N_BOUNDS]; /* per bucket, not cumulative */
	uint64_t latency_count;
	uint64_t latency_sum_usec;
};

int metrics_create(struct metrics **ret_metrics) {
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	*ret_metrics = m;
	return 0;
}

void metrics_destroy(struct metrics *m) {
	if (!m)
		return;
	while (m->watches) {
		struct metrics_watch *n = m->watches->next;
		free(m->watches->namespace);
		free(m->watches);
		m->watches = n;
	}
	while (m->resources) {
		struct metrics_resource *n = m->resources->next;
		free(m->resources->label);
		free(m->resources);
		m->resources = n;
	}
	free(m);
}

struct metrics_resource *metrics_resource(struct metrics *m, const char *label) {
	struct metrics_resource *r;

	if (!m)
		return NULL;
	for (r = m->resources; r; r = r->next)
		if (strcmp(r->label, label) == 0)
			return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->label = strdup(label);
	if (!r->label) {
		free(r);
		return NULL;
	}
	r->next = m->resources;
	m->resources = r;
	return r;
}

struct metrics_watch *metrics_watch_add(struct metrics *m, struct metrics_resource *res,
	const char *namespace) {
	struct metrics_watch *w;

	if (!m || !res)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->res = res;
	w->namespace = strdup(namespace ? namespace : "");
	if (!w->namespace) {
		free(w);
		return NULL;
	}
	w->next = m->watches;
	m->watches = w;
	return w;
}

void metrics_watch_remove(struct metrics *m, struct metrics_watch *w) {
	if (!m || !w)
		return;
	for (struct metrics_watch **p = &m->watches; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			free(w->namespace);
			free(w);
			return;
		}
}

void metrics_count_event(struct metrics_resource *r, struct metrics_watch *w,
	enum metrics_watch_event ev, uint64_t now_usec) {
	if (r && ev < METRICS_EV_COUNT)
		r->events[ev]++;
	if (w && ev != METRICS_EV_ERROR)
		w->last_event_usec = now_usec;
}

void metrics_count_request(struct metrics *m, int err, long status) {
	unsigned c;

	if (!m)
		return;
	if (err || status < 100 || status > 599)
		c = CLASS_ERROR;
	else
		c = (unsigned)(status / 100 - 1);
	m->requests[c]++;
}

void metrics_observe_delivery(struct metrics *m, uint64_t latency_usec) {
	if (!m)
		return;
	for (size_t i = 0; i < N_BOUNDS; i++)
		if (latency_usec <= latency_bounds_usec[i]) {
			m->latency_buckets[i]++;
			break;
		}
	m->latency_count++;
	m->latency_sum_usec += latency_usec;
}

void metrics_count_filtered(struct metrics *m) {
	if (m)
		m->filtered++;
}

/* A label value: backslash, double quote and newline escaped. */
static int put_label(struct buf *out, const char *s) {
	int r = 0;

	for (; r == 0 && *s; s++) {
		if (*s == '\\' || *s == '"')
			r = buf_printf(out, "\\%c", *s);
		else if (*s == '\n')
			r = buf_append_str(out, "\\n");
		else
			r = buf_append(out, s, 1);
	}
	return r;
}

static int header(struct buf *out, const char *name, const char *type, const char *help) {
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int render_resources(const struct metrics *m, struct buf *out) {
	static const struct {
		const char *name, *help;
		size_t offset;
	} per_resource[] = {
		{ "apiserversource_watch_restarts_total",
			"Watch streams opened again after the first, per resource.",
			offsetof(struct metrics_resource, watch_restarts) },
		{ "apiserversource_relists_total",
			"Lists made again after the first (410 Gone, a too-large version, a checkpoint).",
			offsetof(struct metrics_resource, relists) },
		{ "apiserversource_watch_expired_total",
			"410 Gone or Expired answers from the API server, per resource.",
			offsetof(struct metrics_resource, expired) },
	};
	int r;

	r = header(out, "apiserversource_watch_events_total", "counter",
		"Events and list items received from the API server, per resource and type.");
	for (const struct metrics_resource *res = m->resources; r == 0 && res; res = res->next)
		for (unsigned t = 0; r == 0 && t < METRICS_EV_COUNT; t++) {
			r = buf_append_str(out, "apiserversource_watch_events_total{resource=\"");
			if (r == 0)
				r = put_label(out, res->label);
			if (r == 0)
				r = buf_printf(out, "\",type=\"%s\"} %llu\n", event_names[t],
					(unsigned long long)res->events[t]);
		}
	for (size_t i = 0; r == 0 && i < sizeof(per_resource) / sizeof(per_resource[0]); i++) {
		r = header(out, per_resource[i].name, "counter", per_resource[i].help);
		for (const struct metrics_resource *res = m->resources; r == 0 && res; res = res->next) {
			const uint64_t *v = (const uint64_t *)((const char *)res + per_resource[i].offset);
			r = buf_printf(out, "%s{resource=\"", per_resource[i].name);
			if (r == 0)
				r = put_label(out, res->label);
			if (r == 0)
				r = buf_printf(out, "\"} %llu\n", (unsigned long long)*v);
		}
	}
	return r;
}

static int render_watches(const struct metrics *m, uint64_t now_usec, struct buf *out) {
	int r = header(out, "apiserversource_watch_last_event_age_seconds", "gauge",
		"Seconds since each watch last heard from the API server (event, bookmark or list); "
		"-1 before its first.");

	for (const struct metrics_watch *w = m->watches; r == 0 && w; w = w->next) {
		r = buf_append_str(out, "apiserversource_watch_last_event_age_seconds{resource=\"");
		if (r == 0)
			r = put_label(out, w->res->label);
		if (r == 0)
			r = buf_append_str(out, "\",namespace=\"");
		if (r == 0)
			r = put_label(out, w->namespace);
		if (r == 0 && !w->last_event_usec)
			r = buf_append_str(out, "\"} -1\n");
		else if (r == 0)
			r = buf_printf(out, "\"} %.3f\n",
				(double)(now_usec - w->last_event_usec) / 1e6);
	}
	return r;
}

static int render_delivery(const struct metrics *m, const struct queue_stats *q, struct buf *out) {
	uint64_t cumulative = 0;
	int r;

	r = header(out, "apiserversource_sink_requests_total", "counter",
		"POSTs to the sink and the dead-letter sink, by answer class (error: no answer).");
	for (unsigned c = 0; r == 0 && c < CLASS_COUNT; c++)
		r = buf_printf(out, "apiserversource_sink_requests_total{class=\"%s\"} %llu\n",
			class_names[c], (unsigned long long)m->requests[c]);
	if (r == 0)
		r = header(out, "apiserversource_events_sent_total", "counter",
			"CloudEvents finished, by result: delivered to the sink, delivered to the "
			"dead-letter sink, or dropped.");
	if (r == 0)
		r = buf_printf(out,
			"apiserversource_events_sent_total{result=\"delivered\"} %llu\n"
			"apiserversource_events_sent_total{result=\"dead_lettered\"} %llu\n"
			"apiserversource_events_sent_total{result=\"dropped\"} %llu\n",
			(unsigned long long)q->delivered, (unsigned long long)q->dead_lettered,
			(unsigned long long)q->dropped);
	if (r == 0)
		r = header(out, "apiserversource_events_accepted_total", "counter",
			"CloudEvents queued for delivery (filtered ones are not).");
	if (r == 0)
		r = buf_printf(out, "apiserversource_events_accepted_total %llu\n",
			(unsigned long long)q->accepted);
	if (r == 0)
		r = header(out, "apiserversource_events_filtered_total", "counter",
			"CloudEvents left out by the source's filters.");
	if (r == 0)
		r = buf_printf(out, "apiserversource_events_filtered_total %llu\n",
			(unsigned long long)m->filtered);
	if (r == 0)
		r = header(out, "apiserversource_retries_total", "counter",
			"Delivery attempts scheduled again after a failure.");
	if (r == 0)
		r = buf_printf(out, "apiserversource_retries_total %llu\n",
			(unsigned long long)q->retries);
	if (r == 0)
		r = header(out, "apiserversource_queue_events", "gauge",
			"Events queued and not finished, in flight included.");
	if (r == 0)
		r = buf_printf(out, "apiserversource_queue_events %zu\n", q->queued);
	if (r == 0)
		r = header(out, "apiserversource_queue_bytes", "gauge", "Memory held by queued events.");
	if (r == 0)
		r = buf_printf(out, "apiserversource_queue_bytes %zu\n", q->bytes);
	if (r == 0)
		r = header(out, "apiserversource_inflight_requests", "gauge", "POSTs in flight.");
	if (r == 0)
		r = buf_printf(out, "apiserversource_inflight_requests %zu\n", q->inflight);
	if (r == 0)
		r = header(out, "apiserversource_delivery_latency_seconds", "histogram",
			"From the watch event's arrival to the sink's final answer.");
	for (size_t i = 0; r == 0 && i < N_BOUNDS; i++) {
		cumulative += m->latency_buckets[i];
		r = buf_printf(out, "apiserversource_delivery_latency_seconds_bucket{le=\"%g\"} %llu\n",
			(double)latency_bounds_usec[i] / 1e6, (unsigned long long)cumulative);
	}
	if (r == 0)
		r = buf_printf(out,
			"apiserversource_delivery_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
			"apiserversource_delivery_latency_seconds_sum %.6f\n"
			"apiserversource_delivery_latency_seconds_count %llu\n",
			(unsigned long long)m->latency_count, (double)m->latency_sum_usec / 1e6,
			(unsigned long long)m->latency_count);
	return r;
}

int metrics_render(const struct metrics *m, const struct queue_stats *queue, bool ready,
	uint64_t now_usec, struct buf *out) {
	int r;

	if (!m)
		return 0;
	r = header(out, "apiserversource_build_info", "gauge", "The adapter's version.");
	if (r == 0)
		r = buf_printf(out, "apiserversource_build_info{version=\"%s\"} 1\n", ADAPTER_VERSION);
	if (r == 0)
		r = header(out, "apiserversource_ready", "gauge",
			"1 when every watch has listed, the sink is known and no shutdown has begun.");
	if (r == 0)
		r = buf_printf(out, "apiserversource_ready %d\n", ready ? 1 : 0);
	if (r == 0)
		r = render_resources(m, out);
	if (r == 0)
		r = render_watches(m, now_usec, out);
	if (r == 0)
		r = render_delivery(m, queue, out);
	return r;
}

#include <errno.h>
#include <criterion/criterion.h>
#include <string.h>

#include "adapter/metrics.h"

static struct metrics *m;

static void setup(void) {
	cr_assert_eq(metrics_create(&m), 0);
}

static void teardown(void) {
	metrics_destroy(m);
}

static char *render(bool ready) {
	struct queue_stats q = { .queued = 3, .inflight = 1, .bytes = 4096, .accepted = 10,
		.delivered = 6, .dead_lettered = 1, .dropped = 0, .retries = 4 };
	struct buf b;

	buf_init(&b, 0);
	cr_assert_eq(metrics_render(m, &q, ready, 5000000, &b), 0);
	return b.data;
}

Test(metrics, counters_and_gauges, .init = setup, .fini = teardown) {
	struct metrics_resource *r = metrics_resource(m, "kool.karmalabs.local/v1/Guitar");
	struct metrics_watch *w = metrics_watch_add(m, r, "guitar-eventing");
	char *text;

	cr_assert_eq(metrics_resource(m, "kool.karmalabs.local/v1/Guitar"), r, "found again");
	metrics_count_event(r, w, METRICS_EV_ADDED, 2000000);
	metrics_count_event(r, w, METRICS_EV_ADDED, 2500000);
	metrics_count_event(r, w, METRICS_EV_ERROR, 4000000); /* not "heard from" */
	r->relists = 2;
	metrics_count_request(m, 0, 202);
	metrics_count_request(m, 0, 503);
	metrics_count_request(m, -ECONNREFUSED, 0);
	metrics_count_filtered(m);
	text = render(true);
	cr_assert(strstr(text, "apiserversource_watch_events_total{resource=\"kool.karmalabs.local/v1/"
			       "Guitar\",type=\"ADDED\"} 2\n"), "%s", text);
	cr_assert(strstr(text, "type=\"ERROR\"} 1\n"));
	cr_assert(strstr(text, "apiserversource_relists_total{resource=\"kool.karmalabs.local/v1/"
			       "Guitar\"} 2\n"));
	cr_assert(strstr(text, "namespace=\"guitar-eventing\"} 2.500\n"), "%s", text);
	cr_assert(strstr(text, "apiserversource_sink_requests_total{class=\"2xx\"} 1\n"));
	cr_assert(strstr(text, "apiserversource_sink_requests_total{class=\"5xx\"} 1\n"));
	cr_assert(strstr(text, "apiserversource_sink_requests_total{class=\"error\"} 1\n"));
	cr_assert(strstr(text, "apiserversource_events_sent_total{result=\"delivered\"} 6\n"));
	cr_assert(strstr(text, "apiserversource_events_sent_total{result=\"dead_lettered\"} 1\n"));
	cr_assert(strstr(text, "apiserversource_events_filtered_total 1\n"));
	cr_assert(strstr(text, "apiserversource_retries_total 4\n"));
	cr_assert(strstr(text, "apiserversource_queue_events 3\n"));
	cr_assert(strstr(text, "apiserversource_queue_bytes 4096\n"));
	cr_assert(strstr(text, "apiserversource_inflight_requests 1\n"));
	cr_assert(strstr(text, "apiserversource_ready 1\n"));
	cr_assert(strstr(text, "# TYPE apiserversource_delivery_latency_seconds histogram\n"));
	free(text);
	metrics_watch_remove(m, w);
	text = render(false);
	cr_assert_null(strstr(text, "namespace=\"guitar-eventing\""), "removed watch gone");
	cr_assert(strstr(text, "apiserversource_ready 0\n"));
	free(text);
}

Test(metrics, histogram_is_cumulative, .init = setup, .fini = teardown) {
	char *text;

	metrics_observe_delivery(m, 500);	 /* <= 1 ms */
	metrics_observe_delivery(m, 20000);	 /* <= 25 ms */
	metrics_observe_delivery(m, 400000000); /* past the last bound */
	text = render(true);
	cr_assert(strstr(text, "apiserversource_delivery_latency_seconds_bucket{le=\"0.001\"} 1\n"),
		"%s", text);
	cr_assert(strstr(text, "apiserversource_delivery_latency_seconds_bucket{le=\"0.025\"} 2\n"));
	cr_assert(strstr(text, "apiserversource_delivery_latency_seconds_bucket{le=\"300\"} 2\n"));
	cr_assert(strstr(text, "apiserversource_delivery_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
	cr_assert(strstr(text, "apiserversource_delivery_latency_seconds_count 3\n"));
	free(text);
}

Test(metrics, label_values_escaped, .init = setup, .fini = teardown) {
	struct metrics_resource *r = metrics_resource(m, "a\"b\\c\nd");
	char *text;

	metrics_count_event(r, NULL, METRICS_EV_ADDED, 1);
	text = render(true);
	cr_assert(strstr(text, "resource=\"a\\\"b\\\\c\\nd\",type=\"ADDED\"} 1\n"), "%s", text);
	free(text);
}

Test(metrics, null_metrics_are_off) {
	struct buf b;

	metrics_count_request(NULL, 0, 200);
	metrics_observe_delivery(NULL, 1);
	metrics_count_event(NULL, NULL, METRICS_EV_ADDED, 1);
	cr_assert_null(metrics_resource(NULL, "x"));
	buf_init(&b, 0);
	cr_assert_eq(metrics_render(NULL, &(struct queue_stats){ 0 }, true, 0, &b), 0);
	cr_assert_eq(b.len, 0);
	buf_finish(&b);
}

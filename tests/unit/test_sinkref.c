#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/config.h"
#include "adapter/loop.h"
#include "adapter/queue.h"
#include "adapter/sinkref.h"

/* --sink-ref's "APIVERSION/KIND/[NAMESPACE/]NAME" and the address an object
 * gives (Knative's resolver: a v1 Service's cluster DNS name, else an
 * Addressable's status), joined with a relative reference by libcurl. */

static void parse_ok(const char *s, const char *group, const char *version, const char *kind,
	const char *ns, const char *name) {
	struct config_sink_ref ref = { 0 };
	char problem[200] = "";

	cr_assert_eq(config_parse_sink_ref(s, &ref, problem, sizeof(problem)), 0, "%s: %s", s,
		problem);
	cr_assert_str_eq(ref.group, group);
	cr_assert_str_eq(ref.version, version);
	cr_assert_str_eq(ref.kind, kind);
	if (ns)
		cr_assert_str_eq(ref.namespace, ns);
	else
		cr_assert_null(ref.namespace);
	cr_assert_str_eq(ref.name, name);
	config_sink_ref_finish(&ref);
}

static void parse_bad(const char *s, const char *want) {
	struct config_sink_ref ref = { 0 };
	char problem[200] = "";

	cr_assert_eq(config_parse_sink_ref(s, &ref, problem, sizeof(problem)), -EINVAL, "%s", s);
	cr_assert(strstr(problem, want), "%s: %s", s, problem);
	cr_assert_null(ref.kind);
}

Test(sinkref, flag_forms) {
	parse_ok("v1/Service/default/player", "", "v1", "Service", "default", "player");
	parse_ok("v1/Service/player", "", "v1", "Service", NULL, "player");
	parse_ok("serving.knative.dev/v1/Service/ns/name", "serving.knative.dev", "v1", "Service",
		"ns", "name");
	parse_ok("eventing.knative.dev/v1/Broker/default", "eventing.knative.dev", "v1", "Broker",
		NULL, "default");
	parse_ok("apps/v1/Deployment/x", "apps", "v1", "Deployment", NULL, "x");
	parse_ok("messaging.knative.dev/v1beta1/Channel/n/c.x", "messaging.knative.dev", "v1beta1",
		"Channel", "n", "c.x");
}

Test(sinkref, malformed_flag_names_the_part) {
	parse_bad("", "is not APIVERSION/KIND/[NAMESPACE/]NAME");
	parse_bad("v1/Service", "is not APIVERSION/KIND/[NAMESPACE/]NAME");
	parse_bad("v1//x", "is not APIVERSION/KIND/[NAMESPACE/]NAME");
	parse_bad("a.b/v1/Service/ns/name/extra", "is not APIVERSION/KIND/[NAMESPACE/]NAME");
	parse_bad("V1/Service/x", "APIVERSION is not group/version");
	parse_bad("v1/Serv-ice/x", "KIND is not a kind");
	parse_bad("v1/Service/Bad_NS/x", "NAMESPACE is not a namespace name");
	parse_bad("v1/Service/ns/Player", "NAME is not an object name");
}

static const struct config_sink_ref service = { .group = "", .version = "v1", .kind = "Service",
	.name = "player" };
static const struct config_sink_ref broker = { .group = "eventing.knative.dev", .version = "v1",
	.kind = "Broker", .name = "default" };

static void address(const struct config_sink_ref *ref, const char *json, const char *relative,
	int want_r, const char *want) {
	char *url = NULL, problem[300] = "";
	int r = sinkref_address(json, strlen(json), ref, "ns", relative, &url, problem,
		sizeof(problem));

	cr_assert_eq(r, want_r, "%s: %d %s", json, r, problem);
	if (r == 0)
		cr_assert_str_eq(url, want);
	else
		cr_assert(strstr(problem, want), "%s", problem);
	free(url);
}

Test(sinkref, service_is_its_cluster_dns_name) {
	/* Knative's resolver: plain http, no port, whatever the Service says. */
	address(&service, "{\"spec\":{\"ports\":[{\"port\":8080}]}}", NULL, 0,
		"http://player.ns.svc.cluster.local/");
	address(&service, "{}", "/events", 0, "http://player.ns.svc.cluster.local/events");
}

Test(sinkref, addressable_status) {
	address(&broker, "{\"status\":{\"address\":{\"url\":\"http://b.example/ns/default\"}}}", NULL,
		0, "http://b.example/ns/default");
	/* status.addresses wins over status.address; its first entry. */
	address(&broker,
		"{\"status\":{\"address\":{\"url\":\"http://old/\"},\"addresses\":["
		"{\"name\":\"https\",\"url\":\"https://first/x\"},{\"url\":\"http://second/\"}]}}",
		NULL, 0, "https://first/x");
	address(&broker, "{\"status\":{}}", NULL, -ENOENT, "no address yet (status.address.url)");
	address(&broker, "{\"status\":{\"addresses\":[{\"name\":\"a\"}]}}", NULL, -ENOENT,
		"status.addresses[0] has no url");
	address(&broker, "{\"status\":{\"address\":{\"url\":\"ftp://x/\"}}}", NULL, -ENOENT,
		"is not an http:// or https:// URL");
	address(&broker, "{\"status\":{\"address\":{\"url\":\"/relative\"}}}", NULL, -ENOENT,
		"is not an http:// or https:// URL");
	address(&broker, "not json", NULL, -ENOENT, "not valid JSON");
}

Test(sinkref, relative_reference_is_joined) {
	const char *obj = "{\"status\":{\"address\":{\"url\":\"http://b.example/a/b\"}}}";

	address(&broker, obj, "c", 0, "http://b.example/a/c");
	address(&broker, obj, "/c?x=1", 0, "http://b.example/c?x=1");
	address(&broker, obj, "../c", 0, "http://b.example/c");
	address(&broker, obj, "?q=1", 0, "http://b.example/a/b?q=1");
}

/* ---------------- precedence: the sink as a whole ---------------- */

struct env {
	const char *k_sink;
};

static const char *lookup(const char *name, void *ud) {
	struct env *e = ud;

	return strcmp(name, "K_SINK") == 0 ? e->k_sink : NULL;
}

static void on_error(const char *field, const char *msg, void *ud) {
	char *last = ud;

	snprintf(last, 600, "%s: %s", field, msg);
}

static const char manifest[] = "apiVersion: sources.knative.dev/v1\n"
			       "kind: ApiServerSource\n"
			       "metadata:\n"
			       "  namespace: src\n"
			       "spec:\n"
			       "  resources:\n"
			       "  - apiVersion: v1\n"
			       "    kind: Pod\n"
			       "  sink:\n"
			       "    ref:\n"
			       "      apiVersion: eventing.knative.dev/v1\n"
			       "      kind: Broker\n"
			       "      name: default\n"
			       "    uri: /extra\n";

static int load(struct config *c, const char *k_sink, char **argv, int argc, char *err) {
	struct env env = { k_sink };
	char path[] = "/tmp/test-sinkref-XXXXXX";
	int fd = mkstemp(path), r;
	char *args[16] = { "adapter", "--source-file", path };

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, manifest, sizeof(manifest) - 1), (ssize_t)sizeof(manifest) - 1);
	close(fd);
	for (int i = 0; i < argc; i++)
		args[3 + i] = argv[i];
	err[0] = '\0';
	r = config_load(c, 3 + argc, args, lookup, &env, on_error, err);
	unlink(path);
	return r;
}

Test(sinkref, manifest_ref_and_uri_are_kept_together) {
	struct config c;
	char err[600];

	cr_assert_eq(load(&c, NULL, NULL, 0, err), 0, "%s", err);
	cr_assert_str_eq(c.sink_ref.group, "eventing.knative.dev");
	cr_assert_str_eq(c.sink_ref.kind, "Broker");
	cr_assert_null(c.sink_ref.namespace); /* the source's, resolved at start */
	cr_assert_str_eq(c.sink, "/extra");
	config_finish(&c);
}

Test(sinkref, a_higher_source_replaces_the_whole_sink) {
	struct config c;
	char err[600];
	char *ref_flag[] = { "--sink-ref", "v1/Service/player" };
	char *both[] = { "--sink", "events", "--sink-ref", "v1/Service/player" };
	char *sink_flag[] = { "--sink", "http://flag/" };

	/* K_SINK over the manifest: its URL, no reference. */
	cr_assert_eq(load(&c, "http://env/", NULL, 0, err), 0, "%s", err);
	cr_assert_null(c.sink_ref.kind);
	cr_assert_str_eq(c.sink, "http://env/");
	config_finish(&c);
	/* --sink-ref over K_SINK and the manifest: the reference alone. */
	cr_assert_eq(load(&c, "http://env/", ref_flag, 2, err), 0, "%s", err);
	cr_assert_str_eq(c.sink_ref.kind, "Service");
	cr_assert_null(c.sink);
	config_finish(&c);
	/* --sink with --sink-ref: joined later. */
	cr_assert_eq(load(&c, NULL, both, 4, err), 0, "%s", err);
	cr_assert_str_eq(c.sink_ref.name, "player");
	cr_assert_str_eq(c.sink, "events");
	config_finish(&c);
	/* --sink alone over the manifest: no reference. */
	cr_assert_eq(load(&c, NULL, sink_flag, 2, err), 0, "%s", err);
	cr_assert_null(c.sink_ref.kind);
	config_finish(&c);
}

/* ---------------- the queue's hold: what an unresolved sink does ---------------- */

struct held {
	struct loop *loop;
	struct queue_entry *sent[8];
	int nsent, delivered;
};

static int held_send(struct queue_entry *e, void *ud) {
	struct held *h = ud;

	h->sent[h->nsent++] = e;
	if (h->nsent == 3)
		loop_quit(h->loop, 0);
	return 0;
}

static void held_finished(struct queue_entry *e, enum queue_outcome out, bool exhausted,
	void *ud) {
	struct held *h = ud;

	(void)e, (void)exhausted;
	h->delivered += out == QUEUE_OUT_DELIVERED;
}

static struct cevent *held_event(const char *key) {
	struct cevent *e = calloc(1, sizeof(*e));

	cr_assert_not_null(e);
	e->key = strdup(key);
	snprintf(e->id, sizeof(e->id), "%s", key);
	e->bytes = 100;
	return e;
}

Test(sinkref, held_queue_keeps_events_and_lets_inflight_finish) {
	static const struct queue_ops ops = { .send = held_send, .finished = held_finished };
	struct queue_options o = { .max_inflight = 8, .backoff_initial_usec = 1000,
		.backoff_max_usec = 4000 };
	struct held h = { 0 };
	struct queue *q;
	struct queue_stats st;

	cr_assert_eq(loop_create(&h.loop), 0);
	cr_assert_eq(queue_create(h.loop, &o, &ops, &h, &q), 0);
	queue_push(q, held_event("a"));
	queue_dispatch(q);
	cr_assert_eq(h.nsent, 1); /* in flight when the address goes away */
	queue_hold(q, true);
	queue_push(q, held_event("b"));
	queue_push(q, held_event("c"));
	queue_dispatch(q);
	cr_assert_eq(h.nsent, 1); /* held: nothing new starts */
	queue_complete(q, h.sent[0], QUEUE_DELIVERED, 0);
	cr_assert_eq(h.delivered, 1); /* the one in flight finished */
	cr_assert_eq(h.nsent, 1);
	queue_get_stats(q, &st);
	cr_assert_eq(st.queued, 2);
	queue_hold(q, false); /* sending resumes from the loop */
	cr_assert_eq(h.nsent, 1);
	cr_assert_eq(loop_run(h.loop), 0);
	cr_assert_eq(h.nsent, 3);
	queue_destroy(q);
	loop_destroy(h.loop);
}

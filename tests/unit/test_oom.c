#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/cesql.h"
#include "adapter/config.h"
#include "adapter/filter.h"
#include "adapter/objects.h"
#include "adapter/util/yamldoc.h"

/* Allocation failures on every path of the CESQL and filter parsers and
 * evaluator: this executable is linked with --wrap for the allocators (see
 * tests/meson.build), so the n-th allocation made by the adapter's code can be
 * made to fail. Each run must end in -ENOMEM or success, never a crash, and
 * (under ASan) leave nothing allocated. */

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#endif
#ifdef HAVE_ASAN
#include <sanitizer/lsan_interface.h>
#endif

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static long countdown = -1;
static bool failed;

static bool fail_now(void) {
	if (countdown < 0)
		return false;
	if (countdown-- == 0) {
		failed = true;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t n) {
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
	return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s) {
	return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n) {
	return fail_now() ? NULL : __real_strndup(s, n);
}

static int lookup(const char *name, struct cesql_value *ret_value, void *userdata) {
	if (strcmp(name, "type") == 0 || strcmp(name, "kind") == 0) {
		*ret_value = (struct cesql_value){ .type = CESQL_STRING, .s = "Pod", .len = 3 };
		return 1;
	}
	if (strcmp(name, "count") == 0) {
		*ret_value = (struct cesql_value){ .type = CESQL_INTEGER, .i = 3 };
		return 1;
	}
	return 0;
}

static const char *const expr =
	"CONCAT(LOWER(kind), '-', STRING(count + 1)) IN ('pod-4', 'x') "
	"AND SUBSTRING(UPPER(type), 1, 2) LIKE 'P%' OR LEFT(kind, -1) = 'a' "
	"XOR NOT EXISTS missing AND TRIM(' a ') != CONCAT_WS(',', 'a', kind)";

static int run_cesql(void) {
	struct cesql_expr *e = NULL;
	struct cesql_result res;
	char errbuf[200];
	int r;

	r = cesql_parse(expr, &e, errbuf, sizeof(errbuf));
	if (r < 0)
		return r;
	r = cesql_eval(e, lookup, NULL, &res);
	if (r == 0)
		cesql_result_finish(&res);
	cesql_expr_free(e);
	return r;
}

static const char *const json = "[{\"exact\":{\"kind\":\"Pod\",\"type\":\"Pod\"}},"
				"{\"any\":[{\"prefix\":{\"kind\":\"P\"}},{\"not\":{\"suffix\":"
				"{\"type\":\"x\"}}}]},{\"exact\":{\"kind\":\"\"}},{\"all\":[]},"
				"{\"cesql\":\"LOWER(kind) = 'pod' AND count > 2\"}]";

static int run_json(void) {
	struct filter *f = NULL, *g = NULL;
	char errbuf[200], *warnings = NULL;
	int r;

	r = filter_parse_json(json, strlen(json), &f, &warnings, errbuf, sizeof(errbuf));
	if (r < 0)
		return r;
	free(warnings);
	filter_match(f, lookup, NULL);
	r = filter_parse_one("kind = 'Pod'", &g, NULL, errbuf, sizeof(errbuf));
	if (r == 0)
		r = filter_append(&f, g);
	filter_free(f);
	return r;
}

static struct yamldoc *docs;
static size_t ndocs;

static int run_yaml(void) {
	struct filter *f = NULL;
	char errbuf[200], *warnings = NULL;
	int r;

	r = filter_parse_yaml(
		&docs[0], yamldoc_root(&docs[0]), &f, &warnings, errbuf, sizeof(errbuf));
	if (r < 0)
		return r;
	free(warnings);
	filter_match(f, lookup, NULL);
	filter_free(f);
	return 0;
}

static void fail_each_allocation(int (*run)(void)) {
	for (long n = 0;; n++) {
		int r;

		failed = false;
		countdown = n;
		r = run();
		countdown = -1;
		if (!failed) {
			cr_assert_eq(r, 0, "the run without failures returned %d", r);
			/* The table allocates nothing per object (objects_store.c): a
			 * relist's only allocation is the buffer a record is read into. */
			cr_assert_gt(n, 0, "no allocation failed");
			cr_log_info("%ld allocations, each failed in turn", n);
			break;
		}
		cr_assert(r == -ENOMEM || r == 0, "allocation %ld failed: got %d", n, r);
	}
#ifdef HAVE_ASAN
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "leaks after allocation failures");
#endif
}

Test(oom, cesql) {
	fail_each_allocation(run_cesql);
}

Test(oom, filter_json) {
	fail_each_allocation(run_json);
}

Test(oom, filter_yaml) {
	const char *text = "- exact: {kind: Pod}\n"
			   "- any:\n"
			   "    - prefix: {kind: P}\n"
			   "    - not: {suffix: {type: x}}\n"
			   "- exact: {kind: ''}\n"
			   "- cesql: \"kind LIKE 'P%' AND count > 2\"\n";
	char *yerr = NULL;

	cr_assert_eq(yamldoc_load_all(text, strlen(text), &docs, &ndocs, &yerr), 1);
	fail_each_allocation(run_yaml);
	yamldoc_free_all(docs, ndocs);
}

/* ---------------- the object table: nothing lost ---------------- */

static char reported[16][1200];
static size_t n_reported;

static int note(enum cevent_op op, const struct kobj *obj, void *userdata) {
	(void)userdata;
	if (n_reported < 16)
		snprintf(reported[n_reported++], sizeof(reported[0]), "%d %s %s", (int)op, obj->name,
			obj->resource_version);
	return 0;
}

static bool was_reported(enum cevent_op op, const char *name, const char *rv) {
	char want[1200];

	snprintf(want, sizeof(want), "%d %s %s", (int)op, name, rv);
	for (size_t i = 0; i < n_reported; i++)
		if (strcmp(reported[i], want) == 0)
			return true;
	return false;
}

/* Lists "name:rv" items; returns 0 or the first failure. */
static int list(struct objects *o, const char *const *items, enum objects_report report) {
	for (; *items; items++) {
		char json[200];
		struct kobj k;
		int r;

		memset(&k, 0, sizeof(k));
		sscanf(*items, "%63[^:]:%63s", k.name, k.resource_version);
		snprintf(k.uid, sizeof(k.uid), "uid-%.50s", k.name);
		strcpy(k.namespace, "default");
		snprintf(json, sizeof(json), "{\"metadata\":{\"name\":\"%.50s\"}}", k.name);
		k.json = json;
		k.json_len = strlen(json);
		r = objects_list_item(o, &k, report, note, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A relist where the n-th allocation fails, retried as watch.c retries (the
 * same list after a failed item, a new one after a failed sweep): every
 * change of the gap is reported, whichever allocation failed. */
Test(oom, objects_relist_loses_nothing) {
	static const char *const old[] = { "a:1", "b:2", "c:3", NULL };
	static const char *const now[] = { "a:1", "b:7", "e:8", NULL };

	for (long n = 0;; n++) {
		struct objects o;
		uint64_t changes = 0;
		bool fresh = true;

		objects_init(&o, true, NULL, &changes);
		objects_list_begin(&o);
		cr_assert_eq(list(&o, old, OBJECTS_QUIET), 0);
		n_reported = 0;
		failed = false;
		countdown = n;
		for (int attempt = 0;; attempt++) {
			cr_assert_lt(attempt, 5);
			if (fresh)
				objects_list_begin(&o);
			if (list(&o, now, OBJECTS_CHANGES) < 0) {
				countdown = -1;
				fresh = false;
				continue;
			}
			if (objects_sweep(&o, true, "Guitar", "v1", note, NULL) < 0) {
				countdown = -1;
				fresh = true;
				continue;
			}
			break;
		}
		countdown = -1;
		cr_assert(was_reported(CEVENT_UPDATE, "b", "7"), "allocation %ld: update lost", n);
		cr_assert(was_reported(CEVENT_ADD, "e", "8"), "allocation %ld: add lost", n);
		cr_assert(was_reported(CEVENT_DELETE, "c", "3"), "allocation %ld: delete lost", n);
		cr_assert_eq(objects_count(&o), 3);
		objects_finish(&o);
		if (!failed) {
			/* The table allocates nothing per object (objects_store.c): a
			 * relist's only allocation is the buffer a record is read into. */
			cr_assert_gt(n, 0, "no allocation failed");
			break;
		}
	}
#ifdef HAVE_ASAN
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "leaks after allocation failures");
#endif
}

/* ---------------- configuration: -ENOMEM, never abort() ---------------- */

static const char *const *config_env; /* name, value pairs, NULL-ended */
static char *config_argv[64];
static int config_argc;
static unsigned config_problems;

static const char *config_lookup(const char *name, void *userdata) {
	(void)userdata;
	for (const char *const *kv = config_env; kv && *kv; kv += 2)
		if (strcmp(kv[0], name) == 0)
			return kv[1];
	return NULL;
}

static void config_problem(const char *field, const char *message, void *userdata) {
	(void)userdata;
	config_problems++;
	cr_log_error("%s: %s", field, message);
}

/* A valid configuration: an allocation failure anywhere must give -ENOMEM
 * (or success, if nothing needed it), never a reported problem that is not
 * there, and leave nothing allocated. */
static int run_config(void) {
	struct config cfg;
	int r;

	config_problems = 0;
	r = config_load(&cfg, config_argc, config_argv, config_lookup, NULL, config_problem, NULL);
	config_finish(&cfg);
	cr_assert_eq(config_problems, 0, "a problem reported for a valid configuration");
	return r;
}

static void set_argv(const char *const *args) {
	config_argc = 0;
	config_argv[config_argc++] = "apiserversource-adapter";
	for (; *args; args++)
		config_argv[config_argc++] = (char *)*args;
	config_argv[config_argc] = NULL;
}

Test(oom, config_flags) {
	static char dir[] = "/tmp/test-oom-state-XXXXXX";
	const char *const args[] = { "--resource", "kool.karmalabs.local/v1/Guitar", "--resource",
		"v1/pods", "-n", "a,b", "-n", "c", "-l", "app=x,tier in (a,b)", "--sink",
		"http://127.0.0.1:9/", "--dead-letter", "http://127.0.0.1:9/dead", "--mode", "Reference",
		"--filter", "kind = 'Pod'", "--filter", "{\"prefix\":{\"type\":\"dev\"}}",
		"--kubeconfig", "/nonexistent", "--context", "ctx", "--name", "n", "--state-dir", dir,
		"--retry-max", "3", "--sink-timeout", "2", "--probes-addr", "127.0.0.1:0",
		"--metrics-addr", "off", "--log-level", "debug", "--log-format", "text", NULL };

	cr_assert_not_null(mkdtemp(dir));
	config_env = NULL;
	set_argv(args);
	fail_each_allocation(run_config);
	rmdir(dir);
}

Test(oom, config_env) {
	static const char *const env[] = {
		"K_SOURCE_CONFIG",
		"{\"namespaces\":[\"a\",\"b\"],\"resources\":[{\"gvr\":{\"Group\":\"\",\"Version\":\"\","
		"\"Resource\":\"pods\"},\"selector\":\"k=v\"},{\"gvr\":{\"Group\":\"batch\","
		"\"Version\":\"v1\",\"Resource\":\"jobs\"}}],\"owner\":{\"apiVersion\":\"custom/v1\","
		"\"kind\":\"Parent\"},\"mode\":\"Resource\",\"filters\":[{\"exact\":{\"type\":\"x\"}},"
		"{\"cesql\":\"kind = 'Pod'\"}]}",
		"K_SINK", "http://sink.example.svc.cluster.local",
		"NAME", "src", "NAMESPACE", "ns",
		"K_CE_OVERRIDES", "{\"extensions\":{\"team\":\"frets\",\"tier\":\"a\"}}",
		"K_SINK_TIMEOUT", "7",
		"K_OBSERVABILITY_CONFIG", "{\"metrics\":{\"protocol\":\"prometheus\"}}",
		"K_LOGGING_CONFIG", "{\"level\":\"info\"}",
		"K_AUDIENCE", "aud", "K_OIDC_SERVICE_ACCOUNT", "sa",
		"KUBERNETES_SERVICE_HOST", "10.0.0.1", "KUBERNETES_SERVICE_PORT", "443",
		"HOME", "/root", "KUBECONFIG", "/a:/b",
		NULL,
	};
	const char *const args[] = { NULL };

	config_env = env;
	set_argv(args);
	fail_each_allocation(run_config);
}

Test(oom, config_manifest) {
	static const char text[] = "apiVersion: sources.knative.dev/v1\n"
				   "kind: ApiServerSource\n"
				   "metadata: {name: guitars, namespace: guitar-eventing}\n"
				   "spec:\n"
				   "  resources:\n"
				   "  - apiVersion: kool.karmalabs.local/v1\n"
				   "    kind: Guitar\n"
				   "    selector:\n"
				   "      matchLabels: {brand: martin}\n"
				   "      matchExpressions:\n"
				   "      - {key: tier, operator: In, values: [a, b]}\n"
				   "      - {key: retired, operator: DoesNotExist}\n"
				   "      - {key: tuned, operator: Exists}\n"
				   "  owner: {apiVersion: custom/v1, kind: Parent}\n"
				   "  ceOverrides:\n"
				   "    extensions: {team: frets}\n"
				   "  namespaceSelector:\n"
				   "    matchLabels: {env: prod}\n"
				   "  filters:\n"
				   "  - exact: {type: dev.knative.apiserver.resource.add}\n"
				   "  sink: {uri: 'http://127.0.0.1:9/events'}\n"
				   "  delivery: {deadLetterSink: {uri: 'http://127.0.0.1:9/dead'}}\n";
	char path[] = "/tmp/test-oom-manifest-XXXXXX";
	const char *const args[] = { "--source-file", path, NULL };
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	config_env = NULL;
	set_argv(args);
	fail_each_allocation(run_config);
	unlink(path);
}

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter/config.h"

struct env {
	const char *kv[32][2];
};

static const char *lookup(const char *name, void *ud) {
	struct env *e = ud;

	for (int i = 0; i < 32 && e->kv[i][0]; i++)
		if (strcmp(e->kv[i][0], name) == 0)
			return e->kv[i][1];
	return NULL;
}

struct errs {
	char lines[32][1200];
	int n;
};

static void on_error(const char *field, const char *msg, void *ud) {
	struct errs *e = ud;

	if (e->n < 32)
		snprintf(e->lines[e->n++], sizeof(e->lines[0]), "%s: %s", field, msg);
}

static bool has_error(struct errs *e, const char *needle) {
	for (int i = 0; i < e->n; i++)
		if (strstr(e->lines[i], needle))
			return true;
	return false;
}

#define LOAD(cfg, env, errs, ...)                                                       \
	({                                                                              \
		char *argv_[] = { "apiserversource-adapter", ##__VA_ARGS__, NULL };     \
		config_load((cfg), (int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_, lookup, \
			(env), on_error, (errs));                                       \
	})

static char *write_tmp(const char *text) {
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/test-config-XXXXXX.yaml");
	fd = mkstemps(path, 5);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

Test(config, command_line) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e, "--resource", "kool.karmalabs.local/v1/Guitar", "--resource",
			     "v1/Pod", "-n", "guitar-eventing", "-n", "a,b", "-l", "app=x",
			     "--sink", "http://127.0.0.1:8080/"),
		0, "%s", e.lines[0]);
	cr_assert_eq(c.n_resources, 2);
	cr_assert_str_eq(c.resources[0].group, "kool.karmalabs.local");
	cr_assert_str_eq(c.resources[0].version, "v1");
	cr_assert_str_eq(c.resources[0].kind, "Guitar");
	cr_assert_str_eq(c.resources[1].group, "");
	cr_assert_str_eq(c.resources[1].kind, "Pod");
	cr_assert_str_eq(c.resources[0].label_selector, "app=x");
	cr_assert_str_eq(c.resources[1].label_selector, "app=x");
	cr_assert_eq(c.n_namespaces, 3);
	cr_assert_str_eq(c.namespaces[2], "b");
	cr_assert_eq(c.mode, CONFIG_MODE_RESOURCE);
	cr_assert_eq(c.retry_max, 0); /* no limit by default: nothing is dropped */
	cr_assert_eq(c.retry_timeout_usec, 0);
	cr_assert_eq(c.sink_timeout_usec, 30000000);
	cr_assert_eq(c.queue_max_events, 10000);
	cr_assert_eq(c.drain_timeout_usec, 25000000);
	cr_assert_null(c.dead_letter);
	cr_assert_null(c.state_dir);
	cr_assert_not(c.all_namespaces);
	config_finish(&c);
}

Test(config, empty_selector_means_everything) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };

	/* Once a heap-buffer-overflow (reading before the empty string). */
	cr_assert_eq(LOAD(&c, &env, &e, "--resource", "v1/Pod", "-l", "", "--sink", "-"), 0, "%s",
		e.lines[0]);
	cr_assert_null(c.resources[0].label_selector);
	config_finish(&c);
}

Test(config, stdout_sink_all_namespaces_reference) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };
	char dir[] = "/tmp/test-config-state-XXXXXX";

	cr_assert_not_null(mkdtemp(dir)); /* --state-dir must exist */
	cr_assert_eq(LOAD(&c, &env, &e, "--resource", "v1/Namespace", "-A", "--sink", "-", "--mode",
			     "reference", "--retry-max", "3", "--sink-timeout", "2", "--retry-timeout", "60",
			     "--queue-max-bytes", "1048576", "--state-dir", dir, "--object-state",
			     "reference", "--drain-timeout", "0"),
		0, "%s", e.lines[0]);
	rmdir(dir);
	cr_assert_eq(c.retry_timeout_usec, 60000000);
	cr_assert_eq(c.queue_max_bytes, 1048576);
	cr_assert_str_eq(c.state_dir, dir);
	cr_assert(c.object_state_refs);
	cr_assert_eq(c.drain_timeout_usec, 0);
	cr_assert(c.all_namespaces);
	cr_assert_str_eq(c.sink, "-");
	cr_assert_eq(c.mode, CONFIG_MODE_REFERENCE);
	cr_assert_eq(c.retry_max, 3);
	cr_assert_eq(c.sink_timeout_usec, 2000000);
	config_finish(&c);
}

/* The environment Knative's controller writes, verbatim from the issue. */
Test(config, knative_environment) {
	struct config c;
	struct env env = { {
		{ "K_SOURCE_CONFIG",
			"{\"namespaces\":[\"source-namespace\"],\"allNamespaces\":false,\"resources\":[{\"gvr\":"
			"{\"Group\":\"\",\"Version\":\"\",\"Resource\":\"namespaces\"}},{\"gvr\":{\"Group\":"
			"\"batch\",\"Version\":\"v1\",\"Resource\":\"jobs\"}},{\"gvr\":{\"Group\":\"\","
			"\"Version\":\"\",\"Resource\":\"pods\"},\"selector\":\"test-key1=test-value1\"}],"
			"\"owner\":{\"apiVersion\":\"custom/v1\",\"kind\":\"Parent\"},\"mode\":\"Resource\"}" },
		{ "K_SINK", "http://sink.example.svc.cluster.local" },
		{ "NAME", "guitars-apisource" },
		{ "NAMESPACE", "source-namespace" },
		{ "K_CE_OVERRIDES", "{\"extensions\":{\"team\":\"frets\"}}" },
		{ "K_SINK_TIMEOUT", "7" },
		{ NULL },
	} };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e), 0, "%s", e.lines[0]);
	cr_assert_eq(c.n_resources, 3);
	cr_assert_str_eq(c.resources[0].group, "");
	cr_assert_str_eq(c.resources[0].version, "v1");
	cr_assert_str_eq(c.resources[0].resource, "namespaces");
	cr_assert_null(c.resources[0].kind);
	cr_assert_str_eq(c.resources[1].group, "batch");
	cr_assert_str_eq(c.resources[1].resource, "jobs");
	cr_assert_str_eq(c.resources[2].label_selector, "test-key1=test-value1");
	cr_assert_eq(c.n_namespaces, 1);
	cr_assert_str_eq(c.namespaces[0], "source-namespace");
	cr_assert_str_eq(c.owner_api_version, "custom/v1");
	cr_assert_str_eq(c.owner_kind, "Parent");
	cr_assert_eq(c.mode, CONFIG_MODE_RESOURCE);
	cr_assert_str_eq(c.sink, "http://sink.example.svc.cluster.local");
	cr_assert_str_eq(c.name, "guitars-apisource");
	cr_assert_eq(c.n_extensions, 1);
	cr_assert_str_eq(c.extensions[0].name, "team");
	cr_assert_eq(c.sink_timeout_usec, 7000000);
	config_finish(&c);
}

Test(config, knative_defaults_and_case_insensitive_keys) {
	struct config c;
	struct env env = { {
		{ "K_SOURCE_CONFIG", "{\"AllNamespaces\":true,\"Resources\":[{\"GVR\":{\"group\":\"apps\","
				     "\"version\":\"v1\",\"resource\":\"deployments\"}}],\"failFast\":true}" },
		{ "K_SINK", "http://x" },
		{ NULL },
	} };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e), 0, "%s", e.lines[0]);
	cr_assert(c.all_namespaces);
	cr_assert(c.fail_fast);
	cr_assert_eq(c.mode, CONFIG_MODE_RESOURCE); /* absent mode: Resource, as Knative */
	cr_assert_str_eq(c.resources[0].group, "apps");
	config_finish(&c);
}

static const char manifest[] =
	"apiVersion: v1\n"
	"kind: Namespace\n"
	"metadata:\n"
	"  name: guitar-eventing\n"
	"---\n"
	"apiVersion: sources.knative.dev/v1\n"
	"kind: ApiServerSource\n"
	"metadata:\n"
	"  name: guitars-apisource\n"
	"  namespace: guitar-eventing\n"
	"spec:\n"
	"  serviceAccountName: guitar-sa\n"
	"  resources:\n"
	"  - apiVersion: kool.karmalabs.local/v1\n"
	"    kind: Guitar\n"
	"    selector:\n"
	"      matchLabels:\n"
	"        brand: martin\n"
	"      matchExpressions:\n"
	"      - key: tier\n"
	"        operator: In\n"
	"        values: [a, b]\n"
	"      - key: retired\n"
	"        operator: DoesNotExist\n"
	"  owner:\n"
	"    apiVersion: custom/v1\n"
	"    kind: Parent\n"
	"  ceOverrides:\n"
	"    extensions:\n"
	"      team: frets\n"
	"  sink:\n"
	"    uri: http://127.0.0.1:9/events\n"
	"  delivery:\n"
	"    deadLetterSink:\n"
	"      uri: http://127.0.0.1:9/dead\n";

Test(config, manifest_file) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };
	char *path = write_tmp(manifest);

	cr_assert_eq(LOAD(&c, &env, &e, "--source-file", path), 0, "%s", e.lines[0]);
	cr_assert_eq(c.n_resources, 1);
	cr_assert_str_eq(c.resources[0].kind, "Guitar");
	cr_assert_str_eq(c.resources[0].label_selector, "brand=martin,tier in (a,b),!retired");
	cr_assert_eq(c.mode, CONFIG_MODE_REFERENCE); /* the API's default */
	cr_assert_str_eq(c.sink, "http://127.0.0.1:9/events");
	cr_assert_str_eq(c.name, "guitars-apisource");
	cr_assert_eq(c.n_namespaces, 1);
	cr_assert_str_eq(c.namespaces[0], "guitar-eventing");
	cr_assert_str_eq(c.owner_kind, "Parent");
	cr_assert_str_eq(c.extensions[0].value, "frets");
	cr_assert_str_eq(c.dead_letter, "http://127.0.0.1:9/dead");
	config_finish(&c);
	unlink(path);
}

Test(config, flags_override_env_override_file) {
	struct config c;
	struct env env = { { { "K_SINK", "http://from-env" }, { NULL } } };
	struct errs e = { 0 };
	char *path = write_tmp(manifest);

	cr_assert_eq(LOAD(&c, &env, &e, "--source-file", path), 0);
	cr_assert_str_eq(c.sink, "http://from-env");
	config_finish(&c);
	cr_assert_eq(LOAD(&c, &env, &e, "--source-file", path, "--sink", "http://from-flag",
			     "--mode", "Resource", "-n", "other"),
		0);
	cr_assert_str_eq(c.sink, "http://from-flag");
	cr_assert_eq(c.mode, CONFIG_MODE_RESOURCE);
	cr_assert_eq(c.n_namespaces, 1);
	cr_assert_str_eq(c.namespaces[0], "other");
	config_finish(&c);
	unlink(path);
}

Test(config, manifest_errors_name_file_line_column) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };
	char *path = write_tmp("apiVersion: sources.knative.dev/v1\n"
			       "kind: ApiServerSource\n"
			       "spec:\n"
			       "  mode: Sometimes\n"
			       "  resources:\n"
			       "  - kind: Guitar\n"
			       "  ceOverrides:\n"
			       "    extensions:\n"
			       "      Bad_Name: x\n"
			       "  sink:\n"
			       "    ref:\n"
			       "      kind: Service\n");
	char want[256];

	cr_assert_eq(LOAD(&c, &env, &e, "--source-file", path), -EINVAL);
	snprintf(want, sizeof(want), "%s:4:9: spec.mode: must be Resource or Reference", path);
	cr_assert(has_error(&e, want), "%s", e.lines[0]);
	snprintf(want, sizeof(want), "%s:6:5: spec.resources[0]: needs apiVersion and kind", path);
	cr_assert(has_error(&e, want));
	snprintf(want, sizeof(want), "%s:9:7: spec.ceOverrides.extensions", path);
	cr_assert(has_error(&e, want));
	cr_assert(has_error(&e, "spec.sink.ref.apiVersion: missing"));
	config_finish(&c);
	unlink(path);
}

Test(config, yaml_syntax_error_has_position) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };
	char *path = write_tmp("kind: ApiServerSource\nspec: [unclosed\n");
	char want[128];

	cr_assert_eq(LOAD(&c, &env, &e, "--source-file", path), -EINVAL);
	snprintf(want, sizeof(want), "%s:3:1", path);
	cr_assert(has_error(&e, want), "%s", e.lines[0]);
	config_finish(&c);
	unlink(path);
	cr_assert_eq(LOAD(&c, &env, &e, "--source-file", "/nonexistent.yaml"), -EINVAL);
	cr_assert(has_error(&e, "--source-file: /nonexistent.yaml: No such file"));
	config_finish(&c);
}

Test(config, every_problem_is_reported) {
	struct config c;
	struct env env = { {
		{ "K_SOURCE_CONFIG", "{\"resources\":[{\"gvr\":{\"Group\":\"batch\",\"Resource\":\"jobs\"}}]," },
		{ "K_CE_OVERRIDES", "{\"extensions\":{\"id\":\"x\"}}" },
		{ "K_SINK_TIMEOUT", "soon" },
		{ NULL },
	} };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e, "--resource", "Guitar", "-n", "x", "-A", "--mode", "Both",
			     "--retry-max", "lots", "--log-level", "loud", "--bogus", "--queue-max-events", "0",
			     "--object-state", "some", "--dead-letter", "ftp://dlq"),
		-EINVAL);
	cr_assert(has_error(&e, "K_SOURCE_CONFIG: invalid JSON"));
	cr_assert(has_error(&e, "K_CE_OVERRIDES: extensions.id: not a valid CloudEvents extension name"));
	cr_assert(has_error(&e, "K_SINK_TIMEOUT: \"soon\""));
	cr_assert(has_error(&e, "--resource: \"Guitar\" is not APIVERSION/KIND"));
	cr_assert(has_error(&e, "-A: cannot be combined with -n"));
	cr_assert(has_error(&e, "--mode: must be Resource or Reference"));
	cr_assert(has_error(&e, "--retry-max: \"lots\" is not a number of attempts"));
	cr_assert(has_error(&e, "--queue-max-events: \"0\" is not a number of events (1-"));
	cr_assert(has_error(&e, "--object-state: must be full or reference"));
	cr_assert(has_error(&e, "--dead-letter: \"ftp://dlq\" is not an http"));
	cr_assert(has_error(&e, "--log-level"));
	cr_assert(has_error(&e, "--bogus: unknown flag"));
	cr_assert(has_error(&e, "--sink: missing"));
	config_finish(&c);
}

Test(config, bad_resource_is_not_also_nothing_to_watch) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e, "--resource", "Guitar", "--sink", "-"), -EINVAL);
	cr_assert(has_error(&e, "--resource: \"Guitar\" is not APIVERSION/KIND"));
	cr_assert_not(has_error(&e, "nothing to watch"), "%s", e.lines[1]);
	cr_assert_eq(e.n, 1);
	config_finish(&c);
	/* No --resource at all: that is the problem to report. */
	e = (struct errs){ 0 };
	cr_assert_eq(LOAD(&c, &env, &e, "--sink", "-"), -EINVAL);
	cr_assert(has_error(&e, "--resource: nothing to watch"));
	config_finish(&c);
}

Test(config, gvr_version_missing_for_group) {
	struct config c;
	struct env env = { {
		{ "K_SOURCE_CONFIG", "{\"resources\":[{\"gvr\":{\"Group\":\"batch\",\"Resource\":\"jobs\"}}]}" },
		{ "K_SINK", "http://x" },
		{ NULL },
	} };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e), -EINVAL);
	cr_assert(has_error(&e, "K_SOURCE_CONFIG: resources[0].gvr.Version: empty for group \"batch\""));
	config_finish(&c);
}

Test(config, parse_resource_forms) {
	struct config_resource r;

	cr_assert_eq(config_parse_resource("apps/v1/Deployment", &r), 0);
	cr_assert_str_eq(r.group, "apps");
	cr_assert_str_eq(r.kind, "Deployment");
	config_resource_finish(&r);
	cr_assert_eq(config_parse_resource("v1/pods", &r), 0);
	cr_assert_str_eq(r.resource, "pods");
	cr_assert_null(r.kind);
	config_resource_finish(&r);
	cr_assert_eq(config_parse_resource("Pod", &r), -EINVAL);
	cr_assert_eq(config_parse_resource("/v1/Pod", &r), -EINVAL);
	cr_assert_eq(config_parse_resource("a/b/c/Pod", &r), -EINVAL);
	cr_assert_eq(config_parse_resource("v1/", &r), -EINVAL);
	cr_assert_eq(config_parse_resource("V1/Pod", &r), -EINVAL);
}

Test(config, help_and_version) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e, "--help"), 0);
	cr_assert(c.help);
	config_finish(&c);
	cr_assert_eq(LOAD(&c, &env, &e, "--version"), 0);
	cr_assert(c.version);
	config_finish(&c);
}

/* ---------------- the option table and hostile values ---------------- */

static bool error_starts(struct errs *e, const char *prefix) {
	for (int i = 0; i < e->n; i++)
		if (strncmp(e->lines[i], prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

/* Runs config_load() with a valid base plus one option and its value. */
static int load_one(struct config *c, struct env *env, struct errs *e, const char *flag,
	const char *value) {
	char *argv[] = { "apiserversource-adapter", "--resource", "v1/Pod", "--sink", "-", (char *)flag,
		(char *)value, NULL };

	*e = (struct errs){ 0 };
	return config_load(c, value ? 7 : 6, argv, lookup, env, on_error, e);
}

Test(config, every_flag_and_letter_is_in_the_table) {
	static const char *const want[] = { "resource", "namespace:n", "all-namespaces:A", "selector:l",
		"initial-events", "source-file", "sink", "mode", "filter", "sink-timeout", "retry-max",
		"retry-timeout", "dead-letter", "queue-max-events", "queue-max-bytes", "max-inflight",
		"kubeconfig", "context", "name", "fail-fast", "max-event-bytes", "state-dir",
		"checkpoint-interval", "drain-timeout", "object-state", "watch-timeout", "request-timeout",
		"log-level",
		"log-format", "probes-addr", "metrics-addr", "sink-ref", "help:h", "version",
		"with-changes", "strip-managed-fields", "header", "header-file", NULL };
	struct config_option_info o;
	size_t n = 0;

	while (config_option_info(n, &o))
		n++;
	cr_assert_eq(n, sizeof(want) / sizeof(want[0]) - 1);
	for (const char *const *w = want; *w; w++) {
		bool found = false;
		for (size_t i = 0; config_option_info(i, &o); i++) {
			char name[64];
			if (o.letter)
				snprintf(name, sizeof(name), "%s:%c", o.name, o.letter);
			else
				snprintf(name, sizeof(name), "%s", o.name);
			found |= strcmp(name, *w) == 0;
		}
		cr_assert(found, "%s is not in the option table", *w);
	}
}

Test(config, help_is_generated_from_the_table) {
	struct config_option_info o;
	char text[16384];
	FILE *f = tmpfile();
	size_t len;

	cr_assert_not_null(f);
	config_usage(fileno(f));
	rewind(f);
	len = fread(text, 1, sizeof(text) - 1, f);
	text[len] = '\0';
	fclose(f);
	for (size_t i = 0; config_option_info(i, &o); i++) {
		char want[80];
		if (o.letter)
			snprintf(want, sizeof(want), "  -%c, --%s", o.letter, o.name);
		else
			snprintf(want, sizeof(want), "  --%s%s", o.name, o.has_arg ? " " : "");
		cr_assert(strstr(text, want), "--help lacks \"%s\"", want);
		if (o.env) {
			snprintf(want, sizeof(want), "(or $%s)", o.env);
			cr_assert(strstr(text, want), "--help lacks \"%s\"", want);
		}
	}
	for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1)
		cr_assert_leq(nl - line, 92, "--help line too long: %.*s", (int)(nl - line), line);
}

/* Table-driven: every option with a value refuses "" naming itself, unless
 * "" has a documented meaning (-l "": no selector; --probes-addr "": off). */
Test(config, empty_value_is_refused_for_every_option) {
	struct config_option_info o;
	struct env env = { { { NULL } } };
	struct config c;
	struct errs e;

	for (size_t i = 0; config_option_info(i, &o); i++) {
		char flag[64], want[80];
		int r;

		if (!o.has_arg)
			continue;
		snprintf(flag, sizeof(flag), "--%s", o.name);
		r = load_one(&c, &env, &e, flag, "");
		if (o.empty_ok) {
			cr_assert_eq(r, 0, "%s \"\": %s", flag, e.lines[0]);
		} else {
			snprintf(want, sizeof(want), "%s: ", flag);
			cr_assert_eq(r, -EINVAL, "%s \"\" was accepted", flag);
			cr_assert(error_starts(&e, want), "%s \"\": %s", flag, e.lines[0]);
			cr_assert(strchr(e.lines[0], '\n') == NULL);
		}
		config_finish(&c);
	}
}

/* Table-driven: a control character in any option's value is refused
 * naming the option; line breaks only where the value may span lines. */
Test(config, control_characters_are_refused_for_every_option) {
	static const char *const bad[] = { "a\001b", "x\x7f", "v1/Pod\r\nX-Injected: 1" };
	struct config_option_info o;
	struct env env = { { { NULL } } };
	struct config c;
	struct errs e;

	for (size_t i = 0; config_option_info(i, &o); i++) {
		char flag[64], want[96];

		if (!o.has_arg)
			continue;
		snprintf(flag, sizeof(flag), "--%s", o.name);
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			if (o.multiline && strchr(bad[j], '\n'))
				continue;
			cr_assert_eq(load_one(&c, &env, &e, flag, bad[j]), -EINVAL, "%s accepted", flag);
			snprintf(want, sizeof(want), "%s: control character", flag);
			cr_assert(error_starts(&e, want), "%s: %s", flag, e.lines[0]);
			config_finish(&c);
		}
	}
}

Test(config, env_control_characters_are_refused) {
	static const char *const vars[] = { "K_SINK", "NAME", "K_SINK_TIMEOUT", "KUBECONFIG",
		"NAMESPACE", "K_AUDIENCE", "K_OIDC_SERVICE_ACCOUNT", "KUBERNETES_SERVICE_HOST",
		"KUBERNETES_SERVICE_PORT", "HOME", "APISERVERSOURCE_SERVICEACCOUNT_DIR",
		"METRICS_PROMETHEUS_PORT", NULL };
	struct config_option_info o;

	/* Every variable the table names is in the list above. */
	for (size_t i = 0; config_option_info(i, &o); i++) {
		bool listed = false;
		for (const char *const *v = vars; o.env && *v; v++)
			listed |= strcmp(*v, o.env) == 0;
		cr_assert(!o.env || listed, "%s is not tested", o.env);
	}
	for (const char *const *v = vars; *v; v++) {
		struct env env = { {
			{ *v, "x\ny" },
			{ "K_OBSERVABILITY_CONFIG", "{\"metrics\":{\"protocol\":\"prometheus\"}}" },
			{ NULL },
		} };
		struct config c;
		struct errs e = { 0 };
		char want[96];

		cr_assert_eq(LOAD(&c, &env, &e, "--resource", "v1/Pod", "--sink", "-"), -EINVAL, "%s", *v);
		snprintf(want, sizeof(want), "%s: control character 0x0a at byte 1", *v);
		cr_assert(error_starts(&e, want), "%s: %s", *v, e.lines[0]);
		config_finish(&c);
	}
}

Test(config, empty_env_var_counts_as_unset) {
	struct config c;
	struct env env = { { { "K_SINK", "" }, { "NAME", "" }, { "K_SINK_TIMEOUT", "" }, { NULL } } };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e, "--resource", "v1/Pod"), -EINVAL);
	cr_assert(has_error(&e, "--sink: missing"), "%s", e.lines[0]);
	cr_assert_eq(e.n, 1, "%s", e.lines[1]);
	cr_assert_null(c.name);
	cr_assert_eq(c.sink_timeout_usec, 30000000);
	config_finish(&c);
}

/* A rejected value is one problem, not also what its absence causes. */
Test(config, rejected_sink_or_resource_is_one_problem) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e, "--resource", "", "--sink", "\001"), -EINVAL);
	cr_assert(error_starts(&e, "--resource: empty value"), "%s", e.lines[0]);
	cr_assert(error_starts(&e, "--sink: control character"), "%s", e.lines[1]);
	cr_assert_eq(e.n, 2, "%s", e.lines[2]);
	config_finish(&c);
}

Test(config, namespace_empty_is_refused) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e;

	/* kubectl reads -n "" as the context's namespace; we say so, not guess. */
	cr_assert_eq(load_one(&c, &env, &e, "-n", ""), -EINVAL);
	cr_assert(error_starts(&e, "--namespace: empty value; leave -n out to watch the kubeconfig "
				   "context's namespace"),
		"%s", e.lines[0]);
	cr_assert_eq(e.n, 1);
	config_finish(&c);
	cr_assert_eq(load_one(&c, &env, &e, "--namespace", "a,,b"), -EINVAL);
	cr_assert(error_starts(&e, "--namespace: \"a,,b\" has an empty namespace name"), "%s", e.lines[0]);
	config_finish(&c);
	cr_assert_eq(load_one(&c, &env, &e, "-n", "a,"), -EINVAL);
	config_finish(&c);
}

Test(config, state_dir_empty_is_refused) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e;

	cr_assert_eq(load_one(&c, &env, &e, "--state-dir", ""), -EINVAL);
	cr_assert(error_starts(&e, "--state-dir: empty value; leave --state-dir out"), "%s", e.lines[0]);
	cr_assert_eq(e.n, 1);
	config_finish(&c);
}

Test(config, state_dir_nonexistent_is_refused) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e;

	cr_assert_eq(load_one(&c, &env, &e, "--state-dir", "/nonexistent/state"), -EINVAL);
	cr_assert(error_starts(&e, "--state-dir: /nonexistent/state: No such file or directory"), "%s",
		e.lines[0]);
	cr_assert_eq(e.n, 1);
	config_finish(&c);
}

Test(config, state_dir_not_a_directory_is_refused) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e;
	char *path = write_tmp("x");
	char want[128];

	cr_assert_eq(load_one(&c, &env, &e, "--state-dir", path), -EINVAL);
	snprintf(want, sizeof(want), "--state-dir: %s: not a directory", path);
	cr_assert(error_starts(&e, want), "%s", e.lines[0]);
	config_finish(&c);
	unlink(path);
}

Test(config, state_dir_unwritable_is_refused) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e;
	char dir[] = "/tmp/test-config-ro-XXXXXX";
	const char *path = dir;

	cr_assert_not_null(mkdtemp(dir));
	chmod(dir, 0555);
	if (geteuid() == 0)
		path = "/sys"; /* root writes anywhere mode bits say no; not in sysfs */
	cr_assert_eq(load_one(&c, &env, &e, "--state-dir", path), -EINVAL);
	cr_assert(error_starts(&e, "--state-dir: "), "%s", e.lines[0]);
	cr_assert(has_error(&e, "cannot write there"), "%s", e.lines[0]);
	config_finish(&c);
	rmdir(dir);
}

Test(config, state_dir_writable_is_accepted_and_left_clean) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e;
	char dir[] = "/tmp/test-config-sd-XXXXXX";

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(load_one(&c, &env, &e, "--state-dir", dir), 0, "%s", e.lines[0]);
	cr_assert_str_eq(c.state_dir, dir);
	config_finish(&c);
	cr_assert_eq(rmdir(dir), 0, "the probe file was left behind");
}

Test(config, source_config_nul_escape_is_refused) {
	struct config c;
	struct env env = { {
		{ "K_SOURCE_CONFIG", "{\"resources\":[{\"gvr\":{\"Version\":\"v1\",\"Resource\":"
				     "\"pods\\u0000x\"}}]}" },
		{ "K_SINK", "-" },
		{ NULL },
	} };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e), -EINVAL);
	cr_assert(error_starts(&e, "K_SOURCE_CONFIG: invalid JSON: a string contains \\u0000"), "%s", e.lines[0]);
	config_finish(&c);
	/* An escaped backslash before u0000 is text, not a NUL. */
	env.kv[0][1] = "{\"resources\":[{\"gvr\":{\"Version\":\"v1\",\"Resource\":\"pods\"},"
		       "\"selector\":\"a=\\\\u0000\"}]}";
	e = (struct errs){ 0 };
	cr_assert_eq(LOAD(&c, &env, &e), 0, "%s", e.lines[0]);
	config_finish(&c);
}

Test(config, source_config_control_character_is_refused) {
	struct config c;
	struct env env = { {
		{ "K_SOURCE_CONFIG", "{\"resources\":[{\"gvr\":{\"Version\":\"v1\",\"Resource\":"
				     "\"pods\"},\"selector\":\"a=b\\nc\"}]}" },
		{ "K_CE_OVERRIDES", "{\"extensions\":{\"team\":\"a\\r\\nX-Injected: 1\"}}" },
		{ "K_SINK", "-" },
		{ NULL },
	} };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e), -EINVAL);
	cr_assert(has_error(&e, "K_SOURCE_CONFIG: resources[0].selector: control character"), "%s",
		e.lines[0]);
	cr_assert(has_error(&e, "K_CE_OVERRIDES: extensions.team: control character"), "%s", e.lines[1]);
	config_finish(&c);
}

Test(config, manifest_control_character_is_refused) {
	struct config c;
	struct env env = { { { NULL } } };
	struct errs e = { 0 };
	char *path = write_tmp("apiVersion: sources.knative.dev/v1\n"
			       "kind: ApiServerSource\n"
			       "metadata:\n"
			       "  name: \"a\\0b\"\n"
			       "spec:\n"
			       "  resources:\n"
			       "  - apiVersion: v1\n"
			       "    kind: Pod\n"
			       "    selector: {matchLabels: {app: \"a\\nb\"}}\n"
			       "  ceOverrides:\n"
			       "    extensions:\n"
			       "      team: \"x\\r\\nX-Injected: 1\"\n"
			       "  sink:\n"
			       "    uri: \"http://x/\\x01\"\n");
	char want[256];

	cr_assert_eq(LOAD(&c, &env, &e, "--source-file", path), -EINVAL);
	snprintf(want, sizeof(want), "%s:4:9: metadata.name: control character", path);
	cr_assert(has_error(&e, want), "%s", e.lines[0]);
	snprintf(want, sizeof(want), "%s:9:15: spec.resources[0].selector: control character", path);
	cr_assert(has_error(&e, want), "%s", e.lines[1]);
	snprintf(want, sizeof(want), "%s:12:13: spec.ceOverrides.extensions: control character", path);
	cr_assert(has_error(&e, want), "%s", e.lines[2]);
	snprintf(want, sizeof(want), "%s:14:10: sink.uri: control character", path);
	cr_assert(has_error(&e, want), "%s", e.lines[3]);
	cr_assert_eq(e.n, 4, "%s", e.lines[4]);
	config_finish(&c);
	unlink(path);
}

/* Issue 8 item 8: every configuration problem in one run. */
Test(config, every_problem_is_reported_at_once) {
	struct config c;
	struct env env = { { { "NAMESPACE", "Not_A_Namespace" }, { NULL } } };
	struct errs e = { 0 };

	cr_assert_eq(LOAD(&c, &env, &e, "--resource", "Guitar", "-n", "", "--state-dir",
			     "/nonexistent/state", "--sink", "", "--name", "a\tb", "--filter", "kind = "),
		-EINVAL);
	cr_assert(error_starts(&e, "--resource: \"Guitar\" is not APIVERSION/KIND"));
	cr_assert(error_starts(&e, "--namespace: empty value"));
	cr_assert(error_starts(&e, "--state-dir: /nonexistent/state: No such file"));
	cr_assert(error_starts(&e, "--sink: empty value"));
	cr_assert(error_starts(&e, "--name: control character 0x09"));
	cr_assert(error_starts(&e, "--filter: "));
	cr_assert(error_starts(&e, "NAMESPACE: \"Not_A_Namespace\" is not a valid namespace name"));
	cr_assert_not(has_error(&e, "--sink: missing")); /* "empty value" says it */
	cr_assert_not(has_error(&e, "nothing to watch"));
	cr_assert_eq(e.n, 7, "%d problems: the 8th is %s", e.n, e.lines[7]);
	config_finish(&c);
}

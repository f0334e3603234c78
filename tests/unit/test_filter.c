#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/filter.h"
#include "adapter/util/yamldoc.h"

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

/* Under ASan, each test ends by asserting that nothing leaked: Criterion's
 * workers would only print LeakSanitizer's report at exit, and neither an
 * assertion nor a crash in a fini function fails the test. */
static void no_leaks(void) {
#ifdef HAVE_ASAN
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (see the report above)");
#endif
}

/* An event like the adapter's: string context attributes, plus extensions. */
static const char *const event[][2] = {
	{ "specversion", "1.0" },
	{ "id", "e1" },
	{ "type", "dev.knative.apiserver.resource.add" },
	{ "source", "https://10.0.0.1:443" },
	{ "subject", "/apis/v1/namespaces/default/pods/web-1" },
	{ "kind", "Pod" },
	{ "name", "web-1" },
	{ "namespace", "default" },
};

static int lookup(const char *name, struct cesql_value *ret_value, void *userdata) {
	for (size_t i = 0; i < sizeof(event) / sizeof(event[0]); i++)
		if (strcmp(event[i][0], name) == 0) {
			*ret_value = (struct cesql_value){
				.type = CESQL_STRING, .s = event[i][1], .len = strlen(event[i][1])
			};
			return 1;
		}
	if (strcmp(name, "count") == 0) {
		*ret_value = (struct cesql_value){ .type = CESQL_INTEGER, .i = 42 };
		return 1;
	}
	if (strcmp(name, "flag") == 0) {
		*ret_value = (struct cesql_value){ .type = CESQL_BOOLEAN, .b = true };
		return 1;
	}
	return 0;
}

static struct filter *json(const char *text) {
	struct filter *f = NULL;
	char errbuf[300];
	char *warnings = NULL;

	cr_assert_eq(filter_parse_json(text, strlen(text), &f, &warnings, errbuf, sizeof(errbuf)),
		0, "%s: %s", text, errbuf);
	free(warnings);
	return f;
}

static bool matches(const char *text) {
	struct filter *f = json(text);
	bool m = filter_match(f, lookup, NULL);

	filter_free(f);
	return m;
}

static void json_fails(const char *text, const char *msg) {
	struct filter *f = NULL;
	char errbuf[300];

	cr_assert_eq(filter_parse_json(text, strlen(text), &f, NULL, errbuf, sizeof(errbuf)),
		-EINVAL, "%s parsed", text);
	cr_assert_null(f);
	cr_assert(strstr(errbuf, msg), "%s: got '%s', expected '%s'", text, errbuf, msg);
}

Test(filter, empty_and_null_pass) {
	cr_assert(filter_match(NULL, lookup, NULL));
	cr_assert(matches("[]"));
	cr_assert(matches("null"));
	no_leaks();
}

Test(filter, exact_prefix_suffix) {
	cr_assert(matches("[{\"exact\":{\"type\":\"dev.knative.apiserver.resource.add\"}}]"));
	cr_assert(!matches("[{\"exact\":{\"type\":\"dev.knative.apiserver.resource\"}}]"));
	cr_assert(matches("[{\"exact\":{\"kind\":\"Pod\",\"namespace\":\"default\"}}]"));
	cr_assert(!matches("[{\"exact\":{\"kind\":\"Pod\",\"namespace\":\"other\"}}]"));
	cr_assert(!matches("[{\"exact\":{\"kind\":\"pod\"}}]")); /* values are case-sensitive */
	cr_assert(matches("[{\"prefix\":{\"type\":\"dev.knative.apiserver.\"}}]"));
	cr_assert(!matches("[{\"prefix\":{\"type\":\"knative\"}}]"));
	cr_assert(matches("[{\"suffix\":{\"type\":\".add\"}}]"));
	cr_assert(!matches("[{\"suffix\":{\"type\":\".delete\"}}]"));
	cr_assert(!matches("[{\"suffix\":{\"name\":\"a-much-longer-suffix-than-the-value\"}}]"));
	/* Non-string extensions compare as Knative prints them (%v). */
	cr_assert(matches("[{\"exact\":{\"count\":\"42\"}}]"));
	cr_assert(matches("[{\"exact\":{\"flag\":\"true\"}}]"));
	no_leaks();
}

Test(filter, missing_attribute_never_matches) {
	cr_assert(!matches("[{\"exact\":{\"missing\":\"x\"}}]"));
	cr_assert(!matches("[{\"prefix\":{\"missing\":\"x\"}}]"));
	cr_assert(!matches("[{\"suffix\":{\"missing\":\"x\"}}]"));
	cr_assert(matches("[{\"not\":{\"exact\":{\"missing\":\"x\"}}}]"));
	cr_assert(!matches("[{\"cesql\":\"missing = 'x'\"}]"));
	/* An error drops the event even under NOT. */
	cr_assert(!matches("[{\"cesql\":\"NOT (missing = 'x')\"}]"));
	cr_assert(matches("[{\"not\":{\"cesql\":\"missing = 'x'\"}}]"));
	no_leaks();
}

Test(filter, all_any_not) {
	cr_assert(matches(
		"[{\"all\":[{\"exact\":{\"kind\":\"Pod\"}},{\"prefix\":{\"name\":\"web\"}}]}]"));
	cr_assert(!matches(
		"[{\"all\":[{\"exact\":{\"kind\":\"Pod\"}},{\"prefix\":{\"name\":\"db\"}}]}]"));
	cr_assert(matches(
		"[{\"any\":[{\"exact\":{\"kind\":\"Node\"}},{\"prefix\":{\"name\":\"web\"}}]}]"));
	cr_assert(!matches(
		"[{\"any\":[{\"exact\":{\"kind\":\"Node\"}},{\"prefix\":{\"name\":\"db\"}}]}]"));
	cr_assert(!matches("[{\"not\":{\"exact\":{\"kind\":\"Pod\"}}}]"));
	cr_assert(matches("[{\"not\":{\"not\":{\"exact\":{\"kind\":\"Pod\"}}}}]"));
	/* The top-level list is ANDed. */
	cr_assert(!matches("[{\"exact\":{\"kind\":\"Pod\"}},{\"exact\":{\"name\":\"x\"}}]"));
	cr_assert(matches("[{\"exact\":{\"kind\":\"Pod\"}},{\"exact\":{\"name\":\"web-1\"}}]"));
	no_leaks();
}

Test(filter, cesql) {
	cr_assert(matches("[{\"cesql\":\"type LIKE '%.add' AND namespace = 'default'\"}]"));
	cr_assert(!matches("[{\"cesql\":\"type LIKE '%.delete'\"}]"));
	cr_assert(matches("[{\"cesql\":\"count > 40 AND flag\"}]"));
	/* Not a Boolean, or an error: no match. */
	cr_assert(!matches("[{\"cesql\":\"'true'\"}]"));
	cr_assert(!matches("[{\"cesql\":\"count\"}]"));
	cr_assert(!matches("[{\"cesql\":\"1 / 0 = 0\"}]"));
	cr_assert(!matches("[{\"cesql\":\"NOSUCH(kind)\"}]"));
	/* Left-associative, as the spec says. */
	cr_assert(!matches("[{\"cesql\":\"TRUE OR TRUE AND FALSE\"}]"));
	no_leaks();
}

Test(filter, dropped_filters_warn) {
	struct filter *f = NULL;
	char errbuf[300], *warnings = NULL;
	const char *text = "[{\"exact\":{\"type\":\"\"}},{\"cesql\":\"\"},{\"all\":[]},"
			   "{\"prefix\":{}},{\"exact\":{\"kind\":\"Pod\"}}]";

	cr_assert_eq(filter_parse_json(text, strlen(text), &f, &warnings, errbuf, sizeof(errbuf)),
		0, "%s", errbuf);
	cr_assert_eq(filter_count(f), 1);
	cr_assert_not_null(warnings);
	cr_assert(strstr(warnings, "filters[0].exact: empty value for \"type\""), "%s", warnings);
	cr_assert(strstr(warnings, "filters[1].cesql: empty expression"), "%s", warnings);
	cr_assert(strstr(warnings, "filters[2].all: empty list"), "%s", warnings);
	cr_assert(strstr(warnings, "filters[3].prefix: no attributes"), "%s", warnings);
	cr_assert(filter_match(f, lookup, NULL));
	free(warnings);
	filter_free(f);
	/* Knative: NOT of a dropped filter neither passes nor fails, nor does an
	 * ANY whose members were all dropped. */
	cr_assert(matches("[{\"not\":{\"exact\":{\"type\":\"\"}}}]"));
	cr_assert(matches("[{\"any\":[{\"exact\":{\"type\":\"\"}}]}]"));
	/* No warnings: NULL. */
	text = "[{\"exact\":{\"kind\":\"Pod\"}}]";
	cr_assert_eq(
		filter_parse_json(text, strlen(text), &f, &warnings, errbuf, sizeof(errbuf)), 0);
	cr_assert_null(warnings);
	filter_free(f);
	no_leaks();
}

Test(filter, parse_errors_name_the_path) {
	json_fails("[{\"exact\":{\"type\":\"x\"}},{\"cesql\":\"a = )\"}]",
		"filters[1].cesql: column 5: unexpected ')'");
	json_fails("[{\"any\":[{\"exact\":{\"a\":\"b\"}},{\"cesql\":\"(a = 1\"}]}]",
		"filters[0].any[1].cesql: column 7: expected ')', got end of expression");
	json_fails("[{}]", "filters[0]: empty filter");
	json_fails("[{\"exact\":{\"a\":\"b\"},\"cesql\":\"true\"}]",
		"filters[0]: more than one dialect (\"exact\" and \"cesql\")");
	json_fails("[{\"regex\":\"x\"}]", "filters[0]: unknown filter dialect \"regex\"");
	json_fails("[{\"exact\":{\"Type\":\"x\"}}]",
		"filters[0].exact: invalid attribute name \"Type\"");
	json_fails("[{\"exact\":{\"\":\"x\"}}]", "filters[0].exact: invalid attribute name \"\"");
	json_fails("[{\"exact\":{\"type\":1}}]",
		"filters[0].exact: the value of \"type\" must be a string");
	json_fails("[{\"not\":[]}]", "filters[0].not: expected one filter");
	json_fails("[{\"all\":{}}]", "filters[0].all: expected a list of filters");
	json_fails("{\"exact\":{}}", "filters: expected a list of filters");
	json_fails("[{\"cesql\":true}]", "filters[0].cesql: expected a CESQL expression string");
	json_fails("[1]", "filters[0]: a filter must be an object");
	json_fails("[{\"exact\":", "filters: invalid JSON");
	json_fails("", "filters: invalid JSON");
	json_fails("[{\"cesql\":\"true\\u0000 OR x\"}]", "filters: a string contains a NUL");
	no_leaks();
}

Test(filter, hostile_input_is_bounded) {
	size_t n = 200000;
	char *s = malloc(n * 10 + 100);
	size_t o = 0;
	struct filter *f = NULL;
	char errbuf[300];

	/* Deep JSON arrays: refused while reading, before any recursion. */
	memset(s, '[', n);
	memset(s + n, ']', n);
	cr_assert_eq(filter_parse_json(s, 2 * n, &f, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	cr_assert(strstr(errbuf, "longer than") || strstr(errbuf, "nested"), "%s", errbuf);
	memset(s, '[', 1000);
	memset(s + 1000, ']', 1000);
	cr_assert_eq(filter_parse_json(s, 2000, &f, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	cr_assert(strstr(errbuf, "nested"), "%s", errbuf);
	/* Deep but well-formed NOT chains: refused at FILTER_MAX_DEPTH. */
	o += (size_t)sprintf(s + o, "[");
	for (int i = 0; i < 70; i++)
		o += (size_t)sprintf(s + o, "{\"not\":");
	o += (size_t)sprintf(s + o, "{\"cesql\":\"true\"}");
	for (int i = 0; i < 70; i++)
		s[o++] = '}';
	s[o++] = ']';
	cr_assert_eq(filter_parse_json(s, o, &f, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	cr_assert(strstr(errbuf, "nested more than 64"), "%s", errbuf);
	/* Many small values: refused by the node cap. */
	o = 0;
	s[o++] = '[';
	for (int i = 0; i < FILTER_MAX_NODES + 10; i++)
		o += (size_t)sprintf(s + o, "%s1", i ? "," : "");
	s[o++] = ']';
	cr_assert_eq(filter_parse_json(s, o, &f, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	free(s);
	no_leaks();
}

Test(filter, parse_one_flag) {
	struct filter *f = NULL, *all = NULL;
	char errbuf[300];

	cr_assert_eq(filter_parse_one("type LIKE '%.add'", &f, NULL, errbuf, sizeof(errbuf)), 0,
		"%s", errbuf);
	cr_assert(filter_match(f, lookup, NULL));
	cr_assert_eq(filter_append(&all, f), 0);
	f = NULL;
	cr_assert_eq(filter_parse_one(
			     "  {\"exact\":{\"kind\":\"Pod\"}}", &f, NULL, errbuf, sizeof(errbuf)),
		0, "%s", errbuf);
	cr_assert(filter_match(f, lookup, NULL));
	cr_assert_eq(filter_append(&all, f), 0);
	f = NULL;
	cr_assert_eq(filter_parse_one(
			     "{\"exact\":{\"name\":\"other\"}}", &f, NULL, errbuf, sizeof(errbuf)),
		0);
	cr_assert(!filter_match(f, lookup, NULL));
	cr_assert_eq(filter_count(all), 2);
	cr_assert(filter_match(all, lookup, NULL));
	cr_assert_eq(filter_append(&all, f), 0); /* now ANDed with a failing one */
	cr_assert_eq(filter_count(all), 3);
	cr_assert(!filter_match(all, lookup, NULL));
	filter_free(all);

	cr_assert_eq(filter_parse_one("a = )", &f, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	cr_assert_str_eq(errbuf, "column 5: unexpected ')'");
	cr_assert_eq(filter_parse_one("{\"cesql\":\"a = )\"}", &f, NULL, errbuf, sizeof(errbuf)),
		-EINVAL);
	cr_assert_str_eq(errbuf, "filter.cesql: column 5: unexpected ')'");
	cr_assert_eq(filter_parse_one("{\"exact\":", &f, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	cr_assert_eq(filter_parse_one("", &f, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	no_leaks();
}

static int yaml_parse(
	const char *text, struct filter **f, char **warnings, char *errbuf, size_t errlen) {
	struct yamldoc *docs = NULL;
	size_t n = 0;
	char *yerr = NULL;
	int r;

	cr_assert_geq(yamldoc_load_all(text, strlen(text), &docs, &n, &yerr), 1, "%s", yerr);
	r = filter_parse_yaml(&docs[0],
		yamldoc_path(&docs[0], yamldoc_root(&docs[0]), "spec.filters"), f, warnings, errbuf,
		errlen);
	yamldoc_free_all(docs, n);
	return r;
}

Test(filter, yaml) {
	struct filter *f = NULL;
	char errbuf[300], *warnings = NULL;
	const char *ok = "spec:\n"
			 "  filters:\n"
			 "    - exact:\n"
			 "        kind: Pod\n"
			 "    - any:\n"
			 "        - prefix: {name: web}\n"
			 "        - cesql: \"namespace = 'kube-system'\"\n"
			 "    - not:\n"
			 "        suffix: {type: .delete}\n"
			 "    - exact: {type: ''}\n";
	const char *bad = "spec:\n"
			  "  filters:\n"
			  "    - exact: {kind: Pod}\n"
			  "    - cesql: \"kind = )\"\n";

	cr_assert_eq(yaml_parse(ok, &f, &warnings, errbuf, sizeof(errbuf)), 0, "%s", errbuf);
	cr_assert_eq(filter_count(f), 3);
	cr_assert(filter_match(f, lookup, NULL));
	cr_assert(strstr(warnings, "10:14: filters[3].exact: empty value"), "%s", warnings);
	free(warnings);
	filter_free(f);
	f = NULL;
	cr_assert_eq(yaml_parse(bad, &f, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	cr_assert_str_eq(errbuf, "4:14: filters[1].cesql: column 8: unexpected ')'");
	/* A self-referencing alias is refused by yamldoc itself (a cycle); an
	 * alias bomb under yamldoc's node limit (100,000) stays bounded here. */
	{
		static const char cycle[] = "spec:\n  filters: &a\n    - all: *a\n";
		struct yamldoc *docs = NULL;
		size_t n = 0;
		char *yerr = NULL;

		cr_assert_eq(yamldoc_load_all(cycle, strlen(cycle), &docs, &n, &yerr), -EBADMSG);
		cr_assert(yerr && strstr(yerr, "refers to a node that contains it"), "%s", yerr);
		free(yerr);
	}
	cr_assert_eq(yaml_parse("a: &a [{exact: {kind: Pod}}, {exact: {kind: Pod}}]\n"
				"b: &b [{all: *a}, {all: *a}, {all: *a}, {all: *a}]\n"
				"c: &c [{all: *b}, {all: *b}, {all: *b}, {all: *b}]\n"
				"d: &d [{all: *c}, {all: *c}, {all: *c}, {all: *c}]\n"
				"e: &e [{all: *d}, {all: *d}, {all: *d}, {all: *d}]\n"
				"f: &f [{all: *e}, {all: *e}, {all: *e}, {all: *e}]\n"
				"spec:\n  filters: [{all: *f}, {all: *f}, {all: *f}, {all: *f}]\n",
			     &f, NULL, errbuf, sizeof(errbuf)),
		-EINVAL);
	cr_assert(strstr(errbuf, "too many YAML nodes"), "%s", errbuf);
	cr_assert_eq(yaml_parse("spec:\n  filters: [{cesql: \"true\\0 OR x\"}]\n", &f, NULL, errbuf,
			     sizeof(errbuf)),
		-EINVAL);
	cr_assert(strstr(errbuf, "NUL"), "%s", errbuf);
	/* No spec.filters: nothing to filter. */
	cr_assert_eq(yaml_parse("spec: {}\n", &f, NULL, errbuf, sizeof(errbuf)), 0);
	cr_assert_eq(filter_count(f), 0);
	filter_free(f);
	no_leaks();
}

static uint32_t rnd(uint32_t *state) {
	*state = *state * 1664525u + 1013904223u;
	return *state >> 8;
}

/* Mutated JSON: parse errors or filters, never a crash or a leak. */
Test(filter, mutated_json_is_safe) {
	static const char seed_doc[] =
		"[{\"exact\":{\"kind\":\"Pod\"}},{\"any\":[{\"prefix\":{\"name\":\"web\"}},"
		"{\"not\":{\"suffix\":{\"type\":\".delete\"}}}]},{\"all\":[{\"cesql\":"
		"\"count > 1 AND name LIKE 'w%'\"},{\"exact\":{\"namespace\":\"default\"}}]}]";
	static const char alphabet[] = "[]{}:,\"'\\ ax0%_()";
	uint32_t seed = 777;
	int ok = 0;

	for (int iter = 0; iter < 20000; iter++) {
		char buf[sizeof(seed_doc) + 16], errbuf[300], *warnings = NULL;
		size_t len = sizeof(seed_doc) - 1, muts = 1 + rnd(&seed) % 4;
		struct filter *f = NULL;

		memcpy(buf, seed_doc, len);
		for (size_t m = 0; m < muts; m++) {
			size_t at = rnd(&seed) % len;
			char c = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
			switch (rnd(&seed) % 3) {
			case 0:
				buf[at] = c;
				break;
			case 1:
				if (len + 1 < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = c;
					len++;
				}
				break;
			default:
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
				break;
			}
		}
		if (filter_parse_json(buf, len, &f, &warnings, errbuf, sizeof(errbuf)) == 0) {
			ok++;
			filter_match(f, lookup, NULL);
			filter_free(f);
			free(warnings);
		} else {
			cr_assert(strncmp(errbuf, "filters", 7) == 0, "'%.*s': '%s'", (int)len, buf,
				errbuf);
		}
	}
	cr_assert_gt(ok, 100);
	no_leaks();
}

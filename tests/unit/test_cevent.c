#include <criterion/criterion.h>
#include <string.h>

#include "adapter/cevent.h"
#include "adapter/http.h"

static struct kobj pod(void) {
	static const char json[] =
		"{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"unit\",\"namespace\":\"test\","
		"\"uid\":\"u-1\",\"resourceVersion\":\"7\"}}";
	struct kobj o;

	memset(&o, 0, sizeof(o));
	o.json = json;
	o.json_len = strlen(json);
	strcpy(o.kind, "Pod");
	strcpy(o.api_version, "v1");
	strcpy(o.name, "unit");
	strcpy(o.namespace, "test");
	strcpy(o.uid, "u-1");
	strcpy(o.resource_version, "7");
	return o;
}

static const struct cevent_params params = {
	.mode = CONFIG_MODE_RESOURCE,
	.source = "https://10.96.0.1:443",
};

static bool has_header(struct curl_slist *h, const char *line) {
	for (; h; h = h->next)
		if (strcmp(h->data, line) == 0)
			return true;
	return false;
}

/* Knative's own test case: Pod "unit" in namespace "test". */
Test(cevent, knative_pod_example) {
	struct kobj o = pod();
	struct cevent *ev = NULL;
	struct curl_slist *h = NULL;
	struct http_headers hh = { 0 };

	cr_assert_eq(cevent_create(&params, &o, CEVENT_ADD, &ev), 0);
	cr_assert_str_eq(ev->type, "dev.knative.apiserver.resource.add");
	cr_assert_str_eq(ev->source, "https://10.96.0.1:443");
	cr_assert_str_eq(ev->subject, "/apis/v1/namespaces/test/pods/unit");
	cr_assert_eq(cevent_http_header_lines(ev, &hh.lines), 0);
	cr_assert_eq(http_headers_link(&hh, &h), 0);
	cr_assert(has_header(h, "ce-apiversion: v1"));
	cr_assert(has_header(h, "ce-kind: Pod"));
	cr_assert(has_header(h, "ce-name: unit"));
	cr_assert(has_header(h, "ce-namespace: test"));
	cr_assert(has_header(h, "ce-specversion: 1.0"));
	cr_assert(has_header(h, "ce-type: dev.knative.apiserver.resource.add"));
	cr_assert(has_header(h, "ce-subject: /apis/v1/namespaces/test/pods/unit"));
	cr_assert(has_header(h, "Content-Type: application/json"));
	/* The data is the object's bytes, untouched. */
	cr_assert_eq(ev->data_len, o.json_len);
	cr_assert_eq(memcmp(ev->data, o.json, o.json_len), 0);
	http_headers_finish(&hh);
	cevent_destroy(ev);
}

Test(cevent, types_per_mode_and_op) {
	cr_assert_str_eq(cevent_type(CONFIG_MODE_RESOURCE, CEVENT_UPDATE),
		"dev.knative.apiserver.resource.update");
	cr_assert_str_eq(cevent_type(CONFIG_MODE_RESOURCE, CEVENT_DELETE),
		"dev.knative.apiserver.resource.delete");
	cr_assert_str_eq(cevent_type(CONFIG_MODE_REFERENCE, CEVENT_ADD), "dev.knative.apiserver.ref.add");
	cr_assert_str_eq(cevent_type(CONFIG_MODE_REFERENCE, CEVENT_DELETE),
		"dev.knative.apiserver.ref.delete");
}

Test(cevent, reference_mode_data) {
	struct cevent_params p = params;
	struct kobj o = pod();
	struct cevent *ev = NULL;

	p.mode = CONFIG_MODE_REFERENCE;
	cr_assert_eq(cevent_create(&p, &o, CEVENT_DELETE, &ev), 0);
	cr_assert_str_eq(ev->type, "dev.knative.apiserver.ref.delete");
	cr_assert_str_eq(ev->data,
		"{\"kind\":\"Pod\",\"namespace\":\"test\",\"name\":\"unit\",\"apiVersion\":\"v1\"}");
	cevent_destroy(ev);

	/* Cluster-scoped: no namespace in the reference, and Knative's empty
	 * namespace segment in the subject. */
	strcpy(o.kind, "Namespace");
	o.namespace[0] = '\0';
	strcpy(o.name, "guitar-eventing");
	cr_assert_eq(cevent_create(&p, &o, CEVENT_ADD, &ev), 0);
	cr_assert_str_eq(ev->data,
		"{\"kind\":\"Namespace\",\"name\":\"guitar-eventing\",\"apiVersion\":\"v1\"}");
	cr_assert_str_eq(ev->subject, "/apis/v1/namespaces//namespaces/guitar-eventing");
	cevent_destroy(ev);
}

Test(cevent, plural_guesses_match_knative) {
	static const char *const cases[][2] = {
		{ "Guitar", "guitars" }, { "Pod", "pods" }, { "Class", "classes" },
		{ "Policy", "policies" }, { "Gateway", "gatewaies" }, { "Endpoints", "endpointses" },
		{ "Namespace", "namespaces" }, { "ConfigMap", "configmaps" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		cr_assert_eq(cevent_plural_guess(cases[i][0], &b), 0);
		cr_assert_str_eq(b.data, cases[i][1]);
		buf_finish(&b);
	}
}

Test(cevent, subject_for_groups) {
	struct buf b;

	buf_init(&b, 0);
	cr_assert_eq(cevent_subject("kool.karmalabs.local/v1", "guitar-eventing", "Guitar", "d15", &b), 0);
	cr_assert_str_eq(b.data, "/apis/kool.karmalabs.local/v1/namespaces/guitar-eventing/guitars/d15");
	buf_reset(&b);
	/* Knative's hack for a group without a version. */
	cr_assert_eq(cevent_subject("serving.knative.dev", "ns", "Revision", "r", &b), 0);
	cr_assert_str_eq(b.data, "/apis/serving.knative.dev/versionUnknown/namespaces/ns/revisions/r");
	buf_finish(&b);
}

Test(cevent, percent_encoding) {
	struct buf b;

	buf_init(&b, 0);
	cr_assert_eq(cevent_percent_encode("plain-ASCII_~!#$&'()*+,/:;<=>?@[]^`{|}", &b), 0);
	cr_assert_str_eq(b.data, "plain-ASCII_~!#$&'()*+,/:;<=>?@[]^`{|}");
	buf_reset(&b);
	cr_assert_eq(cevent_percent_encode("a b\"c%d\xc3\xa4\x7f\x01", &b), 0);
	cr_assert_str_eq(b.data, "a%20b%22c%25d%C3%A4%7F%01");
	buf_finish(&b);
}

Test(cevent, ids_are_deterministic_per_change) {
	char a[40], b[40], c[40], d[40];

	cevent_make_id("u-1", "7", CEVENT_ADD, a);
	cevent_make_id("u-1", "7", CEVENT_ADD, b);
	cevent_make_id("u-1", "8", CEVENT_UPDATE, c);
	cevent_make_id("u-1", "7", CEVENT_DELETE, d);
	cr_assert_str_eq(a, b);
	cr_assert_str_neq(a, c);
	cr_assert_str_neq(a, d);
	cr_assert_eq(strlen(a), 36);
	cr_assert_eq(a[14], '5'); /* a version-5 UUID */
}

Test(cevent, list_items_get_kind_and_api_version) {
	static const char json[] = "{\"metadata\":{\"name\":\"cm\",\"namespace\":\"n\",\"uid\":\"u\"}}";
	struct cevent_params p = params;
	struct cevent *ev = NULL;
	struct kobj o;

	memset(&o, 0, sizeof(o));
	o.json = json;
	o.json_len = strlen(json);
	strcpy(o.name, "cm");
	strcpy(o.namespace, "n");
	strcpy(o.uid, "u");
	p.default_kind = "ConfigMap";
	p.default_api_version = "v1";
	cr_assert_eq(cevent_create(&p, &o, CEVENT_ADD, &ev), 0);
	cr_assert_str_eq(ev->data, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
				   "\"cm\",\"namespace\":\"n\",\"uid\":\"u\"}}");
	cr_assert_str_eq(ev->kind, "ConfigMap");
	cevent_destroy(ev);
}

Test(cevent, overrides_and_structured_mode) {
	struct config_extension ext[] = { { .name = "team", .value = "strings and frets" } };
	struct cevent_params p = params;
	struct kobj o = pod();
	struct cevent *ev = NULL;
	struct curl_slist *h = NULL;
	struct http_headers hh = { 0 };
	struct buf b;

	p.overrides = ext;
	p.n_overrides = 1;
	cr_assert_eq(cevent_create(&p, &o, CEVENT_UPDATE, &ev), 0);
	cr_assert_eq(cevent_http_header_lines(ev, &hh.lines), 0);
	cr_assert_eq(http_headers_link(&hh, &h), 0);
	cr_assert(has_header(h, "ce-team: strings%20and%20frets"));
	buf_init(&b, 0);
	cr_assert_eq(cevent_structured(ev, &b), 0);
	cr_assert_not_null(strstr(b.data, "\"team\":\"strings and frets\""));
	cr_assert_not_null(strstr(b.data, "\"type\":\"dev.knative.apiserver.resource.update\""));
	cr_assert_not_null(strstr(b.data, "\"data\":{\"kind\":\"Pod\""));
	buf_finish(&b);
	http_headers_finish(&hh);
	cevent_destroy(ev);
}

/* Issue 9: a kind or apiVersion holding a quote or a newline was spliced
 * into the data unescaped: {"type":"R","object":{"kind":"\no"}} made the
 * sink body {"apiVersion":"v1","kind":"Pod","x":"y",...}. */
Test(cevent, resource_data_kind_with_quote_is_escaped) {
	static const char json[] = "{\"metadata\":{\"name\":\"cm\",\"namespace\":\"n\",\"uid\":\"u\"}}";
	struct cevent_params p = params;
	struct cevent *ev = NULL;
	struct kobj o;

	memset(&o, 0, sizeof(o));
	o.json = json;
	o.json_len = strlen(json);
	strcpy(o.name, "cm");
	strcpy(o.namespace, "n");
	strcpy(o.uid, "u");
	strcpy(o.kind, "Pod\",\"x\":\"y\n");
	p.default_api_version = "v1";
	cr_assert_eq(cevent_create(&p, &o, CEVENT_ADD, &ev), 0);
	cr_assert_str_eq(ev->data, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\\\",\\\"x\\\":\\\"y\\n\","
				   "\"metadata\":{\"name\":\"cm\",\"namespace\":\"n\",\"uid\":\"u\"}}");
	cevent_destroy(ev);
}

Test(cevent, reference_data_kind_with_quote_is_escaped) {
	struct cevent_params p = params;
	struct kobj o = pod();
	struct cevent *ev = NULL;

	p.mode = CONFIG_MODE_REFERENCE;
	strcpy(o.kind, "\no\"");
	strcpy(o.api_version, "v1\",\"x\":\"y");
	cr_assert_eq(cevent_create(&p, &o, CEVENT_ADD, &ev), 0);
	cr_assert_str_eq(ev->data, "{\"kind\":\"\\no\\\"\",\"namespace\":\"test\",\"name\":\"unit\","
				   "\"apiVersion\":\"v1\\\",\\\"x\\\":\\\"y\"}");
	cevent_destroy(ev);
}

/* Issue 9: a pretty-printed list item made --sink - write an event over
 * several lines; its raw newlines (whitespace in JSON) become spaces. */
Test(cevent, pretty_printed_list_item_is_one_line) {
	static const char json[] = "{\n  \"kind\": \"Pod\",\r\n  \"apiVersion\": \"v1\",\n"
				   "  \"metadata\": {\"name\": \"unit\", \"note\": \"a\\nb\"}\n}\n";
	struct kobj o = pod();
	struct cevent *ev = NULL;
	struct buf b;

	o.json = json;
	o.json_len = strlen(json);
	cr_assert_eq(cevent_create(&params, &o, CEVENT_ADD, &ev), 0);
	cr_assert_eq(ev->data_len, strlen(json));
	cr_assert_str_eq(ev->data, "{   \"kind\": \"Pod\",    \"apiVersion\": \"v1\",   \"metadata\": "
				   "{\"name\": \"unit\", \"note\": \"a\\nb\"} } ");
	buf_init(&b, 0);
	cr_assert_eq(cevent_structured(ev, &b), 0);
	cr_assert_null(memchr(b.data, '\n', b.len));
	cr_assert_null(memchr(b.data, '\r', b.len));
	buf_finish(&b);
	cevent_destroy(ev);
}

/* The ids written by hand (no printf) are the same v5 UUIDs as before:
 * Python's uuid.uuid5(namespace, "u-1/7/add") gives this one. */
Test(cevent, make_id_value_is_stable) {
	char id[40];

	cevent_make_id("u-1", "7", CEVENT_ADD, id);
	cr_assert_str_eq(id, "b98dc3de-0bdf-55b2-a10d-bde51efe778d");
	cevent_make_id("test/unit", "9", CEVENT_DELETE, id);
	cr_assert_str_eq(id, "188ff9f5-251d-5bb5-bcbc-5052e3ee2656");
}

/* A name too long for the one-update buffer (a namespace/name key without
 * a uid) takes the piecewise path to the same v5 UUID: uuid.uuid5(namespace,
 * "guitar-eventing/ggg...(300)/12345/update"). */
Test(cevent, make_id_long_name_is_the_same_uuid5) {
	char key[16 + 300 + 1], id[40];

	memcpy(key, "guitar-eventing/", 16);
	memset(key + 16, 'g', 300);
	key[316] = '\0';
	cevent_make_id(key, "12345", CEVENT_UPDATE, id);
	cr_assert_str_eq(id, "f3ac947f-3ad6-5e3d-991b-0db110692548");
}

/* ce-time is formatted by hand from a per-second cache: still RFC 3339 UTC
 * with six fraction digits. */
Test(cevent, time_format_is_rfc3339_micro) {
	struct kobj o = pod();
	struct cevent *a = NULL, *b = NULL;

	cr_assert_eq(cevent_create(&params, &o, CEVENT_ADD, &a), 0);
	cr_assert_eq(cevent_create(&params, &o, CEVENT_ADD, &b), 0);
	cr_assert_eq(strlen(a->time), 27, "%s", a->time);
	for (size_t i = 0; i < 27; i++) {
		char c = a->time[i];
		switch (i) {
		case 4: case 7: cr_assert_eq(c, '-', "%s", a->time); break;
		case 10: cr_assert_eq(c, 'T', "%s", a->time); break;
		case 13: case 16: cr_assert_eq(c, ':', "%s", a->time); break;
		case 19: cr_assert_eq(c, '.', "%s", a->time); break;
		case 26: cr_assert_eq(c, 'Z', "%s", a->time); break;
		default: cr_assert(c >= '0' && c <= '9', "%s", a->time);
		}
	}
	cr_assert_leq(strcmp(a->time, b->time), 0);
	cevent_destroy(a);
	cevent_destroy(b);
}

/* The NUL-separated lines the sink points its header nodes at: the same
 * lines cevent_http_header_lines() gives, in the same order. */
Test(cevent, header_lines_match_the_slist) {
	struct config_extension ext[] = { { .name = "empty", .value = "" } };
	struct cevent_params p = params;
	struct kobj o = pod();
	struct cevent *ev = NULL;
	struct curl_slist *h = NULL, *l;
	struct http_headers hh = { 0 };
	struct buf b;
	size_t off = 0, n = 0;

	p.overrides = ext;
	p.n_overrides = 1;
	cr_assert_eq(cevent_create(&p, &o, CEVENT_ADD, &ev), 0);
	cr_assert_eq(cevent_http_header_lines(ev, &hh.lines), 0);
	cr_assert_eq(http_headers_link(&hh, &h), 0);
	buf_init(&b, 0);
	cr_assert_eq(cevent_http_header_lines(ev, &b), 0);
	for (l = h; l; l = l->next, n++) {
		cr_assert_lt(off, b.len);
		cr_assert_str_eq(b.data + off, l->data);
		off += strlen(b.data + off) + 1;
	}
	cr_assert_eq(off, b.len);
	cr_assert_eq(n, 12);
	cr_assert(has_header(h, "ce-empty;"));
	buf_finish(&b);
	http_headers_finish(&hh);
	cevent_destroy(ev);
}

/* The header values' encoding scans sixteen bytes at a time (SSE2): every byte
 * value at every offset of values up to 40 bytes long must be written as the
 * byte-by-byte reference, cevent_percent_encode(), writes it. */
Test(cevent, header_line_encodes_every_byte_at_every_offset) {
	char value[48], want[256];
	struct buf b, ref;

	buf_init(&b, 0);
	buf_init(&ref, 0);
	for (unsigned c = 1; c < 256; c++) {
		for (size_t len = 1; len <= 40; len++) {
			for (size_t at = 0; at < len; at++) {
				struct cevent ev = { .id = "1", .type = "t", .source = "s", .subject = "x",
					.time = "0", .kind = "K", .name = value, .namespace = "n",
					.api_version = "v1" };
				const char *line;

				for (size_t i = 0; i < len; i++)
					value[i] = (char)('a' + i % 26);
				value[at] = (char)c;
				value[len] = '\0';
				buf_reset(&ref);
				cr_assert_eq(cevent_percent_encode(value, &ref), 0);
				snprintf(want, sizeof(want), "ce-name: %s", ref.data);
				buf_reset(&b);
				cr_assert_eq(cevent_http_header_lines(&ev, &b), 0);
				line = NULL;
				for (size_t off = 0; off < b.len; off += strlen(b.data + off) + 1)
					if (strncmp(b.data + off, "ce-name: ", 9) == 0)
						line = b.data + off;
				cr_assert_not_null(line);
				cr_assert_str_eq(line, want, "byte 0x%02x at %zu of %zu", c, at, len);
			}
		}
	}
	buf_finish(&b);
	buf_finish(&ref);
}

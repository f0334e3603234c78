#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "adapter/cevent.h"
#include "adapter/cevent_json.h"
#include "adapter/config.h"

static const char object[] = "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"unit\","
			     "\"namespace\":\"test\",\"uid\":\"u-1\",\"resourceVersion\":\"7\"}}";

static struct cevent *make_event(const struct config_extension *ext, size_t n_ext) {
	struct cevent_params p = { .mode = CONFIG_MODE_RESOURCE, .source = "https://10.96.0.1:443",
		.overrides = ext, .n_overrides = n_ext };
	struct kobj o;
	struct cevent *ev = NULL;

	memset(&o, 0, sizeof(o));
	o.json = object;
	o.json_len = strlen(object);
	strcpy(o.kind, "Pod");
	strcpy(o.api_version, "v1");
	strcpy(o.name, "unit");
	strcpy(o.namespace, "test");
	strcpy(o.uid, "u-1");
	strcpy(o.resource_version, "7");
	cr_assert_eq(cevent_create(&p, &o, CEVENT_UPDATE, &ev), 0);
	return ev;
}

/* Parses text as JSON (the encoders' output must be a JSON document). */
static yajl_val parse(const struct buf *b) {
	char err[256] = "";
	char *text = strndup(b->data, b->len);
	yajl_val v = yajl_tree_parse(text, err, sizeof(err));

	cr_assert_not_null(v, "not JSON (%s): %s", err, text);
	free(text);
	return v;
}

static const char *str_at(yajl_val v, const char *name) {
	const char *path[] = { name, NULL };
	yajl_val s = yajl_tree_get(v, path, yajl_t_string);

	return s ? YAJL_GET_STRING(s) : NULL;
}

Test(cevent_json, structured_event_has_every_attribute_and_json_data) {
	struct cevent *ev = make_event(NULL, 0);
	struct buf b;
	yajl_val v, data;
	const char *path[] = { "data", "metadata", "name", NULL };

	buf_init(&b, 0);
	cr_assert_eq(cevent_json_event(ev, NULL, &b), 0);
	v = parse(&b);
	cr_assert(YAJL_IS_OBJECT(v));
	cr_assert_str_eq(str_at(v, "specversion"), "1.0");
	cr_assert_str_eq(str_at(v, "id"), ev->id);
	cr_assert_str_eq(str_at(v, "source"), "https://10.96.0.1:443");
	cr_assert_str_eq(str_at(v, "type"), "dev.knative.apiserver.resource.update");
	cr_assert_str_eq(str_at(v, "subject"), "/apis/v1/namespaces/test/pods/unit");
	cr_assert_str_eq(str_at(v, "time"), ev->time);
	cr_assert_str_eq(str_at(v, "datacontenttype"), "application/json");
	cr_assert_str_eq(str_at(v, "kind"), "Pod");
	cr_assert_str_eq(str_at(v, "name"), "unit");
	cr_assert_str_eq(str_at(v, "namespace"), "test");
	cr_assert_str_eq(str_at(v, "apiversion"), "v1");
	/* data is the object itself, not a string and not base64 */
	data = yajl_tree_get(v, path, yajl_t_string);
	cr_assert_not_null(data);
	cr_assert_str_eq(YAJL_GET_STRING(data), "unit");
	cr_assert_null(str_at(v, "data_base64"));
	cr_assert_null(str_at(v, "knativeerrordest"));
	cr_assert_null(memchr(b.data, '\n', b.len));
	yajl_tree_free(v);
	buf_finish(&b);
	cevent_destroy(ev);
}

/* An override holding quotes, a backslash and a line break is escaped by
 * the generator: still one JSON object with that exact value. */
Test(cevent_json, hostile_extension_value_is_escaped) {
	struct config_extension ext[] = { { .name = "team", .value = "a\"b\\c\n}{" } };
	struct cevent *ev = make_event(ext, 1);
	struct buf b;
	yajl_val v;

	buf_init(&b, 0);
	cr_assert_eq(cevent_json_event(ev, NULL, &b), 0);
	v = parse(&b);
	cr_assert_str_eq(str_at(v, "team"), "a\"b\\c\n}{");
	yajl_tree_free(v);
	buf_finish(&b);
	cevent_destroy(ev);
}

Test(cevent_json, dead_letter_extensions) {
	struct cevent *ev = make_event(NULL, 0);
	struct cevent_json_error err = { .dest = "http://sink.example/", .code = 400,
		.data = "bad\"request" };
	struct buf b;
	yajl_val v;

	buf_init(&b, 0);
	cr_assert_eq(cevent_json_event(ev, &err, &b), 0);
	v = parse(&b);
	cr_assert_str_eq(str_at(v, "knativeerrordest"), "http://sink.example/");
	cr_assert_str_eq(str_at(v, "knativeerrorcode"), "400");
	cr_assert_str_eq(str_at(v, "knativeerrordata"), "YmFkInJlcXVlc3Q="); /* base64 */
	yajl_tree_free(v);
	buf_reset(&b);
	err.data = NULL; /* an empty answer: no knativeerrordata */
	cr_assert_eq(cevent_json_event(ev, &err, &b), 0);
	v = parse(&b);
	cr_assert_null(str_at(v, "knativeerrordata"));
	cr_assert_str_eq(str_at(v, "knativeerrorcode"), "400");
	yajl_tree_free(v);
	buf_finish(&b);
	cevent_destroy(ev);
}

static struct buf gen_data(const char *content_type, const char *data, size_t len) {
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *text;
	size_t tlen;
	struct buf b;

	buf_init(&b, 0);
	yajl_gen_map_open(g);
	cr_assert_eq(cevent_json_gen_data(g, content_type, data, len), 0);
	yajl_gen_map_close(g);
	cr_assert_eq(yajl_gen_get_buf(g, &text, &tlen), yajl_gen_status_ok);
	buf_append(&b, text, tlen);
	yajl_gen_free(g);
	return b;
}

Test(cevent_json, data_is_json_for_json_types_else_base64) {
	struct buf b = gen_data("application/json; charset=utf-8", "[1,2]", 5);

	cr_assert_str_eq(b.data, "{\"data\":[1,2]}");
	buf_finish(&b);
	b = gen_data("application/vnd.example+json", "{\"a\":1}", 7);
	cr_assert_str_eq(b.data, "{\"data\":{\"a\":1}}");
	buf_finish(&b);
	b = gen_data("text/plain", "hi\0\xff", 4);
	cr_assert_str_eq(b.data, "{\"data_base64\":\"aGkA/w==\"}");
	buf_finish(&b);
	b = gen_data("application/json", "", 0); /* no data: no member */
	cr_assert_str_eq(b.data, "{}");
	buf_finish(&b);
}

Test(cevent_json, media_types) {
	cr_assert(cevent_json_media_type("application/json"));
	cr_assert(cevent_json_media_type("Application/JSON ; charset=utf-8"));
	cr_assert(cevent_json_media_type("text/json"));
	cr_assert(cevent_json_media_type("application/cloudevents+json"));
	cr_assert_not(cevent_json_media_type("application/jsonx"));
	cr_assert_not(cevent_json_media_type("text/plain"));
	cr_assert_not(cevent_json_media_type("+json"));
	cr_assert_not(cevent_json_media_type(""));
}

Test(cevent_json, batch_is_an_array_of_the_objects_in_order) {
	struct cevent *ev = make_event(NULL, 0);
	struct buf one, arr;
	const char *texts[3];
	size_t lens[3];
	yajl_val v;

	buf_init(&one, 0);
	buf_init(&arr, 0);
	cr_assert_eq(cevent_json_event(ev, NULL, &one), 0);
	texts[0] = texts[1] = texts[2] = one.data;
	lens[0] = lens[1] = lens[2] = one.len;
	cr_assert_eq(cevent_json_array(texts, lens, 3, &arr), 0);
	v = parse(&arr);
	cr_assert(YAJL_IS_ARRAY(v));
	cr_assert_eq(YAJL_GET_ARRAY(v)->len, 3);
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(str_at(YAJL_GET_ARRAY(v)->values[i], "id"), ev->id);
	yajl_tree_free(v);
	buf_reset(&arr);
	cr_assert_eq(cevent_json_array(texts, lens, 0, &arr), 0);
	cr_assert_str_eq(arr.data, "[]");
	buf_finish(&arr);
	buf_finish(&one);
	cevent_destroy(ev);
}

/* --sink - and structured mode share the encoder: the stdout line is the
 * structured object. */
Test(cevent_json, stdout_line_is_the_structured_object) {
	struct cevent *ev = make_event(NULL, 0);
	struct buf a, b;

	buf_init(&a, 0);
	buf_init(&b, 0);
	cr_assert_eq(cevent_structured(ev, &a), 0);
	cr_assert_eq(cevent_json_event(ev, NULL, &b), 0);
	cr_assert_eq(a.len, b.len);
	cr_assert_eq(memcmp(a.data, b.data, a.len), 0);
	buf_finish(&a);
	buf_finish(&b);
	cevent_destroy(ev);
}

Test(cevent_json, content_mode_and_duration_parsers) {
	enum config_content_mode m;
	uint64_t usec = 0;

	cr_assert_eq(config_parse_content_mode("binary", &m), 0);
	cr_assert_eq(m, CONFIG_CONTENT_BINARY);
	cr_assert_eq(config_parse_content_mode("structured", &m), 0);
	cr_assert_eq(m, CONFIG_CONTENT_STRUCTURED);
	cr_assert_eq(config_parse_content_mode("batched", &m), 0);
	cr_assert_eq(m, CONFIG_CONTENT_BATCHED);
	cr_assert_eq(config_parse_content_mode("Batched", &m), -EINVAL);
	cr_assert_eq(config_parse_duration("10ms", 60000000, &usec), 0);
	cr_assert_eq(usec, 10000);
	cr_assert_eq(config_parse_duration("2", 60000000, &usec), 0); /* seconds, as elsewhere */
	cr_assert_eq(usec, 2000000);
	cr_assert_eq(config_parse_duration("1s", 60000000, &usec), 0);
	cr_assert_eq(usec, 1000000);
	cr_assert_eq(config_parse_duration("250us", 60000000, &usec), 0);
	cr_assert_eq(usec, 250);
	cr_assert_eq(config_parse_duration("0", 60000000, &usec), 0);
	cr_assert_eq(usec, 0);
	const char *bad[] = { "", "ms", "-1", "+5", " 5", "5 ms", "5m", "1.5s", "61s",
		"99999999999999999999", "18446744073709551615s" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(config_parse_duration(bad[i], 60000000, &usec), -EINVAL, "%s", bad[i]);
}

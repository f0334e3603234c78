#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/discovery.h"

static const char core[] =
	"{\"kind\":\"APIResourceList\",\"groupVersion\":\"v1\",\"resources\":["
	"{\"name\":\"pods\",\"singularName\":\"pod\",\"namespaced\":true,\"kind\":\"Pod\","
	"\"verbs\":[\"create\",\"delete\",\"get\",\"list\",\"watch\"]},"
	"{\"name\":\"pods/log\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"Pod\",\"verbs\":[\"get\"]},"
	"{\"name\":\"namespaces\",\"singularName\":\"namespace\",\"namespaced\":false,\"kind\":\"Namespace\","
	"\"verbs\":[\"get\",\"list\",\"watch\"]},"
	"{\"name\":\"bindings\",\"namespaced\":true,\"kind\":\"Binding\",\"verbs\":[\"create\"]}]}";

Test(discovery, kind_to_plural_and_scope) {
	struct discovery_result r;

	cr_assert_eq(discovery_parse(core, strlen(core), "Pod", NULL, &r), 0);
	cr_assert_str_eq(r.resource, "pods");
	cr_assert(r.namespaced && r.can_list && r.can_watch);
	cr_assert_eq(discovery_parse(core, strlen(core), "Namespace", NULL, &r), 0);
	cr_assert_str_eq(r.resource, "namespaces");
	cr_assert_not(r.namespaced);
}

Test(discovery, resource_name_lookup_for_gvr) {
	struct discovery_result r;

	cr_assert_eq(discovery_parse(core, strlen(core), NULL, "namespaces", &r), 0);
	cr_assert_str_eq(r.kind, "Namespace");
}

Test(discovery, irregular_plural_is_read_not_guessed) {
	static const char crd[] = "{\"kind\":\"APIResourceList\",\"resources\":[{\"name\":\"guitarz\","
				  "\"singularName\":\"guitar\",\"namespaced\":true,\"kind\":\"Guitar\","
				  "\"verbs\":[\"list\",\"watch\"]}]}";
	struct discovery_result r;

	cr_assert_eq(discovery_parse(crd, strlen(crd), "Guitar", NULL, &r), 0);
	cr_assert_str_eq(r.resource, "guitarz");
}

Test(discovery, not_served_and_not_watchable) {
	struct discovery_result r;

	cr_assert_eq(discovery_parse(core, strlen(core), "Guitar", NULL, &r), -ENOENT);
	cr_assert_eq(discovery_parse(core, strlen(core), "Binding", NULL, &r), 0);
	cr_assert_not(r.can_watch);
}

Test(discovery, garbage_is_rejected) {
	struct discovery_result r;

	cr_assert_eq(discovery_parse("nope", 4, "Pod", NULL, &r), -EBADMSG);
	cr_assert_eq(discovery_parse("{\"kind\":\"Status\"}", 17, "Pod", NULL, &r), -EBADMSG);
}

Test(discovery, paths) {
	char p[64];

	cr_assert_eq(discovery_path("", "v1", p, sizeof(p)), 0);
	cr_assert_str_eq(p, "/api/v1");
	cr_assert_eq(discovery_path("kool.karmalabs.local", "v1", p, sizeof(p)), 0);
	cr_assert_str_eq(p, "/apis/kool.karmalabs.local/v1");
	cr_assert_eq(discovery_path("kool.karmalabs.local", "v1", p, 8), -ENOBUFS);
}

/* The finding: a discovery answer nested ~400k levels deep (an 800 KB body;
 * discovery bodies may be 8 MiB) overflowed the stack in yajl_tree_free(). */
Test(discovery, deeply_nested_is_refused) {
	size_t levels = 400000;
	char *body = malloc(2 * levels + 64), *p = body;
	struct discovery_result r;

	cr_assert_not_null(body);
	p += sprintf(p, "{\"kind\":\"APIResourceList\",\"resources\":");
	memset(p, '[', levels);
	memset(p + levels, ']', levels);
	strcpy(p + 2 * levels, "}");
	cr_assert_eq(discovery_parse(body, strlen(body), "Pod", NULL, &r), -EBADMSG);
	free(body);
}

Test(discovery, nul_in_a_name_is_refused) {
	static const char body[] = "{\"kind\":\"APIResourceList\",\"resources\":[{\"name\":"
				   "\"pods\\u0000x\",\"kind\":\"Pod\",\"verbs\":[\"list\",\"watch\"]}]}";
	struct discovery_result r;

	cr_assert_eq(discovery_parse(body, strlen(body), "Pod", NULL, &r), -EBADMSG);
}

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "adapter/discovery.h"
#include "adapter/util/json.h"

int discovery_path(const char *group, const char *version, char *out, size_t outlen) {
	int n = *group ? snprintf(out, outlen, "/apis/%s/%s", group, version) :
			 snprintf(out, outlen, "/api/%s", version);

	return n < 0 || (size_t)n >= outlen ? -ENOBUFS : 0;
}

int discovery_parse(const char *json, size_t len, const char *kind, const char *resource,
	struct discovery_result *ret) {
	yajl_val root, list;
	const char *doc_kind;
	int r = -ENOENT;

	/* Bounded: the body comes from the API server (or whoever answers in its
	 * place) and a deeply nested one would overflow the stack. */
	root = json_parse_bounded(json, len, JSON_MAX_DEPTH, NULL, 0);
	if (!root)
		return -EBADMSG;
	doc_kind = json_get_str(root, "kind");
	list = json_get(root, "resources");
	if (!YAJL_IS_ARRAY(list) || (doc_kind && strcmp(doc_kind, "APIResourceList") != 0)) {
		r = -EBADMSG;
		goto out;
	}
	for (size_t i = 0; i < list->u.array.len; i++) {
		yajl_val item = list->u.array.values[i], ns, verbs;
		const char *name = json_get_str(item, "name"), *k = json_get_str(item, "kind");

		if (!name || !k || strchr(name, '/'))
			continue; /* subresources such as pods/log */
		if (kind ? strcmp(k, kind) != 0 : !resource || strcmp(name, resource) != 0)
			continue;
		memset(ret, 0, sizeof(*ret));
		snprintf(ret->resource, sizeof(ret->resource), "%s", name);
		snprintf(ret->kind, sizeof(ret->kind), "%s", k);
		ns = json_get(item, "namespaced");
		ret->namespaced = YAJL_IS_TRUE(ns);
		verbs = json_get(item, "verbs");
		for (size_t j = 0; YAJL_IS_ARRAY(verbs) && j < verbs->u.array.len; j++) {
			yajl_val verb = verbs->u.array.values[j];
			if (!YAJL_IS_STRING(verb))
				continue;
			if (strcmp(verb->u.string, "list") == 0)
				ret->can_list = true;
			else if (strcmp(verb->u.string, "watch") == 0)
				ret->can_watch = true;
		}
		r = 0;
		break;
	}
out:
	yajl_tree_free(root);
	return r;
}

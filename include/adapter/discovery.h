#ifndef ADAPTER_DISCOVERY_H
#define ADAPTER_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

/* Resolves a kind (or a plural resource name) to what the API serves, from a
 * discovery document (APIResourceList at /api/v1 or /apis/GROUP/VERSION).
 * Plurals are never guessed. No I/O, no logging. */

struct discovery_result {
	char resource[256]; /* the plural: "guitars" */
	char kind[128];
	bool namespaced;
	bool can_list;
	bool can_watch;
};

/* Looks for kind (exact match), or for resource when kind is NULL. Returns 0,
 * -ENOENT when the list does not serve it, or -EBADMSG for a document that is
 * not an APIResourceList. */
int discovery_parse(const char *json, size_t len, const char *kind, const char *resource,
	struct discovery_result *ret);

/* The path of the group version's discovery document: "/api/v1" for the core
 * group, "/apis/GROUP/VERSION" otherwise. Returns 0 or -ENOBUFS. */
int discovery_path(const char *group, const char *version, char *out, size_t outlen);

#endif

#ifndef ADAPTER_SINKREF_H
#define ADAPTER_SINKREF_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/config.h"
#include "adapter/sink.h"
#include "adapter/watch.h"

/* A sink reference (spec.sink.ref, --sink-ref), followed live: discovery of
 * the referenced kind, then a list and watch of the one object (by
 * fieldSelector=metadata.name), and each new address handed to the sink
 * (sink_set_url). While the object is missing, has no address, or cannot be
 * read, the sink holds events in its queue; the log says why once per cause.
 *
 * The address is Knative's (knative.dev/pkg resolver): a core v1 Service is
 * http://NAME.NAMESPACE.svc.cluster.local; any other kind is an Addressable,
 * read from status.addresses[0].url, else status.address.url. A relative
 * reference (the sink given beside the reference) is joined to it. */

struct sinkref;

/* Borrows ctx (copied: the reference's watch is in no checkpoint), ref, sink
 * and relative, which must outlive it. ns: the namespace when ref names
 * none (the source's). relative: NULL or a relative URL reference. */
int sinkref_create(const struct watch_context *ctx, const struct config_sink_ref *ref,
	const char *ns, const char *relative, struct sink *sink, struct sinkref **ret_sinkref);
void sinkref_destroy(struct sinkref *sr);
void sinkref_start(struct sinkref *sr);
/* True once an address is in use; otherwise reason says why not. */
bool sinkref_ready(const struct sinkref *sr, char *reason, size_t len);

/* The address an object gives (json: the object), joined with relative
 * (NULL: none). Returns 0 with *ret_url (malloc'd), -ENOMEM, or -ENOENT with
 * problem saying why there is none. No I/O, no logging; exposed for tests. */
int sinkref_address(const char *json, size_t len, const struct config_sink_ref *ref,
	const char *ns, const char *relative, char **ret_url, char *problem, size_t problem_len);

#endif

#ifndef ADAPTER_STRIP_H
#define ADAPTER_STRIP_H

#include <stddef.h>

#include "adapter/util/buf.h"

/* --strip-managed-fields: a Kubernetes object's bytes without
 * metadata.managedFields (server-side apply's bookkeeping, often larger than
 * the rest of the object). The member is cut out of the bytes as they came,
 * with one adjoining comma; nothing else is re-serialised. No I/O, no
 * logging. */

/* Appends json without metadata.managedFields to out. Returns 1 when it was
 * removed, 0 when the object has none (out untouched), -EBADMSG for invalid
 * JSON, -ENOMEM. */
int strip_managed_fields(const char *json, size_t len, struct buf *out);

#endif

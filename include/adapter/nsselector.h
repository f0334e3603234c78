#ifndef ADAPTER_NSSELECTOR_H
#define ADAPTER_NSSELECTOR_H

#include "adapter/config.h"
#include "adapter/kube.h"

/* spec.namespaceSelector, resolved once at start: lists the namespaces whose
 * labels match and adds them to cfg's namespaces (a later issue makes it
 * live). Blocking, before the loop runs. Returns 0, or -EIO / -ENOMEM after
 * logging why. Borrows cfg and kube. */
int nsselector_resolve(struct config *cfg, struct kube *kube);

#endif

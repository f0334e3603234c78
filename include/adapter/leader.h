#ifndef ADAPTER_LEADER_H
#define ADAPTER_LEADER_H

#include <stdbool.h>
#include <stdint.h>

#include "adapter/http.h"
#include "adapter/kube.h"
#include "adapter/loop.h"

/* Leader election with a coordination.k8s.io/v1 Lease, by client-go's rules
 * (tools/leaderelection):
 * - a candidate takes the Lease when it does not exist (create), when its
 *   holder is empty (released), or when the candidate has seen its spec
 *   unchanged for leaseDurationSeconds of its own monotonic clock (the
 *   holder's clock and renewTime are never compared with ours);
 * - updates carry the resourceVersion read: a 409 means another replica won;
 * - the leader renews every retry period; when no renewal succeeds within
 *   the renew deadline of the first failing attempt, leadership is lost
 *   (stopped is called; the leader must stop acting at once);
 * - candidates try every retry period, jittered by up to 1.2 times it. */

struct leader;

struct leader_params {
	const char *ns;
	const char *name;
	const char *identity;
	uint64_t lease_usec; /* 15 s: whole seconds */
	uint64_t renew_usec; /* 10 s */
	uint64_t retry_usec; /* 2 s */
};

typedef void (*leader_fn)(struct leader *l, void *userdata);

struct leader_ops {
	leader_fn started; /* this replica now holds the Lease */
	leader_fn stopped; /* it lost the Lease (not called after leader_release()) */
};

/* Borrows kube, http, loop and ops, which must outlive the leader; copies
 * the params' strings. Starts trying at once. */
int leader_create(struct kube *kube, struct http *http, struct loop *loop,
	const struct leader_params *p, const struct leader_ops *ops, void *userdata,
	struct leader **ret_leader);
/* Cancels what is in flight; does not release the Lease. NULL is fine. */
void leader_destroy(struct leader *l);
bool leader_leading(const struct leader *l);
/* The holder last seen in the Lease ("" when none), for readiness. */
const char *leader_holder(const struct leader *l);
/* Stops renewing and, when this replica leads, gives the Lease up (holder
 * "", leaseDurationSeconds 1, as client-go's ReleaseOnCancel) so a standby
 * takes it at its next try. done runs once, when released or when that
 * failed (within timeout_usec). */
void leader_release(struct leader *l, uint64_t timeout_usec, leader_fn done, void *userdata);

/* For tests: the Lease body this replica writes, and the parse of one read. */
struct leader_record {
	char holder[256];
	long long duration_sec;
	long long transitions;
	char acquire_time[64];
	char renew_time[64];
	char rv[64];
};
/* Parses a Lease (JSON). Returns 0 or -EBADMSG. */
int leader_record_parse(const char *json, size_t len, struct leader_record *ret);
/* A Lease document for ns/name with rec's spec (and its rv, if any).
 * Returns a malloc'd string or NULL. */
char *leader_record_json(const char *ns, const char *name, const struct leader_record *rec);

#endif

#ifndef ADAPTER_PROBES_H
#define ADAPTER_PROBES_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/loop.h"
#include "adapter/util/buf.h"

/* The HTTP endpoints a kubelet and Prometheus read: /health and /readiness on
 * the probes address (Knative's port 8080), /metrics on the metrics address
 * (9092). libmicrohttpd serves them from our loop (its epoll fd is one of the
 * loop's fds), so a loop that stops making progress stops answering and the
 * liveness probe fails. Paths are taken with or without the leading slash. */

struct probes;

struct probes_ops {
	/* True when ready; otherwise writes why (one line) into reason. */
	bool (*ready)(char *reason, size_t len, void *userdata);
	/* Appends the Prometheus text exposition. */
	int (*metrics)(struct buf *out, void *userdata);
};

/* Parses "[HOST]:PORT" (":8080", "127.0.0.1:0", "[::1]:9092"). An empty
 * HOST means every address (IPv6 and IPv4 where the kernel has both).
 * Returns 0 or -EINVAL. */
int probes_parse_addr(const char *addr, char *ret_host, size_t host_len, unsigned *ret_port);

/* Listens on probes_addr and metrics_addr (either may be NULL: not served; the
 * same address serves both). Borrows loop, ops and userdata. On failure
 * returns a negative errno and writes a one-line reason naming the address. */
int probes_create(struct loop *loop, const char *probes_addr, const char *metrics_addr,
	const struct probes_ops *ops, void *userdata, struct probes **ret_probes, char *errbuf,
	size_t errlen);
void probes_destroy(struct probes *p);
/* The port actually bound (useful with port 0), or 0 when not served. */
unsigned probes_port(const struct probes *p, bool metrics);

#endif

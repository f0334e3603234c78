#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapter/log.h"
#include "adapter/probes.h"

#define LISTEN_BACKLOG 64
#define CONNECTION_LIMIT 32
#define CONNECTION_TIMEOUT_SEC 10
#define METRICS_MAX_BYTES (4u * 1024u * 1024u)

struct listener {
	struct probes *p;
	struct MHD_Daemon *daemon;
	struct loop_io io;
	struct loop_timer timer;
	bool io_added;
	bool serves_probes;
	bool serves_metrics;
	unsigned port;
};

struct probes {
	struct loop *loop;
	const struct probes_ops *ops;
	void *userdata;
	struct listener listeners[2];
	size_t n_listeners;
};

int probes_parse_addr(const char *addr, char *ret_host, size_t host_len, unsigned *ret_port) {
	const char *colon, *host = addr, *port;
	size_t hlen;
	char *end;
	unsigned long v;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		host = addr + 1;
		hlen = (size_t)(close - host);
		port = close + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return -EINVAL; /* no port, or an IPv6 address without brackets */
		hlen = (size_t)(colon - addr);
		port = colon + 1;
	}
	if (hlen >= host_len || !*port || strspn(port, "0123456789") != strlen(port))
		return -EINVAL;
	errno = 0;
	v = strtoul(port, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	memcpy(ret_host, host, hlen);
	ret_host[hlen] = '\0';
	*ret_port = (unsigned)v;
	return 0;
}

/* A listening socket of our own, so the error names the address and the
 * port bound for port 0 can be read back. */
static int open_listener(const char *host, unsigned port, int *ret_fd, unsigned *ret_port) {
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char service[8];
	int fd = -1, one = 1, r;

	snprintf(service, sizeof(service), "%u", port);
	if (!*host) {
		/* Every address: IPv6 with IPv4 mapped, else IPv4 alone (a pod
		 * may have IPv6 disabled). */
		struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
			.sin6_addr = IN6ADDR_ANY_INIT };
		struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
			.sin_addr.s_addr = htonl(INADDR_ANY) };
		int zero = 0;

		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd >= 0) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
			if (bind(fd, (struct sockaddr *)&a6, sizeof(a6)) < 0) {
				r = -errno;
				close(fd);
				fd = -1;
				if (r == -EADDRINUSE || r == -EACCES)
					return r;
			}
		}
		if (fd < 0) {
			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (fd < 0)
				return -errno;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) < 0) {
				r = -errno;
				goto fail;
			}
		}
	} else {
		r = getaddrinfo(host, service, &hints, &res);
		if (r != 0)
			return -EADDRNOTAVAIL;
		fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			r = -errno;
			freeaddrinfo(res);
			return r;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		r = bind(fd, res->ai_addr, res->ai_addrlen) < 0 ? -errno : 0;
		freeaddrinfo(res);
		if (r < 0)
			goto fail;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		goto fail;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		r = -errno;
		goto fail;
	}
	*ret_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
					       ntohs(((struct sockaddr_in *)&ss)->sin_port);
	*ret_fd = fd;
	return 0;
fail:
	close(fd);
	return r;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
	const char *body, size_t len) {
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static bool path_is(const char *url, const char *name) {
	if (*url == '/')
		url++;
	return strcmp(url, name) == 0;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
	const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
	void **con_cls) {
	struct listener *l = cls;
	struct probes *p = l->p;
	static const char text[] = "text/plain; charset=utf-8";

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (*upload_data_size) {
		*upload_data_size = 0; /* a body is not for us: read and ignore it */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, "GET or HEAD only\n", 17);
	if (l->serves_probes && (path_is(url, "health") || path_is(url, "healthz")))
		return respond(conn, MHD_HTTP_OK, text, "ok\n", 3);
	if (l->serves_probes && (path_is(url, "readiness") || path_is(url, "readyz"))) {
		char reason[512] = "";
		char body[600];
		bool ready = p->ops->ready(reason, sizeof(reason), p->userdata);
		int n = snprintf(body, sizeof(body), "%s\n", ready && !reason[0] ? "ready" : reason);
		return respond(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, text, body,
			n < (int)sizeof(body) ? (size_t)n : sizeof(body) - 1);
	}
	if (l->serves_metrics && path_is(url, "metrics")) {
		struct buf b;
		enum MHD_Result ret;

		buf_init(&b, METRICS_MAX_BYTES);
		if (p->ops->metrics(&b, p->userdata) < 0) {
			buf_finish(&b);
			return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text,
				"cannot render the metrics\n", 26);
		}
		ret = respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.data,
			b.len);
		buf_finish(&b);
		return ret;
	}
	return respond(conn, MHD_HTTP_NOT_FOUND, text, "not found\n", 10);
}

static void rearm(struct listener *l) {
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(l->daemon, &ms) == MHD_YES)
		loop_timer_arm_in(l->p->loop, &l->timer, (uint64_t)ms * 1000u);
	else
		loop_timer_disarm(l->p->loop, &l->timer);
}

static void handle_io(struct loop_io *io, uint32_t events, void *userdata) {
	struct listener *l = userdata;

	(void)io;
	(void)events;
	MHD_run(l->daemon);
	rearm(l);
}

static void handle_timer(struct loop_timer *t, void *userdata) {
	struct listener *l = userdata;

	(void)t;
	MHD_run(l->daemon);
	rearm(l);
}

static void handle_mhd_log(void *cls, const char *fmt, va_list ap) {
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("probes", line);
}

static int start_listener(struct probes *p, struct listener *l, const char *addr, char *errbuf,
	size_t errlen) {
	const union MHD_DaemonInfo *info;
	char host[256];
	unsigned port;
	int fd = -1, r;

	l->p = p;
	loop_timer_init(&l->timer, handle_timer, l);
	if (probes_parse_addr(addr, host, sizeof(host), &port) < 0) {
		snprintf(errbuf, errlen, "%s: not HOST:PORT (e.g. :8080 or 127.0.0.1:8080)", addr);
		return -EINVAL;
	}
	r = open_listener(host, port, &fd, &l->port);
	if (r < 0) {
		snprintf(errbuf, errlen, "%s: cannot listen: %s", addr, strerror(-r));
		return r;
	}
	l->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		handle_request, l, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)CONNECTION_TIMEOUT_SEC, MHD_OPTION_EXTERNAL_LOGGER, handle_mhd_log, NULL,
		MHD_OPTION_END);
	if (!l->daemon) {
		close(fd);
		snprintf(errbuf, errlen, "%s: cannot start the HTTP server", addr);
		return -EIO;
	}
	info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		snprintf(errbuf, errlen, "%s: the HTTP server has no epoll fd", addr);
		return -EIO;
	}
	r = loop_io_add(p->loop, &l->io, info->epoll_fd, EPOLLIN, handle_io, l);
	if (r < 0) {
		snprintf(errbuf, errlen, "%s: %s", addr, strerror(-r));
		return r;
	}
	l->io_added = true;
	return 0;
}

int probes_create(struct loop *loop, const char *probes_addr, const char *metrics_addr,
	const struct probes_ops *ops, void *userdata, struct probes **ret_probes, char *errbuf,
	size_t errlen) {
	struct probes *p = calloc(1, sizeof(*p));
	int r = 0;

	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->ops = ops;
	p->userdata = userdata;
	if (probes_addr && metrics_addr && strcmp(probes_addr, metrics_addr) == 0) {
		p->listeners[0].serves_probes = p->listeners[0].serves_metrics = true;
		p->n_listeners = 1;
		r = start_listener(p, &p->listeners[0], probes_addr, errbuf, errlen);
	} else {
		if (probes_addr) {
			struct listener *l = &p->listeners[p->n_listeners++];
			l->serves_probes = true;
			r = start_listener(p, l, probes_addr, errbuf, errlen);
		}
		if (r == 0 && metrics_addr) {
			struct listener *l = &p->listeners[p->n_listeners++];
			l->serves_metrics = true;
			r = start_listener(p, l, metrics_addr, errbuf, errlen);
		}
	}
	if (r < 0) {
		probes_destroy(p);
		return r;
	}
	*ret_probes = p;
	return 0;
}

void probes_destroy(struct probes *p) {
	if (!p)
		return;
	for (size_t i = 0; i < p->n_listeners; i++) {
		struct listener *l = &p->listeners[i];
		if (l->io_added)
			loop_io_remove(p->loop, &l->io);
		loop_timer_disarm(p->loop, &l->timer);
		if (l->daemon)
			MHD_stop_daemon(l->daemon);
	}
	free(p);
}

unsigned probes_port(const struct probes *p, bool metrics) {
	if (!p)
		return 0;
	for (size_t i = 0; i < p->n_listeners; i++)
		if (metrics ? p->listeners[i].serves_metrics : p->listeners[i].serves_probes)
			return p->listeners[i].port;
	return 0;
}

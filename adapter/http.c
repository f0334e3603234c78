#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adapter/http.h"
#include "adapter/log.h"

struct http {
	struct loop *loop;
	CURLM *multi;
	struct loop_timer timer;
	int active;
	/* Socket watchers by fd. A keep-alive connection goes back to libcurl's
	 * pool after each request (CURL_POLL_REMOVE) and out again for the next
	 * (CURL_POLL_IN): its watcher stays registered in between, parked, so a
	 * request costs no epoll_ctl at all when it wants the same events. That
	 * needs to know the fd still names the same socket: libcurl opens and
	 * closes its connections' sockets through handle_open and handle_close
	 * here, and a connected socket (one that ever wanted CURL_POLL_IN, which
	 * a socket still connecting never does) is only ever closed through
	 * handle_close. Any other fd libcurl watches (its resolver's socketpair,
	 * a connection attempt it abandons, closed without handle_close) is
	 * checked with an EPOLL_CTL_MOD when it comes back: after a close the
	 * kernel dropped it from the epoll set, the MOD fails (ENOENT), and it is
	 * added. An event on a parked socket (the peer closed it) unregisters it
	 * then. */
	struct sock **socks;
	size_t nsocks;
};

struct sock {
	struct loop_io io;
	struct http *h;
	curl_socket_t fd;
	bool registered; /* in the epoll set, with io.events */
	bool parked;	 /* libcurl does not watch it now */
	bool opened;	 /* by handle_open, not closed by handle_close since */
	bool connected;	 /* opened, and has wanted CURL_POLL_IN */
};

int http_map_error(CURLcode code) {
	switch (code) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
		return -EPROTO;
	case CURLE_WRITE_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

static void check_done(struct http *h) {
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		struct http_xfer *x = NULL;
		long status = 0;
		CURLcode res;

		if (m->msg != CURLMSG_DONE)
			continue;
		res = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(h->multi, m->easy_handle);
		h->active--;
		if (!x)
			continue;
		x->active = false;
		if (res != CURLE_OK && !x->errbuf[0])
			snprintf(x->errbuf, sizeof(x->errbuf), "%s", curl_easy_strerror(res));
		x->done(x, http_map_error(res), status, x->errbuf, x->userdata);
	}
}

static void handle_socket_io(struct loop_io *io, uint32_t events, void *userdata) {
	struct sock *s = userdata;
	struct http *h = s->h;
	int flags = 0, running;

	(void)io;
	if (s->parked) {
		/* An idle pooled connection the peer closed or wrote to:
		 * libcurl finds that out itself before reusing it. */
		loop_io_remove(h->loop, &s->io);
		s->registered = false;
		return;
	}
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, s->fd, flags, &running);
	check_done(h);
}

/* The watcher kept for fd, created when there is none. */
static struct sock *sock_for(struct http *h, curl_socket_t fd) {
	struct sock *s;

	if ((size_t)fd >= h->nsocks) {
		size_t n = h->nsocks ? h->nsocks : 64;
		struct sock **socks;
		while (n <= (size_t)fd)
			n *= 2;
		socks = reallocarray(h->socks, n, sizeof(*socks));
		if (!socks)
			return NULL;
		memset(socks + h->nsocks, 0, (n - h->nsocks) * sizeof(*socks));
		h->socks = socks;
		h->nsocks = n;
	}
	s = h->socks[fd];
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		s->h = h;
		s->fd = fd;
		h->socks[fd] = s;
	}
	return s;
}

static int handle_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
	struct http *h = userp;
	struct sock *s = socketp;
	uint32_t ev = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		/* Parked, still registered: the next request on this connection
		 * usually wants the same events. */
		if (s) {
			s->parked = true;
			curl_multi_assign(h->multi, fd, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	if (!s) {
		if (fd < 0 || !(s = sock_for(h, fd)))
			return -1;
		curl_multi_assign(h->multi, fd, s);
	}
	if (s->parked) {
		s->parked = false;
		/* Not known to be the same socket: MOD tells. */
		if (s->registered && !s->connected && loop_io_modify(h->loop, &s->io, ev) < 0) {
			s->registered = false;
			s->opened = false;
		}
	}
	if ((what & CURL_POLL_IN) && s->opened)
		s->connected = true;
	if (s->registered && s->io.events == ev)
		return 0;
	if (s->registered && loop_io_modify(h->loop, &s->io, ev) == 0)
		return 0;
	if (loop_io_add(h->loop, &s->io, fd, ev, handle_socket_io, s) < 0) {
		s->registered = false;
		return -1;
	}
	s->registered = true;
	return 0;
}

/* libcurl's socket(2) for its connections (CURLOPT_OPENSOCKETFUNCTION):
 * a socket of this number is new, so whatever was known of the number is
 * stale (the kernel reuses a number only once it is closed). Close-on-exec,
 * so a child (a kubeconfig exec plugin) holds none of our connections. */
static curl_socket_t handle_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr) {
	struct http *h = clientp;
	curl_socket_t fd;
	struct sock *s;

	(void)purpose;
	fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
	if (fd < 0)
		return CURL_SOCKET_BAD;
	s = sock_for(h, fd);
	if (!s) {
		close(fd);
		return CURL_SOCKET_BAD;
	}
	s->registered = false;
	s->parked = false;
	s->connected = false;
	s->opened = true;
	return fd;
}

/* libcurl's close(2) for the sockets handle_open made
 * (CURLOPT_CLOSESOCKETFUNCTION). */
static int handle_close(void *clientp, curl_socket_t fd) {
	struct http *h = clientp;

	if (fd >= 0 && (size_t)fd < h->nsocks && h->socks[fd]) {
		struct sock *s = h->socks[fd];

		if (s->registered)
			loop_io_remove(h->loop, &s->io);
		s->registered = false;
		s->parked = false;
		s->opened = false;
		s->connected = false;
	}
	return close(fd);
}

static void handle_timer(struct loop_timer *t, void *userdata) {
	struct http *h = userdata;
	int running;

	(void)t;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int handle_timer_request(CURLM *multi, long timeout_ms, void *userp) {
	struct http *h = userp;

	(void)multi;
	if (timeout_ms < 0) {
		loop_timer_disarm(h->loop, &h->timer);
		return 0;
	}
	/* Never call curl from here: the loop runs the action when due. */
	return loop_timer_arm_in(h->loop, &h->timer, (uint64_t)timeout_ms * 1000u) < 0 ? -1 : 0;
}

int http_create(struct loop *loop, struct http **ret_http) {
	struct http *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		return -ENOMEM;
	}
	loop_timer_init(&h->timer, handle_timer, h);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, handle_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, handle_timer_request);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	/* Keep enough idle connections for every concurrent sink POST. */
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 256L);
	*ret_http = h;
	return 0;
}

void http_destroy(struct http *h) {
	if (!h)
		return;
	loop_timer_disarm(h->loop, &h->timer);
	curl_multi_cleanup(h->multi);
	for (size_t i = 0; i < h->nsocks; i++) {
		if (h->socks[i] && h->socks[i]->registered)
			loop_io_remove(h->loop, &h->socks[i]->io);
		free(h->socks[i]);
	}
	free(h->socks);
	free(h);
}

int http_xfer_init(struct http_xfer *x, http_done_fn done, void *userdata) {
	if (x->easy) {
		curl_easy_reset(x->easy);
		free(x->url);
		x->url = NULL;
		curl_url_cleanup(x->uh);
		x->uh = NULL;
	} else {
		x->easy = curl_easy_init();
		if (!x->easy)
			return -ENOMEM;
	}
	x->done = done;
	x->userdata = userdata;
	x->active = false;
	x->sockets_of = NULL;
	x->errbuf[0] = '\0';
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	return 0;
}

void http_cancel(struct http *h, struct http_xfer *x) {
	if (!x || !x->active)
		return;
	curl_multi_remove_handle(h->multi, x->easy);
	x->active = false;
	h->active--;
}

void http_xfer_finish(struct http *h, struct http_xfer *x) {
	if (!x)
		return;
	if (h)
		http_cancel(h, x);
	if (x->easy)
		curl_easy_cleanup(x->easy);
	x->easy = NULL;
	free(x->url);
	x->url = NULL;
	curl_url_cleanup(x->uh);
	x->uh = NULL;
}

/* A variable as libcurl reads it: an empty value counts as unset. */
static const char *proxy_var(const char *name) {
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The proxy libcurl would take from the environment for url's scheme, and
 * its no_proxy list, set on the handle once per URL: left to itself,
 * libcurl reads five variables on every transfer, and a pod's environment
 * holds several per Service of its namespace. libcurl's rules: <scheme>_proxy,
 * then its upper-case form (never HTTP_PROXY), then all_proxy and ALL_PROXY;
 * no_proxy, then NO_PROXY. An empty proxy means none. A URL without a scheme
 * is left to libcurl. */
static CURLcode set_proxy_from_env(CURL *easy, const char *url) {
	char name[32];
	const char *sep = strstr(url, "://"), *proxy, *no_proxy;
	size_t n = sep ? (size_t)(sep - url) : 0;
	CURLcode rc;

	if (!n || n > sizeof(name) - sizeof("_proxy")) {
		rc = curl_easy_setopt(easy, CURLOPT_PROXY, NULL);
		return rc ? rc : curl_easy_setopt(easy, CURLOPT_NOPROXY, NULL);
	}
	for (size_t i = 0; i < n; i++)
		name[i] = (char)tolower((unsigned char)url[i]);
	memcpy(name + n, "_proxy", sizeof("_proxy"));
	proxy = proxy_var(name);
	if (!proxy && strcmp(name, "http_proxy") != 0) {
		for (size_t i = 0; name[i]; i++)
			name[i] = (char)toupper((unsigned char)name[i]);
		proxy = proxy_var(name);
	}
	if (!proxy)
		proxy = proxy_var("all_proxy");
	if (!proxy)
		proxy = proxy_var("ALL_PROXY");
	no_proxy = proxy_var("no_proxy");
	if (!no_proxy)
		no_proxy = proxy_var("NO_PROXY");
	rc = curl_easy_setopt(easy, CURLOPT_PROXY, proxy ? proxy : "");
	return rc ? rc : curl_easy_setopt(easy, CURLOPT_NOPROXY, no_proxy ? no_proxy : "");
}

/* The URL is also parsed once here and given to libcurl as CURLOPT_CURLU,
 * which it copies per transfer instead of parsing the string and printing
 * it back each time. One it cannot parse is left to CURLOPT_URL, so the
 * transfer fails with libcurl's own error. */
int http_xfer_set_url(struct http_xfer *x, const char *url) {
	char *copy;
	CURLU *uh;

	if (x->url && strcmp(x->url, url) == 0)
		return 0;
	copy = strdup(url);
	uh = curl_url();
	if (!copy || !uh) {
		free(copy);
		curl_url_cleanup(uh);
		return -ENOMEM;
	}
	if (curl_url_set(uh, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) !=
		CURLUE_OK) {
		curl_url_cleanup(uh);
		uh = NULL;
	}
	if (curl_easy_setopt(x->easy, CURLOPT_URL, url) != CURLE_OK ||
		curl_easy_setopt(x->easy, CURLOPT_CURLU, uh) != CURLE_OK ||
		set_proxy_from_env(x->easy, url) != CURLE_OK) {
		curl_easy_setopt(x->easy, CURLOPT_CURLU, x->uh);
		free(copy);
		curl_url_cleanup(uh);
		return -ENOMEM;
	}
	free(x->url);
	x->url = copy;
	curl_url_cleanup(x->uh);
	x->uh = uh;
	return 0;
}

int http_headers_end_line(struct http_headers *h) {
	return buf_append(&h->lines, "", 1);
}

int http_headers_add(struct http_headers *h, const char *line) {
	return buf_append(&h->lines, line, strlen(line) + 1);
}

int http_headers_link(struct http_headers *h, struct curl_slist **ret_list) {
	size_t n = 0;

	/* One pass over the lines (one strlen each), growing the nodes as
	 * needed; linked once all are in place (a realloc moves them). */
	for (size_t off = 0; off < h->lines.len; off += strlen(h->lines.data + off) + 1, n++) {
		if (n == h->cap) {
			size_t cap = h->cap ? 2 * h->cap : 16;
			struct curl_slist *nodes = reallocarray(h->nodes, cap, sizeof(*nodes));

			if (!nodes)
				return -ENOMEM;
			h->nodes = nodes;
			h->cap = cap;
		}
		h->nodes[n].data = h->lines.data + off;
	}
	for (size_t i = 0; i < n; i++)
		h->nodes[i].next = i + 1 < n ? &h->nodes[i + 1] : NULL;
	*ret_list = n ? h->nodes : NULL;
	return 0;
}

void http_headers_reset(struct http_headers *h) {
	if (h->secret && h->lines.data)
		explicit_bzero(h->lines.data, h->lines.len);
	h->secret = false;
	buf_reset(&h->lines);
}

void http_headers_finish(struct http_headers *h) {
	if (!h)
		return;
	http_headers_reset(h);
	buf_finish(&h->lines);
	free(h->nodes);
	h->nodes = NULL;
	h->cap = 0;
}

int http_start(struct http *h, struct http_xfer *x) {
	CURLMcode mc;

	x->errbuf[0] = '\0';
	if (x->sockets_of != h) {
		curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETFUNCTION, handle_open);
		curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETDATA, h);
		curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETFUNCTION, handle_close);
		curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETDATA, h);
		x->sockets_of = h;
	}
	mc = curl_multi_add_handle(h->multi, x->easy);
	if (mc != CURLM_OK)
		return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
	x->active = true;
	h->active++;
	return 0;
}

void http_resume_recv(struct http *h, struct http_xfer *x) {
	long status = 0;

	if (!x->active || curl_easy_pause(x->easy, CURLPAUSE_CONT) == CURLE_OK)
		return;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	http_cancel(h, x);
	x->done(x, -ECANCELED, status, "stream ended on resume", x->userdata);
}

int http_parse_retry_after(const char *value, uint64_t *ret_delay_usec) {
	char *end;
	unsigned long long secs;
	time_t when, now;

	while (*value == ' ' || *value == '\t')
		value++;
	if (*value >= '0' && *value <= '9') {
		errno = 0;
		secs = strtoull(value, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (errno || *end || secs > 86400ull * 365)
			return -EINVAL;
		*ret_delay_usec = secs * 1000000ull;
		return 0;
	}
	when = curl_getdate(value, NULL);
	if (when < 0)
		return -EINVAL;
	now = time(NULL);
	*ret_delay_usec = when > now ? (uint64_t)(when - now) * 1000000ull : 0;
	return 0;
}

bool http_retry_after_header(const char *line, size_t len, uint64_t *ret_delay_usec) {
	char value[128];
	size_t vlen;

	if (len <= 12 || strncasecmp(line, "Retry-After:", 12) != 0)
		return false;
	vlen = len - 12 < sizeof(value) - 1 ? len - 12 : sizeof(value) - 1;
	memcpy(value, line + 12, vlen);
	value[vlen] = '\0';
	return http_parse_retry_after(value, ret_delay_usec) == 0;
}

bool http_header_value_valid(const char *value) {
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

char *http_url_redact(const char *url) {
	static const char unparsable[] = "(a URL that cannot be parsed)";
	CURLU *u = curl_url();
	char *user = NULL, *password = NULL, *options = NULL, *clean = NULL, *out = NULL;
	size_t n;

	if (!u)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		out = strdup(unparsable);
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &password, 0);
	curl_url_get(u, CURLUPART_OPTIONS, &options, 0);
	if (!user && !password && !options) {
		/* As configured: libcurl's form would differ ("/" added). */
		out = strdup(url);
		goto out;
	}
	if (curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
		curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
		curl_url_set(u, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_URL, &clean, 0) != CURLUE_OK) {
		out = strdup(unparsable);
		goto out;
	}
	out = strdup(clean);
	/* libcurl writes "https://host/" for "https://host": keep the form
	 * configured, so a source without credentials reads the same. */
	n = out ? strlen(out) : 0;
	if (n && out[n - 1] == '/' && *url && url[strlen(url) - 1] != '/')
		out[n - 1] = '\0';
out:
	if (password)
		explicit_bzero(password, strlen(password));
	curl_free(user);
	curl_free(password);
	curl_free(options);
	curl_free(clean);
	curl_url_cleanup(u);
	return out;
}

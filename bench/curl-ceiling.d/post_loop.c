/* bench/curl-ceiling's client: libcurl alone, doing what the adapter's sink
 * does per event and nothing else. N POSTs of a 1,536-byte body with the
 * header set of a binary-mode CloudEvent, K easy handles reused with their
 * options (keep-alive connections), driven by curl_multi_socket_action and
 * epoll as adapter/http.c drives them. Prints its CPU time per request
 * (getrusage: user and system) and requests/s.
 *
 *   post_loop URL N K
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

static int epfd;
static long timeout_ms = -1;

static size_t discard(char *p, size_t size, size_t n, void *userdata) {
	(void)p;
	(void)userdata;
	return size * n;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
	struct epoll_event ev = { .data.fd = fd };

	(void)easy;
	(void)userp;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static int on_timer(CURLM *multi, long ms, void *userp) {
	(void)multi;
	(void)userp;
	timeout_ms = ms;
	return 0;
}

static double seconds(struct timeval tv) {
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv) {
	static const char *const lines[] = {
		"ce-specversion: 1.0",
		"ce-id: 0f3c8a52-6b1e-5d7a-9c44-2e8f1b6d3a90",
		"ce-source: https://10.96.0.1:443",
		"ce-type: dev.knative.apiserver.resource.add",
		"ce-subject: /apis/bench.example.com/v1/namespaces/bench/widgets/w-000001",
		"ce-time: 2026-12-03T06:00:00.123456Z",
		"ce-kind: Widget",
		"ce-name: w-000001",
		"ce-namespace: bench",
		"ce-apiversion: bench.example.com/v1",
		"Content-Type: application/json",
		"Expect:",
	};
	static char body[1536];
	struct curl_slist *headers = NULL;
	long n, started = 0, done = 0;
	int k, running;
	struct timespec t0, t1;
	struct rusage ru;
	CURLM *multi;
	CURL **easies;

	if (argc != 4 || (n = atol(argv[2])) < 1 || (k = atoi(argv[3])) < 1) {
		fprintf(stderr, "usage: post_loop URL N K\n");
		return 2;
	}
	memset(body, 'x', sizeof(body));
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		headers = curl_slist_append(headers, lines[i]);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	multi = curl_multi_init();
	easies = calloc((size_t)k, sizeof(*easies));
	if (!headers || epfd < 0 || !multi || !easies)
		return 1;
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < k && started < n; i++, started++) {
		CURL *e = easies[i] = curl_easy_init();

		curl_easy_setopt(e, CURLOPT_URL, argv[1]);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
		curl_easy_setopt(e, CURLOPT_USERAGENT, "bench-post-loop/1");
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sizeof(body));
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
		curl_multi_add_handle(multi, e);
	}
	while (done < n) {
		struct epoll_event evs[64];
		CURLMsg *m;
		int left, ready = epoll_wait(epfd, evs, 64, timeout_ms < 0 ? 1000 : (int)timeout_ms);

		if (ready <= 0 || timeout_ms == 0)
			curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
		for (int i = 0; i < ready; i++)
			curl_multi_socket_action(multi, evs[i].data.fd,
				(evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
					(evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0),
				&running);
		while ((m = curl_multi_info_read(multi, &left))) {
			long status = 0;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			if (m->data.result != CURLE_OK || status / 100 != 2) {
				fprintf(stderr, "post_loop: request failed: %s, HTTP %ld\n",
					curl_easy_strerror(m->data.result), status);
				return 1;
			}
			curl_multi_remove_handle(multi, m->easy_handle);
			done++;
			if (started < n) {
				curl_multi_add_handle(multi, m->easy_handle);
				started++;
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	printf("post_loop: %ld requests, %d at a time: %.1f CPU µs/request (user %.1f, system %.1f), %.0f requests/s\n",
		n, k, (seconds(ru.ru_utime) + seconds(ru.ru_stime)) * 1e6 / (double)n,
		seconds(ru.ru_utime) * 1e6 / (double)n, seconds(ru.ru_stime) * 1e6 / (double)n,
		(double)n / ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9));
	for (int i = 0; i < k; i++)
		if (easies[i]) {
			curl_multi_remove_handle(multi, easies[i]);
			curl_easy_cleanup(easies[i]);
		}
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	free(easies);
	return 0;
}

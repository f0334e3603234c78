#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "adapter/loop.h"

struct loop {
	int epfd;
	struct loop_timer **heap;
	size_t nheap, heap_cap;
	void **deferred;
	size_t ndeferred, deferred_cap;
	bool quit;
	int code;
	struct loop_io sig_io;
	loop_signal_fn sig_fn;
	void *sig_userdata;
};

uint64_t loop_now_usec(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int loop_create(struct loop **ret_loop) {
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;
		free(l);
		return r;
	}
	l->sig_io.fd = -1;
	*ret_loop = l;
	return 0;
}

static void run_deferred(struct loop *l) {
	for (size_t i = 0; i < l->ndeferred; i++)
		free(l->deferred[i]);
	l->ndeferred = 0;
}

void loop_destroy(struct loop *l) {
	if (!l)
		return;
	run_deferred(l);
	if (l->sig_io.fd >= 0)
		close(l->sig_io.fd);
	close(l->epfd);
	free(l->heap);
	free(l->deferred);
	free(l);
}

int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events, loop_io_fn fn,
	void *userdata) {
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->events = events;
	io->fn = fn;
	io->userdata = userdata;
	io->dead = false;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int loop_io_modify(struct loop *l, struct loop_io *io, uint32_t events) {
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->events = events;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	return 0;
}

void loop_io_remove(struct loop *l, struct loop_io *io) {
	/* The fd may already be closed (then the kernel dropped it); ignore. */
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->dead = true;
}

int loop_defer_free(struct loop *l, void *ptr) {
	if (l->ndeferred == l->deferred_cap) {
		size_t n = l->deferred_cap ? l->deferred_cap * 2 : 16;
		void **d = realloc(l->deferred, n * sizeof(*d));
		if (!d) {
			/* Better to leak than to free memory epoll may still name. */
			return -ENOMEM;
		}
		l->deferred = d;
		l->deferred_cap = n;
	}
	l->deferred[l->ndeferred++] = ptr;
	return 0;
}

/* --- timers: a binary min-heap on due_usec; heap_index is position + 1 --- */

static void heap_set(struct loop *l, size_t i, struct loop_timer *t) {
	l->heap[i] = t;
	t->heap_index = i + 1;
}

static void sift_up(struct loop *l, size_t i) {
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->due_usec <= t->due_usec)
			break;
		heap_set(l, i, l->heap[p]);
		i = p;
	}
	heap_set(l, i, t);
}

static void sift_down(struct loop *l, size_t i) {
	struct loop_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->due_usec < l->heap[c]->due_usec)
			c++;
		if (t->due_usec <= l->heap[c]->due_usec)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *userdata) {
	*t = (struct loop_timer){ .fn = fn, .userdata = userdata };
}

void loop_timer_disarm(struct loop *l, struct loop_timer *t) {
	struct loop_timer *moved;
	size_t i;

	if (!t || !t->heap_index)
		return;
	i = t->heap_index - 1;
	t->heap_index = 0;
	l->nheap--;
	if (i == l->nheap)
		return;
	moved = l->heap[l->nheap];
	heap_set(l, i, moved);
	sift_down(l, i);
	sift_up(l, moved->heap_index - 1);
}

int loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t due_usec) {
	loop_timer_disarm(l, t);
	if (l->nheap == l->heap_cap) {
		size_t n = l->heap_cap ? l->heap_cap * 2 : 64;
		struct loop_timer **h = realloc(l->heap, n * sizeof(*h));
		if (!h)
			return -ENOMEM;
		l->heap = h;
		l->heap_cap = n;
	}
	t->due_usec = due_usec;
	heap_set(l, l->nheap++, t);
	sift_up(l, l->nheap - 1);
	return 0;
}

int loop_timer_arm_in(struct loop *l, struct loop_timer *t, uint64_t delay_usec) {
	return loop_timer_arm(l, t, loop_now_usec() + delay_usec);
}

/* --- signals --- */

static void handle_signalfd(struct loop_io *io, uint32_t events, void *userdata) {
	struct loop *l = userdata;
	struct signalfd_siginfo si;

	(void)events;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si))
		if (l->sig_fn)
			l->sig_fn((int)si.ssi_signo, l->sig_userdata);
}

int loop_handle_signals(struct loop *l, loop_signal_fn fn, void *userdata) {
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP); /* --header-file: read the files again */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	l->sig_fn = fn;
	l->sig_userdata = userdata;
	return loop_io_add(l, &l->sig_io, fd, EPOLLIN, handle_signalfd, l);
}

/* --- running --- */

void loop_quit(struct loop *l, int code) {
	l->quit = true;
	l->code = code;
}

int loop_run(struct loop *l) {
	struct epoll_event events[64];

	l->quit = false;
	while (!l->quit) {
		int timeout_ms = -1, n;
		uint64_t now = loop_now_usec();

		if (l->nheap) {
			uint64_t due = l->heap[0]->due_usec;
			/* Round up so a timer is never woken for early. */
			timeout_ms = due <= now ? 0 : (int)((due - now + 999) / 1000);
		}
		n = epoll_wait(l->epfd, events, 64, timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct loop_io *io = events[i].data.ptr;
			if (io->dead)
				continue;
			io->fn(io, events[i].events, io->userdata);
		}
		now = loop_now_usec();
		while (l->nheap && l->heap[0]->due_usec <= now && !l->quit) {
			struct loop_timer *t = l->heap[0];
			loop_timer_disarm(l, t);
			t->fn(t, t->userdata);
		}
		run_deferred(l);
	}
	return l->code;
}

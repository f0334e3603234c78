#ifndef ADAPTER_LOOP_H
#define ADAPTER_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A small single-threaded reactor: epoll for fds, a binary heap of monotonic
 * timers, and SIGTERM/SIGINT through a signalfd. Nothing here blocks except
 * epoll_wait(). */

struct loop;
struct loop_io;
struct loop_timer;

typedef void (*loop_io_fn)(struct loop_io *io, uint32_t events, void *userdata);
typedef void (*loop_timer_fn)(struct loop_timer *t, void *userdata);
typedef void (*loop_signal_fn)(int signo, void *userdata);

/* Embedded in its owner; registered with loop_io_add(). */
struct loop_io {
	int fd;
	uint32_t events;
	loop_io_fn fn;
	void *userdata;
	bool dead; /* removed during the current dispatch round */
};

/* Embedded in its owner; zeroed or loop_timer_init()ed before use. */
struct loop_timer {
	uint64_t due_usec;
	size_t heap_index; /* 0: not armed; otherwise position + 1 */
	loop_timer_fn fn;
	void *userdata;
};

uint64_t loop_now_usec(void);

int loop_create(struct loop **ret_loop);
void loop_destroy(struct loop *loop);

int loop_io_add(struct loop *loop, struct loop_io *io, int fd, uint32_t events, loop_io_fn fn,
	void *userdata);
int loop_io_modify(struct loop *loop, struct loop_io *io, uint32_t events);
/* After this the loop never touches io again, except that an io freed inside
 * a dispatch round must be freed with loop_defer_free(). */
void loop_io_remove(struct loop *loop, struct loop_io *io);
/* Frees ptr at the end of the current dispatch round. */
int loop_defer_free(struct loop *loop, void *ptr);

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *userdata);
/* Arms (or re-arms) the timer to fire at the absolute monotonic time. */
int loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t due_usec);
int loop_timer_arm_in(struct loop *loop, struct loop_timer *t, uint64_t delay_usec);
void loop_timer_disarm(struct loop *loop, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t) {
	return t->heap_index != 0;
}

/* Blocks SIGTERM, SIGINT and SIGHUP and delivers them through fn. */
int loop_handle_signals(struct loop *loop, loop_signal_fn fn, void *userdata);

/* Runs until loop_quit(); returns the code given to it. */
int loop_run(struct loop *loop);
void loop_quit(struct loop *loop, int code);

#endif

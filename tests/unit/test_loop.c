#include <criterion/criterion.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "adapter/loop.h"

struct order {
	int seen[16];
	int n;
	struct loop *loop;
};

static void fire(struct loop_timer *t, void *ud) {
	struct order *o = ud;

	o->seen[o->n++] = (int)(t->due_usec % 1000);
	if (o->n == 4)
		loop_quit(o->loop, 7);
}

Test(loop, timers_fire_in_due_order) {
	struct order o = { 0 };
	struct loop_timer t[5];
	uint64_t now = loop_now_usec() / 1000 * 1000;

	cr_assert_eq(loop_create(&o.loop), 0);
	for (int i = 0; i < 5; i++)
		loop_timer_init(&t[i], fire, &o);
	loop_timer_arm(o.loop, &t[0], now + 30000 + 3);
	loop_timer_arm(o.loop, &t[1], now + 10000 + 1);
	loop_timer_arm(o.loop, &t[2], now + 20000 + 2);
	loop_timer_arm(o.loop, &t[3], now + 5000 + 9);
	loop_timer_arm(o.loop, &t[4], now + 40000 + 4);
	loop_timer_disarm(o.loop, &t[3]);
	cr_assert_not(loop_timer_armed(&t[3]));
	cr_assert_eq(loop_run(o.loop), 7);
	cr_assert_eq(o.seen[0], 1);
	cr_assert_eq(o.seen[1], 2);
	cr_assert_eq(o.seen[2], 3);
	cr_assert_eq(o.seen[3], 4);
	loop_destroy(o.loop);
}

static void on_read(struct loop_io *io, uint32_t events, void *ud) {
	struct loop *l = ud;
	char c;

	cr_assert(events & EPOLLIN);
	cr_assert_eq(read(io->fd, &c, 1), 1);
	loop_quit(l, c);
}

Test(loop, io_dispatch) {
	struct loop *l;
	struct loop_io io;
	int p[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(loop_create(&l), 0);
	cr_assert_eq(loop_io_add(l, &io, p[0], EPOLLIN, on_read, l), 0);
	cr_assert_eq(write(p[1], "\x05", 1), 1);
	cr_assert_eq(loop_run(l), 5);
	loop_io_remove(l, &io);
	loop_destroy(l);
	close(p[0]);
	close(p[1]);
}

static void on_signal(int signo, void *ud) {
	loop_quit(ud, signo);
}

Test(loop, sigterm_arrives_as_io) {
	struct loop *l;

	cr_assert_eq(loop_create(&l), 0);
	cr_assert_eq(loop_handle_signals(l, on_signal, l), 0);
	kill(getpid(), SIGTERM);
	cr_assert_eq(loop_run(l), SIGTERM);
	loop_destroy(l);
}

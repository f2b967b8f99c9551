/* One worker's event loop: epoll for file descriptors, a min-heap of timers. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"

#define LOOP_MAX_EVENTS 128

struct loop {
	int epfd;
	int64_t now;
	bool stopped;

	/* 1-based binary min-heap ordered by (when, seq): heap[1] is the next
	 * timer due.  heap_index 0 in a timer means "not armed", which is why
	 * slot 0 is never used. */
	loop_timer_t **heap;
	size_t nheap;
	size_t heap_cap;
	uint64_t seq;

	/* The batch being dispatched.  A callback may delete (and free) any io,
	 * including one whose event is still waiting further down this array;
	 * loop_io_del therefore clears every later entry that names it, so a
	 * freed io is never dispatched.  This is cheaper and simpler than
	 * deferring frees: the owner may free its io as soon as loop_io_del
	 * returns, and the scan is bounded by LOOP_MAX_EVENTS. */
	struct epoll_event events[LOOP_MAX_EVENTS];
	int nevents;
	int pos;

	void (*after_io)(loop_t *loop);
};

loop_t *
loop_create(void)
{
	loop_t *loop = calloc(1, sizeof(*loop));

	if (loop == NULL)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int saved = errno;

		free(loop);
		errno = saved;
		return NULL;
	}
	loop->heap_cap = 64;
	loop->heap = malloc(loop->heap_cap * sizeof(*loop->heap));
	if (loop->heap == NULL) {
		close(loop->epfd);
		free(loop);
		errno = ENOMEM;
		return NULL;
	}
	loop->now = clock_mono_ms();
	return loop;
}

void
loop_destroy(loop_t *loop)
{
	if (loop == NULL)
		return;
	for (size_t i = 1; i <= loop->nheap; i++)
		loop->heap[i]->heap_index = 0;
	free(loop->heap);
	close(loop->epfd);
	free(loop);
}

int
loop_io_add(loop_t *loop, loop_io_t *io, int fd, uint32_t events, void (*cb)(loop_io_t *, uint32_t))
{
	struct epoll_event ev = {.events = events, .data.ptr = io};

	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	return 0;
}

int
loop_io_mod(loop_t *loop, loop_io_t *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};

	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -1;
	io->events = events;
	return 0;
}

void
loop_io_del(loop_t *loop, loop_io_t *io)
{
	if (io->fd < 0)
		return;
	/* ENOENT/EBADF only mean the kernel forgot it already (fd closed). */
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	for (int i = loop->pos; i < loop->nevents; i++)
		if (loop->events[i].data.ptr == io)
			loop->events[i].data.ptr = NULL;
	io->fd = -1;
	io->events = 0;
}

/* Timer heap. */

static bool
timer_before(const loop_timer_t *a, const loop_timer_t *b)
{
	if (a->when != b->when)
		return a->when < b->when;
	return a->seq < b->seq;
}

static void
heap_set(loop_t *loop, size_t i, loop_timer_t *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void
heap_up(loop_t *loop, size_t i)
{
	loop_timer_t *t = loop->heap[i];

	while (i > 1 && timer_before(t, loop->heap[i / 2])) {
		heap_set(loop, i, loop->heap[i / 2]);
		i /= 2;
	}
	heap_set(loop, i, t);
}

static void
heap_down(loop_t *loop, size_t i)
{
	loop_timer_t *t = loop->heap[i];

	for (;;) {
		size_t c = 2 * i;

		if (c > loop->nheap)
			break;
		if (c + 1 <= loop->nheap && timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_before(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

static void
heap_remove(loop_t *loop, loop_timer_t *t)
{
	size_t i = t->heap_index;
	loop_timer_t *last = loop->heap[loop->nheap--];

	t->heap_index = 0;
	if (last == t)
		return;
	heap_set(loop, i, last);
	if (i > 1 && timer_before(last, loop->heap[i / 2]))
		heap_up(loop, i);
	else
		heap_down(loop, i);
}

void
loop_timer_init(loop_timer_t *t, void (*cb)(loop_timer_t *))
{
	t->when = 0;
	t->heap_index = 0;
	t->seq = 0;
	t->cb = cb;
}

void
loop_timer_start(loop_t *loop, loop_timer_t *t, int64_t delay_ms)
{
	if (delay_ms < 0)
		delay_ms = 0;
	if (t->heap_index != 0)
		heap_remove(loop, t);
	if (loop->nheap + 1 >= loop->heap_cap) {
		size_t cap = loop->heap_cap * 2;
		loop_timer_t **heap = realloc(loop->heap, cap * sizeof(*heap));

		/* Timers back every timeout in the worker; running without one
		 * would leave connections hanging forever, so this is fatal. */
		if (heap == NULL)
			abort();
		loop->heap = heap;
		loop->heap_cap = cap;
	}
	t->when = loop->now + delay_ms;
	t->seq = ++loop->seq;
	loop->nheap++;
	heap_set(loop, loop->nheap, t);
	heap_up(loop, loop->nheap);
}

void
loop_timer_stop(loop_t *loop, loop_timer_t *t)
{
	if (t->heap_index != 0)
		heap_remove(loop, t);
}

int64_t
loop_now(const loop_t *loop)
{
	return loop->now;
}

void
loop_update_time(loop_t *loop)
{
	loop->now = clock_mono_ms();
}

static int
loop_timeout(const loop_t *loop)
{
	int64_t d;

	if (loop->stopped)
		return 0;
	if (loop->nheap == 0)
		return -1;
	d = loop->heap[1]->when - loop->now;
	if (d <= 0)
		return 0;
	return d > INT_MAX ? INT_MAX : (int)d;
}

static void
loop_run_timers(loop_t *loop)
{
	/* Only timers armed before this pass fire in it: a callback that
	 * re-arms itself (or another) with delay 0 waits for the next
	 * iteration, so I/O is never starved by a timer that keeps expiring. */
	uint64_t limit = loop->seq;

	while (loop->nheap > 0) {
		loop_timer_t *t = loop->heap[1];

		if (t->when > loop->now || t->seq > limit)
			break;
		heap_remove(loop, t);
		t->cb(t);
	}
}

int
loop_run(loop_t *loop)
{
	loop->stopped = false;
	while (!loop->stopped) {
		int n = epoll_wait(loop->epfd, loop->events, LOOP_MAX_EVENTS, loop_timeout(loop));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		loop_update_time(loop);
		loop->nevents = n;
		for (loop->pos = 0; loop->pos < loop->nevents;) {
			struct epoll_event *ev = &loop->events[loop->pos++];
			loop_io_t *io = ev->data.ptr;
			uint32_t revents;

			if (io == NULL)
				continue;
			/* Drop bits the owner stopped asking for since the wait
			 * (loop_io_mod in an earlier callback of this batch). */
			revents = ev->events & (io->events | EPOLLERR | EPOLLHUP);
			if (revents != 0)
				io->cb(io, revents);
		}
		loop->nevents = 0;
		loop->pos = 0;
		loop_run_timers(loop);
		if (n > 0 && loop->after_io != NULL)
			loop->after_io(loop);
	}
	return 0;
}

void
loop_set_after_io(loop_t *loop, void (*cb)(loop_t *loop))
{
	loop->after_io = cb;
}

void
loop_stop(loop_t *loop)
{
	loop->stopped = true;
}

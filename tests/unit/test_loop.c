/* Unit tests for src/loop.c. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "loop.h"
#include "unit.h"

/* A timer that records the order it fired in. */
typedef struct tt {
	loop_timer_t t;
	loop_t *loop;
	int id;
	int *log;
	int *nlog;
	int nfired;
	struct tt *victim; /* stopped by this timer's callback */
	int rearm;         /* re-arm with delay 0 this many times */
} tt_t;

static void
tt_cb(loop_timer_t *t)
{
	tt_t *x = container_of(t, tt_t, t);

	x->log[(*x->nlog)++] = x->id;
	x->nfired++;
	if (x->victim)
		loop_timer_stop(x->loop, &x->victim->t);
	if (x->rearm > 0) {
		x->rearm--;
		loop_timer_start(x->loop, t, 0);
	}
}

static void
stop_cb(loop_timer_t *t)
{
	tt_t *x = container_of(t, tt_t, t);

	loop_stop(x->loop);
}

static void
test_create(void)
{
	loop_t *loop = loop_create();

	CHECK(loop != NULL);
	CHECK(loop_now(loop) > 0);
	loop_destroy(loop);
	loop_destroy(NULL);
}

/* Many timers with shuffled delays (ties included) fire sorted by delay,
 * ties in arming order: exercises the heap's up and down moves. */
static void
test_timer_order(void)
{
	enum { N = 300 };
	loop_t *loop = loop_create();
	tt_t *ts = calloc(N, sizeof(*ts));
	int log[N], nlog = 0;
	tt_t stopper = {.loop = loop};
	int delay[N];

	srand(7);
	for (int i = 0; i < N; i++) {
		delay[i] = rand() % 20;
		ts[i].loop = loop;
		ts[i].id = i;
		ts[i].log = log;
		ts[i].nlog = &nlog;
		loop_timer_init(&ts[i].t, tt_cb);
		CHECK(!loop_timer_active(&ts[i].t));
		loop_timer_start(loop, &ts[i].t, delay[i]);
		CHECK(loop_timer_active(&ts[i].t));
	}
	loop_timer_init(&stopper.t, stop_cb);
	loop_timer_start(loop, &stopper.t, 40);
	CHECK_INT(loop_run(loop), 0);

	CHECK_INT(nlog, N);
	for (int i = 1; i < nlog; i++) {
		int a = log[i - 1], b = log[i];

		CHECK(delay[a] < delay[b] || (delay[a] == delay[b] && a < b));
	}
	for (int i = 0; i < N; i++) {
		CHECK_INT(ts[i].nfired, 1);
		CHECK(!loop_timer_active(&ts[i].t));
	}
	free(ts);
	loop_destroy(loop);
}

/* Stopping, restarting (moves a timer later), and stopping a stopped timer. */
static void
test_timer_stop_restart(void)
{
	loop_t *loop = loop_create();
	int log[8], nlog = 0;
	tt_t a = {.loop = loop, .id = 1, .log = log, .nlog = &nlog};
	tt_t b = {.loop = loop, .id = 2, .log = log, .nlog = &nlog};
	tt_t c = {.loop = loop, .id = 3, .log = log, .nlog = &nlog};
	tt_t stopper = {.loop = loop};

	loop_timer_init(&a.t, tt_cb);
	loop_timer_init(&b.t, tt_cb);
	loop_timer_init(&c.t, tt_cb);
	loop_timer_init(&stopper.t, stop_cb);
	loop_timer_start(loop, &a.t, 1);
	loop_timer_start(loop, &b.t, 2);
	loop_timer_start(loop, &c.t, 3);
	loop_timer_start(loop, &a.t, 10); /* restart: now after c */
	loop_timer_stop(loop, &b.t);
	loop_timer_stop(loop, &b.t);
	CHECK(!loop_timer_active(&b.t));
	loop_timer_start(loop, &stopper.t, 30);
	CHECK_INT(loop_run(loop), 0);

	CHECK_INT(nlog, 2);
	CHECK_INT(log[0], 3);
	CHECK_INT(log[1], 1);
	CHECK_INT(b.nfired, 0);
	loop_destroy(loop);
}

/* A callback stops a timer that is due in the same pass: it must not fire. */
static void
test_timer_stop_in_callback(void)
{
	loop_t *loop = loop_create();
	int log[8], nlog = 0;
	tt_t a = {.loop = loop, .id = 1, .log = log, .nlog = &nlog};
	tt_t b = {.loop = loop, .id = 2, .log = log, .nlog = &nlog};
	tt_t stopper = {.loop = loop};

	a.victim = &b;
	loop_timer_init(&a.t, tt_cb);
	loop_timer_init(&b.t, tt_cb);
	loop_timer_init(&stopper.t, stop_cb);
	loop_timer_start(loop, &a.t, 5);
	loop_timer_start(loop, &b.t, 5); /* same deadline, armed after a */
	loop_timer_start(loop, &stopper.t, 20);
	CHECK_INT(loop_run(loop), 0);

	CHECK_INT(a.nfired, 1);
	CHECK_INT(b.nfired, 0);
	loop_destroy(loop);
}

/* An I/O watcher on a pipe: counts wake-ups, optionally drains. */
typedef struct pio {
	loop_io_t io;
	loop_t *loop;
	int rfd, wfd;
	int ncalls;
	uint32_t last;
	bool drain;
	struct pio *victim; /* deleted and freed by this one's callback */
	struct pio **slot;  /* where the victim's owner keeps its pointer */
	int *order;
	int id;
	int *norder;
} pio_t;

static void
pio_cb(loop_io_t *io, uint32_t revents)
{
	pio_t *p = container_of(io, pio_t, io);
	char buf[64];

	p->ncalls++;
	p->last = revents;
	if (p->order)
		p->order[(*p->norder)++] = p->id;
	if (p->drain)
		while (read(p->rfd, buf, sizeof(buf)) > 0)
			;
	if (p->victim) {
		pio_t *v = p->victim;

		loop_io_del(p->loop, &v->io);
		/* The victim no longer needs to delete the killer. */
		v->victim = NULL;
		*p->slot = NULL;
		free(v);
		p->victim = NULL;
	}
}

static int
pipe_nb(int fds[2])
{
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	return 0;
}

static void
test_io_pipe(void)
{
	loop_t *loop = loop_create();
	pio_t p = {.loop = loop, .drain = true};
	tt_t stopper = {.loop = loop};
	int fds[2];

	CHECK_INT(pipe_nb(fds), 0);
	p.rfd = fds[0];
	p.wfd = fds[1];
	CHECK_INT(loop_io_add(loop, &p.io, p.rfd, EPOLLIN, pio_cb), 0);
	CHECK_INT(p.io.fd, p.rfd);
	CHECK_INT(write(p.wfd, "x", 1), 1);
	loop_timer_init(&stopper.t, stop_cb);
	loop_timer_start(loop, &stopper.t, 20);
	CHECK_INT(loop_run(loop), 0);
	CHECK_INT(p.ncalls, 1);
	CHECK(p.last & EPOLLIN);

	/* Muted with loop_io_mod(0): data waits, no callback. */
	CHECK_INT(loop_io_mod(loop, &p.io, 0), 0);
	CHECK_INT(write(p.wfd, "y", 1), 1);
	loop_timer_start(loop, &stopper.t, 10);
	CHECK_INT(loop_run(loop), 0);
	CHECK_INT(p.ncalls, 1);

	/* Unmuted: the waiting byte is delivered. */
	CHECK_INT(loop_io_mod(loop, &p.io, EPOLLIN), 0);
	loop_timer_start(loop, &stopper.t, 10);
	CHECK_INT(loop_run(loop), 0);
	CHECK_INT(p.ncalls, 2);

	/* Deleted: nothing more, and deleting twice is harmless. */
	loop_io_del(loop, &p.io);
	CHECK_INT(p.io.fd, -1);
	loop_io_del(loop, &p.io);
	CHECK_INT(write(p.wfd, "z", 1), 1);
	loop_timer_start(loop, &stopper.t, 10);
	CHECK_INT(loop_run(loop), 0);
	CHECK_INT(p.ncalls, 2);

	/* Adding a bad fd fails with errno, and leaves the io untouched. */
	CHECK_INT(loop_io_add(loop, &p.io, -5, EPOLLIN, pio_cb), -1);

	/* The writer closes: the reader sees the hang-up. */
	CHECK_INT(loop_io_add(loop, &p.io, p.rfd, EPOLLIN, pio_cb), 0);
	close(p.wfd);
	loop_timer_start(loop, &stopper.t, 10);
	CHECK_INT(loop_run(loop), 0);
	CHECK(p.ncalls >= 3);
	CHECK(p.last & EPOLLHUP);
	loop_io_del(loop, &p.io);
	close(p.rfd);
	loop_destroy(loop);
}

/* after_io runs once per pass that handled I/O, after its callbacks and
 * timers, and never for a pass only a timer woke. */
static int after_calls, after_saw_reads;

static void
after_cb(loop_t *loop)
{
	(void)loop;
	after_calls++;
}

static void
after_pio_cb(loop_io_t *io, uint32_t revents)
{
	pio_t *p = container_of(io, pio_t, io);
	char buf[16];

	(void)revents;
	p->ncalls++;
	after_saw_reads = after_calls; /* how many passes ended before this read */
	while (read(p->rfd, buf, sizeof(buf)) > 0)
		;
}

static void
test_after_io(void)
{
	loop_t *loop = loop_create();
	pio_t a = {.loop = loop}, b = {.loop = loop};
	tt_t stopper = {.loop = loop};
	int fa[2], fb[2];

	CHECK_INT(pipe_nb(fa), 0);
	CHECK_INT(pipe_nb(fb), 0);
	a.rfd = fa[0];
	b.rfd = fb[0];
	loop_set_after_io(loop, after_cb);
	CHECK_INT(loop_io_add(loop, &a.io, a.rfd, EPOLLIN, after_pio_cb), 0);
	CHECK_INT(loop_io_add(loop, &b.io, b.rfd, EPOLLIN, after_pio_cb), 0);
	loop_timer_init(&stopper.t, stop_cb);

	/* Only a timer: no pass with I/O. */
	loop_timer_start(loop, &stopper.t, 5);
	CHECK_INT(loop_run(loop), 0);
	CHECK_INT(after_calls, 0);

	/* Two readable pipes, one pass: both callbacks, then one call. */
	CHECK_INT(write(fa[1], "x", 1), 1);
	CHECK_INT(write(fb[1], "y", 1), 1);
	loop_timer_start(loop, &stopper.t, 20);
	CHECK_INT(loop_run(loop), 0);
	CHECK_INT(a.ncalls + b.ncalls, 2);
	CHECK_INT(after_saw_reads, 0); /* the second read came before the call */
	CHECK_INT(after_calls, 1);

	/* Unset: no more calls. */
	loop_set_after_io(loop, NULL);
	CHECK_INT(write(fa[1], "z", 1), 1);
	loop_timer_start(loop, &stopper.t, 10);
	CHECK_INT(loop_run(loop), 0);
	CHECK_INT(a.ncalls + b.ncalls, 3);
	CHECK_INT(after_calls, 1);

	loop_io_del(loop, &a.io);
	loop_io_del(loop, &b.io);
	for (int i = 0; i < 2; i++) {
		close(fa[i]);
		close(fb[i]);
	}
	loop_destroy(loop);
}

/* Two readable pipes in the same epoll batch; whichever callback runs first
 * deletes and frees the other.  The freed one must never be dispatched
 * (ASan turns a violation into a crash). */
static void
test_io_free_in_batch(void)
{
	loop_t *loop = loop_create();
	pio_t *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	tt_t stopper = {.loop = loop};
	int fa[2], fb[2], order[4], norder = 0;

	CHECK_INT(pipe_nb(fa), 0);
	CHECK_INT(pipe_nb(fb), 0);
	*a = (pio_t){.loop = loop,
	             .rfd = fa[0],
	             .wfd = fa[1],
	             .drain = true,
	             .victim = b,
	             .slot = &b,
	             .order = order,
	             .norder = &norder,
	             .id = 1};
	*b = (pio_t){.loop = loop,
	             .rfd = fb[0],
	             .wfd = fb[1],
	             .drain = true,
	             .victim = a,
	             .slot = &a,
	             .order = order,
	             .norder = &norder,
	             .id = 2};
	CHECK_INT(loop_io_add(loop, &a->io, a->rfd, EPOLLIN, pio_cb), 0);
	CHECK_INT(loop_io_add(loop, &b->io, b->rfd, EPOLLIN, pio_cb), 0);
	CHECK_INT(write(fa[1], "a", 1), 1);
	CHECK_INT(write(fb[1], "b", 1), 1);
	loop_timer_init(&stopper.t, stop_cb);
	loop_timer_start(loop, &stopper.t, 20);
	CHECK_INT(loop_run(loop), 0);

	CHECK_INT(norder, 1);
	CHECK((a == NULL) != (b == NULL));
	if (a) {
		CHECK_INT(order[0], 1);
		CHECK_INT(a->ncalls, 1);
		loop_io_del(loop, &a->io);
		free(a);
	}
	if (b) {
		CHECK_INT(order[0], 2);
		CHECK_INT(b->ncalls, 1);
		loop_io_del(loop, &b->io);
		free(b);
	}
	for (int i = 0; i < 2; i++) {
		close(fa[i]);
		close(fb[i]);
	}
	loop_destroy(loop);
}

/* A timer that re-arms itself with delay 0 fires once per iteration and
 * leaves room for I/O between its firings (no starvation). */
typedef struct spin {
	loop_timer_t t;
	loop_t *loop;
	pio_t *p;
	int nfired;
	int starved; /* firings that saw no I/O since the last one */
	int seen;
} spin_t;

static void
spin_cb(loop_timer_t *t)
{
	spin_t *s = container_of(t, spin_t, t);

	s->nfired++;
	if (s->nfired > 1 && s->p->ncalls == s->seen)
		s->starved++;
	s->seen = s->p->ncalls;
	if (s->nfired < 100)
		loop_timer_start(s->loop, t, 0);
	else
		loop_stop(s->loop);
}

static void
test_timer_rearm_no_starvation(void)
{
	loop_t *loop = loop_create();
	pio_t p = {.loop = loop}; /* never drained: always readable */
	spin_t s = {.loop = loop, .p = &p};
	int fds[2];

	CHECK_INT(pipe_nb(fds), 0);
	p.rfd = fds[0];
	p.wfd = fds[1];
	CHECK_INT(write(p.wfd, "x", 1), 1);
	CHECK_INT(loop_io_add(loop, &p.io, p.rfd, EPOLLIN, pio_cb), 0);
	loop_timer_init(&s.t, spin_cb);
	loop_timer_start(loop, &s.t, 0);
	CHECK_INT(loop_run(loop), 0);

	CHECK_INT(s.nfired, 100);
	CHECK_INT(s.starved, 0);
	CHECK(p.ncalls >= 99);
	loop_io_del(loop, &p.io);
	close(fds[0]);
	close(fds[1]);
	loop_destroy(loop);
}

/* loop_now is cached per iteration and follows the clock across waits. */
static void
test_time(void)
{
	loop_t *loop = loop_create();
	tt_t stopper = {.loop = loop};
	int64_t t0 = loop_now(loop);

	CHECK_INT(loop_now(loop), t0);
	loop_timer_init(&stopper.t, stop_cb);
	loop_timer_start(loop, &stopper.t, 15);
	CHECK_INT(stopper.t.when, t0 + 15);
	CHECK_INT(loop_run(loop), 0);
	CHECK(loop_now(loop) >= t0 + 15);
	loop_destroy(loop);
}

int
main(void)
{
	RUN(test_create);
	RUN(test_timer_order);
	RUN(test_timer_stop_restart);
	RUN(test_timer_stop_in_callback);
	RUN(test_io_pipe);
	RUN(test_after_io);
	RUN(test_io_free_in_batch);
	RUN(test_timer_rearm_no_starvation);
	RUN(test_time);
	return unit_done();
}

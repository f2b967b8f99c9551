/* One worker's event loop: epoll for file descriptors, a min-heap of timers. */
#ifndef FEEDD_LOOP_H
#define FEEDD_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

typedef struct loop loop_t;
typedef struct loop_io loop_io_t;
typedef struct loop_timer loop_timer_t;

/* Embedded in its owner (container_of); events are EPOLL* bits.  fd is -1
 * after loop_io_del, which may then be called again harmlessly. */
struct loop_io {
	int      fd;
	uint32_t events;
	void   (*cb)(loop_io_t *io, uint32_t revents);
};

struct loop_timer {
	int64_t  when;          /* monotonic ms */
	size_t   heap_index;    /* 0 = not armed */
	uint64_t seq;           /* arming order: ties on `when` fire first-armed first */
	void   (*cb)(loop_timer_t *t);
};

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

loop_t *loop_create(void);
void    loop_destroy(loop_t *loop);

/* Return 0 or -1 with errno.  The owner may free an io as soon as
 * loop_io_del returns, even inside a callback: the io's events still
 * pending in the current batch are dropped, never dispatched. */
int     loop_io_add(loop_t *loop, loop_io_t *io, int fd, uint32_t events,
                    void (*cb)(loop_io_t *, uint32_t));
int     loop_io_mod(loop_t *loop, loop_io_t *io, uint32_t events);
void    loop_io_del(loop_t *loop, loop_io_t *io);

/* A timer is disarmed before its callback runs, which may re-arm it.  A
 * callback may stop (then free) any other timer, due or not. */
void    loop_timer_init(loop_timer_t *t, void (*cb)(loop_timer_t *));
void    loop_timer_start(loop_t *loop, loop_timer_t *t, int64_t delay_ms);
void    loop_timer_stop(loop_t *loop, loop_timer_t *t);
static inline bool loop_timer_active(const loop_timer_t *t) { return t->heap_index != 0; }

/* The time of the current iteration (monotonic ms), cached per wake-up. */
int64_t loop_now(const loop_t *loop);
void    loop_update_time(loop_t *loop);

/* cb runs after each pass that handled I/O (its callbacks, then the due
 * timers), before the loop waits again; a pass woken only by a timer does
 * not call it.  NULL: nothing (the default). */
void    loop_set_after_io(loop_t *loop, void (*cb)(loop_t *loop));

/* Runs until loop_stop(); returns 0, or -1 when epoll itself fails. */
int     loop_run(loop_t *loop);
void    loop_stop(loop_t *loop);

#endif

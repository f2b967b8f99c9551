/* Worker liveness: each worker stamps a shared clock from its event loop; the master reads it. */
#include "watchdog.h"

/*
 * Why: each worker accepts on listen sockets of its own (SO_REUSEPORT, one
 * per worker position, see master.c), so a worker whose event loop stops
 * (a bug spinning or blocking it) leaves its share of new connections
 * waiting for ever; with a shared socket the others would have taken them.
 * A process that is alive but stuck is invisible to waitpid, so the master
 * needs a sign of life: a timer in the worker's loop stores the time, the
 * master kills a worker whose time stopped, and the usual respawn hands
 * the position's sockets, with what is queued on them, to its successor.
 *
 * One MAP_SHARED|MAP_ANONYMOUS array made before fork, a stamp per slot on
 * its own cache line: each is written by one process, read by the master.
 * CLOCK_MONOTONIC is one clock for all processes of the machine.
 */

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"

typedef struct stamp {
	alignas(64) _Atomic int64_t last_ms;
} stamp_t;

static stamp_t *stamps;
static int nstamps;

int
watchdog_create(int nslots)
{
	void *p;

	if (nslots <= 0) {
		log_error("watchdog: %d process slots", nslots);
		return -1;
	}
	p = mmap(NULL, (size_t)nslots * sizeof(stamp_t), PROT_READ | PROT_WRITE,
	         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_error("watchdog: mmap of %d stamps: %s", nslots, strerror(errno));
		return -1;
	}
	stamps = p;
	nstamps = nslots;
	return 0;
}

void
watchdog_destroy(void)
{
	if (stamps != NULL && munmap(stamps, (size_t)nstamps * sizeof(stamp_t)) < 0)
		log_warn("watchdog: munmap: %s", strerror(errno));
	stamps = NULL;
	nstamps = 0;
}

void
watchdog_beat(int slot, int64_t now_ms)
{
	/* Relaxed: the stamp publishes nothing else. */
	if (slot >= 0 && slot < nstamps)
		atomic_store_explicit(&stamps[slot].last_ms, now_ms, memory_order_relaxed);
}

int64_t
watchdog_last(int slot)
{
	if (slot < 0 || slot >= nstamps)
		return 0;
	return atomic_load_explicit(&stamps[slot].last_ms, memory_order_relaxed);
}

int64_t
watchdog_beat_interval(int64_t watchdog_ms)
{
	int64_t i = watchdog_ms / 4;

	return i > 1000 ? 1000 : i < 10 ? 10 : i;
}

/* Worker liveness: each worker stamps a shared clock from its event loop; the master reads it. */
#ifndef FEEDD_WATCHDOG_H
#define FEEDD_WATCHDOG_H

#include <stdint.h>

/* Master, before forking: one stamp per process slot (the metrics slots). */
int watchdog_create(int nslots);
void watchdog_destroy(void);

/* Worker, from a loop timer; master, when it starts a process in slot. */
void watchdog_beat(int slot, int64_t now_ms);

/* Master: the last stamp of slot (CLOCK_MONOTONIC ms). */
int64_t watchdog_last(int slot);

/* How often a worker stamps for a given worker_watchdog (ms, > 0): often
 * enough that one late timer is not taken for a stopped loop. */
int64_t watchdog_beat_interval(int64_t watchdog_ms);

#endif

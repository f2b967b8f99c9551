/* A worker process: the event loop, accepting, timers, draining. */
#ifndef FEEDD_WORKER_H
#define FEEDD_WORKER_H

#include <stdbool.h>

#include "config.h"
#include "loop.h"

struct pgpool;
struct cache;
struct page_files;

typedef struct worker {
	const config_t *cfg;
	loop_t         *loop;
	struct pgpool  *pool;       /* this worker's database connections */
	struct cache   *cache;      /* shared by all workers */
	struct page_files *page_files; /* this worker's sendfile copies; NULL: off */
	int             slot;       /* 0..workers-1: metrics slot, log tag */
	int             nconns;
	bool            draining;   /* no new connections; finishing the rest */
	bool            accepting;  /* listen sockets are in the loop */
} worker_t;

/* Exit statuses the master understands. */
#define WORKER_EXIT_OK     0
#define WORKER_EXIT_FATAL  2   /* configuration cannot work: do not respawn */

/* Runs in the forked child; never returns. */
void worker_main(const config_t *cfg, int slot, const int *listen_fds, int nlisten,
                 struct cache *cache) __attribute__((noreturn));

/* conn.c tells the worker when connections come and go (max_connections). */
void worker_conn_opened(worker_t *w);
void worker_conn_closed(worker_t *w);

#endif

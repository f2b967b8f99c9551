/* A worker's pool of non-blocking libpq connections: connect, prepare, pipeline, cancel, reconnect. */
#ifndef FEEDD_PGPOOL_H
#define FEEDD_PGPOOL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

typedef struct pgpool pgpool_t;
typedef struct pgpool_query pgpool_query_t;

/* A statement prepared once on every connection. */
typedef struct pgpool_stmt {
	const char *name;
	const char *sql;
	int         nparams;
} pgpool_stmt_t;

typedef struct pgpool_config {
	const char          *conninfo;
	int                  size;             /* connections */
	int                  queue_max;        /* queries waiting for a connection */
	int                  pipeline_depth;   /* statements in flight per connection */
	int64_t              query_timeout;    /* ms; also the server's statement_timeout */
	int64_t              connect_timeout;  /* ms */
	int64_t              reconnect_max;    /* ms, back-off ceiling */
	const pgpool_stmt_t *stmts;
	int                  nstmts;
} pgpool_config_t;

/* Called once per query: res on success (valid only during the call), or
 * res == NULL and a reason (connection lost, timeout, server error).  The
 * query handle is gone when cb runs: never pgpool_cancel it afterwards. */
typedef void (*pgpool_cb)(void *ud, const PGresult *res, const char *error);

/* The error of a query whose deadline (query_timeout) passed. */
#define PGPOOL_ERR_TIMEOUT "query timed out"

/* Starts connecting in the background; never blocks (but a host name in
 * the conninfo is resolved synchronously by libpq).  NULL when the
 * conninfo does not parse or memory runs out.  stmts must outlive the pool. */
pgpool_t *pgpool_create(loop_t *loop, const pgpool_config_t *cfg);
/* Frees every query still held without calling back (the owners must be
 * gone), sends the cancel requests already decided, closes. */
void      pgpool_destroy(pgpool_t *pool);

/* A list of queries (the pool's own queues, and a batch's). */
typedef struct pgpool_qlist {
	struct pgpool_query *head, *tail;
	int                  n;
} pgpool_qlist_t;

/* Statements sent together for one answer (a page): pgpool_exec holds
 * them, pgpool_batch_send sends them all at once, planned together.
 * Start zeroed; send it before returning to the loop. */
typedef struct pgpool_batch {
	pgpool_qlist_t queries;
} pgpool_batch_t;

/* Queues a prepared statement (params as text), or adds it to batch.
 * Returns NULL when the queue is full or the pool has no connection and
 * cannot get one soon (the caller answers 503). */
pgpool_query_t *pgpool_exec(pgpool_t *pool, pgpool_batch_t *batch, int stmt,
                            const char *const *params, pgpool_cb cb, void *ud);
void pgpool_batch_send(pgpool_t *pool, pgpool_batch_t *batch);

/* The caller no longer wants the answer: cb will not be called; a running
 * statement is cancelled on the server without blocking this loop. */
void pgpool_cancel(pgpool_query_t *q);

/* True when at least one connection is up (/readyz). */
bool pgpool_ready(const pgpool_t *pool);

/* How many statements pgpool_exec would take right now (free pipeline
 * slots of ready connections plus free queue places; 0 when it fails
 * fast): a caller needing several checks first instead of undoing. */
int pgpool_room(const pgpool_t *pool);

/* Why the pool takes nothing now, for the client: "no database
 * connection" or "database busy (query queue full)". */
const char *pgpool_error(const pgpool_t *pool);

#endif

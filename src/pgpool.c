/* A worker's pool of non-blocking libpq connections: connect, prepare, pipeline, cancel, reconnect. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"
#include "pgresolve.h"
#include "testhook.h"

#define BACKOFF_FIRST_MS 100
#define CANCEL_QUEUE_MAX 64   /* cancel requests waiting for the cancel thread */
#define NSETUP           5    /* SET statements sent before the prepares */
#define ERRMSG_MAX       256
/* The server's statement_timeout is a backstop for a cancel request that
 * never arrives: it must expire after our own deadline, or the two race
 * and a timed-out statement looks like one hit by a stray cancel. */
#define STATEMENT_TIMEOUT_SLACK_MS 500
/* A statement nobody waits for any more is cancelled only once it has run
 * this long at the head of its pipeline: most finish sooner, and a cancel
 * request costs the server a new connection (and a process). */
#define CANCEL_GRACE_MS  100

enum conn_state {
	CONN_DOWN,         /* waiting for the back-off timer */
	CONN_RESOLVING,    /* waiting for the host name lookup (pgresolve) */
	CONN_CONNECTING,   /* PQconnectPoll in progress */
	CONN_SETUP,        /* SETs and prepares sent, answers pending */
	CONN_READY,
};

enum query_where {
	Q_BATCHED,         /* held by its batch until pgpool_batch_send */
	Q_DELAYED,         /* held by the SLOW_SOURCE test hook */
	Q_QUEUED,          /* waiting for a connection */
	Q_SENT,            /* in a connection's pipeline */
	Q_DETACHED,        /* its connection died; being told so */
};

typedef struct pgconn pgconn_t;

/* One statement in a connection's pipeline.  It outlives its query: a
 * query that timed out or was abandoned is gone for its owner, but the
 * server still answers it, and the answer must be matched and dropped. */
typedef struct sent {
	struct sent    *next;
	pgpool_query_t *q;            /* NULL: nobody wants the answer any more */
	int             stmt;
	int64_t         cost_us;      /* the statement's cost when sent */
	bool            first;        /* sent to an empty pipeline: waits a round trip */
	bool            answered;
	bool            cancel_sent;
} sent_t;

struct pgpool_query {
	pgpool_t         *pool;
	pgpool_query_t   *prev, *next;  /* pool->queue, pool->delayed or batch */
	enum query_where  where;
	pgpool_batch_t   *batch;         /* Q_BATCHED */
	pgconn_t         *conn;          /* Q_SENT */
	sent_t           *sent;          /* Q_SENT, Q_DETACHED */
	int               stmt;
	bool              retried;
	pgpool_cb         cb;
	void             *ud;
	loop_timer_t      deadline;
	loop_timer_t      delay;
	int               nparams;
	char             *params[];      /* copies, in the same allocation */
};

typedef pgpool_qlist_t qlist_t;

struct pgconn {
	pgpool_t        *pool;
	int              index;
	PGconn          *pg;
	enum conn_state  state;
	loop_io_t        io;
	/* CONNECTING/SETUP: connect deadline; DOWN: back-off; READY: a
	 * failure found where it could not be handled (deferred to here). */
	loop_timer_t     timer;
	/* A dead head's grace before its cancel; then, once cancelled, how
	 * long it may take to answer before the connection is given up. */
	loop_timer_t     cancel_timer;
	sent_t          *fifo, *fifo_tail;  /* answers arrive in send order */
	int64_t          head_since;        /* when fifo became the head (running) */
	int64_t          head_since_us;     /* the same, precise, for the costs */
	int              nfifo;
	int              setup_step;        /* sync segments of the setup answered */
	bool             setup_failed;
	bool             setup_loud;        /* this setup logs its failures as errors */
	/* PQgetResult returned a result: the NULL that ends it comes next
	 * and must not be read as "nothing more to read". */
	bool             expect_null;
	/* A cancel request is on its way: send nothing new here until the
	 * statement it targets has answered (see conn_cancel_head). */
	bool             cancel_pending;
	bool             broken;
	char             broken_why[ERRMSG_MAX];
	int64_t          backoff;
	int              failures;          /* consecutive failed attempts */
};

/* The thread that sends cancel requests: PQcancel opens a new connection
 * to the server and waits for it, which the loop thread must never do. */
typedef struct canceller {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	PGcancel       *jobs[CANCEL_QUEUE_MAX];
	int             first, n;
	bool            stop;
	bool            started;
	pthread_t       thread;
} canceller_t;

struct pgpool {
	loop_t          *loop;
	pgpool_config_t  cfg;
	char            *conninfo;
	pgresolve_t     *resolver;         /* NULL: host= has no names */
	pgconn_t        *conns;
	qlist_t          queue;
	qlist_t          delayed;
	/* Consecutive failed connection attempts, all connections, since one
	 * last became ready: > 0 with none ready means the database is down. */
	int              failures;
	int64_t          bad_sql_log_next; /* rate limit of prepare failures */
	int64_t          reject_log_next;
	int              slow_stmt;        /* SLOW_SOURCE test hook, -1 if unarmed */
	int64_t          slow_ms;
	int64_t          gauges[5];
	/* What each statement costs the server (microseconds, 0 until seen)
	 * and the round trip: the work a pipeline holds, so that a costly
	 * statement gets a connection to itself and nothing waits behind it. */
	int64_t         *cost_us;
	int64_t          rtt_us;
	int64_t         *plan_work;        /* pool_plan's scratch, one per connection */
	int             *plan_nfifo;
	canceller_t      canceller;
};

static void conn_start(pgconn_t *pc);
static void conn_lost(pgconn_t *pc, const char *why);
static void conn_io_cb(loop_io_t *io, uint32_t revents);
static void pool_dispatch_queue(pgpool_t *pool);
static void query_deadline_cb(loop_timer_t *t);
static void query_delay_cb(loop_timer_t *t);
static void conn_check_head(pgconn_t *pc);

/* Lists. */

static void
qlist_push(qlist_t *l, pgpool_query_t *q, bool front)
{
	if (front) {
		q->prev = NULL;
		q->next = l->head;
		if (l->head != NULL)
			l->head->prev = q;
		else
			l->tail = q;
		l->head = q;
	} else {
		q->next = NULL;
		q->prev = l->tail;
		if (l->tail != NULL)
			l->tail->next = q;
		else
			l->head = q;
		l->tail = q;
	}
	l->n++;
}

static void
qlist_remove(qlist_t *l, pgpool_query_t *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		l->head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		l->tail = q->prev;
	q->prev = q->next = NULL;
	l->n--;
}

/* Gauges: recomputed after every change; the pool is a handful of
 * connections, and only changed values are written to shared memory. */
static void
pool_gauges(pgpool_t *pool)
{
	static const enum metrics_gauge which[5] = {
		METRICS_DB_CONN_IDLE, METRICS_DB_CONN_BUSY, METRICS_DB_CONN_CONNECTING,
		METRICS_DB_CONN_DOWN, METRICS_DB_QUEUE_LENGTH,
	};
	int64_t v[5] = { 0, 0, 0, 0, 0 };

	for (int i = 0; i < pool->cfg.size; i++) {
		const pgconn_t *pc = &pool->conns[i];

		switch (pc->state) {
		case CONN_READY:
			v[pc->nfifo > 0 ? 1 : 0]++;
			break;
		case CONN_RESOLVING:
		case CONN_CONNECTING:
		case CONN_SETUP:
			v[2]++;
			break;
		case CONN_DOWN:
			v[3]++;
			break;
		}
	}
	v[4] = pool->queue.n;
	for (int i = 0; i < 5; i++) {
		if (v[i] != pool->gauges[i]) {
			pool->gauges[i] = v[i];
			metrics_gauge_set(which[i], v[i]);
		}
	}
}

/* The cancel thread. */

static void *
canceller_main(void *arg)
{
	canceller_t *k = arg;
	char         err[256];

	for (;;) {
		PGcancel *job;

		pthread_mutex_lock(&k->mu);
		while (k->n == 0 && !k->stop)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->n == 0) {
			pthread_mutex_unlock(&k->mu);
			break;
		}
		job = k->jobs[k->first];
		k->first = (k->first + 1) % CANCEL_QUEUE_MAX;
		k->n--;
		pthread_mutex_unlock(&k->mu);

		/* A failure only means the statement runs on until the server's
		 * statement_timeout; the query's owner has its answer already. */
		if (!PQcancel(job, err, sizeof(err)))
			log_warn("pgpool: cancel request failed: %s", err);
		PQfreeCancel(job);
	}
	return NULL;
}

static int
canceller_push(canceller_t *k, PGcancel *job)
{
	pthread_mutex_lock(&k->mu);
	if (!k->started) {
		sigset_t all, old;
		int      rc;

		/* Signals belong to the loop thread (signalfd or handlers
		 * written for one thread): the helper takes none. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&k->thread, NULL, canceller_main, k);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0) {
			pthread_mutex_unlock(&k->mu);
			log_error("pgpool: cannot start the cancel thread: %s", strerror(rc));
			return -1;
		}
		k->started = true;
	}
	if (k->n == CANCEL_QUEUE_MAX) {
		pthread_mutex_unlock(&k->mu);
		log_warn("pgpool: %d cancel requests already waiting; statement left to "
		         "statement_timeout", CANCEL_QUEUE_MAX);
		return -1;
	}
	k->jobs[(k->first + k->n) % CANCEL_QUEUE_MAX] = job;
	k->n++;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	return 0;
}

/* Sends what is still queued (a shutdown is when abandoned statements
 * matter most), then ends the thread.  PQcancel has no timeout of its own:
 * against a server that swallows packets this waits for TCP to give up,
 * within the master's shutdown_timeout. */
static void
canceller_stop(canceller_t *k)
{
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	if (k->started)
		pthread_join(k->thread, NULL);
	while (k->n > 0) {
		PQfreeCancel(k->jobs[k->first]);
		k->first = (k->first + 1) % CANCEL_QUEUE_MAX;
		k->n--;
	}
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
}

/* Queries. */

static const char *
stmt_name(const pgpool_t *pool, int stmt)
{
	return pool->cfg.stmts[stmt].name;
}

static void
query_free(pgpool_query_t *q)
{
	loop_timer_stop(q->pool->loop, &q->deadline);
	loop_timer_stop(q->pool->loop, &q->delay);
	free(q);
}

/* The one place a query ends: the owner hears once, after the query is
 * freed, so whatever the callback does (cancel siblings, send new
 * queries) it never meets this one half-alive. */
static void
query_finish(pgpool_query_t *q, const PGresult *res, const char *error)
{
	pgpool_cb cb = q->cb;
	void     *ud = q->ud;

	query_free(q);
	cb(ud, res, error);
}

static pgpool_query_t *
query_new(pgpool_t *pool, int stmt, const char *const *params, pgpool_cb cb, void *ud)
{
	int             np = pool->cfg.stmts[stmt].nparams;
	size_t          size = sizeof(pgpool_query_t) + (size_t)np * sizeof(char *);
	pgpool_query_t *q;
	char           *p;

	for (int i = 0; i < np; i++)
		size += strlen(params[i]) + 1;
	q = calloc(1, size);
	if (q == NULL)
		return NULL;
	q->pool = pool;
	q->stmt = stmt;
	q->cb = cb;
	q->ud = ud;
	q->nparams = np;
	p = (char *)&q->params[np];
	for (int i = 0; i < np; i++) {
		size_t len = strlen(params[i]) + 1;

		memcpy(p, params[i], len);
		q->params[i] = p;
		p += len;
	}
	loop_timer_init(&q->deadline, query_deadline_cb);
	loop_timer_init(&q->delay, query_delay_cb);
	return q;
}

/* Connections: watching the socket. */

/* force: the socket may have been replaced by one with the same number
 * (libpq closes and reopens it while trying hosts or SSL modes); the old
 * registration died with the old socket, so register anew. */
static int
conn_watch(pgconn_t *pc, uint32_t events, bool force)
{
	loop_t *loop = pc->pool->loop;
	int     fd = PQsocket(pc->pg);

	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (!force && pc->io.fd == fd) {
		if (pc->io.events == events)
			return 0;
		if (loop_io_mod(loop, &pc->io, events) == 0)
			return 0;
		if (errno != ENOENT)
			return -1;
	}
	loop_io_del(loop, &pc->io);
	return loop_io_add(loop, &pc->io, fd, events, conn_io_cb);
}

/* A failure found inside a callback path (sending from pgpool_exec,
 * called from another query's callback): closing the connection there
 * would free state the caller is still walking, so it happens from the
 * connection's timer, at once. */
static void
conn_break(pgconn_t *pc, const char *why)
{
	if (pc->broken)
		return;
	pc->broken = true;
	snprintf(pc->broken_why, sizeof(pc->broken_why), "%s", why);
	loop_timer_start(pc->pool->loop, &pc->timer, 0);
}

static void
conn_flush(pgconn_t *pc)
{
	int rc = PQflush(pc->pg);

	if (rc < 0) {
		conn_break(pc, PQerrorMessage(pc->pg));
		return;
	}
	if (conn_watch(pc, rc == 1 ? EPOLLIN | EPOLLOUT : EPOLLIN, false) < 0)
		conn_break(pc, strerror(errno));
}

/* Cancelling.
 *
 * A cancel request is not addressed to a statement: the server interrupts
 * whatever the backend runs when the request arrives.  In a pipeline the
 * backend runs the statements in order, so only the head of the FIFO (the
 * oldest unanswered one) can be the one executing; cancelling for any
 * other entry would interrupt an innocent statement of another request.
 * A dead entry further back (timed out, or abandoned with its page) is
 * dealt with when it reaches the head: conn_check_head runs on every
 * change of head.
 *
 * The race that remains: the head may finish between our decision and the
 * request's arrival, and the cancel then hits the next statement.  Two
 * things bound it: nothing new is sent on a connection with a cancel on
 * its way (cancel_pending), and a live statement that fails with
 * query_canceled (57014) is sent again, once, because it was not the
 * target (our own deadline expires before the server's statement_timeout,
 * which counts from a later start and has some slack on top). */
static void
conn_cancel_head(pgconn_t *pc)
{
	sent_t   *s = pc->fifo;
	PGcancel *job;

	s->cancel_sent = true;
	job = PQgetCancel(pc->pg);
	if (job == NULL) {
		log_warn("pgpool: cannot build a cancel request for statement %s",
		         stmt_name(pc->pool, s->stmt));
		return;
	}
	if (canceller_push(&pc->pool->canceller, job) < 0)
		PQfreeCancel(job);
	else
		metrics_add(METRICS_DB_CANCELLED, 1);
	pc->cancel_pending = true;
	/* By then the cancel, or else the server's statement_timeout, has
	 * ended the statement on any server we can still reach. */
	loop_timer_start(pc->pool->loop, &pc->cancel_timer,
	                 pc->pool->cfg.query_timeout + STATEMENT_TIMEOUT_SLACK_MS +
	                         pc->pool->cfg.connect_timeout);
}

/* Cancels the head if nobody wants its answer and it has had its grace.
 * Runs on every change of head. */
static void
conn_check_head(pgconn_t *pc)
{
	loop_t *loop = pc->pool->loop;
	sent_t *s = pc->fifo;
	int64_t ran;

	if (s != NULL && s->cancel_sent && !s->answered)
		return;   /* its answer is awaited (cancel_timer) */
	if (s == NULL || s->q != NULL || s->answered) {
		loop_timer_stop(loop, &pc->cancel_timer);
		return;
	}
	ran = loop_now(loop) - pc->head_since;
	if (ran >= CANCEL_GRACE_MS)
		conn_cancel_head(pc);
	else
		loop_timer_start(loop, &pc->cancel_timer, CANCEL_GRACE_MS - ran);
}

static void
conn_cancel_timer_cb(loop_timer_t *t)
{
	pgconn_t *pc = container_of(t, pgconn_t, cancel_timer);
	sent_t   *s = pc->fifo;

	if (s != NULL && s->cancel_sent && !s->answered) {
		/* A network that swallows packets, or a wedged server: the
		 * connection is of no use any more. */
		log_warn("pgpool: connection %d: statement %s still unanswered after its cancel; "
		         "reconnecting", pc->index, stmt_name(pc->pool, s->stmt));
		conn_break(pc, "no answer after a cancel request");
		return;
	}
	conn_check_head(pc);
}

/* Dispatch. */

static int64_t
conn_work_us(const pgconn_t *pc)
{
	int64_t work = 0;

	for (const sent_t *s = pc->fifo; s != NULL; s = s->next)
		if (!s->answered)
			work += s->cost_us;
	return work;
}

/* Fills the scratch arrays: each connection's work ahead and pipeline
 * length, or -1 work for one that takes nothing now. */
static void
plan_start(pgpool_t *pool)
{
	for (int i = 0; i < pool->cfg.size; i++) {
		pgconn_t *pc = &pool->conns[i];

		pool->plan_nfifo[i] = pc->nfifo;
		pool->plan_work[i] = pc->state != CONN_READY || pc->broken || pc->cancel_pending ?
		                             -1 : conn_work_us(pc);
	}
}

/* Where a statement costing cost goes, in the plan: the connection with
 * the least work ahead (then the fewest statements), where it answers
 * soonest.  In a batch planned costliest first, a statement that can
 * answer by the batch's end (*end, the latest answer so far) on a busier
 * connection goes to the busiest of those instead: the batch ends no
 * later and holds fewer of the server's backends, which compete for its
 * CPUs.  Returns the connection's index (the plan counts the statement
 * there), or -1 when every pipeline is full. */
static int
plan_pick(pgpool_t *pool, int64_t cost, int64_t *end)
{
	int      least = -1, packed = -1;
	int64_t *work = pool->plan_work;
	int     *n = pool->plan_nfifo;

	for (int i = 0; i < pool->cfg.size; i++) {
		if (work[i] < 0 || n[i] >= pool->cfg.pipeline_depth)
			continue;
		if (least < 0 || work[i] < work[least] || (work[i] == work[least] && n[i] < n[least]))
			least = i;
		if (end != NULL && *end > 0 && work[i] + cost <= *end &&
		    (packed < 0 || work[i] > work[packed] ||
		     (work[i] == work[packed] && n[i] < n[packed])))
			packed = i;
	}
	if (packed >= 0)
		least = packed;
	if (least < 0)
		return -1;
	work[least] += cost;
	n[least]++;
	if (end != NULL && work[least] > *end)
		*end = work[least];
	return least;
}

static pgconn_t *
pool_pick(pgpool_t *pool, int64_t cost)
{
	int i;

	plan_start(pool);
	i = plan_pick(pool, cost, NULL);
	return i >= 0 ? &pool->conns[i] : NULL;
}

/* A moving average that follows a quarter of each change: a pipeline's
 * answers can arrive together, so one statement's sample takes time that
 * was another's; averaged, each gets its share. */
static void
moving_average(int64_t *est, int64_t sample)
{
	*est = *est == 0 ? sample : *est + (sample - *est) / 4;
}

/* The round trip: the fastest answer ever seen to a lone statement or to
 * a connection's first SET, each of which is a round trip and a little.
 * (It never rises: a route that became longer makes the statements sent
 * alone look costlier by the difference.) */
static void
rtt_learn(pgpool_t *pool, int64_t sample)
{
	if (pool->rtt_us == 0 || sample < pool->rtt_us)
		pool->rtt_us = sample;
}

/* A statement answered: how long the server worked on it, from the moment
 * it headed its pipeline (less the round trip when it went out alone). */
static void
cost_learn(pgpool_t *pool, pgconn_t *pc, const sent_t *s)
{
	int64_t ran = clock_mono_us() - pc->head_since_us;

	if (s->first) {
		rtt_learn(pool, ran);
		ran -= pool->rtt_us;
	}
	moving_average(&pool->cost_us[s->stmt], ran > 1 ? ran : 1);
}

/* Queue or fail fast?  With no connection ready, a query waits only if a
 * connection is expected soon: at start-up, or while reconnecting after a
 * loss with no attempt failed yet.  Once an attempt has failed the
 * database is down for all we know; a client then gets a 503 at once,
 * instead of a worker holding its request until the deadline (504) and
 * piling up requests that would all hit a database coming back. */
static bool
pool_accepting(const pgpool_t *pool)
{
	for (int i = 0; i < pool->cfg.size; i++)
		if (pool->conns[i].state == CONN_READY && !pool->conns[i].broken)
			return true;
	return pool->failures == 0;
}

static void
query_send(pgconn_t *pc, pgpool_query_t *q)
{
	pgpool_t *pool = pc->pool;
	sent_t   *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		log_error("pgpool: out of memory sending statement %s", stmt_name(pool, q->stmt));
		qlist_push(&pool->queue, q, true);
		q->where = Q_QUEUED;
		return;
	}
	/* Each statement is its own sync segment: an error aborts only the
	 * rest of its segment, so one failing statement never takes its
	 * neighbours (other requests' statements) down with it. */
	if (!PQsendQueryPrepared(pc->pg, stmt_name(pool, q->stmt), q->nparams,
	                         (const char *const *)q->params, NULL, NULL, 0) ||
	    !PQpipelineSync(pc->pg)) {
		free(s);
		log_warn("pgpool: connection %d: cannot send statement %s: %s", pc->index,
		         stmt_name(pool, q->stmt), PQerrorMessage(pc->pg));
		conn_break(pc, PQerrorMessage(pc->pg));
		qlist_push(&pool->queue, q, true);
		q->where = Q_QUEUED;
		return;
	}
	s->q = q;
	s->stmt = q->stmt;
	s->cost_us = pool->cost_us[q->stmt];
	if (pc->fifo_tail != NULL) {
		pc->fifo_tail->next = s;
	} else {
		pc->fifo = s;
		pc->head_since = loop_now(pool->loop);
		pc->head_since_us = clock_mono_us();
		s->first = true;
	}
	pc->fifo_tail = s;
	pc->nfifo++;
	q->where = Q_SENT;
	q->conn = pc;
	q->sent = s;
	conn_flush(pc);
}

/* Sends q now if a connection can take it, else queues it (admitted
 * queries only: the bound is checked by pgpool_exec). */
static void
query_dispatch(pgpool_t *pool, pgpool_query_t *q, bool front)
{
	pgconn_t *pc = pool_pick(pool, pool->cost_us[q->stmt]);

	if (pc != NULL) {
		query_send(pc, q);
		return;
	}
	q->where = Q_QUEUED;
	qlist_push(&pool->queue, q, front);
}

static void
pool_dispatch_queue(pgpool_t *pool)
{
	pgconn_t *pc;

	while (pool->queue.head != NULL &&
	       (pc = pool_pick(pool, pool->cost_us[pool->queue.head->stmt])) != NULL) {
		pgpool_query_t *q = pool->queue.head;

		qlist_remove(&pool->queue, q);
		query_send(pc, q);
		/* A failed send puts q back at the head and marks pc broken,
		 * so pool_pick moves on to another connection or stops. */
	}
}

/* Everything waiting fails when the pool stops accepting. */
static void
pool_fail_waiting(pgpool_t *pool, const char *why)
{
	while (pool->queue.head != NULL) {
		pgpool_query_t *q = pool->queue.head;

		qlist_remove(&pool->queue, q);
		query_finish(q, NULL, why);
	}
}

/* Takes a live query out of wherever it waits: the delay list, the queue,
 * or a connection's pipeline (where its result will be discarded, and a
 * running head gets cancelled). */
static void
query_unlink(pgpool_query_t *q)
{
	pgpool_t *pool = q->pool;

	switch (q->where) {
	case Q_BATCHED:
		qlist_remove(&q->batch->queries, q);
		break;
	case Q_DELAYED:
		qlist_remove(&pool->delayed, q);
		break;
	case Q_QUEUED:
		qlist_remove(&pool->queue, q);
		break;
	case Q_SENT:
		q->sent->q = NULL;
		if (q->conn->fifo == q->sent)
			conn_check_head(q->conn);
		break;
	case Q_DETACHED:
		break;
	}
}

static void
query_deadline_cb(loop_timer_t *t)
{
	pgpool_query_t *q = container_of(t, pgpool_query_t, deadline);
	pgpool_t       *pool = q->pool;

	log_warn("pgpool: statement %s timed out after %lld ms", stmt_name(pool, q->stmt),
	         (long long)pool->cfg.query_timeout);
	if (q->where == Q_DETACHED) {
		log_error("pgpool: deadline of a detached statement %s (timers are stopped "
		          "before detaching)", stmt_name(pool, q->stmt));
		abort();
	}
	query_unlink(q);
	query_finish(q, NULL, PGPOOL_ERR_TIMEOUT);
	pool_gauges(pool);
}

static void
query_delay_cb(loop_timer_t *t)
{
	pgpool_query_t *q = container_of(t, pgpool_query_t, delay);
	pgpool_t       *pool = q->pool;

	qlist_remove(&pool->delayed, q);
	if (!pool_accepting(pool)) {
		query_finish(q, NULL, "no database connection");
		return;
	}
	query_dispatch(pool, q, false);
	pool_gauges(pool);
}

/* Results. */

static void
conn_ready(pgconn_t *pc)
{
	pgpool_t *pool = pc->pool;

	loop_timer_stop(pool->loop, &pc->timer);
	pc->state = CONN_READY;
	if (pc->failures > 0)
		log_info("pgpool: connection %d to the database is up again after %d failed "
		         "attempts", pc->index, pc->failures);
	else
		log_debug("pgpool: connection %d ready", pc->index);
	pc->failures = 0;
	pc->backoff = 0;
	pool->failures = 0;
	pool_dispatch_queue(pool);
}

static void
setup_result(pgconn_t *pc, const PGresult *res)
{
	pgpool_t   *pool = pc->pool;
	const char *msg;

	if (PQresultStatus(res) == PGRES_COMMAND_OK)
		return;
	pc->setup_failed = true;
	msg = PQresultErrorMessage(res);
	if (pc->setup_step < NSETUP) {
		log_error("pgpool: connection %d: session setup failed: %s", pc->index, msg);
		return;
	}
	/* Bad SQL will not fix itself: say so loudly, every statement, but
	 * once per reconnect cycle, not once per connection and attempt: the
	 * first connection to fail claims the cycle. */
	if (!pc->setup_loud && loop_now(pool->loop) >= pool->bad_sql_log_next) {
		pc->setup_loud = true;
		pool->bad_sql_log_next = loop_now(pool->loop) + pool->cfg.reconnect_max;
	}
	if (pc->setup_loud)
		log_error("pgpool: cannot prepare statement %s: %s",
		          stmt_name(pool, pc->setup_step - NSETUP), msg);
	else
		log_debug("pgpool: connection %d: cannot prepare statement %s: %s", pc->index,
		          stmt_name(pool, pc->setup_step - NSETUP), msg);
}

static void
setup_synced(pgconn_t *pc)
{
	pgpool_t *pool = pc->pool;

	if (++pc->setup_step == 1)
		rtt_learn(pool, clock_mono_us() - pc->head_since_us);
	if (pc->setup_step < NSETUP + pool->cfg.nstmts)
		return;
	if (pc->setup_failed)
		conn_break(pc, "session setup failed");
	else
		conn_ready(pc);
}

static void
query_result(pgconn_t *pc, const PGresult *res)
{
	pgpool_t       *pool = pc->pool;
	sent_t         *s = pc->fifo;
	pgpool_query_t *q;
	ExecStatusType  st = PQresultStatus(res);
	const char     *sqlstate, *msg;

	if (s == NULL) {
		log_error("pgpool: connection %d: a result with no statement in flight", pc->index);
		conn_break(pc, "protocol out of step");
		return;
	}
	if (s->answered)
		return;
	s->answered = true;
	q = s->q;
	if (st == PGRES_TUPLES_OK)
		cost_learn(pool, pc, s);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		if (q != NULL) {
			s->q = NULL;
			query_finish(q, res, NULL);
		}
		return;
	}

	sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (msg == NULL)
		msg = PQresStatus(st);
	if (q == NULL) {
		log_debug("pgpool: abandoned statement %s ended: %s", stmt_name(pool, s->stmt), msg);
		return;
	}
	s->q = NULL;
	if (sqlstate != NULL && strcmp(sqlstate, "57014") == 0 && !q->retried) {
		log_info("pgpool: statement %s hit by a cancel meant for another; sending it again",
		         stmt_name(pool, q->stmt));
		q->retried = true;
		q->sent = NULL;
		q->conn = NULL;
		query_dispatch(pool, q, true);
		return;
	}
	log_warn("pgpool: statement %s failed: %s (SQLSTATE %s)", stmt_name(pool, q->stmt), msg,
	         sqlstate != NULL ? sqlstate : "none");
	metrics_add(METRICS_DB_ERRORS, 1);
	query_finish(q, NULL, msg);
}

static void
conn_pop(pgconn_t *pc)
{
	sent_t *s = pc->fifo;

	if (s == NULL) {
		log_error("pgpool: connection %d: a sync with no statement in flight", pc->index);
		conn_break(pc, "protocol out of step");
		return;
	}
	pc->fifo = s->next;
	if (pc->fifo == NULL)
		pc->fifo_tail = NULL;
	pc->nfifo--;
	if (s->cancel_sent)
		pc->cancel_pending = false;
	if (s->q != NULL) {
		pgpool_query_t *q = s->q;

		log_error("pgpool: statement %s: the server sent no result", stmt_name(pc->pool, q->stmt));
		free(s);
		query_finish(q, NULL, "no result from the database");
	} else {
		free(s);
	}
	pc->head_since = loop_now(pc->pool->loop);
	pc->head_since_us = clock_mono_us();
	conn_check_head(pc);
}

static void
conn_read_results(pgconn_t *pc)
{
	while (pc->state >= CONN_SETUP && !PQisBusy(pc->pg)) {
		PGresult      *res = PQgetResult(pc->pg);
		ExecStatusType st;

		if (res == NULL) {
			if (!pc->expect_null)
				break;
			pc->expect_null = false;
			continue;
		}
		st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			pc->expect_null = false;
			if (pc->state == CONN_SETUP)
				setup_synced(pc);
			else
				conn_pop(pc);
		} else {
			pc->expect_null = true;
			if (pc->state == CONN_SETUP)
				setup_result(pc, res);
			else
				query_result(pc, res);
		}
		PQclear(res);
	}
	if (pc->state == CONN_READY)
		pool_dispatch_queue(pc->pool);
}

/* Connection life cycle. */

static void
conn_setup(pgconn_t *pc)
{
	pgpool_t   *pool = pc->pool;
	char        timeout[64];
	/* jit off: the statements are short keyset scans under a LIMIT whose
	 * cost estimates can still cross jit_above_cost on large tables, and
	 * compiling them costs ~200 ms on every execution.
	 * Generic plans: left to itself the server plans most of them anew on
	 * every execution (a parameter-specific plan looks cheaper), which is
	 * a third of a cold page's database time; their plans are the same
	 * index walk whatever the parameters, and ANALYZE still replans them. */
	const char *setup[NSETUP] = { timeout, "SET application_name = 'feedd'",
		                      "SET TimeZone = 'UTC'", "SET jit = off",
		                      "SET plan_cache_mode = force_generic_plan" };

	snprintf(timeout, sizeof(timeout), "SET statement_timeout = %lld",
	         (long long)(pool->cfg.query_timeout > 0 ?
	                             pool->cfg.query_timeout + STATEMENT_TIMEOUT_SLACK_MS : 0));
	if (PQsetnonblocking(pc->pg, 1) != 0 || !PQenterPipelineMode(pc->pg)) {
		conn_lost(pc, PQerrorMessage(pc->pg));
		return;
	}
	/* One sync per statement: a failing prepare is reported with its own
	 * message and does not hide errors in the statements after it. */
	for (int i = 0; i < NSETUP; i++) {
		if (!PQsendQueryParams(pc->pg, setup[i], 0, NULL, NULL, NULL, NULL, 0) ||
		    !PQpipelineSync(pc->pg)) {
			conn_lost(pc, PQerrorMessage(pc->pg));
			return;
		}
	}
	for (int i = 0; i < pool->cfg.nstmts; i++) {
		const pgpool_stmt_t *st = &pool->cfg.stmts[i];

		if (!PQsendPrepare(pc->pg, st->name, st->sql, st->nparams, NULL) ||
		    !PQpipelineSync(pc->pg)) {
			conn_lost(pc, PQerrorMessage(pc->pg));
			return;
		}
	}
	pc->state = CONN_SETUP;
	pc->setup_step = 0;
	pc->head_since_us = clock_mono_us();
	pc->setup_failed = false;
	pc->setup_loud = false;
	pc->expect_null = false;
	conn_flush(pc);
}

static void
conn_connect_poll(pgconn_t *pc)
{
	switch (PQconnectPoll(pc->pg)) {
	case PGRES_POLLING_READING:
		if (conn_watch(pc, EPOLLIN, true) < 0)
			conn_lost(pc, strerror(errno));
		break;
	case PGRES_POLLING_WRITING:
		if (conn_watch(pc, EPOLLOUT, true) < 0)
			conn_lost(pc, strerror(errno));
		break;
	case PGRES_POLLING_OK:
		conn_setup(pc);
		break;
	default:
		conn_lost(pc, PQerrorMessage(pc->pg));
		break;
	}
}

static void
conn_io_cb(loop_io_t *io, uint32_t revents)
{
	pgconn_t *pc = container_of(io, pgconn_t, io);
	pgpool_t *pool = pc->pool;

	if (pc->state == CONN_CONNECTING) {
		conn_connect_poll(pc);
		pool_gauges(pool);
		return;
	}
	if (pc->broken)
		return;
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (!PQconsumeInput(pc->pg)) {
			conn_lost(pc, PQerrorMessage(pc->pg));
			pool_gauges(pool);
			return;
		}
		conn_read_results(pc);
		if (pc->state >= CONN_SETUP && PQstatus(pc->pg) == CONNECTION_BAD) {
			conn_lost(pc, PQerrorMessage(pc->pg));
			pool_gauges(pool);
			return;
		}
	}
	/* libpq may hold output even after a read (nonblocking mode). */
	if (pc->state >= CONN_SETUP && !pc->broken)
		conn_flush(pc);
	pool_gauges(pool);
}

static void
conn_timer_cb(loop_timer_t *t)
{
	pgconn_t *pc = container_of(t, pgconn_t, timer);
	pgpool_t *pool = pc->pool;

	if (pc->broken) {
		char why[ERRMSG_MAX];

		memcpy(why, pc->broken_why, sizeof(why));
		conn_lost(pc, why);
	} else if (pc->state == CONN_DOWN) {
		metrics_add(METRICS_DB_RECONNECTS, 1);
		conn_start(pc);
	} else if (pc->state != CONN_READY) {
		char why[64];

		snprintf(why, sizeof(why), "no connection within %lld ms",
		         (long long)pool->cfg.connect_timeout);
		conn_lost(pc, why);
	}
	pool_gauges(pool);
}

/* libpq's default prints notices to stderr; they belong in the log. */
static void
conn_notice(void *arg, const char *message)
{
	pgconn_t *pc = arg;
	size_t    len = strlen(message);

	while (len > 0 && message[len - 1] == '\n')
		len--;
	log_debug("pgpool: connection %d: %.*s", pc->index, (int)len, message);
}

static void
conn_start(pgconn_t *pc)
{
	pgpool_t *pool = pc->pool;
	/* Keywords are applied in order: the conninfo (expanded from dbname)
	 * may name the application or tune the keepalives, but it cannot
	 * change the encoding the JSON output relies on, nor the addresses
	 * resolved for its host names.  The keepalives find an idle TCP
	 * connection that a network dropped silently within about a minute,
	 * instead of on the next query after the system's 2 hours. */
	const char *keys[10] = { "fallback_application_name", "keepalives_idle",
		                 "keepalives_interval", "keepalives_count", "dbname",
		                 "client_encoding" };
	const char *values[10] = { "feedd", "30", "10", "3", pool->conninfo, "UTF8" };
	int n = 6;

	/* One bound for the whole attempt: the host name lookup (when it
	 * waits for one) and the connection. */
	if (pool->cfg.connect_timeout > 0 && !loop_timer_active(&pc->timer))
		loop_timer_start(pool->loop, &pc->timer, pool->cfg.connect_timeout);
	/* libpq would resolve host names itself, with a getaddrinfo() that
	 * blocks: pgresolve looks them up off the loop, and libpq gets the
	 * addresses in hostaddr=. */
	if (pool->resolver != NULL) {
		pgresolve_addrs_t addrs;
		const char *why = NULL;
		int rc = pgresolve_get(pool->resolver, &addrs, &why);

		if (rc == 0) {
			pc->state = CONN_RESOLVING;
			return;
		}
		if (rc < 0) {
			conn_lost(pc, why);
			return;
		}
		keys[n] = "host";
		values[n++] = addrs.host;
		keys[n] = "hostaddr";
		values[n++] = addrs.hostaddr;
		if (addrs.port != NULL) {
			keys[n] = "port";
			values[n++] = addrs.port;
		}
	}
	keys[n] = NULL;
	values[n] = NULL;
	pc->pg = PQconnectStartParams(keys, values, 1);
	if (pc->pg == NULL) {
		conn_lost(pc, "out of memory");
		return;
	}
	if (PQstatus(pc->pg) == CONNECTION_BAD) {
		conn_lost(pc, PQerrorMessage(pc->pg));
		return;
	}
	PQsetNoticeProcessor(pc->pg, conn_notice, pc);
	pc->state = CONN_CONNECTING;
	/* libpq: before the first PQconnectPoll, wait for writability. */
	if (conn_watch(pc, EPOLLOUT, true) < 0)
		conn_lost(pc, strerror(errno));
}

/* The host name lookup ended: the connections waiting for it go on. */
static void
pool_resolved(void *arg)
{
	pgpool_t *pool = arg;

	for (int i = 0; i < pool->cfg.size; i++)
		if (pool->conns[i].state == CONN_RESOLVING)
			conn_start(&pool->conns[i]);
	pool_gauges(pool);
}

/* Detaches everything in flight, closes, schedules the reconnect, and
 * only then tells the owners: their callbacks see a consistent pool. */
static void
conn_lost(pgconn_t *pc, const char *why)
{
	pgpool_t  *pool = pc->pool;
	bool       was_ready = pc->state == CONN_READY;
	sent_t    *s = pc->fifo;
	int        inflight = 0;
	char       reason[ERRMSG_MAX];
	size_t     len;
	int64_t    delay;

	snprintf(reason, sizeof(reason), "%s", why != NULL && why[0] != '\0' ? why : "unknown error");
	len = strlen(reason);
	while (len > 0 && (reason[len - 1] == '\n' || reason[len - 1] == ' '))
		reason[--len] = '\0';

	loop_io_del(pool->loop, &pc->io);
	loop_timer_stop(pool->loop, &pc->timer);
	loop_timer_stop(pool->loop, &pc->cancel_timer);
	if (pc->pg != NULL)
		PQfinish(pc->pg);
	pc->pg = NULL;
	pc->state = CONN_DOWN;
	pc->fifo = pc->fifo_tail = NULL;
	pc->nfifo = 0;
	pc->broken = false;
	pc->cancel_pending = false;
	pc->expect_null = false;
	for (sent_t *i = s; i != NULL; i = i->next) {
		if (i->q != NULL) {
			i->q->where = Q_DETACHED;
			loop_timer_stop(pool->loop, &i->q->deadline);
			inflight++;
		}
	}
	metrics_add(METRICS_DB_ERRORS, 1);

	if (was_ready) {
		log_warn("pgpool: connection %d lost (%d statements in flight): %s", pc->index,
		         inflight, reason);
	} else {
		pc->failures++;
		pool->failures++;
		/* Once per outage of the whole pool, not per connection. */
		if (pool->failures == 1)
			log_warn("pgpool: connection %d: cannot connect: %s", pc->index, reason);
		else
			log_debug("pgpool: connection %d: attempt %d failed: %s", pc->index,
			          pc->failures, reason);
	}
	pc->backoff = pc->backoff == 0 ? BACKOFF_FIRST_MS : pc->backoff * 2;
	if (pc->backoff > pool->cfg.reconnect_max)
		pc->backoff = pool->cfg.reconnect_max;
	delay = pc->backoff > 0 ? pc->backoff : BACKOFF_FIRST_MS;
	loop_timer_start(pool->loop, &pc->timer, delay);

	while (s != NULL) {
		sent_t *next = s->next;

		/* A callback may cancel a later query of this list: it then
		 * clears s->q (Q_DETACHED) and frees the query itself. */
		if (s->q != NULL) {
			pgpool_query_t *q = s->q;

			s->q = NULL;
			query_finish(q, NULL, "database connection lost");
		}
		free(s);
		s = next;
	}
	if (!pool_accepting(pool))
		pool_fail_waiting(pool, "no database connection");
}

/* The interface. */

pgpool_t *
pgpool_create(loop_t *loop, const pgpool_config_t *cfg)
{
	pgpool_t   *pool;
	char       *err = NULL;
	PQconninfoOption *opts;
	const char *hook;

	opts = PQconninfoParse(cfg->conninfo != NULL ? cfg->conninfo : "", &err);
	if (opts == NULL) {
		log_error("pgpool: invalid db connection string: %s",
		          err != NULL ? err : "out of memory");
		PQfreemem(err);
		return NULL;
	}
	PQconninfoFree(opts);

	pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		goto oom;
	pool->loop = loop;
	pool->cfg = *cfg;
	if (pool->cfg.size < 1)
		pool->cfg.size = 1;
	if (pool->cfg.pipeline_depth < 1)
		pool->cfg.pipeline_depth = 1;
	if (pool->cfg.queue_max < 0)
		pool->cfg.queue_max = 0;
	if (pool->cfg.reconnect_max < BACKOFF_FIRST_MS)
		pool->cfg.reconnect_max = BACKOFF_FIRST_MS;
	pool->conninfo = strdup(cfg->conninfo != NULL ? cfg->conninfo : "");
	pool->conns = calloc((size_t)pool->cfg.size, sizeof(*pool->conns));
	pool->cost_us = calloc((size_t)(cfg->nstmts > 0 ? cfg->nstmts : 1), sizeof(*pool->cost_us));
	pool->plan_work = calloc((size_t)pool->cfg.size, sizeof(*pool->plan_work));
	pool->plan_nfifo = calloc((size_t)pool->cfg.size, sizeof(*pool->plan_nfifo));
	if (pool->conninfo == NULL || pool->conns == NULL || pool->cost_us == NULL ||
	    pool->plan_work == NULL || pool->plan_nfifo == NULL) {
		free(pool->conninfo);
		free(pool->conns);
		free(pool->cost_us);
		free(pool->plan_work);
		free(pool->plan_nfifo);
		free(pool);
		goto oom;
	}
	pthread_mutex_init(&pool->canceller.mu, NULL);
	pthread_cond_init(&pool->canceller.cv, NULL);
	for (int i = 0; i < 5; i++)
		pool->gauges[i] = -1;
	pool->resolver = pgresolve_create(loop, pool->conninfo, pool_resolved, pool);

	pool->slow_stmt = -1;
	hook = TESTHOOK("SLOW_SOURCE");
	if (hook != NULL) {
		const char *colon = strrchr(hook, ':');

		for (int i = 0; colon != NULL && i < pool->cfg.nstmts; i++) {
			if (strlen(pool->cfg.stmts[i].name) == (size_t)(colon - hook) &&
			    strncmp(pool->cfg.stmts[i].name, hook, (size_t)(colon - hook)) == 0) {
				pool->slow_stmt = i;
				pool->slow_ms = atoll(colon + 1);
			}
		}
		log_warn("pgpool: test hook SLOW_SOURCE=%s (%s)", hook,
		         pool->slow_stmt >= 0 ? "armed" : "no such statement");
	}

	for (int i = 0; i < pool->cfg.size; i++) {
		pgconn_t *pc = &pool->conns[i];

		pc->pool = pool;
		pc->index = i;
		pc->io.fd = -1;
		loop_timer_init(&pc->timer, conn_timer_cb);
		loop_timer_init(&pc->cancel_timer, conn_cancel_timer_cb);
	}
	for (int i = 0; i < pool->cfg.size; i++)
		conn_start(&pool->conns[i]);
	pool_gauges(pool);
	return pool;
oom:
	log_error("pgpool: out of memory");
	return NULL;
}

void
pgpool_destroy(pgpool_t *pool)
{
	if (pool == NULL)
		return;
	/* The owners are gone by now (the worker closed its clients first):
	 * everything is freed without a callback. */
	for (int i = 0; i < pool->cfg.size; i++) {
		pgconn_t *pc = &pool->conns[i];

		loop_io_del(pool->loop, &pc->io);
		loop_timer_stop(pool->loop, &pc->timer);
		loop_timer_stop(pool->loop, &pc->cancel_timer);
		while (pc->fifo != NULL) {
			sent_t *s = pc->fifo;

			pc->fifo = s->next;
			if (s->q != NULL)
				query_free(s->q);
			free(s);
		}
		if (pc->pg != NULL)
			PQfinish(pc->pg);
	}
	while (pool->queue.head != NULL) {
		pgpool_query_t *q = pool->queue.head;

		qlist_remove(&pool->queue, q);
		query_free(q);
	}
	while (pool->delayed.head != NULL) {
		pgpool_query_t *q = pool->delayed.head;

		qlist_remove(&pool->delayed, q);
		query_free(q);
	}
	canceller_stop(&pool->canceller);
	pgresolve_destroy(pool->resolver);
	metrics_gauge_set(METRICS_DB_CONN_IDLE, 0);
	metrics_gauge_set(METRICS_DB_CONN_BUSY, 0);
	metrics_gauge_set(METRICS_DB_CONN_CONNECTING, 0);
	metrics_gauge_set(METRICS_DB_CONN_DOWN, 0);
	metrics_gauge_set(METRICS_DB_QUEUE_LENGTH, 0);
	free(pool->conns);
	free(pool->cost_us);
	free(pool->plan_work);
	free(pool->plan_nfifo);
	free(pool->conninfo);
	free(pool);
}

pgpool_query_t *
pgpool_exec(pgpool_t *pool, pgpool_batch_t *batch, int stmt, const char *const *params,
            pgpool_cb cb, void *ud)
{
	pgpool_query_t *q;

	if (stmt < 0 || stmt >= pool->cfg.nstmts) {
		log_error("pgpool: no statement %d", stmt);
		return NULL;
	}
	if (!pool_accepting(pool)) {
		return NULL;
	}
	if (pool_pick(pool, 0) == NULL && pool->queue.n >= pool->cfg.queue_max) {
		metrics_add(METRICS_DB_QUEUE_REJECTED, 1);
		/* Under overload this happens per request: say it once a second. */
		if (loop_now(pool->loop) >= pool->reject_log_next) {
			log_warn("pgpool: %d statements already wait for a connection; rejecting",
			         pool->queue.n);
			pool->reject_log_next = loop_now(pool->loop) + 1000;
		}
		return NULL;
	}
	q = query_new(pool, stmt, params, cb, ud);
	if (q == NULL) {
		log_error("pgpool: out of memory queueing statement %s", stmt_name(pool, stmt));
		return NULL;
	}
	if (pool->cfg.query_timeout > 0)
		loop_timer_start(pool->loop, &q->deadline, pool->cfg.query_timeout);
	if (stmt == pool->slow_stmt) {
		q->where = Q_DELAYED;
		qlist_push(&pool->delayed, q, false);
		loop_timer_start(pool->loop, &q->delay, pool->slow_ms);
		return q;
	}
	if (batch != NULL) {
		q->where = Q_BATCHED;
		q->batch = batch;
		qlist_push(&batch->queries, q, false);
		return q;
	}
	query_dispatch(pool, q, false);
	pool_gauges(pool);
	return q;
}

/* The batch planned as a whole: connections chosen costliest first (see
 * plan_pick), then each connection's share sent cheapest first, so the
 * first answers come as early as they can and the batch ends no later. */
void
pgpool_batch_send(pgpool_t *pool, pgpool_batch_t *batch)
{
	int              n = batch->queries.n, *conn_of;
	pgpool_query_t **qs;
	int64_t          end = 0;

	if (n == 0)
		return;
	qs = malloc((size_t)n * sizeof(*qs));
	conn_of = malloc((size_t)n * sizeof(*conn_of));
	if (qs == NULL || conn_of == NULL) {
		free(qs);
		free(conn_of);
		log_warn("pgpool: out of memory planning %d statements; sending them as they come", n);
		n = 0;
	}
	/* Costliest first; equal costs (none known yet) keep their order. */
	for (int k = 0; k < n; k++) {
		pgpool_query_t *q = batch->queries.head;
		int             j = k;

		qlist_remove(&batch->queries, q);
		for (; j > 0 && pool->cost_us[qs[j - 1]->stmt] < pool->cost_us[q->stmt]; j--)
			qs[j] = qs[j - 1];
		qs[j] = q;
	}
	while (batch->queries.head != NULL) {
		pgpool_query_t *q = batch->queries.head;

		qlist_remove(&batch->queries, q);
		query_dispatch(pool, q, false);
	}
	if (n > 0) {
		plan_start(pool);
		for (int k = 0; k < n; k++)
			conn_of[k] = plan_pick(pool, pool->cost_us[qs[k]->stmt], &end);
		for (int c = 0; c < pool->cfg.size; c++) {
			for (int k = n - 1; k >= 0; k--) {
				/* A failed send breaks the connection (later, from the
				 * loop): the rest of its share waits for another. */
				if (conn_of[k] == c && pool->conns[c].broken)
					conn_of[k] = -1;
				else if (conn_of[k] == c)
					query_send(&pool->conns[c], qs[k]);
			}
		}
		for (int k = 0; k < n; k++) {
			if (conn_of[k] < 0) {
				qs[k]->where = Q_QUEUED;
				qlist_push(&pool->queue, qs[k], false);
			}
		}
		free(qs);
		free(conn_of);
	}
	pool_gauges(pool);
}

void
pgpool_cancel(pgpool_query_t *q)
{
	pgpool_t *pool;

	if (q == NULL)
		return;
	pool = q->pool;
	if (q->where == Q_DETACHED)
		q->sent->q = NULL;
	else
		query_unlink(q);
	query_free(q);
	pool_gauges(pool);
}

bool
pgpool_ready(const pgpool_t *pool)
{
	if (pool == NULL)
		return false;
	for (int i = 0; i < pool->cfg.size; i++)
		if (pool->conns[i].state == CONN_READY && !pool->conns[i].broken)
			return true;
	return false;
}

int
pgpool_room(const pgpool_t *pool)
{
	int room = 0;

	if (!pool_accepting(pool))
		return 0;
	for (int i = 0; i < pool->cfg.size; i++) {
		const pgconn_t *pc = &pool->conns[i];

		if (pc->state == CONN_READY && !pc->broken && !pc->cancel_pending)
			room += pool->cfg.pipeline_depth - pc->nfifo;
	}
	return room + pool->cfg.queue_max - pool->queue.n;
}

const char *
pgpool_error(const pgpool_t *pool)
{
	if (!pool_accepting(pool))
		return "no database connection";
	return "database busy (query queue full)";
}

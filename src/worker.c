/* A worker process: the event loop, accepting, timers, draining. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "feed_sources.h"
#include "log.h"
#include "metrics.h"
#include "page_files.h"
#include "pgpool.h"
#include "testhook.h"
#include "watchdog.h"
#include "worker.h"

#define ACCEPT_PAUSE_MS  100 /* after EMFILE: the retry */
#define DRAIN_ACCEPT_MAX 512 /* a listen backlog's worth: a flood cannot hold a drain */

typedef struct listen_io {
	loop_io_t io;
	int fd;
} listen_io_t;

/* One worker per process: state lives in statics so signal and accept
 * callbacks, which get only their io or timer, can reach it. */
static worker_t W;
static listen_io_t listens[CONFIG_MAX_LISTEN];
static int nlistens;
static int sigfd = -1;
static loop_io_t sig_io;
static loop_timer_t pause_timer; /* accepts paused: out of descriptors */
static loop_timer_t drain_timer; /* bound of a SIGTERM drain */
static loop_timer_t beat_timer;  /* the watchdog's sign of life */
static bool out_of_fds;          /* an EMFILE episode is running (logged once) */
static pgpool_stmt_t stmts[FEED_SRC_COUNT];

static void accept_cb(loop_io_t *io, uint32_t revents);

static void
accept_start(void)
{
	if (W.accepting || W.draining)
		return;
	for (int i = 0; i < nlistens; i++) {
		/* The sockets are this worker's position's (see the master's
		 * listen_open); during a reload the old worker of the position
		 * shares them until it drains, and EPOLLEXCLUSIVE wakes one of
		 * the two per connection rather than both. */
		if (loop_io_add(W.loop, &listens[i].io, listens[i].fd, EPOLLIN | EPOLLEXCLUSIVE,
		                accept_cb) < 0)
			log_error("cannot watch a listen socket: %s", strerror(errno));
	}
	W.accepting = true;
}

static void
accept_stop(void)
{
	if (!W.accepting)
		return;
	for (int i = 0; i < nlistens; i++)
		loop_io_del(W.loop, &listens[i].io);
	W.accepting = false;
}

/* Accepts until the backlog is empty, or budget connections (< 0: no
 * bound).  Returns false when accepting must pause: accept itself
 * failing. */
static bool
accept_from(int fd, int budget)
{
	for (int n = 0; budget < 0 || n < budget; n++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int cfd;

		cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			switch (errno) {
			case EAGAIN:
				return true;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* The connection stays in the backlog and the
				 * socket stays readable: retrying at once would
				 * spin.  Other workers may have room meanwhile. */
				if (!out_of_fds)
					log_error("accept: %s: pausing accepts", strerror(errno));
				out_of_fds = true;
				return false;
			default:
				/* Unexpected, perhaps lasting: paused too, so it is
				 * logged at most once per pause. */
				log_error("accept: %s", strerror(errno));
				return false;
			}
		}
		if (out_of_fds) {
			log_info("accepting again");
			out_of_fds = false;
		}
		if (W.nconns >= W.cfg->max_connections) {
			metrics_add(METRICS_CONNECTIONS_REJECTED, 1);
			conn_reject(cfd);
			continue;
		}
		/* conn_accept owns cfd, and closes it when it fails. */
		if (conn_accept(&W, cfd, (struct sockaddr *)&ss, len) != NULL)
			metrics_add(METRICS_CONNECTIONS_ACCEPTED, 1);
	}
	return true;
}

static void
accept_pause(void)
{
	accept_stop();
	loop_timer_start(W.loop, &pause_timer, ACCEPT_PAUSE_MS);
}

static void
accept_cb(loop_io_t *io, uint32_t revents)
{
	listen_io_t *l = container_of(io, listen_io_t, io);

	/* One per wake-up, as nginx without multi_accept: the connections
	 * already open get their turn between two accepts. */
	if (!accept_from(l->fd, 1))
		accept_pause();
}

/* Out of descriptors: one accept pass per tick until accept works again. */
static void
pause_cb(loop_timer_t *t)
{
	bool ok = true;

	if (W.draining)
		return;
	for (int i = 0; i < nlistens && ok; i++)
		ok = accept_from(listens[i].fd, -1);
	if (!ok) {
		loop_timer_start(W.loop, &pause_timer, ACCEPT_PAUSE_MS);
		return;
	}
	accept_start();
}

void
worker_conn_opened(worker_t *w)
{
	w->nconns++;
	metrics_gauge_add(METRICS_OPEN_CONNECTIONS, 1);
}

void
worker_conn_closed(worker_t *w)
{
	w->nconns--;
	metrics_gauge_add(METRICS_OPEN_CONNECTIONS, -1);
	if (w->draining && w->nconns <= 0)
		loop_stop(w->loop);
}

/* The watchdog's sign of life (see watchdog.c), and its test hook. */

/* The loop turns: tell the master, with the clock's time rather than the
 * loop's cached one, which is as old as the last wake-up. */
static void
beat_cb(loop_timer_t *t)
{
	watchdog_beat(W.slot, clock_mono_ms());
	loop_timer_start(W.loop, t, watchdog_beat_interval(W.cfg->worker_watchdog));
}

/* A loop that stops for good, for the watchdog's tests: the first worker
 * to create the file FEEDD_TEST_WORKER_HANG sleeps for ever; its successors
 * find the file and serve.  With FEEDD_TEST_WORKER_HANG_DEAF it also
 * blocks SIGABRT, so that only SIGKILL ends it. */
static void
hang_cb(loop_timer_t *t)
{
	const char *path = TESTHOOK("WORKER_HANG");
	struct rlimit no_core = {0, 0};
	int fd;

	(void)t;
	if (path == NULL || (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return;
	close(fd);
	setrlimit(RLIMIT_CORE, &no_core); /* a test leaves no core file behind */
	if (TESTHOOK("WORKER_HANG_DEAF") != NULL) {
		sigset_t abrt;

		sigemptyset(&abrt);
		sigaddset(&abrt, SIGABRT);
		sigprocmask(SIG_BLOCK, &abrt, NULL);
	}
	log_info("test hook: this worker's event loop stops here");
	for (;;)
		sleep(60);
}

/* Draining and signals. */

static void
drain_cb(loop_timer_t *t)
{
	log_warn("shutdown_timeout passed with %d connections open: closing them", W.nconns);
	conn_close_all(&W);
	loop_stop(W.loop);
}

static void
drain_start(bool bounded)
{
	if (bounded && !loop_timer_active(&drain_timer))
		loop_timer_start(W.loop, &drain_timer, W.cfg->shutdown_timeout);
	if (W.draining)
		return;
	accept_stop();
	loop_timer_stop(W.loop, &pause_timer);
	/* What the kernel has queued for us is served, not reset: after a
	 * reload that lowered workers, or at shutdown, this worker may be the
	 * last holder of its sockets.  (Connections completed between this
	 * pass and the close are still reset; net.ipv4.tcp_migrate_req hands
	 * them to the other workers instead, see feedd(8).) */
	for (int i = 0; i < nlistens; i++)
		(void)accept_from(listens[i].fd, DRAIN_ACCEPT_MAX);
	W.draining = true;
	/* Our copies go now: a listen address removed by a reload closes when
	 * the last old worker lets go of it. */
	for (int i = 0; i < nlistens; i++)
		close(listens[i].fd);
	nlistens = 0;
	conn_drain_all(&W);
	if (W.nconns <= 0)
		loop_stop(W.loop);
}

static void
signal_cb(loop_io_t *io, uint32_t revents)
{
	struct signalfd_siginfo si;

	while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
			log_info("SIGTERM: finishing %d connections within shutdown_timeout",
			         W.nconns);
			drain_start(true);
			break;
		case SIGQUIT:
			log_info("SIGQUIT: finishing %d connections", W.nconns);
			drain_start(false);
			break;
		case SIGINT:
			log_info("SIGINT: closing %d connections", W.nconns);
			W.draining = true;
			accept_stop();
			conn_close_all(&W);
			loop_stop(W.loop);
			break;
		case SIGUSR1:
			log_reopen();
			break;
		}
	}
}

static int
signals_setup(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	/* The master's reload and flush are for the master; a stray one sent
	 * to a worker must not kill it. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	if (sigprocmask(SIG_SETMASK, &set, NULL) < 0) {
		log_error("sigprocmask: %s", strerror(errno));
		return -1;
	}
	sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sigfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Started as root with a user configured: become that user for good, or
 * refuse to serve. */
static int
drop_privileges(const config_t *cfg)
{
	struct passwd *pw;
	gid_t gid;

	if (geteuid() != 0 || cfg->user == NULL || cfg->user[0] == '\0')
		return 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		log_error("user \"%s\" not found", cfg->user);
		return -1;
	}
	gid = pw->pw_gid;
	if (cfg->group != NULL && cfg->group[0] != '\0') {
		struct group *gr = getgrnam(cfg->group);

		if (gr == NULL) {
			log_error("group \"%s\" not found", cfg->group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (setgid(gid) < 0) {
		log_error("setgid(%ld): %s", (long)gid, strerror(errno));
		return -1;
	}
	if (initgroups(cfg->user, gid) < 0) {
		log_error("initgroups(%s): %s", cfg->user, strerror(errno));
		return -1;
	}
	if (setuid(pw->pw_uid) < 0) {
		log_error("setuid(%ld): %s", (long)pw->pw_uid, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
		log_error("still able to regain root after switching to %s", cfg->user);
		return -1;
	}
	return 0;
}

static pgpool_t *
pool_create(const config_t *cfg)
{
	for (int i = 0; i < FEED_SRC_COUNT; i++) {
		stmts[i].name = feed_source_defs[i].name;
		stmts[i].sql = feed_source_defs[i].sql;
		stmts[i].nparams = FEED_SOURCE_NPARAMS;
	}
	return pgpool_create(W.loop, &(pgpool_config_t){
	                                     .conninfo = cfg->db,
	                                     .size = cfg->db_pool_size,
	                                     .queue_max = cfg->db_queue_size,
	                                     /* A connection takes a whole page: one
	                                      * round trip even with db_pool_size 1. */
	                                     .pipeline_depth = FEED_SRC_COUNT,
	                                     .query_timeout = cfg->db_query_timeout,
	                                     .connect_timeout = cfg->db_connect_timeout,
	                                     .reconnect_max = cfg->db_reconnect_max,
	                                     .stmts = stmts,
	                                     .nstmts = FEED_SRC_COUNT,
	                             });
}

/* worker_yield: after a pass over the ready connections, whatever else
 * waits for this core (another worker, the database, a client on the same
 * machine) runs before our next pass, instead of after our time slice:
 * under load a worker always finds more work and would otherwise never
 * leave the core of its own accord (bench/README, "Yielding").  With a
 * core to itself this is one system call that returns at once. */
static void
yield_core(loop_t *loop)
{
	(void)loop;
	sched_yield();
}

void
worker_main(const config_t *cfg, int slot, const int *listen_fds, int nlisten, struct cache *cache)
{
	char role[32];
	int status = WORKER_EXIT_OK;

	snprintf(role, sizeof(role), "worker %d", slot);
	log_set_role(role);
	metrics_set_slot(slot);
	W.cfg = cfg;
	W.cache = cache;
	W.slot = slot;

	if (signals_setup() < 0)
		exit(1);
	/* The respawn and fatal-exit paths of the master, on demand: every
	 * worker, or the one of slot WORKER_EXIT_SLOT. */
	const char *exit_hook = TESTHOOK("WORKER_EXIT");
	const char *exit_slot = TESTHOOK("WORKER_EXIT_SLOT");

	if (exit_hook != NULL && (exit_slot == NULL || atoi(exit_slot) == slot)) {
		log_info("test hook: exiting with status %s", exit_hook);
		exit(atoi(exit_hook));
	}
	if (drop_privileges(cfg) < 0) {
		log_error("refusing to serve with the master's privileges");
		exit(WORKER_EXIT_FATAL);
	}
	W.loop = loop_create();
	if (W.loop == NULL) {
		log_error("event loop: %s", strerror(errno));
		exit(1);
	}
	if (cfg->worker_yield)
		loop_set_after_io(W.loop, yield_core);
	loop_timer_init(&pause_timer, pause_cb);
	loop_timer_init(&drain_timer, drain_cb);
	loop_timer_init(&beat_timer, beat_cb);
	if (cfg->worker_watchdog > 0)
		beat_cb(&beat_timer);
	if (TESTHOOK("WORKER_HANG") != NULL) {
		static loop_timer_t hang_timer;

		loop_timer_init(&hang_timer, hang_cb);
		loop_timer_start(W.loop, &hang_timer, 0);
	}
	if (loop_io_add(W.loop, &sig_io, sigfd, EPOLLIN, signal_cb) < 0) {
		log_error("event loop: %s", strerror(errno));
		exit(1);
	}

	metrics_set_cache(cache);
	if (cache != NULL && cfg->cache_sendfile_size > 0) {
		W.page_files = page_files_create(cfg->cache_sendfile_size);
		if (W.page_files == NULL)
			log_error("page files: out of memory; cached pages are sent by copy");
	}
	{
		/* metrics keeps the pointer: the array lives as long as the worker. */
		static const char *source_names[FEED_SRC_COUNT];

		for (int i = 0; i < FEED_SRC_COUNT; i++)
			source_names[i] = feed_source_defs[i].name;
		metrics_set_source_names(source_names, FEED_SRC_COUNT);
	}
	W.pool = pool_create(cfg);
	if (W.pool == NULL)
		log_error("no database pool: only /healthz and static files will work");

	for (int i = 0; i < nlisten; i++)
		listens[i].fd = listen_fds[i];
	nlistens = nlisten;
	accept_start();

	if (loop_run(W.loop) < 0) {
		log_error("event loop: %s", strerror(errno));
		status = 1;
	}

	conn_close_all(&W);
	page_files_destroy(W.page_files);
	if (W.pool != NULL)
		pgpool_destroy(W.pool);
	accept_stop();
	for (int i = 0; i < nlistens; i++)
		close(listens[i].fd);
	loop_io_del(W.loop, &sig_io);
	loop_destroy(W.loop);
	close(sigfd);
	log_debug("exiting");
	exit(status);
}

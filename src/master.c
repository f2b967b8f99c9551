/* The master process: sockets, pid file, workers, signals, reload, shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "log.h"
#include "loop.h"
#include "master.h"
#include "metrics.h"
#include "notify.h"
#include "watchdog.h"
#include "worker.h"

#define LISTEN_BACKLOG   511
#define RESPAWN_MIN_MS   100
#define RESPAWN_MAX_MS   5000
#define RESPAWN_RESET_MS 10000 /* a worker that lived this long resets the back-off */
#define KILL_GRACE_MS    1000  /* after a bound, before SIGKILL */

/* A listen address: a socket per worker position (see listen_open). */
typedef struct listener {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char name[128]; /* as written in the config */
	int *fds;       /* [position]; -1 once the position's worker is left dead */
	int nfds;
} listener_t;

/* One metrics slot and the process that writes it. */
typedef enum proc_state {
	PROC_FREE,
	PROC_RUNNING, /* current generation */
	PROC_WAITING, /* current generation, dead, respawn at respawn_at */
	PROC_FATAL,   /* current generation, exited WORKER_EXIT_FATAL: left dead */
	PROC_OLD,     /* an earlier generation, draining after a reload */
} proc_state_t;

typedef struct proc {
	proc_state_t state;
	pid_t pid;
	int64_t started;
	int64_t backoff;
	int64_t respawn_at;
	int pos;             /* worker position: whose listen sockets it accepts on */
	int64_t watchdog;    /* worker_watchdog it was started with (ms, 0 = off) */
	int64_t watchdog_at; /* when the watchdog sent it SIGABRT, 0 = not yet */
} proc_t;

static struct master {
	config_t *cfg;
	const char *config_path;
	pid_t pid;
	loop_t *loop;
	int sigfd;
	loop_io_t sig_io;
	loop_timer_t respawn_timer;
	loop_timer_t kill_timer;
	loop_timer_t watchdog_timer;
	loop_timer_t systemd_timer; /* WATCHDOG=1 to systemd */
	int64_t systemd_ping_ms;
	listener_t ls[CONFIG_MAX_LISTEN];
	int nls;
	cache_t *cache;
	bool metrics;
	proc_t *procs;
	int nprocs;   /* metrics slots: room for a reload's overlap */
	int stopping; /* 0, or the signal that started the shutdown */
	int exit_status;
	bool pid_written;
	uid_t uid; /* workers switch to these when started as root */
	gid_t gid;
	bool switch_user;
} M = {.sigfd = -1};

/* Configuration checks shared by start-up and reload. */

static int
resolve_workers(config_t *cfg)
{
	if (cfg->workers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->workers = n > 0 ? (int)n : 1;
	}
	return cfg->workers;
}

/* Looks up user/group now, in the master, so a typo fails the start or the
 * reload with a clear message instead of every worker exiting fatally. */
static int
resolve_user(const config_t *cfg, uid_t *uid, gid_t *gid, bool *do_switch)
{
	*do_switch = false;
	if (cfg->user == NULL || cfg->user[0] == '\0') {
		if (cfg->group != NULL && cfg->group[0] != '\0')
			log_warn("group \"%s\" ignored: it needs user", cfg->group);
		return 0;
	}
	errno = 0;
	struct passwd *pw = getpwnam(cfg->user);

	if (pw == NULL) {
		log_error("user \"%s\": %s", cfg->user, errno ? strerror(errno) : "no such user");
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (cfg->group != NULL && cfg->group[0] != '\0') {
		errno = 0;
		struct group *gr = getgrnam(cfg->group);

		if (gr == NULL) {
			log_error("group \"%s\": %s", cfg->group,
			          errno ? strerror(errno) : "no such group");
			return -1;
		}
		*gid = gr->gr_gid;
	}
	if (geteuid() != 0) {
		if (*uid != geteuid())
			log_warn("user \"%s\" ignored: feedd was not started as root", cfg->user);
		return 0;
	}
	*do_switch = true;
	return 0;
}

/* Listen sockets. */

/* "127.0.0.1:8080", "[::1]:8080", "*:8080", "host:8080" or "8080". */
static int
listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *port, *end;
	bool bracket = false;
	char *ep;
	long p;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			goto bad;
		if ((size_t)(end - s - 1) >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		port = end + 2;
		bracket = true;
	} else if ((end = strrchr(s, ':')) != NULL) {
		if ((size_t)(end - s) >= sizeof(host))
			goto bad;
		memcpy(host, s, (size_t)(end - s));
		host[end - s] = '\0';
		port = end + 1;
	} else {
		strcpy(host, "*");
		port = s;
	}
	errno = 0;
	p = strtol(port, &ep, 10);
	if (port[0] < '0' || port[0] > '9' || *ep != '\0' || errno || p < 1 || p > 65535)
		goto bad;

	memset(ss, 0, sizeof(*ss));
	if (!bracket && (host[0] == '\0' || strcmp(host, "*") == 0)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons((uint16_t)p);
		*len = sizeof(*sin);
		return 0;
	}
	if (!bracket) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)p);
			*len = sizeof(*sin);
			return 0;
		}
	}
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)p);
			*len = sizeof(*sin6);
			return 0;
		}
	}
	if (bracket)
		goto bad;
	{
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
		int rc = getaddrinfo(host, port, &hints, &res);

		if (rc != 0) {
			log_error("listen \"%s\": %s", s, gai_strerror(rc));
			return -1;
		}
		if (res->ai_next != NULL)
			log_warn("listen \"%s\": host has several addresses, using the first", s);
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		freeaddrinfo(res);
		return 0;
	}
bad:
	log_error("listen \"%s\": expected ADDRESS:PORT, [IPV6]:PORT, *:PORT or PORT", s);
	return -1;
}

/* One socket per worker position, all bound to the address with
 * SO_REUSEPORT: the kernel spreads new connections over them by hash.
 * Workers sharing one socket took turns badly: the worker that had just
 * accepted was first in the wait queue again, and at 64 keep-alive
 * clients one worker held them all. */
static int
listen_open(const listener_t *l, int pos)
{
	int on = 1;
	int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		log_error("listen %s: socket: %s", l->name, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0) {
		log_error("listen %s: SO_REUSEADDR: %s", l->name, strerror(errno));
		goto fail;
	}
	if (pos >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0) {
		log_error("listen %s: SO_REUSEPORT: %s", l->name, strerror(errno));
		goto fail;
	}
	/* "[::]:80" means IPv6 only, as in nginx: IPv4 is its own listen line,
	 * whatever net.ipv6.bindv6only says. */
	if (l->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) {
		log_error("listen %s: IPV6_V6ONLY: %s", l->name, strerror(errno));
		goto fail;
	}
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0) {
		log_error("listen %s: bind: %s", l->name, strerror(errno));
		goto fail;
	}
	if (pos < 0)
		return fd;
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		log_error("listen %s: listen: %s", l->name, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* SO_REUSEPORT would let feedd join a group some other program (or
 * another feedd) listens with, and quietly share its traffic.  A bind
 * without it fails where anybody listens on the address. */
static int
listen_check_free(const listener_t *l)
{
	int fd = listen_open(l, -1);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static bool
addr_equal(const listener_t *a, const listener_t *b)
{
	return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static const listener_t *
listen_find(const listener_t *ls, int n, const listener_t *l)
{
	for (int i = 0; i < n; i++)
		if (addr_equal(&ls[i], l))
			return &ls[i];
	return NULL;
}

/* Whether position pos of l, built by listen_setup, holds a socket it
 * reused from M.ls rather than one it opened. */
static bool
listen_owned(const listener_t *l, int pos)
{
	const listener_t *cur = listen_find(M.ls, M.nls, l);

	return cur != NULL && pos < cur->nfds && cur->fds[pos] == l->fds[pos];
}

/* Closes the sockets of ls[0..n) that are not also M.ls's, and frees. */
static void
listen_discard(listener_t *ls, int n)
{
	for (int i = 0; i < n; i++) {
		for (int p = 0; p < ls[i].nfds; p++)
			if (ls[i].fds[p] >= 0 && !listen_owned(&ls[i], p))
				close(ls[i].fds[p]);
		free(ls[i].fds);
		ls[i].fds = NULL;
	}
}

/* Builds the listener set of cfg, a socket per worker position, into
 * out.  Sockets M.ls already has for an address and position are reused
 * (the same socket goes to the next worker of that position, so nothing
 * queued on it is lost); the rest are opened.  On failure every socket
 * opened here is closed and M.ls is untouched. */
static int
listen_setup(const config_t *cfg, listener_t *out, int *nout)
{
	int n = 0;

	for (int i = 0; i < cfg->nlisten; i++) {
		listener_t *l = &out[n];
		const listener_t *cur;

		memset(l, 0, sizeof(*l));
		snprintf(l->name, sizeof(l->name), "%s", cfg->listen[i]);
		if (listen_parse(cfg->listen[i], &l->addr, &l->addrlen) < 0)
			goto fail;
		if (listen_find(out, n, l) != NULL) {
			log_warn("listen %s given twice", l->name);
			continue;
		}
		l->fds = malloc((size_t)cfg->workers * sizeof(*l->fds));
		if (l->fds == NULL) {
			log_error("listen %s: out of memory", l->name);
			goto fail;
		}
		n++;
		cur = listen_find(M.ls, M.nls, l);
		if (cur == NULL && listen_check_free(l) < 0)
			goto fail;
		for (int p = 0; p < cfg->workers; p++) {
			l->fds[p] = cur != NULL && p < cur->nfds ? cur->fds[p] : -1;
			if (l->fds[p] < 0 && (l->fds[p] = listen_open(l, p)) < 0)
				goto fail;
			l->nfds = p + 1;
		}
	}
	*nout = n;
	return 0;
fail:
	listen_discard(out, n);
	return -1;
}

/* Closes l's sockets of positions from on, and frees its table. */
static void
listener_release(listener_t *l, int from)
{
	for (int p = from; p < l->nfds; p++)
		if (l->fds[p] >= 0)
			close(l->fds[p]);
	free(l->fds);
	l->fds = NULL;
}

/* Closes the sockets of M.ls that next does not keep, then installs next. */
static void
listen_replace(listener_t *next, int nnext)
{
	for (int i = 0; i < M.nls; i++) {
		const listener_t *kept = listen_find(next, nnext, &M.ls[i]);

		if (kept == NULL)
			log_info("closing listen %s", M.ls[i].name);
		listener_release(&M.ls[i], kept != NULL ? kept->nfds : 0);
	}
	if (nnext > 0)
		memcpy(M.ls, next, (size_t)nnext * sizeof(*next));
	M.nls = nnext;
}

/* A worker position left dead, or dying again and again: new connections
 * must not wait on its sockets for a worker that will not come soon. */
static void
listen_close_position(int pos)
{
	for (int i = 0; i < M.nls; i++) {
		if (pos < M.ls[i].nfds && M.ls[i].fds[pos] >= 0) {
			close(M.ls[i].fds[pos]);
			M.ls[i].fds[pos] = -1;
		}
	}
}

/* Opens the sockets listen_close_position closed, for the position's next
 * worker. */
static int
listen_open_position(int pos)
{
	for (int i = 0; i < M.nls; i++) {
		listener_t *l = &M.ls[i];

		if (pos < l->nfds && l->fds[pos] < 0 && (l->fds[pos] = listen_open(l, pos)) < 0)
			return -1;
	}
	return 0;
}

static void
listen_close_all(void)
{
	for (int i = 0; i < M.nls; i++)
		listener_release(&M.ls[i], 0);
	M.nls = 0;
}

/* Pid file. */

/* 0: nobody else runs; -1: a live feedd holds the file (logged). */
static int
pidfile_check(const char *path)
{
	char buf[64], comm[64];
	FILE *f;
	long pid;
	char *end;

	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		log_error("pid file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	pid = strtol(buf, &end, 10);
	if (pid <= 0 || (*end != '\n' && *end != '\0') || pid == getpid())
		goto stale;
	if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
		goto stale;
	/* A live process with a recycled pid (after a reboot) is not us. */
	snprintf(buf, sizeof(buf), "/proc/%ld/comm", pid);
	f = fopen(buf, "re");
	if (f != NULL) {
		bool ours = fgets(comm, sizeof(comm), f) != NULL && strncmp(comm, "feedd", 5) == 0;

		fclose(f);
		if (!ours)
			goto stale;
	}
	log_error("feedd is already running with pid %ld (pid file %s)", pid, path);
	return -1;
stale:
	log_warn("replacing stale pid file %s", path);
	return 0;
}

static int
pidfile_write(const char *path)
{
	char buf[32];
	int fd, len;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		/* The default lives in /run/feedd, which systemd's RuntimeDirectory
		 * makes; started by hand, make the one missing level ourselves. */
		char dir[4096];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0755) == 0)
				log_info("created %s for the pid file", dir);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		}
	}
	if (fd < 0) {
		log_error("pid file %s: %s", path, strerror(errno));
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)len) != len) {
		log_error("pid file %s: write: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

static bool
has_pid_file(const config_t *cfg)
{
	return cfg->pid_file != NULL && cfg->pid_file[0] != '\0';
}

/* The cache's shm name belongs to this instance: derived from the pid file
 * (absolute), which two live instances can never share. */
static void
cache_name(const config_t *cfg, const char *config_path, char *out, size_t outlen)
{
	const char *key = has_pid_file(cfg) ? cfg->pid_file : config_path;
	uint64_t h = 14695981039346656037ull; /* FNV-1a */
	char cwd[4096];

	if (key[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL) {
		for (const char *p = cwd; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		h = (h ^ '/') * 1099511628211ull;
	}
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	snprintf(out, outlen, "/feedd-%016llx", (unsigned long long)h);
}

/* Log files are opened by the master; workers that switched user reopen
 * them on SIGUSR1, which needs them to own the files. */
static void
chown_logs(void)
{
	const char *paths[2] = {M.cfg->error_log, M.cfg->access_log};

	if (!M.switch_user)
		return;
	for (int i = 0; i < 2; i++) {
		const char *p = paths[i];

		if (p == NULL || p[0] == '\0' || strcmp(p, "stderr") == 0 || strcmp(p, "off") == 0)
			continue;
		if (chown(p, M.uid, M.gid) < 0)
			log_warn("chown %s: %s", p, strerror(errno));
	}
}

/* Workers. */

static const char *
signal_name(int sig)
{
	static const struct {
		int sig;
		const char *name;
	} names[] = {
	        {SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
	        {SIGHUP, "SIGHUP"},   {SIGKILL, "SIGKILL"}, {SIGSEGV, "SIGSEGV"},
	        {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
	        {SIGILL, "SIGILL"},   {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"},
	        {SIGPIPE, "SIGPIPE"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].sig == sig)
			return names[i].name;
	return "signal";
}

static int
procs_live(void)
{
	int n = 0;

	for (int i = 0; i < M.nprocs; i++)
		if (M.procs[i].pid > 0)
			n++;
	return n;
}

/* Workers of the current generation that run now. */
static int
procs_running(void)
{
	int n = 0;

	for (int i = 0; i < M.nprocs; i++)
		if (M.procs[i].state == PROC_RUNNING)
			n++;
	return n;
}

/* A worker that is gone already (ESRCH) is reaped soon: not an error. */
static void
proc_kill(int slot, int sig)
{
	if (kill(M.procs[slot].pid, sig) < 0 && errno != ESRCH)
		log_error("kill worker %d (pid %ld): %s", slot, (long)M.procs[slot].pid,
		          strerror(errno));
}

static void
procs_signal(int sig)
{
	for (int i = 0; i < M.nprocs; i++)
		if (M.procs[i].pid > 0)
			proc_kill(i, sig);
}

static void child_run(int slot) __attribute__((noreturn));

static void
child_run(int slot)
{
	int fds[CONFIG_MAX_LISTEN], n = 0, pos = M.procs[slot].pos;

	/* Never outlive the master: the kernel sends SIGTERM (a bounded drain)
	 * when it dies, and a master that died before prctl is caught by the
	 * getppid check. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		log_warn("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
	if (getppid() != M.pid)
		_exit(WORKER_EXIT_OK);
	/* The master's own descriptors are no business of a worker, nor are
	 * the other positions' sockets: a socket the master closes must go
	 * away, not linger in a worker that never accepts on it. */
	close(M.sigfd);
	loop_destroy(M.loop);
	M.loop = NULL;
	for (int i = 0; i < M.nls; i++) {
		for (int p = 0; p < M.ls[i].nfds; p++)
			if (p != pos && M.ls[i].fds[p] >= 0)
				close(M.ls[i].fds[p]);
		fds[n] = pos < M.ls[i].nfds ? M.ls[i].fds[pos] : -1;
		if (fds[n] >= 0)
			n++;
	}
	worker_main(M.cfg, slot, fds, n, M.cache);
}

static int
proc_spawn(int slot)
{
	proc_t *p = &M.procs[slot];
	pid_t pid;

	if (listen_open_position(p->pos) < 0)
		return -1;
	/* Its first stamp comes from its loop; until then, the start counts.
	 * Before fork, so that it can only be older than the worker's own. */
	watchdog_beat(slot, clock_mono_ms());
	pid = fork();
	if (pid < 0) {
		log_error("fork worker %d: %s", slot, strerror(errno));
		return -1;
	}
	if (pid == 0)
		child_run(slot);
	p->state = PROC_RUNNING;
	p->pid = pid;
	p->started = loop_now(M.loop);
	p->watchdog = M.cfg->worker_watchdog;
	p->watchdog_at = 0;
	log_info("worker %d started with pid %ld", slot, (long)pid);
	return 0;
}

static void
respawn_arm(void)
{
	int64_t next = INT64_MAX;

	for (int i = 0; i < M.nprocs; i++)
		if (M.procs[i].state == PROC_WAITING && M.procs[i].respawn_at < next)
			next = M.procs[i].respawn_at;
	if (next == INT64_MAX)
		loop_timer_stop(M.loop, &M.respawn_timer);
	else
		loop_timer_start(M.loop, &M.respawn_timer, next - loop_now(M.loop));
}

static void
proc_schedule_respawn(proc_t *p)
{
	int64_t now = loop_now(M.loop);

	if (now - p->started >= RESPAWN_RESET_MS || p->backoff == 0)
		p->backoff = RESPAWN_MIN_MS;
	else if ((p->backoff *= 2) > RESPAWN_MAX_MS)
		p->backoff = RESPAWN_MAX_MS;
	p->state = PROC_WAITING;
	p->pid = 0;
	p->respawn_at = now + p->backoff;
}

static void
respawn_cb(loop_timer_t *t)
{
	int64_t now = loop_now(M.loop);

	for (int i = 0; i < M.nprocs; i++) {
		proc_t *p = &M.procs[i];

		if (p->state != PROC_WAITING || p->respawn_at > now)
			continue;
		metrics_add(METRICS_WORKER_RESTARTS, 1);
		if (proc_spawn(i) < 0) {
			p->started = now;
			proc_schedule_respawn(p);
		}
	}
	respawn_arm();
}

static void master_stop(int sig, int status);

static void
describe_status(int st, char *out, size_t outlen)
{
	if (WIFEXITED(st))
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, outlen, "was killed by signal %d (%s)%s", WTERMSIG(st),
		         signal_name(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" : "");
	else
		snprintf(out, outlen, "ended with wait status %#x", st);
}

static void
proc_exited(int slot, int st)
{
	proc_t *p = &M.procs[slot];
	long pid = (long)p->pid;
	char how[96];
	bool fatal = WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_FATAL;

	describe_status(st, how, sizeof(how));
	metrics_clear_gauges(slot);
	/* A worker killed mid-write or mid-fill: free its claims and leases now
	 * rather than when their expiry passes. */
	if (M.cache != NULL)
		cache_reap(M.cache, (pid_t)p->pid);
	if (p->state == PROC_OLD || M.stopping) {
		if (WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_OK)
			log_info("worker %d (pid %ld) %s", slot, pid, how);
		else
			log_warn("worker %d (pid %ld) %s", slot, pid, how);
		p->state = PROC_FREE;
		p->pid = 0;
		return;
	}
	if (fatal) {
		listen_close_position(p->pos);
		log_error("worker %d (pid %ld) %s: a fatal error, not respawning it", slot, pid,
		          how);
		p->state = PROC_FATAL;
		p->pid = 0;
		for (int i = 0; i < M.nprocs; i++)
			if (M.procs[i].state == PROC_RUNNING || M.procs[i].state == PROC_WAITING)
				return;
		log_error("every worker failed fatally; exiting");
		master_stop(SIGTERM, 1);
		return;
	}
	proc_schedule_respawn(p);
	log_error("worker %d (pid %ld) %s; respawning in %lld ms", slot, pid, how,
	          (long long)p->backoff);
	/* Died young again: its connections would wait out the back-off (up
	 * to RESPAWN_MAX_MS, or for ever if it keeps dying).  Close its
	 * sockets, resetting what waits on them, so the other workers take
	 * every new connection until it is back.  A first death keeps them:
	 * what is queued is served 100 ms later; so does a lone worker, as
	 * nobody else would take its connections. */
	if (p->backoff > RESPAWN_MIN_MS && procs_running() > 0) {
		listen_close_position(p->pos);
		log_warn("worker %d keeps dying: its share of new connections goes to the other "
		         "workers until it is back",
		         slot);
	}
	respawn_arm();
}

static void
reap(void)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);

		if (pid <= 0) {
			if (pid < 0 && errno != ECHILD)
				log_error("waitpid: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < M.nprocs; i++) {
			if (M.procs[i].pid == pid) {
				proc_exited(i, st);
				break;
			}
		}
	}
	if (M.stopping && procs_live() == 0)
		loop_stop(M.loop);
}

/* The watchdog (see watchdog.c): a live worker whose loop has not stamped
 * for its worker_watchdog gets SIGABRT (a core dump shows where it was
 * stuck), and SIGKILL KILL_GRACE_MS later if that did not end it; reap()
 * then respawns it as any worker that died. */
static void
watchdog_cb(loop_timer_t *t)
{
	int64_t now = clock_mono_ms(), next = 1000;

	for (int i = 0; i < M.nprocs; i++) {
		proc_t *p = &M.procs[i];
		int64_t idle = now - watchdog_last(i);

		if (p->pid <= 0 || p->watchdog <= 0)
			continue;
		if (watchdog_beat_interval(p->watchdog) < next)
			next = watchdog_beat_interval(p->watchdog);
		if (p->watchdog_at == 0 && idle >= p->watchdog) {
			log_error("worker %d (pid %ld): its event loop has not run for %lld ms "
			          "(worker_watchdog): killing it with SIGABRT",
			          i, (long)p->pid, (long long)idle);
			metrics_add(METRICS_WORKER_WATCHDOG_KILLS, 1);
			p->watchdog_at = now;
			proc_kill(i, SIGABRT);
		} else if (p->watchdog_at != 0 && now - p->watchdog_at >= KILL_GRACE_MS) {
			log_error("worker %d (pid %ld) survived SIGABRT for %d ms: SIGKILL", i,
			          (long)p->pid, KILL_GRACE_MS);
			p->watchdog_at = now;
			proc_kill(i, SIGKILL);
		}
	}
	loop_timer_start(M.loop, t, next);
}

/* The master's own sign of life, when systemd asks for one (WatchdogSec=):
 * sent from the loop, so a master that stops turning it is restarted. */
static void
systemd_ping_cb(loop_timer_t *t)
{
	notify_watchdog();
	loop_timer_start(M.loop, t, M.systemd_ping_ms);
}

/* Shutdown. */

static void
kill_cb(loop_timer_t *t)
{
	for (int i = 0; i < M.nprocs; i++)
		if (M.procs[i].pid > 0)
			log_warn("worker %d (pid %ld) still running after the shutdown timeout: "
			         "killing it",
			         i, (long)M.procs[i].pid);
	procs_signal(SIGKILL);
}

/* sig: SIGTERM (graceful, bounded), SIGINT (fast), SIGQUIT (graceful). */
static void
master_stop(int sig, int status)
{
	if (M.stopping) {
		if (sig == SIGQUIT)
			return;
		log_warn("%s during shutdown: killing the workers", signal_name(sig));
		procs_signal(SIGKILL);
		for (int i = 0; i < M.nprocs; i++) {
			int st;

			if (M.procs[i].pid > 0 && waitpid(M.procs[i].pid, &st, 0) > 0) {
				metrics_clear_gauges(i);
				M.procs[i].pid = 0;
				M.procs[i].state = PROC_FREE;
			}
		}
		loop_stop(M.loop);
		return;
	}
	M.stopping = sig;
	M.exit_status = status;
	notify_stopping();
	log_info("%s: %s", signal_name(sig),
	         sig == SIGTERM  ? "graceful shutdown, bounded by shutdown_timeout"
	         : sig == SIGINT ? "fast shutdown"
	                         : "graceful shutdown");
	loop_timer_stop(M.loop, &M.respawn_timer);
	for (int i = 0; i < M.nprocs; i++)
		if (M.procs[i].pid == 0)
			M.procs[i].state = PROC_FREE;
	/* The workers hold their own copies; closing ours makes the sockets go
	 * away as soon as the last worker stops accepting. */
	listen_close_all();
	procs_signal(sig);
	if (sig == SIGTERM)
		loop_timer_start(M.loop, &M.kill_timer, M.cfg->shutdown_timeout + KILL_GRACE_MS);
	else if (sig == SIGINT)
		loop_timer_start(M.loop, &M.kill_timer, KILL_GRACE_MS);
	if (procs_live() == 0)
		loop_stop(M.loop);
}

/* Reload. */

/* Settings fixed when the shared segment was made, or that name this
 * instance: a reload keeps the running values and says so. */
static void
reload_keep_fixed(config_t *nc)
{
	const config_t *oc = M.cfg;

#define KEEP(field, what)                                                                          \
	do {                                                                                       \
		if (nc->field != oc->field) {                                                      \
			log_warn("reload: %s changed; it takes effect at restart", what);          \
			nc->field = oc->field;                                                     \
		}                                                                                  \
	} while (0)
	KEEP(cache_size, "cache_size");
	KEEP(cache_entry_max, "cache_entry_max");
	KEEP(cache_ttl, "cache_ttl");
	KEEP(cache_stale, "cache_stale");
#undef KEEP
	if ((has_pid_file(nc) || has_pid_file(oc)) &&
	    (!has_pid_file(nc) || !has_pid_file(oc) || strcmp(nc->pid_file, oc->pid_file) != 0))
		log_warn("reload: pid_file changed; it takes effect at restart");
}

static void
master_reload(void)
{
	config_t *nc;
	listener_t next[CONFIG_MAX_LISTEN];
	int nnext, need = 0, old_running = 0;
	char err[512];
	uid_t uid = 0;
	gid_t gid = 0;
	bool sw;

	if (M.stopping)
		return;
	notify_reloading();
	log_info("SIGHUP: reloading %s", M.config_path);
	nc = malloc(sizeof(*nc));
	if (nc == NULL) {
		log_error("reload: out of memory; keeping the current configuration");
		goto done;
	}
	if (config_load(M.config_path, nc, err, sizeof(err)) < 0) {
		log_error("reload failed: %s; keeping the current configuration", err);
		free(nc);
		goto done;
	}
	resolve_workers(nc);
	for (int i = 0; i < M.nprocs; i++) {
		if (M.procs[i].state == PROC_RUNNING)
			old_running++;
		if (M.procs[i].state == PROC_OLD)
			need++;
	}
	need += old_running + nc->workers;
	if (nc->workers > M.nprocs / 2 || need > M.nprocs) {
		log_error(
		        "reload failed: workers = %d needs %d worker slots of %d (up to %d workers "
		        "without a restart, and workers of an earlier reload may still be "
		        "draining); "
		        "keeping the current configuration",
		        nc->workers, need, M.nprocs, M.nprocs / 2);
		goto fail;
	}
	if (resolve_user(nc, &uid, &gid, &sw) < 0) {
		log_error("reload failed; keeping the current configuration");
		goto fail;
	}
	reload_keep_fixed(nc);
	if (listen_setup(nc, next, &nnext) < 0) {
		log_error("reload failed; keeping the current configuration");
		goto fail;
	}
	if (log_open(nc->log_level, nc->error_log, nc->access_log) < 0) {
		log_error("reload failed: cannot open the new logs; keeping the current "
		          "configuration");
		listen_discard(next, nnext);
		goto fail;
	}

	/* Committed.  Sockets of removed addresses are closed before forking
	 * so the new workers never hold them. */
	listen_replace(next, nnext);
	/* The pid file written at start is the one removed at exit. */
	free(nc->pid_file);
	nc->pid_file = M.cfg->pid_file;
	M.cfg->pid_file = NULL;
	config_free(M.cfg);
	free(M.cfg);
	M.cfg = nc;
	M.uid = uid;
	M.gid = gid;
	M.switch_user = sw;
	chown_logs();

	for (int i = 0; i < M.nprocs; i++) {
		proc_t *p = &M.procs[i];

		if (p->state == PROC_RUNNING)
			p->state = PROC_OLD;
		else if (p->state == PROC_WAITING || p->state == PROC_FATAL)
			p->state = PROC_FREE;
	}
	loop_timer_stop(M.loop, &M.respawn_timer);
	/* New workers first: they accept on the same sockets while the old
	 * ones finish what they have, so no connection waits on nobody. */
	for (int n = 0, i = 0; n < M.cfg->workers && i < M.nprocs; i++) {
		proc_t *p = &M.procs[i];

		if (p->state != PROC_FREE || p->pid != 0)
			continue;
		p->backoff = 0;
		p->pos = n;
		if (proc_spawn(i) < 0) {
			p->started = loop_now(M.loop);
			proc_schedule_respawn(p);
		}
		n++;
	}
	respawn_arm();
	for (int i = 0; i < M.nprocs; i++)
		if (M.procs[i].state == PROC_OLD && M.procs[i].pid > 0)
			proc_kill(i, SIGQUIT);
	metrics_add(METRICS_CONFIG_RELOADS, 1);
	log_info("reloaded %s: %d workers", M.config_path, M.cfg->workers);
	goto done;
fail:
	config_free(nc);
	free(nc);
done:
	notify_ready();
}

/* Signals. */

static void
signal_cb(loop_io_t *io, uint32_t revents)
{
	struct signalfd_siginfo si;

	for (;;) {
		ssize_t n = read(M.sigfd, &si, sizeof(si));

		if (n != (ssize_t)sizeof(si)) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				log_error("signalfd read: %s", strerror(errno));
			return;
		}
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap();
			break;
		case SIGTERM:
		case SIGINT:
		case SIGQUIT:
			master_stop((int)si.ssi_signo, 0);
			break;
		case SIGHUP:
			master_reload();
			break;
		case SIGUSR1:
			log_info("SIGUSR1: reopening logs");
			if (log_reopen() == 0)
				chown_logs();
			procs_signal(SIGUSR1);
			break;
		case SIGUSR2:
			log_info("SIGUSR2: flushing the feed cache");
			cache_flush(M.cache);
			metrics_add(METRICS_CACHE_FLUSHES, 1);
			break;
		}
	}
}

static int
signals_setup(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		log_error("sigprocmask: %s", strerror(errno));
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	M.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (M.sigfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
master_run(config_t *cfg, const char *config_path)
{
	char name[64];
	int nslots;

	M.cfg = malloc(sizeof(*M.cfg));
	if (M.cfg == NULL) {
		log_error("out of memory");
		config_free(cfg);
		return 1;
	}
	*M.cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	M.config_path = config_path;
	M.pid = getpid();
	M.exit_status = 1;
	resolve_workers(M.cfg);

	/* Blocked from the start: a signal during start-up waits for the loop. */
	if (signals_setup() < 0)
		goto out;
	if (resolve_user(M.cfg, &M.uid, &M.gid, &M.switch_user) < 0)
		goto out;
	if (has_pid_file(M.cfg) && pidfile_check(M.cfg->pid_file) < 0)
		goto out;
	if (M.cfg->nlisten == 0) {
		log_error("no listen address in %s", config_path);
		goto out;
	}
	if (listen_setup(M.cfg, M.ls, &M.nls) < 0)
		goto out;

	cache_name(M.cfg, config_path, name, sizeof(name));
	M.cache = cache_create(name, M.cfg->cache_size, M.cfg->cache_entry_max, M.cfg->cache_ttl,
	                       M.cfg->cache_stale);
	if (M.cache == NULL) {
		log_error("cannot create the shared feed cache %s", name);
		goto out;
	}
	/* Room for a reload: old workers drain in their own slots while the
	 * new ones start. */
	nslots = M.cfg->workers * 4 < 8 ? 8 : M.cfg->workers * 4;
	if (metrics_create(nslots) < 0) {
		log_error("cannot create the shared metrics");
		goto out;
	}
	M.metrics = true;
	metrics_set_slot(-1);
	if (watchdog_create(nslots) < 0)
		goto out;
	M.procs = calloc((size_t)nslots, sizeof(*M.procs));
	if (M.procs == NULL) {
		log_error("out of memory");
		goto out;
	}
	M.nprocs = nslots;

	M.loop = loop_create();
	if (M.loop == NULL) {
		log_error("event loop: %s", strerror(errno));
		goto out;
	}
	if (loop_io_add(M.loop, &M.sig_io, M.sigfd, EPOLLIN, signal_cb) < 0) {
		log_error("event loop: %s", strerror(errno));
		goto out;
	}
	loop_timer_init(&M.respawn_timer, respawn_cb);
	loop_timer_init(&M.kill_timer, kill_cb);
	loop_timer_init(&M.watchdog_timer, watchdog_cb);
	loop_timer_init(&M.systemd_timer, systemd_ping_cb);

	if (has_pid_file(M.cfg)) {
		if (pidfile_write(M.cfg->pid_file) < 0)
			goto out;
		M.pid_written = true;
	}
	chown_logs();

	for (int i = 0; i < M.cfg->workers; i++) {
		M.procs[i].pos = i;
		if (proc_spawn(i) < 0) {
			M.procs[i].started = loop_now(M.loop);
			proc_schedule_respawn(&M.procs[i]);
		}
	}
	respawn_arm();
	/* Always armed: a reload may turn the watchdog on for new workers. */
	watchdog_cb(&M.watchdog_timer);
	M.exit_status = 0;
	log_info("feedd %s started: %d workers, %d listen sockets", PACKAGE_VERSION, M.cfg->workers,
	         M.nls);
	notify_ready();
	notify_status("%d workers", M.cfg->workers);
	M.systemd_ping_ms = notify_watchdog_interval();
	if (M.systemd_ping_ms > 0) {
		log_info("systemd watchdog: WATCHDOG=1 every %lld ms",
		         (long long)M.systemd_ping_ms);
		systemd_ping_cb(&M.systemd_timer);
	}

	if (loop_run(M.loop) < 0) {
		log_error("event loop: %s", strerror(errno));
		M.exit_status = 1;
		procs_signal(SIGKILL);
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
	}
	log_info("exiting");

out:
	listen_close_all();
	if (M.pid_written && unlink(M.cfg->pid_file) < 0)
		log_warn("pid file %s: %s", M.cfg->pid_file, strerror(errno));
	if (M.cache != NULL)
		cache_destroy(M.cache, 1);
	if (M.metrics)
		metrics_destroy();
	watchdog_destroy();
	if (M.loop != NULL)
		loop_destroy(M.loop);
	if (M.sigfd >= 0)
		close(M.sigfd);
	free(M.procs);
	config_free(M.cfg);
	free(M.cfg);
	return M.exit_status;
}

int
master_signal(const config_t *cfg, const char *action)
{
	static const struct {
		const char *name;
		int sig;
	} actions[] = {
	        {"reload", SIGHUP},
	        {"stop", SIGTERM},
	        {"quit", SIGQUIT},
	        {"flush", SIGUSR2},
	};
	int sig = 0;
	char buf[64], *end;
	FILE *f;
	long pid;

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(action, actions[i].name) == 0)
			sig = actions[i].sig;
	if (sig == 0) {
		fprintf(stderr, "feedd: unknown signal \"%s\": use reload, stop, quit or flush\n",
		        action);
		return -1;
	}
	if (!has_pid_file(cfg)) {
		fprintf(stderr, "feedd: no pid_file in %s: cannot find the master\n",
		        cfg->path ? cfg->path : "the configuration");
		return -1;
	}
	f = fopen(cfg->pid_file, "re");
	if (f == NULL) {
		fprintf(stderr, "feedd: cannot open pid file %s: %s (is feedd running?)\n",
		        cfg->pid_file, strerror(errno));
		return -1;
	}
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	pid = strtol(buf, &end, 10);
	if (pid <= 0 || (*end != '\n' && *end != '\0')) {
		fprintf(stderr, "feedd: pid file %s holds no pid\n", cfg->pid_file);
		return -1;
	}
	if (kill((pid_t)pid, sig) < 0) {
		if (errno == ESRCH)
			fprintf(stderr,
			        "feedd: no process %ld: stale pid file %s (is feedd running?)\n",
			        pid, cfg->pid_file);
		else
			fprintf(stderr, "feedd: kill %ld: %s\n", pid, strerror(errno));
		return -1;
	}
	return 0;
}

/* Error log with levels (stderr or a file, journald-aware) and the access log. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_PATH_MAX 4096

/* One log destination.  fd 2 means stderr (never closed, never reopened);
 * -1 means off.  A file keeps its fd number for life: log_reopen() swaps
 * the open file underneath it with dup3(), so a thread writing at the same
 * moment writes to either the old or the new file, never to a closed or
 * reused descriptor. */
typedef struct log_dest {
	int fd;
	char path[LOG_PATH_MAX];
} log_dest_t;

static log_dest_t error_dest = {STDERR_FILENO, ""};
static log_dest_t access_dest = {STDERR_FILENO, ""};
static enum log_level cur_level = LOG_LEVEL_INFO;
static int journal = -1; /* -1: not checked yet */
static char role[32];

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* systemd sets JOURNAL_STREAM=dev:ino when stderr is connected to journald;
 * a child whose stderr was redirected elsewhere inherits the variable, so
 * the device and inode must match the descriptor we actually write to. */
static int
stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int
is_stderr_path(const char *path)
{
	return path == NULL || path[0] == '\0' || strcmp(path, "stderr") == 0;
}

static int
open_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -1;
	/* Keep our files away from 0-2: a later dup3() onto them would
	 * otherwise hijack a standard stream. */
	if (fd <= STDERR_FILENO) {
		int nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
		int saved = errno;

		close(fd);
		errno = saved;
		fd = nfd;
	}
	return fd;
}

/* Writes all of iov in one syscall when possible: with O_APPEND the kernel
 * appends a single writev atomically, so lines from several processes
 * sharing the file never interleave.  Only a short write (disk full, a
 * signal mid-way on a pipe) falls back to finishing the rest. */
static void
write_all(int fd, struct iovec *iov, int iovcnt)
{
	ssize_t n;

	while (iovcnt > 0) {
		n = writev(fd, iov, iovcnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
}

static void
dest_close(log_dest_t *d)
{
	if (d->fd > STDERR_FILENO)
		close(d->fd);
	d->fd = STDERR_FILENO;
	d->path[0] = '\0';
}

/* Opens path into a fresh destination; on failure *d is untouched. */
static int
dest_open(log_dest_t *d, const char *path, int allow_off, const char *what)
{
	log_dest_t nd;

	if (is_stderr_path(path)) {
		nd.fd = STDERR_FILENO;
		nd.path[0] = '\0';
	} else if (allow_off && strcmp(path, "off") == 0) {
		nd.fd = -1;
		nd.path[0] = '\0';
	} else {
		if (strlen(path) >= sizeof(nd.path)) {
			fprintf(stderr, "feedd: %s %s: path too long\n", what, path);
			return -1;
		}
		nd.fd = open_path(path);
		if (nd.fd < 0) {
			fprintf(stderr, "feedd: cannot open %s %s: %s\n", what, path,
			        strerror(errno));
			return -1;
		}
		strcpy(nd.path, path);
	}
	dest_close(d);
	*d = nd;
	return 0;
}

int
log_open(enum log_level level, const char *error_path, const char *access_path)
{
	log_dest_t e = {STDERR_FILENO, ""}, a = {STDERR_FILENO, ""};

	/* Both or neither: a reload with one bad path keeps the old pair. */
	if (dest_open(&e, error_path, 0, "error log") < 0)
		return -1;
	if (dest_open(&a, access_path, 1, "access log") < 0) {
		dest_close(&e);
		return -1;
	}
	dest_close(&error_dest);
	dest_close(&access_dest);
	error_dest = e;
	access_dest = a;
	cur_level = level;
	journal = error_dest.fd == STDERR_FILENO && stderr_is_journal();
	return 0;
}

static int
dest_reopen(log_dest_t *d, const char *what)
{
	int fd;

	if (d->fd <= STDERR_FILENO)
		return 0;
	fd = open_path(d->path);
	if (fd < 0) {
		log_error("cannot reopen %s %s, still writing to the old file: %s", what, d->path,
		          strerror(errno));
		return -1;
	}
	if (dup3(fd, d->fd, O_CLOEXEC) < 0) {
		log_error("cannot reopen %s %s: dup3: %s", what, d->path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
log_reopen(void)
{
	int rc = 0;

	if (dest_reopen(&error_dest, "error log") < 0)
		rc = -1;
	if (dest_reopen(&access_dest, "access log") < 0)
		rc = -1;
	return rc;
}

void
log_close(void)
{
	dest_close(&error_dest);
	dest_close(&access_dest);
	journal = -1;
}

void
log_set_role(const char *r)
{
	snprintf(role, sizeof(role), "%s", r ? r : "");
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_LEVEL_WARN;
		return 0;
	}
	return -1;
}

enum log_level
log_get_level(void)
{
	return cur_level;
}

/* Control characters (libpq messages end in '\n' and may span lines) would
 * split one event over several lines; they become spaces, trailing ones go. */
static size_t
sanitize(char *s, size_t len)
{
	size_t i;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
		len--;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = ' ';
	}
	return len;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	/* On the stack: another thread may log at the same time. */
	char line[LOG_LINE_MAX];
	static const char ellipsis[] = "...";
	int saved_errno = errno;
	size_t len = 0, mlen;
	struct iovec iov[2];
	int n, fd = error_dest.fd;

	if (level > cur_level || fd < 0)
		return;
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		level = LOG_LEVEL_ERROR;

	/* Messages before log_open() (a config error at start) go to stderr
	 * too, and deserve their priority under systemd as well. */
	if (journal < 0)
		journal = stderr_is_journal();
	if (journal && fd == STDERR_FILENO) {
		static const char prio[] = {'3', '4', '6', '7'};

		n = snprintf(line, sizeof(line), "<%c>", prio[level]);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
		             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		             tm.tm_sec, ts.tv_nsec / 1000000);
	}
	len = n > 0 ? (size_t)n : 0;
	if (role[0] != '\0')
		n = snprintf(line + len, sizeof(line) - len, "[%s] %s: ", role, level_names[level]);
	else
		n = snprintf(line + len, sizeof(line) - len, "%s: ", level_names[level]);
	len += n > 0 ? (size_t)n : 0;

	errno = saved_errno; /* %m in fmt */
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n < 0)
		n = 0;
	mlen = (size_t)n;
	/* Leave room for "...\n" so a cut line still says it was cut. */
	if (len + mlen > sizeof(line) - sizeof(ellipsis)) {
		len = sizeof(line) - sizeof(ellipsis);
		len = sanitize(line, len);
		memcpy(line + len, ellipsis, sizeof(ellipsis) - 1);
		len += sizeof(ellipsis) - 1;
	} else {
		len = sanitize(line, len + mlen);
	}
	line[len++] = '\n';

	iov[0].iov_base = line;
	iov[0].iov_len = len;
	write_all(fd, iov, 1);
	errno = saved_errno;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

int
log_access_on(void)
{
	return access_dest.fd >= 0;
}

void
log_access(const char *line, size_t len)
{
	int saved_errno = errno;
	struct iovec iov[2];
	int fd = access_dest.fd;

	if (fd < 0)
		return;
	iov[0].iov_base = (void *)line;
	iov[0].iov_len = len;
	iov[1].iov_base = "\n";
	iov[1].iov_len = 1;
	write_all(fd, iov, 2);
	errno = saved_errno;
}

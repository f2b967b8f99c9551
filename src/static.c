/* Files under www_root, with no way out of it. */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "http.h"
#include "log.h"
#include "router.h"
#include "worker.h"

/* Files are read whole into the response.  A file larger than this is not
 * one of the page's assets; it is refused with 403 (the server will not
 * serve it: 404 would lie about its existence to the operator reading the
 * log, 500 would page someone for a file that is simply out of scope). */
#define STATIC_MAX (8 * 1024 * 1024)

/* realpath(www_root), computed once per worker and again if the setting
 * changes: every served file must resolve below it. */
static char root_conf[PATH_MAX];
static char root_real[PATH_MAX];
static size_t root_len;

static int
static_root(const config_t *cfg)
{
	if (cfg->www_root == NULL || cfg->www_root[0] == '\0')
		return -1;
	if (root_len > 0 && strcmp(cfg->www_root, root_conf) == 0)
		return 0;
	root_len = 0;
	if (strlen(cfg->www_root) >= sizeof(root_conf)) {
		log_error("www_root is too long");
		return -1;
	}
	if (realpath(cfg->www_root, root_real) == NULL) {
		log_error("www_root %s: %s", cfg->www_root, strerror(errno));
		return -1;
	}
	strcpy(root_conf, cfg->www_root);
	root_len = strlen(root_real);
	return 0;
}

static bool
inside_root(const char *resolved)
{
	if (root_len == 1) /* www_root = "/" */
		return resolved[0] == '/';
	return strncmp(resolved, root_real, root_len) == 0 &&
	       (resolved[root_len] == '/' || resolved[root_len] == '\0');
}

/* 0 fine, 403 for a ".." segment, 404 for a hidden name (".git", ".env"):
 * refused before the file system is asked anything. */
static int
check_segments(const char *path)
{
	const char *p = path;

	while (*p != '\0') {
		const char *seg, *end;

		while (*p == '/')
			p++;
		seg = p;
		end = seg + strcspn(seg, "/");
		if (end - seg == 2 && seg[0] == '.' && seg[1] == '.')
			return 403;
		if (end > seg && seg[0] == '.' && !(end - seg == 1))
			return 404;
		p = end;
	}
	return 0;
}

static const char *const wday_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void
format_http_date(char *out, size_t len, time_t t)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, len, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", wday_names[tm.tm_wday],
	         tm.tm_mday, month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	         tm.tm_sec);
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm):
 * timegm() without its locale or TZ dependence. */
static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the only form clients
 * send back (they echo our Last-Modified).  -1 for anything else: the
 * header is then ignored, as RFC 9110 says. */
static long long
parse_http_date(const char *s)
{
	char wday[4], mon[4], gmt[4];
	int d, y, hh, mm, ss, n = 0;
	unsigned m;

	if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wday, &d, mon, &y,
	           &hh, &mm, &ss, gmt, &n) != 8 ||
	    s[n] != '\0')
		return -1;
	if (strcmp(gmt, "GMT") != 0)
		return -1;
	for (m = 0; m < 12; m++)
		if (strcmp(mon, month_names[m]) == 0)
			break;
	if (m == 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1970)
		return -1;
	return days_from_civil(y, m + 1, (unsigned)d) * 86400 + hh * 3600 + mm * 60 + ss;
}

static void
not_found(conn_t *c)
{
	router_error(c, 404, "file not found", NULL);
}

static void
escapes_root(conn_t *c, const request_t *r)
{
	/* The raw target: the decoded path may hold a newline (%0a). */
	log_info("static: refused %s: outside www_root", r->target);
	router_error(c, 403, "path leads outside the document root", NULL);
}

/* Opens the regular file that path names below the root; on failure the
 * answer is already sent and -1 returned. */
static int
open_below_root(conn_t *c, const request_t *r, char *resolved, struct stat *st)
{
	const char *path = r->path;
	char full[PATH_MAX];
	size_t plen = strlen(path);
	int n, fd;

	n = snprintf(full, sizeof(full), "%s%s%s", root_real, path,
	             plen > 0 && path[plen - 1] == '/' ? "index.html" : "");
	if (n < 0 || (size_t)n >= sizeof(full)) {
		not_found(c);
		return -1;
	}
	if (realpath(full, resolved) == NULL) {
		if (errno == EACCES) {
			router_error(c, 403, "permission denied", NULL);
		} else {
			if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG)
				log_warn("static: %s: %s", r->target, strerror(errno));
			not_found(c);
		}
		return -1;
	}
	/* Symbolic links are followed only while they stay below the root. */
	if (!inside_root(resolved)) {
		escapes_root(c, r);
		return -1;
	}
	/* O_NONBLOCK: a FIFO put in the root must not block the worker in open(). */
	fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == EACCES) {
			router_error(c, 403, "permission denied", NULL);
		} else {
			log_warn("static: open %s: %s", resolved, strerror(errno));
			not_found(c);
		}
		return -1;
	}
	if (fstat(fd, st) < 0) {
		log_error("static: fstat %s: %s", resolved, strerror(errno));
		close(fd);
		router_error(c, 500, "cannot read the file", NULL);
		return -1;
	}
	/* A directory without a trailing slash is not served: its index.html
	 * would resolve relative links against the parent. */
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		not_found(c);
		return -1;
	}
	return fd;
}

static int
read_all(int fd, char *data, size_t size, size_t *got)
{
	*got = 0;
	while (*got < size) {
		ssize_t n = read(fd, data + *got, size - *got);

		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n == 0)
			break; /* shrank meanwhile: serve what is there */
		if (errno == EINTR)
			continue;
		return -1;
	}
	return 0;
}

void
static_handle(conn_t *c, const request_t *r)
{
	worker_t *w = conn_worker(c);
	char resolved[PATH_MAX], last_modified[40];
	struct stat st;
	const char *ims;
	const char *type;
	buf_t headers = BUF_INIT;
	char *data = NULL;
	size_t got = 0;
	int fd, bad;

	if (static_root(w->cfg) < 0) {
		router_error(c, 404, "no document root configured", NULL);
		return;
	}
	if (r->path[0] != '/') {
		router_error(c, 400, "request path must start with /", NULL);
		return;
	}
	bad = check_segments(r->path);
	if (bad == 403) {
		escapes_root(c, r);
		return;
	}
	if (bad != 0) {
		not_found(c);
		return;
	}
	fd = open_below_root(c, r, resolved, &st);
	if (fd < 0)
		return;
	if (st.st_size > STATIC_MAX) {
		close(fd);
		log_warn("static: %s is larger than %d bytes, not served", resolved, STATIC_MAX);
		router_error(c, 403, "file too large to serve", NULL);
		return;
	}
	format_http_date(last_modified, sizeof(last_modified), st.st_mtime);
	type = http_mime_type(resolved);
	if (buf_printf(&headers,
	               "Last-Modified: %s\r\nCache-Control: %s\r\n"
	               "X-Content-Type-Options: nosniff\r\n",
	               last_modified,
	               strcmp(type, "text/html; charset=utf-8") == 0 ? "no-cache"
	                                                             : "public, max-age=300") < 0) {
		close(fd);
		router_error(c, 500, "out of memory", NULL);
		return;
	}
	ims = conn_header(r, "If-Modified-Since");
	if (ims != NULL) {
		long long since = parse_http_date(ims);

		if (since >= 0 && (long long)st.st_mtime <= since) {
			close(fd);
			conn_respond(c, 304, NULL, headers.data, NULL, 0);
			buf_free(&headers);
			return;
		}
	}
	/* HEAD needs the length only: conn sends no body for it. */
	if (!r->head) {
		data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
		if (data == NULL || read_all(fd, data, (size_t)st.st_size, &got) < 0) {
			log_error("static: read %s: %s", resolved,
			          data == NULL ? "out of memory" : strerror(errno));
			close(fd);
			free(data);
			buf_free(&headers);
			router_error(c, 500, "cannot read the file", NULL);
			return;
		}
	} else {
		got = (size_t)st.st_size;
	}
	close(fd);
	conn_respond(c, 200, type, headers.data, data, got);
	free(data);
	buf_free(&headers);
}

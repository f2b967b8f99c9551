/* The configuration file: postgresql.conf-style "key = value" lines. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif
#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/feedd"
#endif

#define CONFIG_FILE_MAX (1024 * 1024)

#define KB   ((int64_t)1024)
#define MB   (KB * 1024)
#define GB   (MB * 1024)
#define SEC  ((int64_t)1000)
#define MIN  (SEC * 60)
#define HOUR (MIN * 60)
#define DAY  (HOUR * 24)

typedef enum config_type {
	CT_STRING,   /* char * */
	CT_INT,      /* int */
	CT_WORKERS,  /* int, "auto" or 0 = online cores */
	CT_SIZE,     /* size_t, bytes */
	CT_DURATION, /* int64_t, milliseconds */
	CT_LEVEL,    /* enum log_level */
	CT_LISTEN,   /* listen[] + nlisten */
	CT_CIDRS,    /* metrics_allow[] + nmetrics_allow */
	CT_BOOL,     /* bool, on or off */
} config_type_t;

#define CF_EMPTY_OK   1 /* "" is allowed (strings: stored as unset/NULL if CF_EMPTY_NULL) */
#define CF_EMPTY_NULL 2

/* One row per key.  Defaults are written in the file's own syntax and go
 * through the same parser as the file, so a default can never be a value
 * the file would reject. */
typedef struct config_key {
	const char *name;
	config_type_t type;
	const char *def; /* NULL: unset */
	int64_t min, max;
	size_t off;
	unsigned flags;
	const char *desc;
} config_key_t;

#define F(field) offsetof(config_t, field)

/* clang-format off */
static const config_key_t keys[] = {
	/* process */
	{ "listen", CT_LISTEN, "127.0.0.1:8080", 0, 0, F(listen), 0,
	  "comma-separated addresses to listen on: host:port, [v6]:port, *:port" },
	{ "workers", CT_WORKERS, "auto", 0, 1024, F(workers), 0,
	  "worker processes; 0 or auto = number of online cores" },
	{ "pid_file", CT_STRING, RUNSTATEDIR "/feedd/feedd.pid", 0, 0, F(pid_file), 0,
	  "file holding the master's process id" },
	{ "user", CT_STRING, NULL, 0, 0, F(user), CF_EMPTY_OK | CF_EMPTY_NULL,
	  "user the workers run as when started as root" },
	{ "group", CT_STRING, NULL, 0, 0, F(group), CF_EMPTY_OK | CF_EMPTY_NULL,
	  "group the workers run as when started as root" },
	{ "shutdown_timeout", CT_DURATION, "10s", 0, DAY, F(shutdown_timeout), 0,
	  "how long a graceful stop waits for requests before closing them" },
	{ "worker_watchdog", CT_DURATION, "30s", 0, HOUR, F(worker_watchdog), 0,
	  "a worker whose event loop stops this long is killed and replaced; 0 = off" },
	{ "worker_yield", CT_BOOL, "on", 0, 0, F(worker_yield), 0,
	  "a worker yields its core after each pass over its ready connections" },

	/* logs */
	{ "error_log", CT_STRING, "stderr", 0, 0, F(error_log), 0,
	  "error log file, or stderr" },
	{ "access_log", CT_STRING, "stderr", 0, 0, F(access_log), 0,
	  "access log file, stderr, or off" },
	{ "log_level", CT_LEVEL, "info", 0, 0, F(log_level), 0,
	  "error, warn, info or debug" },

	/* http */
	{ "www_root", CT_STRING, PKGDATADIR "/www", 0, 0, F(www_root), 0,
	  "directory of the static browser page" },
	{ "max_request_line", CT_SIZE, "8kB", 256, MB, F(max_request_line), 0,
	  "longest request line accepted (else 414)" },
	{ "max_header_size", CT_SIZE, "16kB", KB, MB, F(max_header_size), 0,
	  "largest request head accepted (else 431)" },
	{ "header_timeout", CT_DURATION, "10s", 10, HOUR, F(header_timeout), 0,
	  "time a client has to send a complete request head" },
	{ "keepalive_timeout", CT_DURATION, "75s", 0, HOUR, F(keepalive_timeout), 0,
	  "how long an idle keep-alive connection stays open; 0 = no keep-alive" },
	{ "send_timeout", CT_DURATION, "30s", 10, HOUR, F(send_timeout), 0,
	  "how long a client may stall reading a response" },
	{ "max_connections", CT_INT, "10000", 1, 1000000, F(max_connections), 0,
	  "open client connections per worker" },
	{ "output_buffer_limit", CT_SIZE, "1MB", 4 * KB, GB, F(output_buffer_limit), 0,
	  "unsent response bytes buffered per connection" },

	/* database */
	{ "db", CT_STRING, "dbname=feedd", 0, 0, F(db), CF_EMPTY_OK,
	  "libpq connection string" },
	{ "db_pool_size", CT_INT, "4", 1, 100, F(db_pool_size), 0,
	  "database connections per worker" },
	{ "db_queue_size", CT_INT, "1000", 15, 1000000, F(db_queue_size), 0,
	  "queries waiting for a connection per worker (at least one page: 15)" },
	{ "db_query_timeout", CT_DURATION, "5s", 1, HOUR, F(db_query_timeout), 0,
	  "statement_timeout of every query" },
	{ "db_connect_timeout", CT_DURATION, "5s", 10, HOUR, F(db_connect_timeout), 0,
	  "time allowed to open a database connection" },
	{ "db_reconnect_max", CT_DURATION, "30s", 10, HOUR, F(db_reconnect_max), 0,
	  "longest back-off between reconnection attempts" },

	/* feed */
	{ "feed_window", CT_DURATION, "7d", 0, 3650 * DAY, F(feed_window), 0,
	  "how far back the feed reaches; 0 = no limit" },

	/* cache */
	{ "cache_size", CT_SIZE, "64MB", 64 * KB, 64 * GB, F(cache_size), 0,
	  "shared memory for the feed cache" },
	{ "cache_entry_max", CT_SIZE, "512kB", KB, GB, F(cache_entry_max), 0,
	  "largest page the cache stores" },
	{ "cache_sendfile_size", CT_SIZE, "8MB", 0, 64 * GB, F(cache_sendfile_size), 0,
	  "per worker: hot pages kept as sealed files and sent with sendfile; 0 = off" },
	{ "cache_ttl", CT_DURATION, "30s", 1, DAY, F(cache_ttl), 0,
	  "how long a cached page is fresh" },
	{ "cache_stale", CT_DURATION, "300s", 0, 7 * DAY, F(cache_stale), 0,
	  "how long after expiry a stale page is served while one worker refreshes it" },
	{ "cache_lease_timeout", CT_DURATION, "10s", 1, HOUR, F(cache_lease_timeout), 0,
	  "how long a worker may hold a cache fill lease" },

	/* streaming */
	{ "sse_keepalive", CT_DURATION, "15s", 10, HOUR, F(sse_keepalive), 0,
	  "interval of keepalive comments on a waiting event stream" },
	{ "sse_timeout", CT_DURATION, "30s", 10, DAY, F(sse_timeout), 0,
	  "time an event stream may wait for its page" },
	{ "sse_retry", CT_DURATION, "10s", 0, DAY, F(sse_retry), 0,
	  "reconnection delay sent to clients in retry:" },

	/* metrics */
	{ "metrics_allow", CT_CIDRS, "", 0, 0, F(metrics_allow), CF_EMPTY_OK,
	  "addresses or CIDRs allowed to read /metrics; empty = anyone" },
};
/* clang-format on */

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

#define FIELD(cfg, k, type) ((type *)(void *)((char *)(cfg) + (k)->off))

/* State of one parse: where we are, for messages. */
typedef struct parse {
	const char *name;
	int line;
	char *err;
	size_t errlen;
	int set_on[NKEYS]; /* line a key was set on, 0 = default */
} parse_t;

static void fail(parse_t *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
fail(parse_t *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err == NULL || p->errlen == 0)
		return;
	if (line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->name);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static void
fmt_size(char *out, size_t outlen, int64_t v)
{
	if (v != 0 && v % GB == 0)
		snprintf(out, outlen, "%lldGB", (long long)(v / GB));
	else if (v != 0 && v % MB == 0)
		snprintf(out, outlen, "%lldMB", (long long)(v / MB));
	else if (v != 0 && v % KB == 0)
		snprintf(out, outlen, "%lldkB", (long long)(v / KB));
	else
		snprintf(out, outlen, "%lldB", (long long)v);
}

static void
fmt_duration(char *out, size_t outlen, int64_t v)
{
	if (v != 0 && v % DAY == 0)
		snprintf(out, outlen, "%lldd", (long long)(v / DAY));
	else if (v != 0 && v % HOUR == 0)
		snprintf(out, outlen, "%lldh", (long long)(v / HOUR));
	else if (v != 0 && v % MIN == 0)
		snprintf(out, outlen, "%lldmin", (long long)(v / MIN));
	else if (v % SEC == 0)
		snprintf(out, outlen, "%llds", (long long)(v / SEC));
	else
		snprintf(out, outlen, "%lldms", (long long)v);
}

/* A non-negative decimal integer followed by optional blanks and a unit.
 * Returns -1 (not a number), -2 (overflow); else 0 with *unit at the rest. */
static int
parse_number(const char *s, int64_t *out, const char **unit)
{
	int64_t v = 0;
	const char *q = s;

	if (*q < '0' || *q > '9')
		return -1;
	for (; *q >= '0' && *q <= '9'; q++) {
		if (v > (INT64_MAX - (*q - '0')) / 10)
			return -2;
		v = v * 10 + (*q - '0');
	}
	while (*q == ' ' || *q == '\t')
		q++;
	*out = v;
	*unit = q;
	return 0;
}

typedef struct unit {
	const char *name;
	int64_t mult;
} unit_t;

/* clang-format off */
static const unit_t size_units[] = {
	{ "", 1 },   { "B", 1 },   { "kB", KB }, { "KB", KB }, { "k", KB },
	{ "MB", MB }, { "M", MB }, { "GB", GB }, { "G", GB },  { NULL, 0 },
};

static const unit_t duration_units[] = {
	{ "", SEC },     { "ms", 1 },   { "s", SEC }, { "m", MIN }, { "min", MIN },
	{ "h", HOUR },   { "d", DAY },  { NULL, 0 },
};
/* clang-format on */

/* Value setters: -1 with an explanation, to follow "KEY: ", in msg. */

static int
set_scaled(const config_key_t *k, const char *v, int64_t *out, char *msg, size_t msglen)
{
	const unit_t *units = k->type == CT_SIZE ? size_units : duration_units;
	const char *expect =
	        k->type == CT_SIZE
	                ? "a size such as 512kB (units B, kB, MB, GB; no unit = bytes)"
	                : "a duration such as 30s (units ms, s, min, h, d; no unit = seconds)";
	char lo[32], hi[32];
	const char *unit;
	int64_t n;
	int rc;

	rc = parse_number(v, &n, &unit);
	if (rc == -1) {
		snprintf(msg, msglen, "bad value '%s': expected %s", v, expect);
		return -1;
	}
	if (k->type == CT_SIZE) {
		fmt_size(lo, sizeof(lo), k->min);
		fmt_size(hi, sizeof(hi), k->max);
	} else {
		fmt_duration(lo, sizeof(lo), k->min);
		fmt_duration(hi, sizeof(hi), k->max);
	}
	if (rc == -2) {
		snprintf(msg, msglen, "%s is out of range: expected %s to %s", v, lo, hi);
		return -1;
	}
	for (; units->name != NULL; units++) {
		if (strcmp(unit, units->name) == 0)
			break;
	}
	if (units->name == NULL) {
		snprintf(msg, msglen, "bad unit in '%s': expected %s", v, expect);
		return -1;
	}
	if (n > INT64_MAX / units->mult || n * units->mult < k->min || n * units->mult > k->max) {
		snprintf(msg, msglen, "%s is out of range: expected %s to %s", v, lo, hi);
		return -1;
	}
	*out = n * units->mult;
	return 0;
}

static int
set_int(const config_key_t *k, const char *v, int *out, char *msg, size_t msglen)
{
	const char *rest;
	int64_t n;
	int rc;

	rc = parse_number(v, &n, &rest);
	if (rc == -1 || (rc == 0 && *rest != '\0')) {
		if (k->type == CT_WORKERS)
			snprintf(msg, msglen, "bad value '%s': expected an integer or \"auto\"", v);
		else
			snprintf(msg, msglen, "bad value '%s': expected an integer", v);
		return -1;
	}
	if (rc == -2 || n < k->min || n > k->max) {
		snprintf(msg, msglen, "%s is out of range: expected %lld to %lld", v,
		         (long long)k->min, (long long)k->max);
		return -1;
	}
	*out = (int)n;
	return 0;
}

static int
online_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

static int
set_string(const config_key_t *k, const char *v, char **out, char *msg, size_t msglen)
{
	char *s = NULL;

	if (*v == '\0' && !(k->flags & CF_EMPTY_OK)) {
		snprintf(msg, msglen, "must not be empty");
		return -1;
	}
	if (*v != '\0' || !(k->flags & CF_EMPTY_NULL)) {
		s = strdup(v);
		if (s == NULL) {
			snprintf(msg, msglen, "out of memory");
			return -1;
		}
	}
	free(*out);
	*out = s;
	return 0;
}

/* Splits a comma-separated list in place into trimmed items; an empty
 * item (",," or a trailing comma) is reported by the caller. */
static char *
next_item(char **cursor)
{
	char *s = *cursor, *end, *comma;

	if (s == NULL)
		return NULL;
	comma = strchr(s, ',');
	if (comma != NULL) {
		*comma = '\0';
		*cursor = comma + 1;
	} else {
		*cursor = NULL;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

static int
valid_port(const char *s)
{
	long n = 0;

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		n = n * 10 + (*s - '0');
		if (n > 65535)
			return 0;
	}
	return n > 0;
}

static int
valid_hostname(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

/* host:port, [v6]:port or *:port; names are left to getaddrinfo at bind time. */
static int
valid_listen(const char *s)
{
	char host[INET6_ADDRSTRLEN + 1];
	struct in6_addr a6;
	const char *colon, *bracket;
	size_t len;

	if (s[0] == '[') {
		bracket = strchr(s, ']');
		if (bracket == NULL || bracket[1] != ':')
			return 0;
		len = (size_t)(bracket - s - 1);
		if (len == 0 || len >= sizeof(host))
			return 0;
		memcpy(host, s + 1, len);
		host[len] = '\0';
		return inet_pton(AF_INET6, host, &a6) == 1 && valid_port(bracket + 2);
	}
	colon = strchr(s, ':');
	if (colon == NULL || strchr(colon + 1, ':') != NULL)
		return 0;
	len = (size_t)(colon - s);
	if (!(len == 1 && s[0] == '*') && !valid_hostname(s, len))
		return 0;
	/* All digits and dots is meant as an IPv4 address: check it now
	 * rather than let the resolver fail at bind time. */
	if (strspn(s, "0123456789.") == len) {
		struct in_addr a4;

		if (len >= sizeof(host))
			return 0;
		memcpy(host, s, len);
		host[len] = '\0';
		if (inet_pton(AF_INET, host, &a4) != 1)
			return 0;
	}
	return valid_port(colon + 1);
}

static int
set_listen(config_t *cfg, const char *v, char *msg, size_t msglen)
{
	char *copy, *cursor, *item, *list[CONFIG_MAX_LISTEN];
	int n = 0, i, rc = -1;

	copy = strdup(v);
	if (copy == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	cursor = copy;
	while ((item = next_item(&cursor)) != NULL) {
		if (*item == '\0') {
			snprintf(msg, msglen,
			         "empty address in '%s': expected a comma-separated "
			         "list of host:port, [v6]:port or *:port",
			         v);
			goto out;
		}
		if (!valid_listen(item)) {
			snprintf(msg, msglen,
			         "bad address '%s': expected host:port, [v6]:port or "
			         "*:port with a port from 1 to 65535",
			         item);
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (strcmp(list[i], item) == 0) {
				snprintf(msg, msglen, "address '%s' is listed twice", item);
				goto out;
			}
		}
		if (n == CONFIG_MAX_LISTEN) {
			snprintf(msg, msglen, "too many addresses: at most %d", CONFIG_MAX_LISTEN);
			goto out;
		}
		list[n++] = item;
	}
	for (i = 0; i < n; i++) {
		list[i] = strdup(list[i]);
		if (list[i] == NULL) {
			while (i-- > 0)
				free(list[i]);
			snprintf(msg, msglen, "out of memory");
			goto out;
		}
	}
	for (i = 0; i < cfg->nlisten; i++) {
		free(cfg->listen[i]);
		cfg->listen[i] = NULL;
	}
	for (i = 0; i < n; i++)
		cfg->listen[i] = list[i];
	cfg->nlisten = n;
	rc = 0;
out:
	free(copy);
	return rc;
}

static void
cidr_mask(config_cidr_t *c)
{
	int bytes = c->family == AF_INET ? 4 : 16, i;

	for (i = 0; i < bytes; i++) {
		int bits = c->prefix - i * 8;

		if (bits <= 0)
			c->addr[i] = 0;
		else if (bits < 8)
			c->addr[i] &= (unsigned char)(0xff << (8 - bits));
	}
}

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int
parse_cidr(const char *s, config_cidr_t *c)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	int max, prefix = -1;

	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, s, len);
	addr[len] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	if (slash != NULL) {
		const char *q = slash + 1;

		if (*q == '\0')
			return -1;
		for (prefix = 0; *q != '\0'; q++) {
			if (*q < '0' || *q > '9' || prefix > max)
				return -1;
			prefix = prefix * 10 + (*q - '0');
		}
		if (prefix > max)
			return -1;
	}
	c->prefix = prefix < 0 ? max : prefix;
	/* ::ffff:a.b.c.d/96+ is an IPv4 range: keep it as one so it matches
	 * the same clients as the plain v4 form. */
	if (c->family == AF_INET6 && c->prefix >= 96 && memcmp(c->addr, v4mapped, 12) == 0) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = AF_INET;
		c->prefix -= 96;
	}
	cidr_mask(c);
	return 0;
}

static int
set_cidrs(config_t *cfg, const char *v, char *msg, size_t msglen)
{
	config_cidr_t list[CONFIG_MAX_ALLOW];
	char *copy, *cursor, *item;
	int n = 0;

	copy = strdup(v);
	if (copy == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	cursor = copy;
	/* An empty value is the empty list; only a list with items may not
	 * contain empty ones. */
	while (*v != '\0' && (item = next_item(&cursor)) != NULL) {
		if (n == CONFIG_MAX_ALLOW) {
			snprintf(msg, msglen, "too many entries: at most %d", CONFIG_MAX_ALLOW);
			free(copy);
			return -1;
		}
		if (parse_cidr(item, &list[n]) < 0) {
			snprintf(msg, msglen,
			         "bad entry '%s': expected a comma-separated list of "
			         "IPv4 or IPv6 addresses, each optionally with /prefix",
			         item);
			free(copy);
			return -1;
		}
		n++;
	}
	free(copy);
	memcpy(cfg->metrics_allow, list, (size_t)n * sizeof(list[0]));
	cfg->nmetrics_allow = n;
	return 0;
}

static int
set_value(const config_key_t *k, config_t *cfg, const char *v, char *msg, size_t msglen)
{
	int64_t n;

	switch (k->type) {
	case CT_STRING:
		return set_string(k, v, FIELD(cfg, k, char *), msg, msglen);
	case CT_INT:
		return set_int(k, v, FIELD(cfg, k, int), msg, msglen);
	case CT_WORKERS:
		if (strcmp(v, "auto") == 0) {
			*FIELD(cfg, k, int) = online_cores();
			return 0;
		}
		if (set_int(k, v, FIELD(cfg, k, int), msg, msglen) < 0)
			return -1;
		if (*FIELD(cfg, k, int) == 0)
			*FIELD(cfg, k, int) = online_cores();
		return 0;
	case CT_SIZE:
		if (set_scaled(k, v, &n, msg, msglen) < 0)
			return -1;
		*FIELD(cfg, k, size_t) = (size_t)n;
		return 0;
	case CT_DURATION:
		return set_scaled(k, v, FIELD(cfg, k, int64_t), msg, msglen);
	case CT_BOOL:
		if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
			*FIELD(cfg, k, bool) = v[1] == 'n';
			return 0;
		}
		snprintf(msg, msglen, "bad value '%s': expected on or off", v);
		return -1;
	case CT_LEVEL:
		if (log_level_parse(v, FIELD(cfg, k, enum log_level)) < 0) {
			snprintf(msg, msglen, "bad value '%s': expected error, warn, info or debug",
			         v);
			return -1;
		}
		return 0;
	case CT_LISTEN:
		return set_listen(cfg, v, msg, msglen);
	case CT_CIDRS:
		return set_cidrs(cfg, v, msg, msglen);
	}
	snprintf(msg, msglen, "internal error: unknown type");
	return -1;
}

void
config_defaults(config_t *cfg)
{
	char msg[256];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NKEYS; i++) {
		if (keys[i].def == NULL)
			continue;
		if (set_value(&keys[i], cfg, keys[i].def, msg, sizeof(msg)) < 0) {
			/* Only memory can fail here: the unit test parses every default. */
			fprintf(stderr, "feedd: default of %s: %s\n", keys[i].name, msg);
			abort();
		}
	}
}

void
config_free(config_t *cfg)
{
	size_t i;
	int j;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].type == CT_STRING) {
			free(*FIELD(cfg, &keys[i], char *));
			*FIELD(cfg, &keys[i], char *) = NULL;
		}
	}
	for (j = 0; j < cfg->nlisten; j++) {
		free(cfg->listen[j]);
		cfg->listen[j] = NULL;
	}
	cfg->nlisten = 0;
	cfg->nmetrics_allow = 0;
	free(cfg->path);
	cfg->path = NULL;
}

static const config_key_t *
find_key(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
			return &keys[i];
	}
	return NULL;
}

static int
is_key_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

/* Reads the value starting at s (line ends at end) into out (at least
 * end - s + 1 bytes): quoted with \\ \" \' escapes, or bare up to '#'. */
static int
parse_value(parse_t *p, const char *key, const char *s, const char *end, char *out)
{
	char *o = out;

	if (s < end && (*s == '\'' || *s == '"')) {
		char quote = *s++;

		for (;;) {
			if (s == end) {
				fail(p, p->line, "%s: missing closing %c quote", key, quote);
				return -1;
			}
			if (*s == quote)
				break;
			if (*s == '\\') {
				if (s + 1 == end || (s[1] != '\\' && s[1] != '"' && s[1] != '\'')) {
					fail(p, p->line,
					     "%s: bad escape in quoted value: only \\\\, \\\" and "
					     "\\' are allowed",
					     key);
					return -1;
				}
				s++;
			}
			*o++ = *s++;
		}
		s++;
		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		if (s < end && *s != '#') {
			fail(p, p->line, "%s: unexpected text after the closing quote", key);
			return -1;
		}
	} else {
		const char *hash = memchr(s, '#', (size_t)(end - s));

		if (hash != NULL)
			end = hash;
		while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		memcpy(o, s, (size_t)(end - s));
		o += end - s;
	}
	*o = '\0';
	return 0;
}

static int
parse_line(parse_t *p, config_t *cfg, const char *s, const char *end)
{
	const char *key, *keyend;
	const config_key_t *k;
	char keyname[64], msg[512], *value;
	int idx, rc;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	if (s == end || *s == '#')
		return 0;

	key = s;
	if (!is_key_char(*s, 1)) {
		fail(p, p->line, "expected a setting name at the start of the line");
		return -1;
	}
	while (s < end && is_key_char(*s, 0))
		s++;
	keyend = s;
	snprintf(keyname, sizeof(keyname), "%.*s", (int)(keyend - key), key);
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s == end || *s != '=') {
		fail(p, p->line, "missing '=' after %s: expected %s = value", keyname, keyname);
		return -1;
	}
	s++;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;

	k = find_key(key, (size_t)(keyend - key));
	if (k == NULL) {
		fail(p, p->line, "unknown setting %s", keyname);
		return -1;
	}
	idx = (int)(k - keys);
	if (p->set_on[idx] != 0) {
		fail(p, p->line, "duplicate setting %s: already set on line %d", k->name,
		     p->set_on[idx]);
		return -1;
	}

	value = malloc((size_t)(end - s) + 1);
	if (value == NULL) {
		fail(p, p->line, "%s: out of memory", k->name);
		return -1;
	}
	rc = parse_value(p, k->name, s, end, value);
	if (rc == 0 && set_value(k, cfg, value, msg, sizeof(msg)) < 0) {
		fail(p, p->line, "%s: %s", k->name, msg);
		rc = -1;
	}
	free(value);
	if (rc == 0)
		p->set_on[idx] = p->line;
	return rc;
}

static int
line_of(const parse_t *p, const char *a, const char *b)
{
	const config_key_t *ka = find_key(a, strlen(a)), *kb = find_key(b, strlen(b));
	int la = p->set_on[ka - keys], lb = p->set_on[kb - keys];

	return la > lb ? la : lb;
}

/* Settings that are each valid alone but not together. */
static int
check_consistency(parse_t *p, const config_t *cfg)
{
	char a[32], b[32];

	if (cfg->cache_entry_max >= cfg->cache_size) {
		fmt_size(a, sizeof(a), (int64_t)cfg->cache_entry_max);
		fmt_size(b, sizeof(b), (int64_t)cfg->cache_size);
		fail(p, line_of(p, "cache_entry_max", "cache_size"),
		     "cache_entry_max (%s) must be smaller than cache_size (%s)", a, b);
		return -1;
	}
	if (cfg->worker_watchdog > 0 && cfg->worker_watchdog < 1000) {
		fail(p, line_of(p, "worker_watchdog", "worker_watchdog"),
		     "worker_watchdog must be 0 (off) or at least 1s: a shorter one kills "
		     "workers that are only slow to be scheduled");
		return -1;
	}
	if (cfg->max_request_line > cfg->max_header_size) {
		fmt_size(a, sizeof(a), (int64_t)cfg->max_request_line);
		fmt_size(b, sizeof(b), (int64_t)cfg->max_header_size);
		fail(p, line_of(p, "max_request_line", "max_header_size"),
		     "max_request_line (%s) must not exceed max_header_size (%s)", a, b);
		return -1;
	}
	return 0;
}

int
config_parse(const char *name, const char *text, config_t *cfg, char *err, size_t errlen)
{
	parse_t p;
	const char *s, *nl;

	memset(&p, 0, sizeof(p));
	p.name = name ? name : "(config)";
	p.err = err;
	p.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	config_defaults(cfg);
	cfg->path = strdup(p.name);
	if (cfg->path == NULL) {
		fail(&p, 0, "out of memory");
		goto fail;
	}
	for (s = text; *s != '\0'; s = *nl ? nl + 1 : nl) {
		nl = strchr(s, '\n');
		if (nl == NULL)
			nl = s + strlen(s);
		p.line++;
		if (parse_line(&p, cfg, s, nl) < 0)
			goto fail;
	}
	if (check_consistency(&p, cfg) < 0)
		goto fail;
	return 0;
fail:
	config_free(cfg);
	return -1;
}

int
config_load(const char *path, config_t *cfg, char *err, size_t errlen)
{
	FILE *f;
	char *text;
	size_t n;
	int rc;

	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	text = malloc(CONFIG_FILE_MAX + 1);
	if (text == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		fclose(f);
		return -1;
	}
	n = fread(text, 1, CONFIG_FILE_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		rc = -1;
	} else if (n > CONFIG_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
		rc = -1;
	} else if (memchr(text, '\0', n) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte, not a text file", path);
		rc = -1;
	} else {
		text[n] = '\0';
		rc = 0;
	}
	fclose(f);
	if (rc == 0)
		rc = config_parse(path, text, cfg, err, errlen);
	free(text);
	return rc;
}

const char *const *
config_keys(void)
{
	static const char *names[NKEYS + 1];

	if (names[0] == NULL) {
		size_t i;

		for (i = 0; i < NKEYS; i++)
			names[i] = keys[i].name;
	}
	return names;
}

static int
prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, net, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ net[full]) & (0xff << (8 - rest))) == 0;
}

int
config_cidr_match(const config_t *cfg, const struct sockaddr *sa)
{
	const unsigned char *addr;
	int family, i;

	if (cfg->nmetrics_allow == 0)
		return 1;
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

		family = AF_INET;
		addr = (const unsigned char *)&sin->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

		family = AF_INET6;
		addr = (const unsigned char *)&sin6->sin6_addr;
		/* A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			family = AF_INET;
			addr += 12;
		}
	} else {
		return 0;
	}
	for (i = 0; i < cfg->nmetrics_allow; i++) {
		const config_cidr_t *c = &cfg->metrics_allow[i];

		if (c->family == family && prefix_match(addr, c->addr, c->prefix))
			return 1;
	}
	return 0;
}

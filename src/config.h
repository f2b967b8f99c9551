/* The configuration file: postgresql.conf-style "key = value" lines. */
#ifndef FEEDD_CONFIG_H
#define FEEDD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct sockaddr;

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_ALLOW  32

/* One metrics_allow entry: an address and prefix length, v4 or v6. */
typedef struct config_cidr {
	int           family;      /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int           prefix;
} config_cidr_t;

/* Durations are milliseconds, sizes bytes.  Strings are malloc'd. */
typedef struct config {
	char          *path;

	/* process */
	char          *listen[CONFIG_MAX_LISTEN];  /* "127.0.0.1:8080", "[::1]:8080", "*:8080" */
	int            nlisten;
	int            workers;                     /* 0 in the file = number of cores */
	char          *pid_file;
	char          *user;
	char          *group;
	int64_t        shutdown_timeout;
	int64_t        worker_watchdog;             /* 0 = off */
	bool           worker_yield;

	/* logs */
	char          *error_log;
	char          *access_log;
	enum log_level log_level;

	/* http */
	char          *www_root;
	size_t         max_request_line;
	size_t         max_header_size;
	int64_t        header_timeout;
	int64_t        keepalive_timeout;
	int64_t        send_timeout;
	int            max_connections;
	size_t         output_buffer_limit;

	/* database */
	char          *db;
	int            db_pool_size;
	int            db_queue_size;
	int64_t        db_query_timeout;
	int64_t        db_connect_timeout;
	int64_t        db_reconnect_max;

	/* feed */
	int64_t        feed_window;                 /* 0 = no window */

	/* cache */
	size_t         cache_size;
	size_t         cache_entry_max;
	size_t         cache_sendfile_size; /* per worker; 0: off */
	int64_t        cache_ttl;
	int64_t        cache_stale;
	int64_t        cache_lease_timeout;

	/* streaming */
	int64_t        sse_keepalive;
	int64_t        sse_timeout;
	int64_t        sse_retry;

	/* metrics */
	config_cidr_t  metrics_allow[CONFIG_MAX_ALLOW];
	int            nmetrics_allow;              /* 0 = anyone may read /metrics */
} config_t;

/* Fills *cfg with defaults, then the file.  On error returns -1 with
 * "file:line: what is wrong" in err; *cfg is then freed. */
int  config_load(const char *path, config_t *cfg, char *err, size_t errlen);
/* The same from a string (unit tests); name is used in messages. */
int  config_parse(const char *name, const char *text, config_t *cfg, char *err, size_t errlen);
void config_defaults(config_t *cfg);
void config_free(config_t *cfg);
/* The keys this build knows, NULL-terminated (the documentation test). */
const char *const *config_keys(void);
int  config_cidr_match(const config_t *cfg, const struct sockaddr *sa);

#endif

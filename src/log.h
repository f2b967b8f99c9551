/* Error log with levels (stderr or a file, journald-aware) and the access log. */
#ifndef FEEDD_LOG_H
#define FEEDD_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* error_path/access_path: NULL or "" or "stderr" means stderr; "off" turns
 * the access log off.  Returns 0 or -1 (and says why on stderr). */
int  log_open(enum log_level level, const char *error_path, const char *access_path);
/* SIGUSR1: reopen both files by name (logrotate moved them). */
int  log_reopen(void);
void log_close(void);
/* A short tag written in front of every line: "master", "worker 3". */
void log_set_role(const char *role);
int  log_level_parse(const char *s, enum log_level *out);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);
/* One complete access-log line (without the newline). */
void log_access(const char *line, size_t len);
int  log_access_on(void);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_LEVEL_DEBUG) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)

#endif

/* Feed cursors and feed timestamps: parse and format. */
#ifndef FEEDD_CURSOR_H
#define FEEDD_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CURSOR_ID_MAX 128

/* A position in the total order (sort time desc, item id desc as bytes).
 * The next page holds items strictly after it: time < time_us, or
 * time == time_us and id < this id.  An empty id (legacy bare timestamp)
 * therefore means "everything older than time_us". */
typedef struct cursor {
	int64_t time_us;                 /* UTC microseconds since the epoch */
	char    id[CURSOR_ID_MAX + 1];
} cursor_t;

/* Accepts "<time>~<id>", the legacy "<time>|<id>", and a bare time.
 * <time>: ISO-8601 date and time ('T' or ' '), optional fraction (up to 6
 * digits), offset Z, +HH:MM, -HH:MM, or none (UTC); an offset whose '+'
 * arrived as ' ' (an unencoded '+' in a query string) is read as '+'.
 * Returns 0, or -1 with a reason for the client in *why. */
int cursor_parse(const char *s, size_t len, cursor_t *out, const char **why);

/* "<time with Z>~<id>", URL-safe.  Returns length, or -1 if it does not fit. */
int cursor_format(const cursor_t *c, char *out, size_t outlen);

/* Feed timestamp text: "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00" (fraction only
 * when non-zero), or with "Z" for cursors.  out needs CURSOR_TIME_MAX bytes.
 * Returns the length, or -1 outside years 0000-9999 or when out is too small. */
#define CURSOR_TIME_MAX 40
int cursor_format_time(int64_t us, bool zulu, char *out, size_t outlen);

/* The reverse of the SQL side's microsecond integers: parse a decimal int64. */
int cursor_parse_i64(const char *s, int64_t *out);

#endif

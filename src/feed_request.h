/* The query parameters of the feed endpoints: validation, 422 bodies, cache key. */
#ifndef FEEDD_FEED_REQUEST_H
#define FEEDD_FEED_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "cursor.h"

#define FEED_LIMIT_DEFAULT 20
#define FEED_LIMIT_MAX     50
#define FEED_KEY_MAX       (CURSOR_ID_MAX + 64)

typedef struct feed_request {
	bool     has_cursor;
	cursor_t cursor;
	int      limit;
	/* Equal requests written differently ("Z" or "+00:00", "%2B", a default
	 * limit spelled out) have the same key: "<limit>|<time us>~<id>" or "<limit>|-". */
	char     key[FEED_KEY_MAX];
} feed_request_t;

/* Parses the raw query string.  Returns 0, or -1 with the whole 422 body
 * ({"detail":[{"loc":["query",...],"msg":...,"type":...}]}) in *err. */
int feed_request_parse(const char *query, size_t len, feed_request_t *out, buf_t *err);

#endif

/* GET /api/feed: the JSON page, from the cache or the database. */
#ifndef FEEDD_FEED_API_H
#define FEEDD_FEED_API_H

#include "conn.h"

void feed_api_handle(conn_t *c, const request_t *r);

#endif

/* GET /api/feed/stream: Server-Sent Events, progressive batches, keepalive, timeout. */
#ifndef FEEDD_FEED_STREAM_H
#define FEEDD_FEED_STREAM_H

#include "conn.h"

void feed_stream_handle(conn_t *c, const request_t *r);

#endif

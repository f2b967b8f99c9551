/* GET /api/feed/stream: Server-Sent Events, progressive batches, keepalive, timeout. */
#include "feed_stream.h"

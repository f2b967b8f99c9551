/* GET /api/feed: the JSON page, from the cache or the database. */
#include "feed_api.h"

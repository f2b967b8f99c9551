/* The query parameters of the feed endpoints: validation, 422 bodies, cache key. */
#include "feed_request.h"

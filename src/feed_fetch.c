/* Runs one page's 15 statements at once over the pool and feeds the results to a feed_page. */
#include "feed_fetch.h"

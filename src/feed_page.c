/* One page of the feed: merge of the sources in the total order, page cut, next_cursor. */
#include "feed_page.h"

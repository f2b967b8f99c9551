/* Runs one page's 15 statements at once over the pool and feeds the results to a feed_page. */
#ifndef FEEDD_FEED_FETCH_H
#define FEEDD_FEED_FETCH_H

#include <stdbool.h>

#include "feed_page.h"
#include "feed_request.h"

struct pgpool;
typedef struct feed_fetch feed_fetch_t;

typedef struct feed_fetch_ops {
	/* Some sources answered; their items are in the page.  last: all
	 * have.  The owner may cancel (not last) or free (last) f inside. */
	void (*progress)(void *ud, feed_page_t *page, bool last);
	/* A source failed (error says why, for the client: 503 unavailable,
	 * 504 timeout, 500 malformed row); no more callbacks follow and f is
	 * already freed: drop the pointer, do not cancel or free it. */
	void (*failed)(void *ud, int http_status, const char *error);
} feed_fetch_ops_t;

/* The pool's statement i must be feed_source_defs[i].  now_us: wall clock
 * of the request (the window's anchor).  No callback runs inside this
 * call.  Returns NULL and sets *http_status (503; pgpool_error says why)
 * when the pool cannot take the queries, or 500 when memory runs out. */
feed_fetch_t *feed_fetch_start(struct pgpool *pool, const feed_request_t *req,
                               int64_t window_ms, int64_t now_us,
                               const feed_fetch_ops_t *ops, void *ud, int *http_status);
/* Cancels what is outstanding; no callback after this.  Frees f. */
void feed_fetch_cancel(feed_fetch_t *f);
/* After the last progress callback: frees f (the page stays the caller's
 * until then: take it with feed_fetch_page before). */
feed_page_t *feed_fetch_page(feed_fetch_t *f);
void feed_fetch_free(feed_fetch_t *f);

#endif

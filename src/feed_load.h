/* Getting a feed page: shared cache, single-flight fill across workers, stale-while-revalidate, database. */
#ifndef FEEDD_FEED_LOAD_H
#define FEEDD_FEED_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "cache.h"
#include "feed_request.h"

struct worker;
struct page_file;
typedef struct feed_load feed_load_t;

/* The fast path, synchronous: a HIT or STALE page from the shared cache is
 * appended to *body (which may be a connection's output, cache_get_append)
 * and its meta copied to *meta, and *ref (when not NULL) says which copy
 * it was.  MISS when there is no cache or no usable entry: *body is then
 * as it was. */
cache_state_t feed_load_cached(struct worker *w, const feed_request_t *req,
                               buf_t *body, cache_meta_t *meta, cache_ref_t *ref);

/* Faster still, for a page sent whole: HIT or STALE when this worker has
 * the page as a file (page_files.h) that is still what the cache holds;
 * *file is then held for the caller (page_file_release when sent).  MISS
 * otherwise, not counted: go on with feed_load_cached. */
cache_state_t feed_load_file(struct worker *w, const feed_request_t *req,
                             struct page_file **file);

/* After serving a STALE page: refresh it in the background unless another
 * process already is (the fill lease decides). */
void feed_load_refresh(struct worker *w, const feed_request_t *req);

typedef struct feed_load_ops {
	/* Only to a load that joined its fill before the first batch: items
	 * that can still make the page, as comma-separated JSON elements in the
	 * total order; last is the final batch (it may be empty), and then
	 * every item of the page has been in some batch.  May be NULL.  The
	 * owner may feed_load_cancel inside. */
	void (*batch)(void *ud, const char *items, size_t len, size_t nitems, bool last);
	/* The final page; served: "miss" (this load's fill queried the
	 * database), "hit" (it joined another request's fill, or another
	 * process filled the cache while it waited), "stale".  The load is over. */
	void (*done)(void *ud, const buf_t *body, const cache_meta_t *meta, const char *served);
	/* No page: status 503/504/500 and a reason for the client.  The load is over. */
	void (*failed)(void *ud, int status, const char *detail);
} feed_load_ops_t;

/* A miss: joins this worker's fill of the same key if there is one, else
 * takes the fill lease (or waits for its holder), queries, stores.
 * Callbacks never run inside this call.  Returns NULL (and calls nothing)
 * only when memory runs out. */
feed_load_t *feed_load_start(struct worker *w, const feed_request_t *req,
                             const feed_load_ops_t *ops, void *ud);
/* The caller is gone: no callback after this (allowed inside batch, not
 * after done or failed).  The fill's queries are cancelled and its lease
 * released when no other request waits for it. */
void feed_load_cancel(feed_load_t *l);

#endif

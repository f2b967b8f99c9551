/* One page of the feed: merge of the sources in the total order, page cut, next_cursor. */
#ifndef FEEDD_FEED_PAGE_H
#define FEEDD_FEED_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "feed_items.h"

typedef struct feed_page feed_page_t;

/* limit: the page size.  Every source is asked for limit + 1 items so the
 * page knows whether anything follows it. */
feed_page_t *feed_page_new(int limit);
void         feed_page_free(feed_page_t *p);

/* Hands over the items of one source (ownership of items[i] moves to the
 * page; the array itself stays the caller's).  Returns 0 or -1 (memory). */
int feed_page_add(feed_page_t *p, feed_item_t *items, size_t n);

/* True when an item at sort_us, whatever its id, can no longer make the
 * page: limit + 1 newer items are already in.  Sources return their rows in
 * the total order, so a source's later rows can be left unbuilt. */
bool feed_page_settled_before(const feed_page_t *p, int64_t sort_us);

/* Streaming: appends to out the JSON array elements (comma separated, no
 * brackets) of the items added since the last call that can still make the
 * page (fewer than limit known items precede them), in the total order.
 * Returns how many were written. */
size_t feed_page_take_new(feed_page_t *p, buf_t *out);

/* When all sources are in: the page body {"items":[...],"next_cursor":...}.
 * next_cursor is non-null exactly when more than limit items were found.
 * *items_end: offset in body just after the items array's ']' (the SSE
 * event reuses that prefix); *nitems: items on the page. */
int feed_page_finish(feed_page_t *p, buf_t *body, size_t *items_end, int *nitems);

#endif

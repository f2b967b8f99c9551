/* One page of the feed: merge of the sources in the total order, page cut, next_cursor. */
#include "feed_page.h"

#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "log.h"

typedef struct page_slot {
	feed_item_t item;
	bool fresh; /* added since the last feed_page_take_new */
} page_slot_t;

/* The page keeps only the limit + 1 first items of the total order: the
 * page itself, and one more to know that something follows.  An item
 * pushed below that can never come back, since items only get added. */
struct feed_page {
	int limit;
	size_t keep; /* limit + 1 */
	size_t n;
	page_slot_t *slots; /* sorted in the total order, keep + 1 slots */
};

feed_page_t *
feed_page_new(int limit)
{
	feed_page_t *p;

	if (limit < 1) {
		log_error("feed page: invalid limit %d", limit);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		log_error("feed page: out of memory");
		return NULL;
	}
	p->limit = limit;
	p->keep = (size_t)limit + 1;
	/* One spare slot: an insert lands first, then the overflow is dropped. */
	p->slots = calloc(p->keep + 1, sizeof(*p->slots));
	if (p->slots == NULL) {
		log_error("feed page: out of memory for %d items", limit);
		free(p);
		return NULL;
	}
	return p;
}

void
feed_page_free(feed_page_t *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		feed_item_clear(&p->slots[i].item);
	free(p->slots);
	free(p);
}

/* The first slot whose item comes at or after it in the total order. */
static size_t
lower_bound(const feed_page_t *p, const feed_item_t *it)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (feed_item_cmp(&p->slots[mid].item, it) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Takes ownership of *it (always: kept or freed). */
static void
insert(feed_page_t *p, feed_item_t *it)
{
	size_t pos = lower_bound(p, it);

	if (pos < p->n && feed_item_cmp(&p->slots[pos].item, it) == 0) {
		/* Sources are disjoint by id, so this is a source bug or a uuid
		 * shared across tables.  Two items at one (sort, id) cannot both
		 * be walked (the keyset is strict); serving the first one keeps
		 * the page and the stream consistent, where an assert would let
		 * database content kill the worker. */
		log_warn("feed page: duplicate item %s at %lld us, dropped", it->id,
		         (long long)it->sort_us);
		feed_item_clear(it);
		return;
	}
	if (pos >= p->keep) {
		feed_item_clear(it);
		return;
	}
	memmove(&p->slots[pos + 1], &p->slots[pos], (p->n - pos) * sizeof(p->slots[0]));
	p->slots[pos].item = *it;
	p->slots[pos].fresh = true;
	p->n++;
	if (p->n > p->keep) {
		p->n--;
		feed_item_clear(&p->slots[p->n].item);
	}
}

int
feed_page_add(feed_page_t *p, feed_item_t *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		feed_item_t it = items[i];

		memset(&items[i], 0, sizeof(items[i]));
		if (it.id == NULL || it.json == NULL) {
			log_error("feed page: item without %s from a source, dropped",
			          it.id == NULL ? "id" : "JSON");
			feed_item_clear(&it);
			continue;
		}
		insert(p, &it);
	}
	return 0;
}

bool
feed_page_settled_before(const feed_page_t *p, int64_t sort_us)
{
	return p->n == p->keep && sort_us < p->slots[p->n - 1].item.sort_us;
}

static size_t
page_len(const feed_page_t *p)
{
	return p->n < (size_t)p->limit ? p->n : (size_t)p->limit;
}

size_t
feed_page_take_new(feed_page_t *p, buf_t *out)
{
	size_t i, sent = 0, end = page_len(p);

	/* Only the first limit items can still make the page: every later
	 * add can push an item down, never up. */
	for (i = 0; i < end; i++) {
		feed_item_t *it = &p->slots[i].item;

		if (!p->slots[i].fresh)
			continue;
		size_t mark = out->len;

		if ((sent > 0 && buf_append(out, ",", 1) < 0) ||
		    buf_append(out, it->json, it->json_len) < 0) {
			/* The unsent items stay fresh for a later call. */
			log_error("feed page: out of memory streaming item %s", it->id);
			out->len = mark;
			if (out->cap > 0)
				out->data[mark] = '\0';
			return sent;
		}
		p->slots[i].fresh = false;
		sent++;
	}
	/* Fresh items below the page are never sent: they cannot rise. */
	for (; i < p->n; i++)
		p->slots[i].fresh = false;
	return sent;
}

/* next_cursor from the page's last item; the id must survive cursor_parse,
 * or the walk would end in a 422 instead of the next page. */
static int
next_cursor(const feed_item_t *last, char *out, size_t outlen)
{
	cursor_t c;
	size_t len = strlen(last->id);

	if (len == 0 || len > CURSOR_ID_MAX ||
	    strspn(last->id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
	            len) {
		log_error("feed page: item id \"%.*s\" cannot be a cursor", CURSOR_ID_MAX,
		          last->id);
		return -1;
	}
	c.time_us = last->sort_us;
	memcpy(c.id, last->id, len + 1);
	if (cursor_format(&c, out, outlen) < 0) {
		log_error("feed page: item %s time %lld us cannot be a cursor", last->id,
		          (long long)last->sort_us);
		return -1;
	}
	return 0;
}

int
feed_page_finish(feed_page_t *p, buf_t *body, size_t *items_end, int *nitems)
{
	char cur[CURSOR_TIME_MAX + CURSOR_ID_MAX + 2];
	size_t i, end = page_len(p), start = body->len;
	bool more = p->n > (size_t)p->limit;

	if (more && next_cursor(&p->slots[end - 1].item, cur, sizeof(cur)) < 0)
		return -1;
	if (buf_append_str(body, "{\"items\":[") < 0)
		goto oom;
	for (i = 0; i < end; i++) {
		const feed_item_t *it = &p->slots[i].item;

		if ((i > 0 && buf_append(body, ",", 1) < 0) ||
		    buf_append(body, it->json, it->json_len) < 0)
			goto oom;
	}
	if (buf_append(body, "]", 1) < 0)
		goto oom;
	*items_end = body->len;
	if ((more ? buf_printf(body, ",\"next_cursor\":\"%s\"}", cur)
	          : buf_append_str(body, ",\"next_cursor\":null}")) < 0)
		goto oom;
	*nitems = (int)end;
	return 0;
oom:
	log_error("feed page: out of memory writing the page body");
	/* Leave no half page behind for the caller to send. */
	body->len = start;
	if (body->cap > 0)
		body->data[start] = '\0';
	return -1;
}

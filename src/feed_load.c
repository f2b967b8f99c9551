/* Getting a feed page: shared cache, single-flight fill across workers, stale-while-revalidate, database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "feed_fetch.h"
#include "feed_load.h"
#include "feed_page.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "worker.h"

/* Waiting for another process's fill: poll the shared entry, backing off,
 * because there is no cross-process wake-up that would not cost a syscall
 * on every fill (and fills are rare next to hits). */
#define POLL_FIRST_MS 2
#define POLL_MAX_MS   25

enum load_state {
	LOAD_WAITING,       /* another process holds the lease */
	LOAD_FETCHING,      /* our queries are out */
	LOAD_FAILING,       /* failure found inside start, reported from a timer */
};

struct feed_load {
	worker_t              *w;
	feed_request_t         req;
	const feed_load_ops_t *ops;
	void                  *ud;
	enum load_state        state;
	bool                   leased;
	feed_fetch_t          *fetch;
	loop_timer_t           timer;
	int64_t                poll_ms;
	int64_t                wait_until;
	int                    fail_status;
	char                   fail_detail[160];
	buf_t                  body;
};

static void load_fetch(feed_load_t *l);

cache_state_t
feed_load_cached(worker_t *w, const feed_request_t *req, buf_t *body, cache_meta_t *meta)
{
	cache_state_t st;

	if (w->cache == NULL)
		return CACHE_MISS;
	st = cache_get(w->cache, req->key, clock_mono_ms(), body, meta);
	switch (st) {
	case CACHE_HIT:
		metrics_add(METRICS_CACHE_HITS, 1);
		break;
	case CACHE_STALE:
		metrics_add(METRICS_CACHE_STALE, 1);
		break;
	case CACHE_MISS:
		metrics_add(METRICS_CACHE_MISSES, 1);
		break;
	}
	return st;
}

static void
load_free(feed_load_t *l)
{
	if (l->fetch != NULL)
		feed_fetch_cancel(l->fetch);
	if (l->leased)
		cache_release(l->w->cache, l->req.key);
	loop_timer_stop(l->w->loop, &l->timer);
	buf_free(&l->body);
	free(l);
}

static void
load_fail(feed_load_t *l, int status, const char *detail)
{
	const feed_load_ops_t *ops = l->ops;
	void *ud = l->ud;
	char why[sizeof(l->fail_detail)];

	/* detail may live in l (fail_detail) or in the fetch: keep a copy. */
	snprintf(why, sizeof(why), "%s", detail);
	load_free(l);
	if (ops != NULL && ops->failed != NULL)
		ops->failed(ud, status, why);
}

static void
load_done(feed_load_t *l, const cache_meta_t *meta, const char *served)
{
	const feed_load_ops_t *ops = l->ops;
	void *ud = l->ud;
	buf_t body = l->body;

	/* The body outlives the load for the duration of the callback. */
	l->body = (buf_t)BUF_INIT;
	load_free(l);
	if (ops != NULL && ops->done != NULL)
		ops->done(ud, &body, meta, served);
	buf_free(&body);
}

static void
fetch_progress(void *ud, feed_page_t *page, bool last)
{
	feed_load_t *l = ud;
	cache_meta_t meta;
	size_t items_end;
	int nitems;

	if (l->ops != NULL && l->ops->batch != NULL) {
		buf_t items = BUF_INIT;
		size_t n = feed_page_take_new(page, &items);

		if (n > 0 || last)
			l->ops->batch(l->ud, items.data ? items.data : "", items.len, n, last);
		buf_free(&items);
	}
	if (!last)
		return;

	buf_reset(&l->body);
	if (feed_page_finish(page, &l->body, &items_end, &nitems) != 0) {
		log_error("feed page of key %s could not be assembled (see above)", l->req.key);
		load_fail(l, 500, "could not assemble the page");
		return;
	}
	feed_fetch_free(l->fetch);
	l->fetch = NULL;
	metrics_observe(METRICS_H_PAGE_ITEMS, 0, nitems);

	meta.nitems = (uint32_t)nitems;
	meta.items_end = (uint32_t)items_end;
	if (l->leased) {
		/* cache_put logs why a page was not stored, and releases the
		 * lease either way. */
		if (cache_put(l->w->cache, l->req.key, l->body.data, l->body.len, &meta,
		              clock_mono_ms()) == 0)
			metrics_add(METRICS_CACHE_FILLS, 1);
		l->leased = false;
	}
	load_done(l, &meta, "miss");
}

static void
fetch_failed(void *ud, int status, const char *error)
{
	feed_load_t *l = ud;

	/* feed_fetch frees itself after reporting a failure. */
	l->fetch = NULL;
	load_fail(l, status, error);
}

static const feed_fetch_ops_t fetch_ops = {
	.progress = fetch_progress,
	.failed = fetch_failed,
};

static void
load_timer(loop_timer_t *t)
{
	feed_load_t *l = container_of(t, feed_load_t, timer);
	cache_meta_t meta;
	cache_state_t st;
	int64_t now;

	if (l->state == LOAD_FAILING) {
		load_fail(l, l->fail_status, l->fail_detail);
		return;
	}

	/* LOAD_WAITING: has the lease holder stored the page? */
	now = clock_mono_ms();
	st = cache_get(l->w->cache, l->req.key, now, &l->body, &meta);
	if (st == CACHE_HIT || st == CACHE_STALE) {
		load_done(l, &meta, st == CACHE_HIT ? "hit" : "stale");
		return;
	}
	if (cache_lease(l->w->cache, l->req.key, now, l->w->cfg->cache_lease_timeout)) {
		/* The holder gave up or died: the fill is ours now. */
		l->leased = true;
		load_fetch(l);
		return;
	}
	if (loop_now(l->w->loop) >= l->wait_until) {
		log_warn("fill of key %s by another worker takes longer than %lld ms; querying",
		         l->req.key, (long long)l->w->cfg->cache_lease_timeout);
		load_fetch(l);
		return;
	}
	l->poll_ms = l->poll_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : l->poll_ms * 2;
	loop_timer_start(l->w->loop, &l->timer, l->poll_ms);
}

static void
load_fetch(feed_load_t *l)
{
	int status = 503;

	l->state = LOAD_FETCHING;
	if (l->w->pool != NULL)
		l->fetch = feed_fetch_start(l->w->pool, &l->req, l->w->cfg->feed_window, clock_wall_us(),
		                            &fetch_ops, l, &status);
	if (l->fetch == NULL) {
		/* Reported from a timer so no callback runs inside feed_load_start. */
		l->state = LOAD_FAILING;
		l->fail_status = status;
		snprintf(l->fail_detail, sizeof(l->fail_detail), "%s",
		         status == 503 ? "database busy or unavailable, try again" :
		                         "could not start the feed queries");
		loop_timer_start(l->w->loop, &l->timer, 0);
	}
}

feed_load_t *
feed_load_start(worker_t *w, const feed_request_t *req, const feed_load_ops_t *ops, void *ud)
{
	feed_load_t *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		log_error("feed load: out of memory");
		return NULL;
	}
	l->w = w;
	l->req = *req;
	l->ops = ops;
	l->ud = ud;
	loop_timer_init(&l->timer, load_timer);

	if (w->cache == NULL || cache_lease(w->cache, req->key, clock_mono_ms(),
	                                    w->cfg->cache_lease_timeout)) {
		l->leased = w->cache != NULL;
		load_fetch(l);
		return l;
	}
	metrics_add(METRICS_CACHE_LEASE_WAITS, 1);
	l->state = LOAD_WAITING;
	l->poll_ms = POLL_FIRST_MS;
	l->wait_until = loop_now(w->loop) + w->cfg->cache_lease_timeout;
	loop_timer_start(w->loop, &l->timer, l->poll_ms);
	return l;
}

void
feed_load_cancel(feed_load_t *l)
{
	if (l != NULL)
		load_free(l);
}

void
feed_load_refresh(worker_t *w, const feed_request_t *req)
{
	feed_load_t *l;

	if (w->cache == NULL || !cache_lease(w->cache, req->key, clock_mono_ms(),
	                                     w->cfg->cache_lease_timeout))
		return;
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		cache_release(w->cache, req->key);
		log_error("stale refresh of key %s: out of memory", req->key);
		return;
	}
	l->w = w;
	l->req = *req;
	l->leased = true;
	loop_timer_init(&l->timer, load_timer);
	/* No ops: the page lands in the cache and nobody is called. */
	load_fetch(l);
}

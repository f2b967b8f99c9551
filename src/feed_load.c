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
#include "page_files.h"
#include "pgpool.h"
#include "worker.h"

/* Waiting for another process's fill: poll the shared entry, backing off,
 * because there is no cross-process wake-up that would not cost a syscall
 * on every fill (and fills are rare next to hits). */
#define POLL_FIRST_MS 2
#define POLL_MAX_MS   25

/* Fills in progress in this worker, by key.  A handful at a time normally;
 * thousands only under a storm of distinct cold keys, which the pool's
 * room check bounds anyway. */
#define FILL_BUCKETS 256

enum fill_state {
	FILL_WAITING,  /* another process holds the lease: poll the cache */
	FILL_FETCHING, /* our queries are out */
	FILL_FAILING,  /* failure found inside start, reported from a timer */
};

typedef struct fill fill_t;

/* One caller's interest in a fill.  However many requests of this worker
 * miss the same key, they share one fill: one set of queries, one poll of
 * another process's lease, one timer. */
struct feed_load {
	fill_t *fill;
	feed_load_t *prev, *next;
	const feed_load_ops_t *ops;
	void *ud;
	/* Joined before any batch went out: it has every batch, so the items
	 * of the page reach it through batch and done only closes it. */
	bool streamed;
	bool origin;    /* started the fill: its page is a "miss" */
	bool cancelled; /* during a callback of its fill; freed after it */
};

struct fill {
	worker_t *w;
	feed_request_t req;
	fill_t *hprev, *hnext; /* fills[] bucket; unlinked when the fill ends */
	bool listed;
	enum fill_state state;
	bool leased;
	/* Items went out in a batch: a caller joining now gets only the page. */
	bool batched;
	/* A stale refresh: runs on with nobody waiting, the cache is its caller. */
	bool background;
	/* Callbacks of this fill on the stack: a cancel then only marks its
	 * load, and the fill is not freed under the fetch that called us. */
	int dispatching;
	feed_load_t *subs, *subs_tail;
	int nlive;
	feed_fetch_t *fetch;
	feed_page_t *page; /* the fetch's, while it runs */
	/* Results read in one wake-up of the loop make one batch: the timer
	 * (0 ms) fires after the loop has handled every ready socket. */
	loop_timer_t batch_timer;
	loop_timer_t timer;
	int64_t poll_ms;
	int64_t wait_until;
	int fail_status;
	char fail_detail[160];
	buf_t body;
};

/* Every fill in progress is listed until it ends.  The list also keeps a
 * background refresh reachable when the worker exits with one in flight
 * (the pool then frees its queries without calling back). */
static fill_t *fills[FILL_BUCKETS];

static void fill_fetch(fill_t *f);

/* FNV-1a: keys are short and ours (feed_request builds them). */
static unsigned
key_bucket(const char *key)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % FILL_BUCKETS;
}

static fill_t *
fill_find(const char *key)
{
	for (fill_t *f = fills[key_bucket(key)]; f != NULL; f = f->hnext)
		if (strcmp(f->req.key, key) == 0)
			return f;
	return NULL;
}

static void
fill_unlist(fill_t *f)
{
	if (!f->listed)
		return;
	if (f->hprev != NULL)
		f->hprev->hnext = f->hnext;
	else
		fills[key_bucket(f->req.key)] = f->hnext;
	if (f->hnext != NULL)
		f->hnext->hprev = f->hprev;
	f->hprev = f->hnext = NULL;
	f->listed = false;
}

static void fill_timer(loop_timer_t *t);
static void fill_batch_timer(loop_timer_t *t);

static fill_t *
fill_new(worker_t *w, const feed_request_t *req)
{
	fill_t *f = calloc(1, sizeof(*f));
	unsigned b;

	if (f == NULL)
		return NULL;
	f->w = w;
	f->req = *req;
	loop_timer_init(&f->timer, fill_timer);
	loop_timer_init(&f->batch_timer, fill_batch_timer);
	b = key_bucket(req->key);
	f->hnext = fills[b];
	if (fills[b] != NULL)
		fills[b]->hprev = f;
	fills[b] = f;
	f->listed = true;
	return f;
}

/* The fill ends: queries cancelled, lease released.  Its loads are gone. */
static void
fill_free(fill_t *f)
{
	fill_unlist(f);
	if (f->fetch != NULL)
		feed_fetch_cancel(f->fetch);
	if (f->leased)
		cache_release(f->w->cache, f->req.key);
	loop_timer_stop(f->w->loop, &f->timer);
	loop_timer_stop(f->w->loop, &f->batch_timer);
	while (f->subs != NULL) {
		feed_load_t *l = f->subs;

		f->subs = l->next;
		free(l);
	}
	buf_free(&f->body);
	free(f);
}

static void
sub_unlink(fill_t *f, feed_load_t *l)
{
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		f->subs = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	else
		f->subs_tail = l->prev;
	l->prev = l->next = NULL;
}

static feed_load_t *
sub_add(fill_t *f, const feed_load_ops_t *ops, void *ud)
{
	feed_load_t *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->fill = f;
	l->ops = ops;
	l->ud = ud;
	l->streamed = !f->batched;
	l->prev = f->subs_tail;
	if (f->subs_tail != NULL)
		f->subs_tail->next = l;
	else
		f->subs = l;
	f->subs_tail = l;
	f->nlive++;
	return l;
}

/* Frees the loads cancelled during a dispatch. */
static void
fill_sweep(fill_t *f)
{
	feed_load_t *l, *next;

	if (f->dispatching > 0)
		return;
	for (l = f->subs; l != NULL; l = next) {
		next = l->next;
		if (l->cancelled) {
			sub_unlink(f, l);
			free(l);
		}
	}
}

/* Nobody waits for this fill any more, and it is not a refresh. */
static bool
fill_unwanted(const fill_t *f)
{
	return f->nlive == 0 && !f->background;
}

/* The end of a fill for its callers: off the table first, so a callback
 * starting a load of the same key gets a fresh fill, not this dying one. */
static void
fill_fail(fill_t *f, int status, const char *detail)
{
	char why[sizeof(f->fail_detail)];

	/* detail may live in f (fail_detail) or in the fetch: keep a copy. */
	snprintf(why, sizeof(why), "%s", detail);
	fill_unlist(f);
	if (f->fetch != NULL) {
		feed_fetch_cancel(f->fetch);
		f->fetch = NULL;
	}
	f->page = NULL;
	loop_timer_stop(f->w->loop, &f->batch_timer);
	if (f->leased) {
		cache_release(f->w->cache, f->req.key);
		f->leased = false;
	}
	f->dispatching++;
	for (feed_load_t *l = f->subs; l != NULL; l = l->next) {
		if (l->cancelled || l->ops == NULL || l->ops->failed == NULL)
			continue;
		l->cancelled = true;
		l->ops->failed(l->ud, status, why);
	}
	f->dispatching--;
	fill_free(f);
}

/* served: NULL for "miss" to the load that started the fill and "hit" to
 * those that joined it, else the label for all. */
static void
fill_done(fill_t *f, const cache_meta_t *meta, const char *served)
{
	fill_unlist(f);
	f->dispatching++;
	for (feed_load_t *l = f->subs; l != NULL; l = l->next) {
		if (l->cancelled || l->ops == NULL || l->ops->done == NULL)
			continue;
		l->cancelled = true;
		l->ops->done(l->ud, &f->body, meta,
		             served != NULL ? served
		             : l->origin    ? "miss"
		                            : "hit");
	}
	f->dispatching--;
	fill_free(f);
}

/* Sends the items that arrived since the last batch to the loads that
 * have had every batch. */
static void
fill_batch(fill_t *f, bool last)
{
	buf_t items = BUF_INIT;
	bool wanted = false;
	size_t n;

	for (feed_load_t *l = f->subs; l != NULL && !wanted; l = l->next)
		wanted = !l->cancelled && l->streamed && l->ops != NULL && l->ops->batch != NULL;
	if (!wanted || f->page == NULL)
		return;
	/* Items not taken stay fresh: a stream joining later still gets them. */
	n = feed_page_take_new(f->page, &items);
	if (n > 0 || last) {
		f->batched = true;
		f->dispatching++;
		for (feed_load_t *l = f->subs; l != NULL; l = l->next) {
			if (l->cancelled || !l->streamed || l->ops == NULL || l->ops->batch == NULL)
				continue;
			l->ops->batch(l->ud, items.data != NULL ? items.data : "", items.len, n,
			              last);
		}
		f->dispatching--;
		fill_sweep(f);
	}
	buf_free(&items);
}

static void
fill_batch_timer(loop_timer_t *t)
{
	fill_t *f = container_of(t, fill_t, batch_timer);

	fill_batch(f, false);
	/* Every caller left while the queries ran: stop them. */
	if (fill_unwanted(f))
		fill_free(f);
}

static void
fetch_progress(void *ud, feed_page_t *page, bool last)
{
	fill_t *f = ud;
	cache_meta_t meta;
	size_t items_end;
	int nitems;

	f->page = page;
	if (!last) {
		if (!loop_timer_active(&f->batch_timer))
			loop_timer_start(f->w->loop, &f->batch_timer, 0);
		return;
	}
	loop_timer_stop(f->w->loop, &f->batch_timer);
	fill_batch(f, true);

	/* The queries are done: the page is stored even if nobody waits. */
	buf_reset(&f->body);
	if (feed_page_finish(page, &f->body, &items_end, &nitems) != 0) {
		log_error("feed page of key %s could not be assembled (see above)", f->req.key);
		fill_fail(f, 500, "could not assemble the page");
		return;
	}
	feed_fetch_free(f->fetch);
	f->fetch = NULL;
	f->page = NULL;
	metrics_observe(METRICS_H_PAGE_ITEMS, 0, nitems);

	meta.nitems = (uint32_t)nitems;
	meta.items_end = (uint32_t)items_end;
	if (f->leased) {
		/* cache_put logs why a page was not stored, and releases the
		 * lease either way. */
		if (cache_put(f->w->cache, f->req.key, f->body.data, f->body.len, &meta,
		              clock_mono_ms()) == 0)
			metrics_add(METRICS_CACHE_FILLS, 1);
		f->leased = false;
	}
	fill_done(f, &meta, NULL);
}

static void
fetch_failed(void *ud, int status, const char *error)
{
	fill_t *f = ud;

	/* feed_fetch frees itself after reporting a failure. */
	f->fetch = NULL;
	fill_fail(f, status, error);
}

static const feed_fetch_ops_t fetch_ops = {
        .progress = fetch_progress,
        .failed = fetch_failed,
};

static void
fill_timer(loop_timer_t *t)
{
	fill_t *f = container_of(t, fill_t, timer);
	cache_meta_t meta;
	cache_state_t st;
	int64_t now;

	if (f->state == FILL_FAILING) {
		fill_fail(f, f->fail_status, f->fail_detail);
		return;
	}

	/* FILL_WAITING: has the lease holder stored the page? */
	now = clock_mono_ms();
	st = cache_get(f->w->cache, f->req.key, now, &f->body, &meta);
	if (st == CACHE_HIT || st == CACHE_STALE) {
		fill_done(f, &meta, st == CACHE_HIT ? "hit" : "stale");
		return;
	}
	if (cache_lease(f->w->cache, f->req.key, now, f->w->cfg->cache_lease_timeout)) {
		/* The holder gave up or died: the fill is ours now. */
		f->leased = true;
		fill_fetch(f);
		return;
	}
	if (loop_now(f->w->loop) >= f->wait_until) {
		log_warn("fill of key %s by another worker takes longer than %lld ms; querying",
		         f->req.key, (long long)f->w->cfg->cache_lease_timeout);
		fill_fetch(f);
		return;
	}
	f->poll_ms = f->poll_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : f->poll_ms * 2;
	loop_timer_start(f->w->loop, &f->timer, f->poll_ms);
}

static void
fill_fetch(fill_t *f)
{
	int status = 503;

	f->state = FILL_FETCHING;
	if (f->w->pool != NULL)
		f->fetch = feed_fetch_start(f->w->pool, &f->req, f->w->cfg->feed_window,
		                            clock_wall_us(), &fetch_ops, f, &status);
	if (f->fetch == NULL) {
		/* Reported from a timer so no callback runs inside feed_load_start. */
		f->state = FILL_FAILING;
		f->fail_status = status;
		/* A 503 is the pool refusing the page, and the pool knows whether
		 * the database is down or only busy. */
		if (status == 503)
			snprintf(f->fail_detail, sizeof(f->fail_detail), "%s, try again",
			         f->w->pool != NULL ? pgpool_error(f->w->pool)
			                            : "no database connection");
		else
			snprintf(f->fail_detail, sizeof(f->fail_detail),
			         "could not start the feed queries");
		loop_timer_start(f->w->loop, &f->timer, 0);
	}
}

static void
count_lookup(cache_state_t st)
{
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
}

cache_state_t
feed_load_cached(worker_t *w, const feed_request_t *req, buf_t *body, cache_meta_t *meta,
                 cache_ref_t *ref)
{
	cache_state_t st;

	if (w->cache == NULL)
		return CACHE_MISS;
	st = cache_get_ref(w->cache, req->key, clock_mono_ms(), body, meta, ref);
	count_lookup(st);
	return st;
}

cache_state_t
feed_load_file(worker_t *w, const feed_request_t *req, page_file_t **file)
{
	page_file_t *f;
	cache_state_t st;

	if (w->cache == NULL || w->page_files == NULL)
		return CACHE_MISS;
	f = page_files_find(w->page_files, cache_key_hash(w->cache, req->key), req->key);
	if (f == NULL)
		return CACHE_MISS;
	st = cache_check(w->cache, &f->ref, clock_mono_ms());
	if (st == CACHE_MISS)
		return CACHE_MISS; /* out of date: the caller reads the page again */
	count_lookup(st);
	metrics_add(METRICS_CACHE_SENDFILE_HITS, 1);
	page_file_hold(f);
	*file = f;
	return st;
}

feed_load_t *
feed_load_start(worker_t *w, const feed_request_t *req, const feed_load_ops_t *ops, void *ud)
{
	fill_t *f = fill_find(req->key);
	feed_load_t *l;

	if (f != NULL) {
		l = sub_add(f, ops, ud);
		if (l == NULL) {
			log_error("feed load: out of memory");
			return NULL;
		}
		metrics_add(METRICS_CACHE_LEASE_WAITS, 1);
		return l;
	}

	f = fill_new(w, req);
	l = f != NULL ? sub_add(f, ops, ud) : NULL;
	if (l == NULL) {
		if (f != NULL)
			fill_free(f);
		log_error("feed load: out of memory");
		return NULL;
	}
	l->origin = true;
	if (w->cache == NULL ||
	    cache_lease(w->cache, req->key, clock_mono_ms(), w->cfg->cache_lease_timeout)) {
		f->leased = w->cache != NULL;
		fill_fetch(f);
		return l;
	}
	metrics_add(METRICS_CACHE_LEASE_WAITS, 1);
	f->state = FILL_WAITING;
	f->poll_ms = POLL_FIRST_MS;
	f->wait_until = loop_now(w->loop) + w->cfg->cache_lease_timeout;
	loop_timer_start(w->loop, &f->timer, f->poll_ms);
	return l;
}

void
feed_load_cancel(feed_load_t *l)
{
	fill_t *f;

	if (l == NULL)
		return;
	f = l->fill;
	if (l->cancelled) {
		/* The caller's contract says this cannot happen (no cancel after
		 * done or failed); a second cancel must not free twice. */
		log_error("feed load of key %s cancelled after it ended", f->req.key);
		return;
	}
	l->cancelled = true;
	l->ops = NULL;
	f->nlive--;
	if (f->dispatching > 0)
		return; /* the dispatch sweeps it, and its caller decides for the fill */
	sub_unlink(f, l);
	free(l);
	if (fill_unwanted(f))
		fill_free(f);
}

void
feed_load_refresh(worker_t *w, const feed_request_t *req)
{
	fill_t *f;

	/* This worker is filling the key already (a miss that raced the expiry). */
	if (w->cache == NULL || fill_find(req->key) != NULL)
		return;
	if (!cache_lease(w->cache, req->key, clock_mono_ms(), w->cfg->cache_lease_timeout))
		return;
	f = fill_new(w, req);
	if (f == NULL) {
		cache_release(w->cache, req->key);
		log_error("stale refresh of key %s: out of memory", req->key);
		return;
	}
	f->leased = true;
	f->background = true;
	/* Nobody is called: the page lands in the cache. */
	fill_fetch(f);
}

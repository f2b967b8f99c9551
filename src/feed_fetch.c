/* Runs one page's 15 statements at once over the pool and feeds the results to a feed_page. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cursor.h"
#include "feed_fetch.h"
#include "feed_sources.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"

/* "YYYY-MM-DD HH:MM:SS.ffffff+00", with room for a 6-digit year. */
#define TIME_TEXT_MAX 48

typedef struct fetch_src {
	feed_fetch_t   *f;
	int             index;
	pgpool_query_t *q;        /* NULL once answered */
} fetch_src_t;

struct feed_fetch {
	const feed_fetch_ops_t *ops;
	void                   *ud;
	feed_page_t            *page;
	int                     pending;
	int64_t                 sent_ns;
	fetch_src_t             src[FEED_SRC_COUNT];
};

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A timestamptz literal PostgreSQL reads exactly, whatever its DateStyle:
 * ISO order with an explicit offset. */
static void
format_time(int64_t us, char *out, size_t outlen)
{
	int64_t   secs = us / 1000000;
	int64_t   frac = us % 1000000;
	time_t    t;
	struct tm tm;

	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	t = (time_t)secs;
	gmtime_r(&t, &tm);
	snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

static void
fetch_cancel_all(feed_fetch_t *f)
{
	for (int i = 0; i < FEED_SRC_COUNT; i++) {
		if (f->src[i].q != NULL) {
			pgpool_cancel(f->src[i].q);
			f->src[i].q = NULL;
		}
	}
}

static void
fetch_destroy(feed_fetch_t *f)
{
	fetch_cancel_all(f);
	if (f->page != NULL)
		feed_page_free(f->page);
	free(f);
}

/* The first failure ends the fetch: the rest is cancelled, the owner told
 * once, and f freed (no callback follows, so the owner drops its pointer). */
static void
fetch_fail(feed_fetch_t *f, int status, const char *error)
{
	const feed_fetch_ops_t *ops = f->ops;
	void                   *ud = f->ud;

	fetch_destroy(f);
	ops->failed(ud, status, error);
}

/* Rows -> items -> page.  Returns 0, or -1 with the failure reported. */
static int
fetch_decode(feed_fetch_t *f, int index, const PGresult *res)
{
	const feed_source_def_t *def = &feed_source_defs[index];
	int                      nrows = PQntuples(res);
	int                      ncols = PQnfields(res);
	feed_item_t             *items;
	const char             **v;
	char                     why[160];
	int                      built = 0;
	bool                     malformed = false;

	if (ncols != def->ncols) {
		log_error("feed source %s: the statement returns %d columns, %d expected "
		          "(schema mismatch)", def->name, ncols, def->ncols);
		snprintf(why, sizeof(why), "malformed result from the database (source %s)",
		         def->name);
		fetch_fail(f, 500, why);
		return -1;
	}
	if (nrows == 0)
		return 0;
	items = calloc((size_t)nrows, sizeof(*items));
	v = calloc((size_t)ncols, sizeof(*v));
	if (items == NULL || v == NULL) {
		free(items);
		free(v);
		log_error("feed source %s: out of memory decoding %d rows", def->name, nrows);
		fetch_fail(f, 500, "out of memory");
		return -1;
	}
	for (; built < nrows; built++) {
		feed_row_t row = { v, ncols };
		int64_t sort_us;

		/* Rows the page has no room for are not worth building: on a
		 * cold page most of the 15 x (limit + 1) rows lose to others. */
		if (!PQgetisnull(res, built, def->sort_col) &&
		    cursor_parse_i64(PQgetvalue(res, built, def->sort_col), &sort_us) == 0 &&
		    feed_page_settled_before(f->page, sort_us))
			break;

		for (int c = 0; c < ncols; c++)
			v[c] = PQgetisnull(res, built, c) ? NULL : PQgetvalue(res, built, c);
		if (def->build(&row, &items[built]) != 0) {
			log_error("feed source %s: malformed row %d (schema mismatch?)", def->name,
			          built);
			malformed = true;
			break;
		}
	}
	free(v);
	if (malformed) {
		for (int i = 0; i <= built; i++)
			feed_item_clear(&items[i]);
		free(items);
		snprintf(why, sizeof(why), "malformed row from the database (source %s)", def->name);
		fetch_fail(f, 500, why);
		return -1;
	}
	if (feed_page_add(f->page, items, (size_t)built) != 0) {
		free(items);
		log_error("feed source %s: out of memory adding %d items to the page", def->name,
		          built);
		fetch_fail(f, 500, "out of memory");
		return -1;
	}
	free(items);
	return 0;
}

static void
fetch_source_cb(void *ud, const PGresult *res, const char *error)
{
	fetch_src_t  *src = ud;
	feed_fetch_t *f = src->f;

	src->q = NULL;
	f->pending--;
	if (res == NULL) {
		char why[320];

		/* The pool logged the cause where it happened. */
		if (strcmp(error, PGPOOL_ERR_TIMEOUT) == 0) {
			snprintf(why, sizeof(why), "database timeout: source %s took too long",
			         feed_source_defs[src->index].name);
			fetch_fail(f, 504, why);
		} else {
			snprintf(why, sizeof(why), "database unavailable: %s", error);
			fetch_fail(f, 503, why);
		}
		return;
	}
	metrics_observe(METRICS_H_SOURCE_LATENCY, src->index,
	                (double)(mono_ns() - f->sent_ns) / 1e9);
	if (fetch_decode(f, src->index, res) != 0)
		return;
	/* Last use of f: the owner may cancel or free it inside. */
	f->ops->progress(f->ud, f->page, f->pending == 0);
}

feed_fetch_t *
feed_fetch_start(struct pgpool *pool, const feed_request_t *req, int64_t window_ms, int64_t now_us,
                 const feed_fetch_ops_t *ops, void *ud, int *http_status)
{
	char           upper[TIME_TEXT_MAX], lower[TIME_TEXT_MAX], limit[16];
	const char    *params[FEED_SOURCE_NPARAMS];
	pgpool_batch_t batch = { 0 };
	feed_fetch_t  *f = calloc(1, sizeof(*f));

	if (f != NULL)
		f->page = feed_page_new(req->limit);
	if (f == NULL || f->page == NULL) {
		free(f);
		log_error("feed fetch: out of memory");
		*http_status = 500;
		return NULL;
	}
	f->ops = ops;
	f->ud = ud;

	if (req->has_cursor)
		format_time(req->cursor.time_us, upper, sizeof(upper));
	else
		snprintf(upper, sizeof(upper), "infinity");
	if (window_ms > 0)
		format_time(now_us - window_ms * 1000, lower, sizeof(lower));
	else
		snprintf(lower, sizeof(lower), "-infinity");
	snprintf(limit, sizeof(limit), "%d", req->limit + 1);
	params[0] = upper;
	params[1] = req->has_cursor ? req->cursor.id : "";
	params[2] = lower;
	params[3] = limit;

	/* Half a page is no page: under overload, sending some statements
	 * only to cancel them would waste the database's time. */
	if (pgpool_room(pool) < FEED_SRC_COUNT) {
		log_debug("feed fetch: the pool cannot take %d statements now: %s", FEED_SRC_COUNT,
		          pgpool_error(pool));
		/* A full queue (not a database that is down) refuses the page
		 * whole, before pgpool_exec could count it. */
		if (pgpool_ready(pool))
			metrics_add(METRICS_DB_QUEUE_REJECTED, FEED_SRC_COUNT);
		fetch_destroy(f);
		*http_status = 503;
		return NULL;
	}

	/* All at once, as one batch: the pool plans it over its connections
	 * (the costliest statement alone, nothing waiting behind it, the
	 * cheap ones first), so the page costs about one round trip plus the
	 * slowest statement and its first items come with the fastest. */
	f->sent_ns = mono_ns();
	for (int i = 0; i < FEED_SRC_COUNT; i++) {
		f->src[i].f = f;
		f->src[i].index = i;
		f->src[i].q = pgpool_exec(pool, &batch, i, params, fetch_source_cb, &f->src[i]);
		if (f->src[i].q == NULL) {
			/* Only out of memory after the room check: undo. */
			log_debug("feed fetch: source %s not queued: %s", feed_source_defs[i].name,
			          pgpool_error(pool));
			fetch_destroy(f);
			*http_status = 503;
			return NULL;
		}
		f->pending++;
	}
	pgpool_batch_send(pool, &batch);
	return f;
}

void
feed_fetch_cancel(feed_fetch_t *f)
{
	if (f != NULL)
		fetch_destroy(f);
}

feed_page_t *
feed_fetch_page(feed_fetch_t *f)
{
	feed_page_t *page = f->page;

	f->page = NULL;
	return page;
}

void
feed_fetch_free(feed_fetch_t *f)
{
	if (f != NULL)
		fetch_destroy(f);
}

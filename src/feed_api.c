/* GET /api/feed: the JSON page, from the cache or the database. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "feed_api.h"
#include "feed_load.h"
#include "feed_request.h"
#include "log.h"
#include "metrics.h"
#include "page_files.h"
#include "router.h"
#include "worker.h"

#define JSON_TYPE "application/json"

/* A page the cache could not answer: waiting for the database or for
 * another process's fill (feed_load decides which). */
typedef struct api_wait {
	conn_t      *c;
	feed_load_t *load;
	int64_t      start_ms;
} api_wait_t;

static const char *
x_cache_header(const char *served)
{
	if (strcmp(served, "hit") == 0)
		return "X-Cache: hit\r\n";
	if (strcmp(served, "stale") == 0)
		return "X-Cache: stale\r\n";
	return "X-Cache: miss\r\n";
}

/* served must be a string literal: the access log keeps the pointer. */
static void
api_respond(conn_t *c, const char *body, size_t len, const char *served, int64_t start_ms)
{
	conn_set_cache_status(c, served);
	conn_respond(c, 200, JSON_TYPE, x_cache_header(served), body, len);
	metrics_observe(METRICS_H_JSON_COMPLETE, 0, (double)(clock_mono_ms() - start_ms) / 1000.0);
}

static void
api_load_done(void *ud, const buf_t *body, const cache_meta_t *meta, const char *served)
{
	api_wait_t *a = ud;

	(void)meta;
	api_respond(a->c, body->data != NULL ? body->data : "", body->len, served, a->start_ms);
	free(a);
}

static void
api_load_failed(void *ud, int status, const char *detail)
{
	api_wait_t *a = ud;

	/* Logged where it happened (pool, fetch); the client gets the reason. */
	router_error(a->c, status, detail, NULL);
	free(a);
}

static const feed_load_ops_t load_ops = {
	.batch = NULL,
	.done = api_load_done,
	.failed = api_load_failed,
};

static void
api_abort(conn_t *c, void *ctx)
{
	api_wait_t *a = ctx;

	(void)c;
	/* Cancels the queries and releases a held fill lease. */
	feed_load_cancel(a->load);
	free(a);
}

/* Draining: a page is at most query_timeout away, and the worker bounds
 * the drain anyway, so it is answered rather than cut. */
static void
api_shutdown(conn_t *c, void *ctx)
{
	(void)c;
	(void)ctx;
}

static const conn_pending_ops_t pending_ops = {
	.abort = api_abort,
	.shutdown = api_shutdown,
};

/* After a cached answer.  start_ms: taken from the request before the
 * answer, which may have completed it and cleared it for the next. */
static void
api_served(worker_t *w, int64_t start_ms, const feed_request_t *req, cache_state_t st)
{
	metrics_observe(METRICS_H_JSON_COMPLETE, 0, (double)(clock_mono_ms() - start_ms) / 1000.0);
	/* After the answer, so the stale page never waits for this. */
	if (st == CACHE_STALE)
		feed_load_refresh(w, req);
}

static void
api_file_sent(void *ctx)
{
	page_file_release(ctx);
}

/* The fastest path: this worker's sealed file of the page, still what the
 * cache holds, sent with sendfile.  Returns false when there is none. */
static bool
api_file(conn_t *c, const request_t *r, const feed_request_t *req)
{
	worker_t     *w = conn_worker(c);
	int64_t       start_ms = r->start_ms;
	page_file_t  *f;
	cache_state_t st = feed_load_file(w, req, &f);
	const char   *served;

	if (st == CACHE_MISS)
		return false;
	served = st == CACHE_HIT ? "hit" : "stale";
	conn_set_cache_status(c, served);
	conn_respond_file(c, 200, JSON_TYPE, x_cache_header(served),
	                  &(conn_file_t){.fd = f->fd, .len = f->len, .release = api_file_sent,
	                                 .ctx = f});
	api_served(w, start_ms, req, st);
	return true;
}

/* The fast path: a cached page copied once, from shared memory straight
 * into the connection's output behind the head.  Returns false on a miss
 * (nothing sent, the request still waits for its answer). */
static bool
api_cached(conn_t *c, const request_t *r, const feed_request_t *req)
{
	worker_t     *w = conn_worker(c);
	int64_t       start_ms = r->start_ms;
	cache_meta_t  meta;
	cache_ref_t   ref;
	cache_state_t st;
	const char   *served;
	buf_t        *out;
	size_t        at;

	if (api_file(c, r, req))
		return true;
	out = conn_respond_begin(c);
	if (out == NULL)
		return true; /* logged; c closed or not answering */
	at = out->len;
	st = feed_load_cached(w, req, out, &meta, &ref);
	if (st == CACHE_MISS) {
		conn_respond_cancel(c);
		return false;
	}
	/* While the body is still where it was copied to. */
	if (w->page_files != NULL)
		page_files_note(w->page_files, req->key, &ref, out->data + at, out->len - at);
	served = st == CACHE_HIT ? "hit" : "stale";
	conn_set_cache_status(c, served);
	conn_respond_end(c, 200, JSON_TYPE, x_cache_header(served));
	api_served(w, start_ms, req, st);
	return true;
}

void
feed_api_handle(conn_t *c, const request_t *r)
{
	worker_t      *w = conn_worker(c);
	feed_request_t req;
	buf_t          buf = BUF_INIT;
	api_wait_t    *a;

	if (feed_request_parse(r->query, r->query_len, &req, &buf) != 0) {
		conn_respond(c, 422, JSON_TYPE, NULL, buf.data != NULL ? buf.data : "", buf.len);
		buf_free(&buf);
		return;
	}
	buf_free(&buf);

	if (api_cached(c, r, &req))
		return;

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		log_error("feed request: out of memory");
		router_error(c, 500, "out of memory", NULL);
		return;
	}
	a->c = c;
	a->start_ms = r->start_ms;
	/* No callback runs inside feed_load_start, so registering after it is safe. */
	a->load = feed_load_start(w, &req, &load_ops, a);
	if (a->load == NULL) {
		free(a);
		router_error(c, 500, "out of memory", NULL);
		return;
	}
	conn_set_pending(c, &pending_ops, a);
}

/* GET /api/feed/stream: Server-Sent Events, progressive batches, keepalive, timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "conn.h"
#include "feed_load.h"
#include "feed_request.h"
#include "feed_stream.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "router.h"
#include "worker.h"

#define SSE_CONTENT_TYPE "text/event-stream"
#define RESTARTING       "the server is restarting; reconnect shortly"

typedef struct stream {
	conn_t *c;
	worker_t *w;
	feed_load_t *load;
	loop_timer_t keepalive;
	loop_timer_t deadline;
	int64_t start_ms;
	bool first_items_sent;
	/* The load's last batch reached us: every item of the page is out,
	 * and the end of the load only adds feed_complete. */
	bool items_out;
	/* conn_stream_write is on the stack: a connection failing inside it
	 * may still call abort, and the writer, which gets -1, cleans up. */
	bool writing;
	bool aborted;
} stream_t;

static const char *
sse_headers(const char *cache_status)
{
	if (cache_status == NULL)
		return "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";
	if (strcmp(cache_status, "hit") == 0)
		return "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nX-Cache: hit\r\n";
	if (strcmp(cache_status, "stale") == 0)
		return "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nX-Cache: stale\r\n";
	return "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nX-Cache: miss\r\n";
}

/* The stream opens with the reconnection delay, so a browser whose
 * EventSource reconnects after the server's close does not hammer us. */
static int
sse_begin(conn_t *c, const char *cache_status)
{
	char retry[48];
	int n;

	if (conn_stream_start(c, 200, SSE_CONTENT_TYPE, sse_headers(cache_status)) != 0)
		return -1;
	n = snprintf(retry, sizeof(retry), "retry: %lld\n\n",
	             (long long)conn_worker(c)->cfg->sse_retry);
	return conn_stream_write(c, retry, (size_t)n);
}

/* event: feed_items, data: {"items":[<items>],"partial":<partial>} */
static int
sse_items(buf_t *ev, const char *items, size_t len, bool partial)
{
	if (buf_append_str(ev, "event: feed_items\ndata: {\"items\":[") != 0 ||
	    buf_append(ev, items, len) != 0 ||
	    buf_printf(ev, "],\"partial\":%s}\n\n", partial ? "true" : "false") != 0)
		return -1;
	return 0;
}

/* The page body is {"items":[...],"next_cursor":X}; items_end points just
 * past the array.  Both events are cut from it, so a cached page is served
 * without re-encoding anything. */
static int
page_split(const buf_t *body, const cache_meta_t *meta, const char **next, size_t *next_len)
{
	static const char items_head[] = "{\"items\":[";
	static const char cursor_head[] = ",\"next_cursor\":";

	if (body->data == NULL || body->len < sizeof(items_head) || meta->items_end >= body->len ||
	    meta->items_end < sizeof(items_head) ||
	    memcmp(body->data, items_head, sizeof(items_head) - 1) != 0 ||
	    body->data[meta->items_end - 1] != ']' ||
	    strncmp(body->data + meta->items_end, cursor_head, sizeof(cursor_head) - 1) != 0 ||
	    body->data[body->len - 1] != '}')
		return -1;
	*next = body->data + meta->items_end + sizeof(cursor_head) - 1;
	*next_len = body->len - 1 - (meta->items_end + sizeof(cursor_head) - 1);
	return 0;
}

/* event: feed_complete, data: {"next_cursor":X,"total_items":N}; and, for
 * a page that was not streamed batch by batch, its items first (one
 * feed_items, partial:false). */
static int
sse_page(buf_t *ev, const buf_t *body, const cache_meta_t *meta, bool with_items)
{
	const char *next;
	size_t next_len;

	if (page_split(body, meta, &next, &next_len) != 0) {
		log_error("stream: the page is not a feed page (%zu bytes); refusing to serve it",
		          body->len);
		return -1;
	}
	if (with_items) {
		size_t head = sizeof("{\"items\":[") - 1;

		if (sse_items(ev, body->data + head, meta->items_end - 1 - head, false) != 0)
			return -1;
	}
	if (buf_append_str(ev, "event: feed_complete\ndata: {\"next_cursor\":") != 0 ||
	    buf_append(ev, next, next_len) != 0 ||
	    buf_printf(ev, ",\"total_items\":%u}\n\n", (unsigned)meta->nitems) != 0)
		return -1;
	return 0;
}

/* event: error, data: {"detail":"..."}.  detail may quote the database
 * (its messages hold quotes, and could hold anything): escaped as JSON, on
 * one line, since a newline would end the data field. */
static int
sse_error(buf_t *ev, const char *detail)
{
	if (buf_append_str(ev, "event: error\ndata: {\"detail\":\"") != 0)
		return -1;
	for (const unsigned char *p = (const unsigned char *)detail; *p; p++) {
		int rc;

		if (*p == '"' || *p == '\\')
			rc = buf_printf(ev, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			rc = buf_printf(ev, "\\u%04x", *p);
		else
			rc = buf_append(ev, p, 1);
		if (rc != 0)
			return -1;
	}
	return buf_append_str(ev, "\"}\n\n");
}

/* ---- the stream's life ------------------------------------------------- */

/* Every write of a pending stream goes through here.  -1: the connection
 * is closed (conn's contract), and s must be dropped by the caller. */
static int
stream_write(stream_t *s, const buf_t *ev)
{
	int rc;

	if (ev->len == 0)
		return 0;
	s->writing = true;
	rc = conn_stream_write(s->c, ev->data, ev->len);
	s->writing = false;
	return s->aborted ? -1 : rc;
}

static void
stream_free(stream_t *s)
{
	loop_timer_stop(s->w->loop, &s->keepalive);
	loop_timer_stop(s->w->loop, &s->deadline);
	metrics_gauge_add(METRICS_OPEN_STREAMS, -1);
	free(s);
}

/* The client is gone (the connection is closed already): its queries are
 * cancelled, unless other requests wait for the same page. */
static void
stream_lost(stream_t *s)
{
	metrics_add(METRICS_SSE_CLIENT_GONE, 1);
	feed_load_cancel(s->load);
	s->load = NULL;
	stream_free(s);
}

/* Ends the stream with an error event: timeout, shutdown, database failure.
 * The load is over or cancelled by then. */
static void
stream_fail(stream_t *s, const char *detail)
{
	buf_t ev = BUF_INIT;

	if (sse_error(&ev, detail) != 0) {
		/* Not even the error fits in memory: the close says it. */
		log_error("stream: out of memory for an error event");
		buf_reset(&ev);
	}
	if (stream_write(s, &ev) == 0)
		conn_stream_end(s->c);
	buf_free(&ev);
	stream_free(s);
}

static void
observe_first_items(stream_t *s)
{
	if (s->first_items_sent)
		return;
	s->first_items_sent = true;
	metrics_observe(METRICS_H_SSE_FIRST_ITEM, 0,
	                (double)(clock_mono_ms() - s->start_ms) / 1000.0);
}

static void
on_batch(void *ud, const char *items, size_t len, size_t nitems, bool last)
{
	stream_t *s = ud;
	buf_t ev = BUF_INIT;
	int rc;

	if (sse_items(&ev, items, len, !last) != 0) {
		buf_free(&ev);
		log_error("stream: out of memory for a batch of %zu items", nitems);
		feed_load_cancel(s->load);
		s->load = NULL;
		stream_fail(s, "server out of memory");
		return;
	}
	rc = stream_write(s, &ev);
	buf_free(&ev);
	if (rc != 0) {
		/* The load allows a cancel from inside its callback. */
		stream_lost(s);
		return;
	}
	if (last)
		s->items_out = true;
	if (nitems > 0)
		observe_first_items(s);
}

static void
on_done(void *ud, const buf_t *body, const cache_meta_t *meta, const char *served)
{
	stream_t *s = ud;
	buf_t ev = BUF_INIT;
	int rc;

	s->load = NULL;
	conn_set_cache_status(s->c, served);
	if (sse_page(&ev, body, meta, !s->items_out) != 0) {
		buf_free(&ev);
		stream_fail(s, "could not serve the page");
		return;
	}
	rc = stream_write(s, &ev);
	buf_free(&ev);
	if (rc != 0) {
		stream_lost(s);
		return;
	}
	observe_first_items(s);
	metrics_observe(METRICS_H_SSE_COMPLETE, 0,
	                (double)(clock_mono_ms() - s->start_ms) / 1000.0);
	conn_stream_end(s->c);
	stream_free(s);
}

static void
on_failed(void *ud, int status, const char *detail)
{
	stream_t *s = ud;

	s->load = NULL;
	/* The cause is logged where it happened (pool, fetch). */
	log_info("stream ended with an error event: %s (status %d)", detail, status);
	stream_fail(s, detail);
}

static const feed_load_ops_t load_ops = {
        .batch = on_batch,
        .done = on_done,
        .failed = on_failed,
};

static void
on_keepalive(loop_timer_t *t)
{
	stream_t *s = container_of(t, stream_t, keepalive);
	static const buf_t comment = {(char *)": keepalive\n\n", sizeof(": keepalive\n\n") - 1, 0};

	if (stream_write(s, &comment) != 0) {
		stream_lost(s);
		return;
	}
	loop_timer_start(s->w->loop, &s->keepalive, s->w->cfg->sse_keepalive);
}

static void
on_deadline(loop_timer_t *t)
{
	stream_t *s = container_of(t, stream_t, deadline);
	char detail[96];

	metrics_add(METRICS_SSE_TIMEOUTS, 1);
	feed_load_cancel(s->load);
	s->load = NULL;
	snprintf(detail, sizeof(detail), "the feed did not complete within %lld ms",
	         (long long)s->w->cfg->sse_timeout);
	log_warn("stream timed out after %lld ms", (long long)s->w->cfg->sse_timeout);
	stream_fail(s, detail);
}

static void
pending_abort(conn_t *c, void *ctx)
{
	stream_t *s = ctx;

	(void)c;
	if (s->writing) {
		s->aborted = true;
		return;
	}
	stream_lost(s);
}

/* Draining (reload, stop): the page may be seconds away and the drain is
 * bounded, so the client hears why now and reconnects to a live worker. */
static void
pending_shutdown(conn_t *c, void *ctx)
{
	stream_t *s = ctx;

	(void)c;
	feed_load_cancel(s->load);
	s->load = NULL;
	stream_fail(s, RESTARTING);
}

static const conn_pending_ops_t pending_ops = {
        .abort = pending_abort,
        .shutdown = pending_shutdown,
};

/* A whole stream written at once (cache hit or stale, HEAD, draining):
 * nothing to wait for, so nothing pending. */
static void
stream_now(conn_t *c, const char *served, const buf_t *body, const cache_meta_t *meta,
           const char *error)
{
	buf_t ev = BUF_INIT;
	int rc = 0;

	conn_set_cache_status(c, served);
	if (sse_begin(c, served) != 0)
		return;
	if (body != NULL)
		rc = sse_page(&ev, body, meta, true);
	else if (error != NULL)
		rc = sse_error(&ev, error);
	if (rc != 0) {
		/* Headers are out: an error event is the only way to say it. */
		buf_reset(&ev);
		rc = sse_error(&ev, "could not serve the page");
	}
	if (rc == 0 && ev.len > 0 && conn_stream_write(c, ev.data, ev.len) != 0)
		rc = -1;
	buf_free(&ev);
	if (rc == 0)
		conn_stream_end(c);
}

void
feed_stream_handle(conn_t *c, const request_t *r)
{
	worker_t *w = conn_worker(c);
	feed_request_t req;
	buf_t body = BUF_INIT;
	cache_meta_t meta;
	cache_state_t st;
	stream_t *s;

	/* Bad parameters are a plain 422 before any stream starts. */
	if (feed_request_parse(r->query, r->query_len, &req, &body) != 0) {
		conn_respond(c, 422, "application/json", NULL, body.data != NULL ? body.data : "",
		             body.len);
		buf_free(&body);
		return;
	}
	buf_reset(&body);

	/* HEAD: the headers a GET would get, and no database work. */
	if (r->head) {
		stream_now(c, NULL, NULL, NULL, NULL);
		return;
	}

	st = feed_load_cached(w, &req, &body, &meta, NULL);
	if (st != CACHE_MISS) {
		/* Before the answer, which may complete the request and clear r. */
		int64_t start_ms = r->start_ms;

		stream_now(c, st == CACHE_HIT ? "hit" : "stale", &body, &meta, NULL);
		{
			/* Served whole at once: first items and completion coincide,
			 * as a cached JSON page counts in feedd_feed_complete_seconds. */
			double t = (double)(clock_mono_ms() - start_ms) / 1000.0;

			metrics_observe(METRICS_H_SSE_FIRST_ITEM, 0, t);
			metrics_observe(METRICS_H_SSE_COMPLETE, 0, t);
		}
		buf_free(&body);
		/* After the answer, so the stale page never waits for this. */
		if (st == CACHE_STALE && !w->draining)
			feed_load_refresh(w, &req);
		return;
	}
	buf_free(&body);

	/* A request that arrived as the drain began: the drain told the
	 * streams it found, and this one would otherwise be cut at its end. */
	if (w->draining) {
		stream_now(c, "miss", NULL, NULL, RESTARTING);
		return;
	}

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		log_error("stream: out of memory");
		router_error(c, 503, "server out of memory", NULL);
		return;
	}
	s->c = c;
	s->w = w;
	s->start_ms = r->start_ms;
	loop_timer_init(&s->keepalive, on_keepalive);
	loop_timer_init(&s->deadline, on_deadline);
	metrics_gauge_add(METRICS_OPEN_STREAMS, 1);
	conn_set_cache_status(c, "miss");

	if (sse_begin(c, "miss") != 0) {
		stream_free(s);
		return;
	}
	/* No callback runs inside feed_load_start, so registering after it is safe. */
	s->load = feed_load_start(w, &req, &load_ops, s);
	if (s->load == NULL) {
		stream_fail(s, "server out of memory");
		return;
	}
	conn_set_pending(c, &pending_ops, s);
	loop_timer_start(w->loop, &s->keepalive, w->cfg->sse_keepalive);
	loop_timer_start(w->loop, &s->deadline, w->cfg->sse_timeout);
}

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
#include "worker.h"

#define SSE_CONTENT_TYPE "text/event-stream"

typedef struct stream {
	conn_t       *c;
	worker_t     *w;
	feed_load_t  *load;
	loop_timer_t  keepalive;
	loop_timer_t  deadline;
	int64_t       start_ms;
	bool          first_items_sent;
	/* The client vanished while the load was inside a callback of ours:
	 * the load cannot be cancelled from there, so it runs out and the
	 * stream is freed when it reports. */
	bool          client_gone;
} stream_t;

static const char *
sse_headers(const char *cache_status)
{
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
sse_items(conn_t *c, const char *items, size_t len, bool partial)
{
	buf_t ev = BUF_INIT;
	int rc;

	if (buf_append_str(&ev, "event: feed_items\ndata: {\"items\":[") != 0 ||
	    buf_append(&ev, items, len) != 0 ||
	    buf_printf(&ev, "],\"partial\":%s}\n\n", partial ? "true" : "false") != 0) {
		buf_free(&ev);
		return -1;
	}
	rc = conn_stream_write(c, ev.data, ev.len);
	buf_free(&ev);
	return rc;
}

/* The page body is {"items":[...],"next_cursor":X}; items_end points just
 * past the array.  Both events are cut from it, so a cached page is served
 * without re-encoding anything. */
static int
page_split(const buf_t *body, const cache_meta_t *meta, const char **next, size_t *next_len)
{
	static const char items_head[] = "{\"items\":[";
	static const char cursor_head[] = ",\"next_cursor\":";

	if (body->len < sizeof(items_head) || meta->items_end >= body->len ||
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
 * a page that was not streamed batch by batch, its items first. */
static int
sse_page(conn_t *c, const buf_t *body, const cache_meta_t *meta, bool with_items)
{
	const char *next;
	size_t next_len;
	buf_t ev = BUF_INIT;
	int rc;

	if (page_split(body, meta, &next, &next_len) != 0) {
		log_error("stream: cached page is not a feed page (%zu bytes); refusing to serve it",
		          body->len);
		return -1;
	}
	if (with_items) {
		size_t head = sizeof("{\"items\":[") - 1;

		if (sse_items(c, body->data + head, meta->items_end - 1 - head, false) != 0)
			return -1;
	}
	if (buf_append_str(&ev, "event: feed_complete\ndata: {\"next_cursor\":") != 0 ||
	    buf_append(&ev, next, next_len) != 0 ||
	    buf_printf(&ev, ",\"total_items\":%u}\n\n", (unsigned)meta->nitems) != 0) {
		buf_free(&ev);
		return -1;
	}
	rc = conn_stream_write(c, ev.data, ev.len);
	buf_free(&ev);
	return rc;
}

static int
sse_error(conn_t *c, const char *detail)
{
	buf_t ev = BUF_INIT;
	int rc;

	/* detail is ours, never client text: only quotes and backslashes could
	 * break the JSON, and none of our messages has them. */
	if (buf_printf(&ev, "event: error\ndata: {\"detail\":\"%s\"}\n\n", detail) != 0) {
		buf_free(&ev);
		return -1;
	}
	rc = conn_stream_write(c, ev.data, ev.len);
	buf_free(&ev);
	return rc;
}

static void
stream_free(stream_t *s)
{
	loop_timer_stop(s->w->loop, &s->keepalive);
	loop_timer_stop(s->w->loop, &s->deadline);
	metrics_gauge_add(METRICS_OPEN_STREAMS, -1);
	free(s);
}

/* The connection is already closed by conn (write failure): only our
 * state remains.  Called where cancelling the load is allowed. */
static void
stream_lost(stream_t *s)
{
	metrics_add(METRICS_SSE_CLIENT_GONE, 1);
	feed_load_cancel(s->load);
	stream_free(s);
}

/* Ends the stream with an error event: timeout, shutdown, database failure. */
static void
stream_fail(stream_t *s, const char *detail)
{
	if (sse_error(s->c, detail) == 0)
		conn_stream_end(s->c);
	stream_free(s);
}

static void
on_batch(void *ud, const char *items, size_t len, size_t nitems, bool last)
{
	stream_t *s = ud;

	if (s->client_gone)
		return;
	if (sse_items(s->c, items, len, !last) != 0) {
		s->client_gone = true;
		loop_timer_stop(s->w->loop, &s->keepalive);
		loop_timer_stop(s->w->loop, &s->deadline);
		return;
	}
	if (nitems > 0 && !s->first_items_sent) {
		s->first_items_sent = true;
		metrics_observe(METRICS_H_SSE_FIRST_ITEM, 0,
		                (double)(clock_mono_ms() - s->start_ms) / 1000.0);
	}
}

static void
on_done(void *ud, const buf_t *body, const cache_meta_t *meta, const char *served)
{
	stream_t *s = ud;
	bool batched = strcmp(served, "miss") == 0;

	s->load = NULL;
	if (s->client_gone) {
		metrics_add(METRICS_SSE_CLIENT_GONE, 1);
		stream_free(s);
		return;
	}
	conn_set_cache_status(s->c, served);
	if (sse_page(s->c, body, meta, !batched) != 0) {
		stream_lost(s);
		return;
	}
	if (!s->first_items_sent)
		metrics_observe(METRICS_H_SSE_FIRST_ITEM, 0,
		                (double)(clock_mono_ms() - s->start_ms) / 1000.0);
	metrics_observe(METRICS_H_SSE_COMPLETE, 0, (double)(clock_mono_ms() - s->start_ms) / 1000.0);
	conn_stream_end(s->c);
	stream_free(s);
}

static void
on_failed(void *ud, int status, const char *detail)
{
	stream_t *s = ud;

	s->load = NULL;
	if (s->client_gone) {
		metrics_add(METRICS_SSE_CLIENT_GONE, 1);
		stream_free(s);
		return;
	}
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
	static const char comment[] = ": keepalive\n\n";

	if (conn_stream_write(s->c, comment, sizeof(comment) - 1) != 0) {
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
	(void)c;
	stream_lost(ctx);
}

static void
pending_shutdown(conn_t *c, void *ctx)
{
	stream_t *s = ctx;

	(void)c;
	feed_load_cancel(s->load);
	s->load = NULL;
	stream_fail(s, "the server is restarting; reconnect shortly");
}

static const conn_pending_ops_t pending_ops = {
	.abort = pending_abort,
	.shutdown = pending_shutdown,
};

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
		conn_respond(c, 422, "application/json", NULL, body.data, body.len);
		buf_free(&body);
		return;
	}
	buf_reset(&body);

	st = feed_load_cached(w, &req, &body, &meta);
	if (st != CACHE_MISS) {
		const char *served = st == CACHE_HIT ? "hit" : "stale";

		conn_set_cache_status(c, served);
		if (sse_begin(c, served) == 0 && sse_page(c, &body, &meta, true) == 0)
			conn_stream_end(c);
		buf_free(&body);
		if (st == CACHE_STALE)
			feed_load_refresh(w, &req);
		return;
	}
	buf_free(&body);

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		log_error("stream: out of memory");
		conn_respond(c, 503, "application/json", NULL,
		             "{\"detail\":\"server out of memory\"}", 33);
		return;
	}
	s->c = c;
	s->w = w;
	s->start_ms = clock_mono_ms();
	loop_timer_init(&s->keepalive, on_keepalive);
	loop_timer_init(&s->deadline, on_deadline);
	metrics_gauge_add(METRICS_OPEN_STREAMS, 1);
	conn_set_cache_status(c, "miss");

	if (sse_begin(c, "miss") != 0) {
		stream_free(s);
		return;
	}
	s->load = feed_load_start(w, &req, &load_ops, s);
	if (s->load == NULL) {
		stream_fail(s, "server out of memory");
		return;
	}
	conn_set_pending(c, &pending_ops, s);
	loop_timer_start(w->loop, &s->keepalive, w->cfg->sse_keepalive);
	loop_timer_start(w->loop, &s->deadline, w->cfg->sse_timeout);
}

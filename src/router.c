/* Maps a request to its handler; every error answer is JSON. */
#include "router.h"

#include <llhttp.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "feed_api.h"
#include "feed_stream.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"
#include "static.h"
#include "worker.h"

#define JSON_TYPE "application/json"
#define ALLOW_GET "Allow: GET, HEAD\r\n"

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A JSON string body for any bytes: a detail may quote client input, and
 * invalid UTF-8 in it must not make the whole answer invalid JSON. */
static int
json_escape(buf_t *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	while (n > 0) {
		size_t len;
		int rc;

		/* clang-format off */
		switch (*p) {
		case '"':  rc = buf_append_str(b, "\\\""); len = 1; break;
		case '\\': rc = buf_append_str(b, "\\\\"); len = 1; break;
		case '\n': rc = buf_append_str(b, "\\n"); len = 1; break;
		case '\r': rc = buf_append_str(b, "\\r"); len = 1; break;
		case '\t': rc = buf_append_str(b, "\\t"); len = 1; break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				rc = buf_printf(b, "\\u%04x", *p);
				len = 1;
			} else if ((len = utf8_len(p, n)) > 0) {
				rc = buf_append(b, p, len);
			} else {
				rc = buf_append_str(b, "\\ufffd");
				len = 1;
			}
			break;
		}
		/* clang-format on */
		if (rc < 0)
			return -1;
		p += len;
		n -= len;
	}
	return 0;
}

void
router_error(conn_t *c, int status, const char *detail, const char *extra_headers)
{
	buf_t body = BUF_INIT;

	if (buf_append_str(&body, "{\"detail\":\"") < 0 || json_escape(&body, detail) < 0 ||
	    buf_append_str(&body, "\"}") < 0) {
		/* Out of memory: a fixed answer still says what happened. */
		static const char oom[] = "{\"detail\":\"out of memory\"}";

		buf_free(&body);
		conn_respond(c, status, JSON_TYPE, extra_headers, oom, sizeof(oom) - 1);
		return;
	}
	conn_respond(c, status, JSON_TYPE, extra_headers, body.data, body.len);
	buf_free(&body);
}

static bool
method_ok(conn_t *c, const request_t *r)
{
	if (r->method == HTTP_GET || r->method == HTTP_HEAD)
		return true;
	router_error(c, 405, "method not allowed: use GET or HEAD", ALLOW_GET);
	return false;
}

static void
handle_healthz(conn_t *c)
{
	static const char body[] = "{\"status\":\"ok\"}";

	conn_respond(c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", body, sizeof(body) - 1);
}

static void
handle_readyz(conn_t *c)
{
	static const char body[] = "{\"status\":\"ready\"}";
	worker_t *w = conn_worker(c);

	if (w->pool == NULL || !pgpool_ready(w->pool)) {
		router_error(c, 503, "no database connection", "Cache-Control: no-store\r\n");
		return;
	}
	conn_respond(c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", body, sizeof(body) - 1);
}

static void
handle_metrics(conn_t *c)
{
	worker_t *w = conn_worker(c);
	buf_t out = BUF_INIT;

	if (config_cidr_match(w->cfg, conn_peer(c)) == 0) {
		router_error(c, 403, "metrics are not available from this address (metrics_allow)",
		             NULL);
		return;
	}
	if (metrics_render(&out) < 0) {
		log_error("metrics: rendering failed");
		buf_free(&out);
		router_error(c, 500, "metrics could not be rendered", NULL);
		return;
	}
	conn_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8",
	             "Cache-Control: no-store\r\n", out.data ? out.data : "", out.len);
	buf_free(&out);
}

void
router_dispatch(conn_t *c, const request_t *r)
{
	const char *path = r->path;

	if (strcmp(path, "/healthz") == 0) {
		conn_set_endpoint(c, METRICS_EP_HEALTHZ);
		if (method_ok(c, r))
			handle_healthz(c);
	} else if (strcmp(path, "/readyz") == 0) {
		conn_set_endpoint(c, METRICS_EP_READYZ);
		if (method_ok(c, r))
			handle_readyz(c);
	} else if (strcmp(path, "/metrics") == 0) {
		conn_set_endpoint(c, METRICS_EP_METRICS);
		if (method_ok(c, r))
			handle_metrics(c);
	} else if (strcmp(path, "/api/feed") == 0) {
		conn_set_endpoint(c, METRICS_EP_FEED);
		if (method_ok(c, r))
			feed_api_handle(c, r);
	} else if (strcmp(path, "/api/feed/stream") == 0) {
		conn_set_endpoint(c, METRICS_EP_STREAM);
		if (method_ok(c, r))
			feed_stream_handle(c, r);
	} else if (strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0) {
		buf_t detail = BUF_INIT;

		if (buf_printf(&detail, "no such API endpoint: %s", path) < 0)
			router_error(c, 404, "no such API endpoint", NULL);
		else
			router_error(c, 404, detail.data, NULL);
		buf_free(&detail);
	} else {
		conn_set_endpoint(c, METRICS_EP_STATIC);
		if (method_ok(c, r))
			static_handle(c, r);
	}
}

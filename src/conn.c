/* One client connection: buffers, llhttp callbacks, keep-alive, pipelining, output bound. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "conn.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "worker.h"

/* A GET or HEAD body means nothing to us, but a client may send one: it is
 * read and dropped up to this size, beyond it the request is refused. */
#define BODY_MAX   (1024 * 1024)
#define READ_CHUNK 16384
/* Reads per wake-up: a fast sender must not starve the other clients
 * (level-triggered epoll calls us again). */
#define READS_PER_WAKEUP 4
/* After an error response the write side is shut and input is swallowed
 * for a while: closing with unread input makes the kernel send a RST that
 * can destroy the response before the client reads it. */
#define LINGER_MS        2000
#define LINGER_MAX_BYTES (4 * 1024 * 1024)

struct conn {
	loop_io_t io;
	loop_timer_t timer;  /* header, keep-alive, send, linger deadlines */
	loop_timer_t resume; /* 0 ms: next pipelined request after an async answer */
	worker_t *w;
	conn_t *prev, *next; /* the worker's connections */

	struct sockaddr_storage peer;
	socklen_t peerlen;
	char peer_str[INET6_ADDRSTRLEN];

	llhttp_t parser;
	buf_t in;  /* read, not yet given to the parser */
	buf_t out; /* queued, not yet written from out_off */
	size_t out_off;
	/* A body sent from a file after out (conn_respond_file); file.release
	 * is set while it is held. */
	conn_file_t file;
	off_t file_off;

	/* The request being parsed (and then answered). */
	buf_t url;
	buf_t hdrs; /* name\0value\0 ... */
	buf_t path;
	size_t hdr_bytes;
	uint64_t body_bytes;
	bool hdr_want_value;
	int err_status; /* set by a callback that fails the parse */
	const char *err_detail;
	request_t req;

	/* The response to it. */
	size_t room_at, body_at; /* conn_respond_begin: head room and body in out */
	bool body_open;          /* between conn_respond_begin and its end */
	int resp_status;
	size_t resp_hdr_len;
	uint64_t resp_written;
	int64_t resp_first_byte; /* monotonic ms, -1 before */
	const char *cache_status;
	enum metrics_endpoint endpoint;

	const conn_pending_ops_t *ops;
	void *ctx;

	int64_t req_start; /* monotonic ms, first byte of the request */
	int64_t idle_since;
	int64_t last_progress; /* last write that moved bytes */
	int64_t linger_until;
	size_t linger_bytes;
	unsigned served;
	int busy; /* entry points on the stack: free waits */

	bool req_active;  /* bytes of a request seen, not complete */
	bool head_done;   /* its headers are complete */
	bool ready;       /* a complete request awaits dispatch */
	bool in_response; /* dispatched, response not complete */
	bool pending;     /* a handler will answer later */
	bool streaming;   /* stream headers sent */
	bool in_stream_write; /* its caller learns of a close from the -1, not abort */
	bool resp_done;   /* whole response queued */
	bool force_close; /* close after this response */
	bool linger_on_close;
	bool lingering;
	bool paused; /* llhttp paused after a request */
	bool upgrade;
	bool eof; /* the client will send nothing more */
	bool in_process;
	bool closed;
};

static conn_t *conns; /* this process's connections (one worker per process) */

static void conn_process(conn_t *c);
static void conn_close(conn_t *c, const char *reason);
static int conn_flush(conn_t *c);
static void conn_update(conn_t *c);

static const char *const wday_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* IMF-fixdate, cached per second: formatted once per second, not per response. */
static const char *
http_date_now(void)
{
	static char date[40];
	static time_t cached = -1;
	time_t now = time(NULL);
	struct tm tm;

	if (now != cached && gmtime_r(&now, &tm) != NULL) {
		snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
		         wday_names[tm.tm_wday], tm.tm_mday, month_names[tm.tm_mon],
		         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		cached = now;
	}
	return date;
}

static void
conn_release(conn_t *c)
{
	if (--c->busy > 0 || !c->closed)
		return;
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->url);
	buf_free(&c->hdrs);
	buf_free(&c->path);
	free(c);
}

/* Bytes still to send: the output buffer, then the file. */
static size_t
out_pending(const conn_t *c)
{
	size_t file_left = c->file.release != NULL ? c->file.len - (size_t)c->file_off : 0;

	return c->out.len - c->out_off + file_left;
}

static void
file_release(conn_t *c)
{
	conn_file_t f = c->file;

	if (f.release == NULL)
		return;
	c->file.release = NULL;
	f.release(f.ctx);
}

/* Input kept while parsing waits (handler pending, output not flushed):
 * one maximal request head plus a read, so a pipelining client cannot make
 * us buffer more than that. */
static size_t
in_cap(const conn_t *c)
{
	size_t cap = c->w->cfg->max_request_line + c->w->cfg->max_header_size + READ_CHUNK;

	return cap < 65536 ? 65536 : cap;
}

/* ---- access log -------------------------------------------------------- */

/* Client-supplied text in the log: quotes, backslashes and control bytes
 * become \xHH so a line cannot be forged or broken. */
static void
log_escaped(buf_t *b, const char *s)
{
	const unsigned char *p;

	if (s == NULL || *s == '\0') {
		buf_append_str(b, "-");
		return;
	}
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
			buf_printf(b, "\\x%02X", *p);
		else
			buf_append(b, p, 1);
	}
}

static void
conn_log_access(conn_t *c, int status)
{
	int64_t now = clock_mono_ms();
	int64_t start = c->req_start ? c->req_start : now;
	time_t wall = time(NULL);
	struct tm tm;
	buf_t line = BUF_INIT;
	uint64_t body = c->resp_written > c->resp_hdr_len ? c->resp_written - c->resp_hdr_len : 0;

	/* With the access log off, formatting the line was a visible share of
	 * a cached hit's CPU. */
	if (!log_access_on()) {
		metrics_request(c->endpoint, status);
		return;
	}
	if (gmtime_r(&wall, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(&line, "%s - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"", c->peer_str, tm.tm_mday,
	           month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (c->req.method_name != NULL && c->url.len > 0) {
		buf_printf(&line, "%s ", c->req.method_name);
		log_escaped(&line, c->url.data);
		buf_printf(&line, " HTTP/%d.%d", c->req.http_major, c->req.http_minor);
	} else {
		buf_append_str(&line, "-");
	}
	buf_printf(&line, "\" %d %llu \"", status, (unsigned long long)body);
	log_escaped(&line, c->req.referer);
	buf_append_str(&line, "\" \"");
	log_escaped(&line, c->req.user_agent);
	buf_printf(&line, "\" rt=%lld.%03lld", (long long)(now - start) / 1000,
	           (long long)(now - start) % 1000);
	if (c->resp_first_byte >= 0) {
		int64_t t = c->resp_first_byte - start;

		buf_printf(&line, " ttfb=%lld.%03lld", (long long)t / 1000, (long long)t % 1000);
	} else {
		buf_append_str(&line, " ttfb=-");
	}
	buf_printf(&line, " cache=%s", c->cache_status ? c->cache_status : "-");
	if (line.data != NULL)
		log_access(line.data, line.len);
	buf_free(&line);
	metrics_request(c->endpoint, status);
}

/* ---- llhttp callbacks -------------------------------------------------- */

static int
parse_fail(conn_t *c, int status, const char *detail)
{
	c->err_status = status;
	c->err_detail = detail;
	llhttp_set_error_reason(&c->parser, detail);
	return HPE_USER;
}

static int
on_message_begin(llhttp_t *p)
{
	conn_t *c = p->data;

	buf_reset(&c->url);
	buf_reset(&c->hdrs);
	buf_reset(&c->path);
	c->hdr_bytes = 0;
	c->body_bytes = 0;
	c->hdr_want_value = false;
	c->head_done = false;
	c->upgrade = false;
	memset(&c->req, 0, sizeof(c->req));
	if (!c->req_active) {
		c->req_active = true;
		c->req_start = clock_mono_ms();
	}
	return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	conn_t *c = p->data;
	size_t method_len = strlen(llhttp_method_name((llhttp_method_t)p->method));

	/* "METHOD SP target SP HTTP/1.1": the line the limit speaks of. */
	if (method_len + 1 + c->url.len + len + 9 > c->w->cfg->max_request_line)
		return parse_fail(c, 414, "request line too long");
	if (buf_append(&c->url, at, len) < 0)
		return parse_fail(c, 500, "out of memory");
	return 0;
}

static int
hdr_add(conn_t *c, const char *at, size_t len)
{
	/* The limit is on the whole head, request line included, and each
	 * line also costs ": " and CRLF on the wire (counted by the caller). */
	c->hdr_bytes += len;
	if (c->hdr_bytes + c->url.len > c->w->cfg->max_header_size)
		return parse_fail(c, 431, "request headers too large");
	if (buf_append(&c->hdrs, at, len) < 0)
		return parse_fail(c, 500, "out of memory");
	return 0;
}

static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	conn_t *c = p->data;

	/* An empty value gets no value callback: close it here. */
	if (c->hdr_want_value) {
		c->hdr_want_value = false;
		if (hdr_add(c, "", 1) != 0)
			return HPE_USER;
	}
	return hdr_add(c, at, len);
}

static int
on_header_field_complete(llhttp_t *p)
{
	conn_t *c = p->data;

	c->hdr_bytes += 4;
	if (hdr_add(c, "", 1) != 0)
		return HPE_USER;
	c->hdr_want_value = true;
	return 0;
}

static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
	return hdr_add(p->data, at, len);
}

static int
on_header_value_complete(llhttp_t *p)
{
	conn_t *c = p->data;

	if (!c->hdr_want_value)
		return 0;
	c->hdr_want_value = false;
	while (c->hdrs.len > 0 && c->hdrs.data[c->hdrs.len - 1] != '\0' &&
	       (c->hdrs.data[c->hdrs.len - 1] == ' ' || c->hdrs.data[c->hdrs.len - 1] == '\t'))
		c->hdrs.len--;
	return hdr_add(c, "", 1) != 0 ? HPE_USER : 0;
}

static int
on_headers_complete(llhttp_t *p)
{
	conn_t *c = p->data;

	if (c->hdr_want_value) {
		c->hdr_want_value = false;
		if (hdr_add(c, "", 1) != 0)
			return -1;
	}
	c->head_done = true;
	c->req.method = p->method;
	c->req.method_name = llhttp_method_name((llhttp_method_t)p->method);
	c->req.http_major = p->http_major;
	c->req.http_minor = p->http_minor;
	c->req.keep_alive = llhttp_should_keep_alive(p) != 0;
	c->upgrade = p->upgrade != 0;
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > BODY_MAX) {
		parse_fail(c, 413, "request body too large");
		return -1;
	}
	return 0;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	conn_t *c = p->data;

	(void)at;
	c->body_bytes += len;
	if (c->body_bytes > BODY_MAX)
		return parse_fail(c, 413, "request body too large");
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	conn_t *c = p->data;

	c->ready = true;
	/* One request at a time: the parser stops here, so what follows in the
	 * input (pipelining) waits until this one is answered. */
	return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_header_field_complete = on_header_field_complete,
        .on_header_value_complete = on_header_value_complete,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

/* ---- request ----------------------------------------------------------- */

const char *
conn_header(const request_t *r, const char *name)
{
	const char *p, *end;

	if (r->headers == NULL)
		return NULL;
	p = r->headers;
	end = r->headers + r->headers_len;
	while (p < end) {
		const char *value = p + strlen(p) + 1;

		if (value >= end)
			break;
		if (strcasecmp(p, name) == 0)
			return value;
		p = value + strlen(value) + 1;
	}
	return NULL;
}

/* Fills c->req from the parsed pieces; -1 with a reason for a target that
 * cannot name anything here. */
static int
request_finish(conn_t *c, const char **why)
{
	request_t *r = &c->req;
	const char *t, *q, *hash, *path_end;
	size_t len;

	if (buf_append(&c->url, "", 0) < 0 || c->url.data == NULL) {
		*why = "empty request target";
		return -1;
	}
	r->target = c->url.data;
	r->headers = c->hdrs.data;
	r->headers_len = c->hdrs.len;
	r->user_agent = conn_header(r, "User-Agent");
	r->referer = conn_header(r, "Referer");
	r->head = r->method == HTTP_HEAD;
	r->start_ms = c->req_start;
	r->query = "";
	r->query_len = 0;

	t = c->url.data;
	/* Absolute form ("http://host/path"): servers must accept it. */
	if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
		t = strstr(t, "://") + 3;
		t += strcspn(t, "/?#");
		if (*t != '/') {
			*why = "request target has no path";
			return -1;
		}
	}
	if (*t != '/') {
		*why = "request target must be an absolute path";
		return -1;
	}
	hash = strchr(t, '#');
	len = hash ? (size_t)(hash - t) : strlen(t);
	q = memchr(t, '?', len);
	path_end = q ? q : t + len;
	if (q != NULL) {
		r->query = q + 1;
		r->query_len = (size_t)(t + len - (q + 1));
	}
	buf_reset(&c->path);
	if (buf_reserve(&c->path, (size_t)(path_end - t) + 1) < 0) {
		*why = "out of memory";
		return -1;
	}
	if (http_percent_decode(c->path.data, t, (size_t)(path_end - t), false) < 0) {
		*why = "malformed percent-encoding in the path";
		return -1;
	}
	c->path.len = strlen(c->path.data);
	r->path = c->path.data;
	return 0;
}

static void
response_begin(conn_t *c)
{
	c->in_response = true;
	c->resp_done = false;
	c->streaming = false;
	c->resp_status = 0;
	c->resp_hdr_len = 0;
	c->resp_written = 0;
	c->resp_first_byte = -1;
	c->cache_status = NULL;
	c->endpoint = METRICS_EP_OTHER;
}

/* The connection cannot go on: answer status (JSON) and close after it. */
static void
conn_fail(conn_t *c, int status, const char *detail)
{
	log_info("%s: %d: %s", c->peer_str, status, detail);
	c->ready = false;
	c->req_active = false;
	c->pending = false;
	c->ops = NULL;
	c->force_close = true;
	c->linger_on_close = true;
	c->req.head = false;
	if (!c->head_done)
		c->req.method_name = NULL; /* the log shows "-": no request line */
	response_begin(c);
	router_error(c, status, detail, NULL);
}

static void
conn_dispatch(conn_t *c)
{
	const char *why = NULL;

	c->ready = false;
	c->req_active = false;
	response_begin(c);
	if (c->upgrade || c->req.http_major != 1)
		c->force_close = true;
	if (c->req.http_major != 1) {
		router_error(c, 505, "only HTTP/1.0 and HTTP/1.1 are supported", NULL);
		return;
	}
	if (request_finish(c, &why) < 0 ||
	    (why = http_host_check(c->req.http_major, c->req.http_minor, c->req.headers,
	                           c->req.headers_len)) != NULL) {
		router_error(c, 400, why, NULL);
		return;
	}
	router_dispatch(c, &c->req);
	if (!c->closed && c->in_response && !c->pending && !c->resp_done && !c->streaming) {
		log_error("%s: no response from the handler of %s", c->peer_str, c->req.target);
		router_error(c, 500, "the server produced no response", NULL);
	}
}

/* ---- input ------------------------------------------------------------- */

/* Gives buffered input to the parser and dispatches complete requests,
 * one at a time, until the input runs out or a response is outstanding. */
static void
conn_process(conn_t *c)
{
	if (c->in_process)
		return;
	c->in_process = true;
	while (!c->closed && !c->lingering) {
		llhttp_errno_t err;
		size_t used;

		if (c->in_response || out_pending(c) > 0)
			break;
		if (c->ready) {
			conn_dispatch(c);
			continue;
		}
		if (c->in.len == 0)
			break;
		if (c->paused) {
			llhttp_resume(&c->parser);
			c->paused = false;
		}
		err = llhttp_execute(&c->parser, c->in.data, c->in.len);
		if (err == HPE_OK) {
			used = c->in.len;
		} else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
			used = (size_t)(llhttp_get_error_pos(&c->parser) - c->in.data);
			c->paused = true;
			if (err == HPE_PAUSED_UPGRADE) {
				/* We speak no other protocol: answer, then close. */
				c->ready = true;
				c->upgrade = true;
			}
		} else {
			if (c->err_status != 0) {
				conn_fail(c, c->err_status, c->err_detail);
			} else {
				char detail[160];
				const char *why = llhttp_get_error_reason(&c->parser);

				snprintf(detail, sizeof(detail), "malformed HTTP request: %s",
				         why != NULL && *why != '\0' ? why
				                                     : llhttp_errno_name(err));
				conn_fail(c, 400, detail);
			}
			break;
		}
		buf_consume(&c->in, used);
	}
	c->in_process = false;
	if (c->closed || c->lingering)
		return;
	/* A client that half-closed still gets the answers to what it sent,
	 * except one that needs a handler to wait: that is a client gone. */
	if (c->eof && (c->pending || (!c->in_response && !c->ready && out_pending(c) == 0)))
		conn_close(c, "client closed the connection");
}

static void
conn_read_linger(conn_t *c)
{
	char sink[4096];

	for (;;) {
		ssize_t n = recv(c->io.fd, sink, sizeof(sink), 0);

		if (n > 0) {
			c->linger_bytes += (size_t)n;
			if (c->linger_bytes > LINGER_MAX_BYTES) {
				conn_close(c, "lingering: too much input");
				return;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_close(c, "lingering done");
		return;
	}
}

static void
conn_read(conn_t *c)
{
	int i;

	for (i = 0; i < READS_PER_WAKEUP && !c->closed && !c->eof && !c->lingering; i++) {
		size_t cap = in_cap(c), room;
		ssize_t n;

		if (c->in.len >= cap)
			break;
		room = cap - c->in.len < READ_CHUNK ? cap - c->in.len : READ_CHUNK;
		if (buf_reserve(&c->in, room) < 0) {
			log_error("%s: out of memory for input", c->peer_str);
			conn_close(c, "out of memory");
			return;
		}
		n = recv(c->io.fd, c->in.data + c->in.len, room, 0);
		if (n > 0) {
			if (!c->req_active && !c->in_response && c->in.len == 0) {
				/* The header timeout counts from the first byte. */
				c->req_active = true;
				c->req_start = clock_mono_ms();
			}
			c->in.len += (size_t)n;
			c->in.data[c->in.len] = '\0';
			conn_process(c);
			/* A short read emptied the socket: asking again would
			 * only cost a recv that says EAGAIN (level-triggered
			 * epoll tells us when more comes). */
			if ((size_t)n < room)
				break;
			continue;
		}
		if (n == 0) {
			c->eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		if (errno != ECONNRESET)
			log_info("%s: read: %s", c->peer_str, strerror(errno));
		conn_close(c, "read error");
		return;
	}
	if (!c->closed && !c->lingering && c->eof)
		conn_process(c);
}

/* ---- output ------------------------------------------------------------ */

static void
conn_start_linger(conn_t *c)
{
	c->lingering = true;
	c->linger_until = clock_mono_ms() + LINGER_MS;
	if (shutdown(c->io.fd, SHUT_WR) < 0) {
		conn_close(c, "shutdown failed");
		return;
	}
	if (c->eof) {
		conn_close(c, "done");
		return;
	}
	buf_free(&c->in);
}

/* Whether the connection serves another request after this response. */
static bool
conn_keeps_alive(const conn_t *c)
{
	return c->req.keep_alive && !c->force_close && !c->w->draining &&
	       c->w->cfg->keepalive_timeout > 0;
}

/* Statuses that never carry a body (RFC 9110 sections 6.4.1, 15.3.5, 15.4.5). */
static bool
status_bodyless(int status)
{
	return status == 204 || status == 304 || (status >= 100 && status < 200);
}

/* The whole response is on the wire: log it, then close or go on with the
 * next request. */
static void
conn_response_complete(conn_t *c)
{
	bool keep;

	conn_log_access(c, c->resp_status);
	keep = conn_keeps_alive(c);
	c->in_response = false;
	c->resp_done = false;
	c->streaming = false;
	c->req_start = 0;
	c->req_active = false;
	memset(&c->req, 0, sizeof(c->req));
	if (!keep) {
		if (c->linger_on_close)
			conn_start_linger(c);
		else
			conn_close(c, "response complete");
		return;
	}
	c->served++;
	c->idle_since = clock_mono_ms();
	/* Not from here: this may run inside a handler's call to
	 * conn_respond, and the next request must not re-enter it. */
	if (!c->in_process && (c->in.len > 0 || c->eof))
		loop_timer_start(c->w->loop, &c->resume, 0);
}

/* One send of what comes first: the buffer (MSG_MORE when the file
 * follows, so the head and the body's first bytes can share a packet),
 * else the file. */
static ssize_t
send_some(conn_t *c)
{
	size_t buffered = c->out.len - c->out_off;

	if (buffered > 0)
		return send(c->io.fd, c->out.data + c->out_off, buffered,
		            MSG_NOSIGNAL | (c->file.release != NULL ? MSG_MORE : 0));
	return sendfile(c->io.fd, c->file.fd, &c->file_off, c->file.len - (size_t)c->file_off);
}

/* Writes what it can; 0, or -1 when the connection was closed. */
static int
conn_flush(conn_t *c)
{
	while (out_pending(c) > 0) {
		bool from_buf = c->out.len > c->out_off;
		ssize_t n = send_some(c);

		if (n > 0) {
			int64_t now = clock_mono_ms();

			if (c->resp_first_byte < 0)
				c->resp_first_byte = now;
			c->last_progress = now;
			if (from_buf)
				c->out_off += (size_t)n; /* sendfile moved file_off */
			c->resp_written += (uint64_t)n;
			metrics_add(METRICS_BYTES_SENT, (uint64_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0) {
			/* Only a file can say 0: it is shorter than it said. */
			log_error("%s: sendfile: the page file ended %zu bytes early", c->peer_str,
			          c->file.len - (size_t)c->file_off);
			conn_close(c, "page file too short");
			return -1;
		}
		if (errno != EPIPE && errno != ECONNRESET)
			log_info("%s: %s: %s", c->peer_str, from_buf ? "write" : "sendfile",
			         strerror(errno));
		conn_close(c, "write error");
		return -1;
	}
	if (out_pending(c) == 0) {
		buf_reset(&c->out);
		c->out_off = 0;
		file_release(c);
		if (c->resp_done)
			conn_response_complete(c);
	} else if (c->out_off >= 65536 && c->out_off >= c->out.len / 2) {
		/* Compact now and then, not on every partial write. */
		buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	return c->closed ? -1 : 0;
}

/* The response head: status line and the headers every response carries,
 * written with memcpy and a digit loop rather than printf, whose format
 * parsing was a visible share of a cached hit's CPU.  Measured first
 * (head_init), so the caller reserves exactly and writes once. */
typedef struct head {
	int status;
	const char *text, *date, *type, *extra;
	size_t text_len, date_len, type_len, extra_len, clen_len;
	uint64_t clen;
	bool has_clen;
	bool keep;
	size_t len;
} head_t;

#define HEAD_SERVER    "\r\nServer: feedd/" PACKAGE_VERSION "\r\n"
#define HEAD_TYPE      "Content-Type: "
#define HEAD_CLEN      "Content-Length: "
#define HEAD_KEEPALIVE "Connection: keep-alive\r\n\r\n"
#define HEAD_CLOSE     "Connection: close\r\n\r\n"
#define LIT_LEN(s)     (sizeof(s) - 1)

static size_t
uint_digits(uint64_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Writes exactly n digits of v (n from uint_digits). */
static void
uint_put(char *dst, uint64_t v, size_t n)
{
	while (n > 0) {
		dst[--n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* content_type, extra_headers: NULL for none; clen < 0: no Content-Length. */
static void
head_init(head_t *h, int status, const char *content_type, const char *extra_headers, int64_t clen,
          bool keep)
{
	/* Handlers pass constants; anything else is a bug, not client input. */
	assert(status >= 100 && status <= 999);
	h->status = status;
	h->text = http_status_text(status);
	h->text_len = strlen(h->text);
	h->date = http_date_now();
	h->date_len = strlen(h->date);
	h->type = content_type;
	h->type_len = content_type != NULL ? strlen(content_type) : 0;
	h->extra = extra_headers;
	h->extra_len = extra_headers != NULL ? strlen(extra_headers) : 0;
	h->has_clen = clen >= 0;
	h->clen = h->has_clen ? (uint64_t)clen : 0;
	h->clen_len = h->has_clen ? uint_digits(h->clen) : 0;
	h->keep = keep;
	h->len = LIT_LEN("HTTP/1.1 200 ") + h->text_len + LIT_LEN("\r\nDate: ") + h->date_len +
	         LIT_LEN(HEAD_SERVER) + h->extra_len +
	         (keep ? LIT_LEN(HEAD_KEEPALIVE) : LIT_LEN(HEAD_CLOSE));
	if (content_type != NULL)
		h->len += LIT_LEN(HEAD_TYPE) + h->type_len + 2;
	if (h->has_clen)
		h->len += LIT_LEN(HEAD_CLEN) + h->clen_len + 2;
}

#define PUT(p, s, n)  (memcpy((p), (s), (n)), (p) += (n))
#define PUT_LIT(p, s) PUT(p, s, LIT_LEN(s))

/* Writes the h->len bytes of the head at dst (no NUL). */
static void
head_write(const head_t *h, char *dst)
{
	char *p = dst;

	PUT_LIT(p, "HTTP/1.1 ");
	uint_put(p, (uint64_t)h->status, 3);
	p += 3;
	*p++ = ' ';
	PUT(p, h->text, h->text_len);
	PUT_LIT(p, "\r\nDate: ");
	PUT(p, h->date, h->date_len);
	PUT_LIT(p, HEAD_SERVER);
	if (h->type != NULL) {
		PUT_LIT(p, HEAD_TYPE);
		PUT(p, h->type, h->type_len);
		PUT_LIT(p, "\r\n");
	}
	if (h->extra != NULL)
		PUT(p, h->extra, h->extra_len);
	if (h->has_clen) {
		PUT_LIT(p, HEAD_CLEN);
		uint_put(p, h->clen, h->clen_len);
		p += h->clen_len;
		PUT_LIT(p, "\r\n");
	}
	if (h->keep)
		PUT_LIT(p, HEAD_KEEPALIVE);
	else
		PUT_LIT(p, HEAD_CLOSE);
	assert((size_t)(p - dst) == h->len);
}

/* Appends the head to the output; 0, or -1 when memory runs out (nothing
 * appended).  extra: bytes to reserve beyond it (the body that follows). */
static int
head_append(conn_t *c, const head_t *h, size_t extra)
{
	if (extra > SIZE_MAX - h->len || buf_reserve(&c->out, h->len + extra) < 0)
		return -1;
	head_write(h, c->out.data + c->out.len);
	c->out.len += h->len;
	c->out.data[c->out.len] = '\0';
	return 0;
}

static bool
response_allowed(conn_t *c, const char *what)
{
	if (c->closed)
		return false;
	if (c->body_open) {
		/* The head room holds no head yet: nothing may go out. */
		log_error("%s: %s between conn_respond_begin and its end", c->peer_str, what);
		return false;
	}
	if (!c->in_response || c->resp_done || c->streaming) {
		log_error("%s: %s without a request waiting for it", c->peer_str, what);
		return false;
	}
	return true;
}

/* ---- timers and events ------------------------------------------------- */

static int64_t
conn_deadline(const conn_t *c)
{
	const config_t *cfg = c->w->cfg;

	if (c->lingering)
		return c->linger_until;
	if (out_pending(c) > 0)
		return cfg->send_timeout > 0 ? c->last_progress + cfg->send_timeout : -1;
	if (c->in_response || c->ready)
		return -1; /* the handler keeps its own time */
	if (c->req_active)
		return cfg->header_timeout > 0 ? c->req_start + cfg->header_timeout : -1;
	if (c->served == 0 && cfg->header_timeout > 0 &&
	    (cfg->keepalive_timeout <= 0 || cfg->header_timeout < cfg->keepalive_timeout))
		return c->idle_since + cfg->header_timeout; /* connected, silent */
	return cfg->keepalive_timeout > 0 ? c->idle_since + cfg->keepalive_timeout : -1;
}

static void
conn_update(conn_t *c)
{
	uint32_t events = 0;
	int64_t deadline;

	if (c->closed)
		return;
	if (c->lingering) {
		events = EPOLLIN | EPOLLRDHUP;
	} else {
		/* After EOF, level-triggered EPOLLIN/RDHUP would fire forever. */
		if (!c->eof) {
			events |= EPOLLRDHUP;
			if (c->in.len < in_cap(c))
				events |= EPOLLIN;
		}
		if (out_pending(c) > 0)
			events |= EPOLLOUT;
	}
	if (events != c->io.events && loop_io_mod(c->w->loop, &c->io, events) < 0) {
		log_error("%s: epoll_ctl: %s", c->peer_str, strerror(errno));
		conn_close(c, "epoll_ctl failed");
		return;
	}
	deadline = conn_deadline(c);
	if (deadline < 0) {
		loop_timer_stop(c->w->loop, &c->timer);
		return;
	}
	if (loop_timer_active(&c->timer) && c->timer.when == deadline)
		return;
	loop_timer_stop(c->w->loop, &c->timer);
	{
		int64_t delay = deadline - loop_now(c->w->loop);

		loop_timer_start(c->w->loop, &c->timer, delay > 0 ? delay : 0);
	}
}

static void
conn_on_timer(loop_timer_t *t)
{
	conn_t *c = container_of(t, conn_t, timer);
	int64_t deadline = conn_deadline(c);

	c->busy++;
	if (deadline >= 0 && clock_mono_ms() >= deadline) {
		if (c->lingering)
			conn_close(c, "lingering done");
		else if (out_pending(c) > 0)
			conn_close(c, "send timeout");
		else if (c->req_active)
			conn_fail(c, 408, "request not received in time (header_timeout)");
		else
			conn_close(c, "idle timeout");
	}
	conn_update(c);
	conn_release(c);
}

static void
conn_on_resume(loop_timer_t *t)
{
	conn_t *c = container_of(t, conn_t, resume);

	c->busy++;
	conn_process(c);
	conn_update(c);
	conn_release(c);
}

static void
conn_on_io(loop_io_t *io, uint32_t revents)
{
	conn_t *c = container_of(io, conn_t, io);

	c->busy++;
	if (revents & EPOLLERR) {
		conn_close(c, "socket error");
	} else if (c->lingering) {
		conn_read_linger(c);
	} else {
		if ((revents & EPOLLOUT) && out_pending(c) > 0)
			conn_flush(c);
		if (!c->closed && (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
			if (c->in.len < in_cap(c)) {
				conn_read(c);
			} else if (revents & (EPOLLRDHUP | EPOLLHUP)) {
				/* Input full and the client is gone: nothing more
				 * will be read anyway. */
				c->eof = true;
				conn_process(c);
			}
		}
		if (!c->closed && (revents & EPOLLHUP) && c->pending)
			conn_close(c, "client hung up");
	}
	conn_update(c);
	conn_release(c);
}

/* ---- public ------------------------------------------------------------ */

void
conn_set_pending(conn_t *c, const conn_pending_ops_t *ops, void *ctx)
{
	/* A stream is pending too, before or after its headers. */
	if (c->closed || !c->in_response || c->resp_done) {
		log_error("%s: conn_set_pending without a request waiting for it", c->peer_str);
		return;
	}
	c->pending = true;
	c->ops = ops;
	c->ctx = ctx;
}

/* A handler's whole answer is being written: nothing is pending any more.
 * Returns whether the connection stays open after it, and marks it for
 * closing if not, so that every later check agrees with the head. */
static bool
answer_begins(conn_t *c)
{
	bool keep = conn_keeps_alive(c);

	c->pending = false;
	c->ops = NULL;
	if (!keep)
		c->force_close = true;
	return keep;
}

/* The whole answer (head of status, and body) is queued: send what the
 * socket takes; the rest goes on EPOLLOUT, and the request completes when
 * the last byte is out. */
static void
answer_queued(conn_t *c, int status)
{
	c->resp_status = status;
	c->resp_done = true;
	conn_flush(c);
}

void
conn_respond(conn_t *c, int status, const char *content_type, const char *extra_headers,
             const char *body, size_t len)
{
	bool bodyless = status_bodyless(status);
	bool send_body = !bodyless && !c->req.head && len > 0;
	bool keep;
	head_t h;

	if (!response_allowed(c, "conn_respond"))
		return;
	c->busy++;
	keep = answer_begins(c);
	head_init(&h, status, bodyless ? NULL : content_type, extra_headers,
	          bodyless ? -1 : (int64_t)len, keep);
	if (head_append(c, &h, send_body ? len : 0) < 0) {
		log_error("%s: out of memory for a %zu-byte response", c->peer_str, len);
		conn_close(c, "out of memory");
		goto out;
	}
	c->resp_hdr_len = h.len;
	if (send_body) {
		memcpy(c->out.data + c->out.len, body, len);
		c->out.len += len;
		c->out.data[c->out.len] = '\0';
	}
	answer_queued(c, status);
out:
	conn_update(c);
	conn_release(c);
}

/* Room before a body written in place; a cached page's head is about 170
 * bytes.  A longer head still works, at the cost of moving the body. */
#define HEAD_ROOM 256

buf_t *
conn_respond_begin(conn_t *c)
{
	if (!response_allowed(c, "conn_respond_begin"))
		return NULL;
	if (out_pending(c) == 0) {
		buf_reset(&c->out);
		c->out_off = 0;
	}
	if (buf_reserve(&c->out, HEAD_ROOM) < 0) {
		c->busy++;
		log_error("%s: out of memory for a response", c->peer_str);
		conn_close(c, "out of memory");
		conn_release(c);
		return NULL;
	}
	c->room_at = c->out.len;
	c->out.len += HEAD_ROOM;
	c->body_at = c->out.len;
	c->body_open = true;
	return &c->out;
}

void
conn_respond_cancel(conn_t *c)
{
	if (!c->body_open) {
		log_error("%s: conn_respond_cancel without conn_respond_begin", c->peer_str);
		return;
	}
	c->body_open = false;
	c->out.len = c->room_at;
	c->out.data[c->out.len] = '\0';
}

void
conn_respond_end(conn_t *c, int status, const char *content_type, const char *extra_headers)
{
	bool bodyless = status_bodyless(status);
	size_t blen, start;
	bool keep;
	head_t h;

	if (c->closed)
		return;
	if (!c->body_open) {
		log_error("%s: conn_respond_end without conn_respond_begin", c->peer_str);
		return;
	}
	c->busy++;
	c->body_open = false;
	keep = answer_begins(c);
	blen = c->out.len - c->body_at;
	head_init(&h, status, bodyless ? NULL : content_type, extra_headers,
	          bodyless ? -1 : (int64_t)blen, keep);
	if (bodyless || c->req.head) {
		c->out.len = c->body_at;
		blen = 0;
	}
	if (c->room_at == c->out_off && h.len <= HEAD_ROOM) {
		/* Nothing queued before the room: the output starts at the head,
		 * which ends where the body begins. */
		start = c->body_at - h.len;
		c->out_off = start;
	} else {
		/* Output queued before it, or a head longer than the room:
		 * move the body to follow the head. */
		if (h.len > HEAD_ROOM && buf_reserve(&c->out, h.len - HEAD_ROOM) < 0) {
			c->out.len = c->room_at;
			c->out.data[c->out.len] = '\0';
			log_error("%s: out of memory for a response head", c->peer_str);
			conn_close(c, "out of memory");
			goto out;
		}
		memmove(c->out.data + c->room_at + h.len, c->out.data + c->body_at, blen);
		c->out.len = c->room_at + h.len + blen;
		start = c->room_at;
	}
	c->out.data[c->out.len] = '\0';
	head_write(&h, c->out.data + start);
	c->resp_hdr_len = h.len;
	answer_queued(c, status);
out:
	conn_update(c);
	conn_release(c);
}

void
conn_respond_file(conn_t *c, int status, const char *content_type, const char *extra_headers,
                  const conn_file_t *file)
{
	bool keep;
	head_t h;

	if (!response_allowed(c, "conn_respond_file")) {
		file->release(file->ctx);
		return;
	}
	c->busy++;
	keep = answer_begins(c);
	head_init(&h, status, content_type, extra_headers, (int64_t)file->len, keep);
	if (out_pending(c) == 0) {
		buf_reset(&c->out);
		c->out_off = 0;
	}
	if (head_append(c, &h, 0) < 0) {
		file->release(file->ctx);
		log_error("%s: out of memory for a response head", c->peer_str);
		conn_close(c, "out of memory");
		goto out;
	}
	c->resp_hdr_len = h.len;
	if (c->req.head || file->len == 0) {
		file->release(file->ctx);
	} else {
		c->file = *file;
		c->file_off = 0;
	}
	answer_queued(c, status);
out:
	conn_update(c);
	conn_release(c);
}

int
conn_stream_start(conn_t *c, int status, const char *content_type, const char *extra_headers)
{
	head_t h;
	int rc = -1;

	if (!response_allowed(c, "conn_stream_start"))
		return -1;
	c->busy++;
	c->force_close = true;
	head_init(&h, status, content_type, extra_headers, -1, false);
	if (head_append(c, &h, 0) < 0) {
		log_error("%s: out of memory for stream headers", c->peer_str);
		c->pending = false;
		conn_close(c, "out of memory");
		goto out;
	}
	c->resp_hdr_len = h.len;
	c->resp_status = status;
	c->streaming = true;
	rc = conn_flush(c);
out:
	conn_update(c);
	conn_release(c);
	return rc;
}

int
conn_stream_write(conn_t *c, const char *data, size_t len)
{
	int rc = -1;

	if (c->closed || !c->streaming || c->resp_done)
		return -1;
	if (c->req.head || len == 0)
		return 0;
	c->busy++;
	if (buf_append(&c->out, data, len) < 0) {
		log_error("%s: out of memory for stream output", c->peer_str);
		c->pending = false;
		conn_close(c, "out of memory");
		goto out;
	}
	c->in_stream_write = true;
	rc = conn_flush(c);
	c->in_stream_write = false;
	if (rc < 0)
		goto out;
	rc = -1;
	if (out_pending(c) > c->w->cfg->output_buffer_limit) {
		log_info("%s: client reads too slowly (%zu bytes unsent), closing", c->peer_str,
		         out_pending(c));
		c->pending = false;
		c->ops = NULL;
		conn_close(c, "output buffer limit");
		goto out;
	}
	rc = 0;
out:
	conn_update(c);
	conn_release(c);
	return rc;
}

void
conn_stream_end(conn_t *c)
{
	if (c->closed || c->resp_done)
		return;
	if (!c->streaming) {
		log_error("%s: conn_stream_end without conn_stream_start", c->peer_str);
		return;
	}
	c->busy++;
	c->pending = false;
	c->ops = NULL;
	c->resp_done = true;
	conn_flush(c);
	conn_update(c);
	conn_release(c);
}

void
conn_set_cache_status(conn_t *c, const char *status)
{
	c->cache_status = status;
}

void
conn_set_endpoint(conn_t *c, enum metrics_endpoint ep)
{
	c->endpoint = ep;
}

const struct sockaddr *
conn_peer(const conn_t *c)
{
	return (const struct sockaddr *)&c->peer;
}

struct worker *
conn_worker(const conn_t *c)
{
	return c->w;
}

static void
conn_close(conn_t *c, const char *reason)
{
	int fd;

	if (c->closed)
		return;
	log_debug("%s: close: %s", c->peer_str, reason);
	if (c->pending) {
		const conn_pending_ops_t *ops = c->ops;
		void *ctx = c->ctx;

		c->pending = false;
		c->ops = NULL;
		/* conn.h: a failing conn_stream_write returns -1 and does not
		 * call abort, so its caller never sees its state freed under it. */
		if (ops != NULL && ops->abort != NULL && !c->in_stream_write)
			ops->abort(c, ctx);
	}
	/* A response cut short is still a request served: log what the client
	 * got (499 when it got nothing, as nginx does). */
	if (c->in_response)
		conn_log_access(c, c->resp_status ? c->resp_status : 499);
	c->closed = true;
	c->in_response = false;
	loop_timer_stop(c->w->loop, &c->timer);
	loop_timer_stop(c->w->loop, &c->resume);
	fd = c->io.fd; /* loop_io_del forgets it */
	loop_io_del(c->w->loop, &c->io);
	close(fd);
	file_release(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	/* The worker keeps the open-connections gauge with its count. */
	worker_conn_closed(c->w);
}

conn_t *
conn_accept(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
	conn_t *c;
	int flags, one = 1;

	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		log_error("accept: cannot make the socket non-blocking: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (peer != NULL && peer->sa_family != AF_UNIX &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_warn("accept: TCP_NODELAY: %s", strerror(errno));
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		log_error("accept: out of memory for a connection");
		close(fd);
		return NULL;
	}
	c->w = w;
	if (peer != NULL && peerlen > 0) {
		if (peerlen > sizeof(c->peer))
			peerlen = sizeof(c->peer);
		memcpy(&c->peer, peer, peerlen);
		c->peerlen = peerlen;
	}
	if (c->peer.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&c->peer)->sin_addr, c->peer_str,
		          sizeof(c->peer_str));
	else if (c->peer.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&c->peer)->sin6_addr, c->peer_str,
		          sizeof(c->peer_str));
	else
		snprintf(c->peer_str, sizeof(c->peer_str), "-");
	llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
	c->parser.data = c;
	c->resp_first_byte = -1;
	c->idle_since = clock_mono_ms();
	c->endpoint = METRICS_EP_OTHER;
	loop_timer_init(&c->timer, conn_on_timer);
	loop_timer_init(&c->resume, conn_on_resume);
	c->io.fd = fd;
	if (loop_io_add(w->loop, &c->io, fd, EPOLLIN | EPOLLRDHUP, conn_on_io) < 0) {
		log_error("%s: epoll_ctl add: %s", c->peer_str, strerror(errno));
		close(fd);
		free(c);
		return NULL;
	}
	c->next = conns;
	if (conns != NULL)
		conns->prev = c;
	conns = c;
	worker_conn_opened(w);
	conn_update(c);
	return c;
}

void
conn_reject(int fd)
{
	static const char body[] = "{\"detail\":\"too many connections, try again later\"}";
	char resp[256], sink[4096];
	int len, i;

	len = snprintf(resp, sizeof(resp),
	               "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\nServer: feedd/%s\r\n"
	               "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	               "Retry-After: 1\r\nConnection: close\r\n\r\n%s",
	               http_date_now(), PACKAGE_VERSION, sizeof(body) - 1, body);
	/* Swallow a request that has already arrived: closing with unread input
	 * would reset the connection and could destroy the answer. */
	for (i = 0; i < 4 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	if (len > 0 && send(fd, resp, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
		metrics_add(METRICS_BYTES_SENT, (uint64_t)len);
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* An idle connection that may still carry a request: one just accepted
 * (its first request is usually in flight) or one with unread input.
 * Closing it would reset the client's request; it is answered instead,
 * with "Connection: close", or cut by the header timeout. */
static bool
request_coming(const conn_t *c)
{
	char byte;

	if (c->served == 0)
		return true;
	return recv(c->io.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

void
conn_drain_all(struct worker *w)
{
	conn_t *c, *next;

	for (c = conns; c != NULL; c = next) {
		next = c->next;
		if (c->w != w)
			continue;
		c->busy++;
		c->force_close = true;
		if (c->lingering || (!c->in_response && !c->ready && !c->req_active &&
		                     out_pending(c) == 0 && !request_coming(c))) {
			conn_close(c, "worker draining");
		} else if (c->pending && c->ops != NULL && c->ops->shutdown != NULL) {
			c->ops->shutdown(c, c->ctx);
		}
		conn_update(c);
		/* shutdown may have ended c; the next one is untouched by it. */
		next = c->closed ? next : c->next;
		conn_release(c);
	}
}

void
conn_close_all(struct worker *w)
{
	conn_t *c, *next;

	for (c = conns; c != NULL; c = next) {
		next = c->next;
		if (c->w != w)
			continue;
		c->busy++;
		conn_close(c, "worker stopping");
		conn_release(c);
	}
}

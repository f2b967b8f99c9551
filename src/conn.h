/* One client connection: buffers, llhttp callbacks, keep-alive, pipelining, output bound. */
#ifndef FEEDD_CONN_H
#define FEEDD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "metrics.h"

typedef struct conn conn_t;
struct worker;

typedef struct request {
	int         method;        /* llhttp_method_t */
	const char *method_name;   /* "GET" */
	const char *target;        /* raw request target, NUL-terminated */
	const char *path;          /* percent-decoded path, NUL-terminated */
	const char *query;         /* raw query string after '?', "" if none */
	size_t      query_len;
	const char *user_agent;    /* NULL if absent (access log) */
	const char *referer;
	bool        head;          /* HEAD: headers only */
	bool        keep_alive;    /* after this response */
	int         http_major;
	int         http_minor;
	int64_t     start_ms;      /* monotonic, first byte of the request */
	const char *headers;       /* "name\0value\0" pairs, as received */
	size_t      headers_len;
} request_t;

/* r and every string in it stay valid until the response is complete (the
 * next request is not parsed before): an async handler may keep r. */

/* The value of header name (case-insensitive), NULL if absent; the first
 * one when repeated. */
const char *conn_header(const request_t *r, const char *name);

/* A handler that answers later (database, cache fill, stream) registers
 * these.  abort: the client went away or the connection failed; the handler
 * must drop everything it holds for c and never touch c again.  shutdown:
 * the worker is draining; finish quickly (a stream says so and ends). */
typedef struct conn_pending_ops {
	void (*abort)(conn_t *c, void *ctx);
	void (*shutdown)(conn_t *c, void *ctx);
} conn_pending_ops_t;

void conn_set_pending(conn_t *c, const conn_pending_ops_t *ops, void *ctx);

/* A whole response.  Adds Date, Server, Content-Length, Connection; drops
 * the body for HEAD.  extra_headers: complete "Name: value\r\n" lines or NULL.
 * Ends the pending state and resumes a pipelined next request. */
void conn_respond(conn_t *c, int status, const char *content_type,
                  const char *extra_headers, const char *body, size_t len);

/* A whole response whose body the handler copies straight into the
 * connection's output buffer, behind room left for the head (a cached page:
 * one copy, not two).  conn_respond_begin returns that buffer, or NULL when
 * c cannot answer now (a bug, logged; or out of memory: c is then closed,
 * do not touch it).
 * The handler appends the body, leaving the bytes before it alone, and ends
 * with exactly one of: conn_respond_end, which sends it as conn_respond
 * would (Content-Length: what was appended), or conn_respond_cancel, which
 * drops it; the request then still awaits its answer.  No other response
 * call on c in between. */
buf_t *conn_respond_begin(conn_t *c);
void   conn_respond_end(conn_t *c, int status, const char *content_type,
                        const char *extra_headers);
void   conn_respond_cancel(conn_t *c);

/* A body sent from a file with sendfile(2), from offset 0: the kernel
 * hands the socket the file's pages without copying them, so the file
 * must not change while it is sent (a sealed memfd, page_files.h).
 * conn calls release(ctx) exactly once: when the body is sent, when c
 * closes, or at once when the file is not sent (HEAD, refused). */
typedef struct conn_file {
	int    fd;
	size_t len;
	void (*release)(void *ctx);
	void  *ctx;
} conn_file_t;

/* A whole response, as conn_respond, with the body from file. */
void conn_respond_file(conn_t *c, int status, const char *content_type,
                       const char *extra_headers, const conn_file_t *file);

/* A response of unknown length (SSE): headers now, then writes, delimited
 * by closing the connection.  conn_stream_write returns 0, or -1 when the
 * client cannot keep up (output_buffer_limit) or is gone: the connection is
 * then closed, abort is NOT called, and the caller frees its own state. */
int  conn_stream_start(conn_t *c, int status, const char *content_type,
                       const char *extra_headers);
int  conn_stream_write(conn_t *c, const char *data, size_t len);
/* Flush what is queued, then close.  Ends the pending state. */
void conn_stream_end(conn_t *c);

/* For the access log: "hit", "miss", "stale", or NULL for "-". */
void conn_set_cache_status(conn_t *c, const char *status);
/* The endpoint label this request is counted under (router; default OTHER). */
void conn_set_endpoint(conn_t *c, enum metrics_endpoint ep);
const struct sockaddr *conn_peer(const conn_t *c);
struct worker *conn_worker(const conn_t *c);

/* worker.c hands accepted sockets here; conn owns fd from then on. */
conn_t *conn_accept(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peerlen);
/* Over max_connections: a small 503 written best-effort, then fd is closed
 * (nothing buffered, nothing kept). */
void conn_reject(int fd);
/* Draining: close idle keep-alive connections now, the rest after their
 * response; pending handlers get their shutdown op. */
void conn_drain_all(struct worker *w);
/* Hard stop: close everything (abort pending handlers). */
void conn_close_all(struct worker *w);

#endif

/* HTTP vocabulary: status texts, percent-decoding, query strings, MIME types. */
#ifndef FEEDD_HTTP_H
#define FEEDD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

const char *http_status_text(int status);

/* Percent-decodes src[0..len) into dst (at least len+1 bytes), NUL-terminated.
 * plus_is_space: '+' becomes ' ' (query strings).  Returns the decoded
 * length, or -1 for a malformed escape or an encoded NUL. */
long http_percent_decode(char *dst, const char *src, size_t len, bool plus_is_space);

/* Finds parameter name in a raw query string ("a=1&b=2") and decodes its
 * value into a malloc'd string (*out).  Returns 1 found, 0 absent, -1 bad
 * encoding.  A parameter given twice: the first wins (*dup is set). */
int  http_query_param(const char *query, size_t len, const char *name, char **out, bool *dup);

/* RFC 9112 section 3.2: an HTTP/1.1 request carries exactly one Host
 * header, and no request more than one; its value is a uri-host with an
 * optional port, or empty.  headers: the request's "name\0value\0" pairs
 * (request_t).  Returns NULL when the request passes, else why it does not
 * (the detail of its 400). */
const char *http_host_check(int http_major, int http_minor, const char *headers, size_t len);

/* Content-Type for a file name ("app.js" -> "text/javascript; charset=utf-8"). */
const char *http_mime_type(const char *path);

#endif

/* HTTP vocabulary: status texts, percent-decoding, query strings, MIME types. */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *
http_status_text(int status)
{
	/* clang-format off */
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default:
		break;
	}
	/* clang-format on */
	if (status >= 100 && status < 200)
		return "Informational";
	if (status >= 200 && status < 300)
		return "Success";
	if (status >= 300 && status < 400)
		return "Redirection";
	if (status >= 400 && status < 500)
		return "Client Error";
	return "Server Error";
}

static int
hex_value(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

long
http_percent_decode(char *dst, const char *src, size_t len, bool plus_is_space)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)src[i];

		if (ch == '%') {
			int hi, lo;

			if (len - i < 3)
				goto bad;
			hi = hex_value((unsigned char)src[i + 1]);
			lo = hex_value((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			ch = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (ch == '+' && plus_is_space) {
			ch = ' ';
		}
		/* Everything downstream treats the result as a C string: an
		 * embedded NUL (encoded or raw) would truncate it silently. */
		if (ch == '\0')
			goto bad;
		dst[o++] = (char)ch;
	}
	dst[o] = '\0';
	return (long)o;
bad:
	dst[0] = '\0';
	return -1;
}

/* Decodes one key or value of a query string into a malloc'd string;
 * NULL with *bad set for a malformed escape, NULL alone when out of memory. */
static char *
query_decode(const char *s, size_t len, bool *bad)
{
	char *out = malloc(len + 1);

	*bad = false;
	if (out == NULL)
		return NULL;
	if (http_percent_decode(out, s, len, true) < 0) {
		free(out);
		*bad = true;
		return NULL;
	}
	return out;
}

int
http_query_param(const char *query, size_t len, const char *name, char **out, bool *dup)
{
	const char *p = query, *end, *next;
	char *found = NULL;
	bool seen_dup = false;

	*out = NULL;
	if (dup != NULL)
		*dup = false;
	if (query == NULL)
		return 0;
	end = query + len;
	for (; p < end; p = next) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *seg_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(seg_end - p));
		const char *key_end = eq ? eq : seg_end;
		char *key;
		bool bad;

		next = amp ? amp + 1 : end;
		if (seg_end == p)
			continue;
		key = query_decode(p, (size_t)(key_end - p), &bad);
		if (key == NULL) {
			if (bad) /* some other parameter's broken name: not ours */
				continue;
			free(found);
			return -1;
		}
		if (strcmp(key, name) == 0) {
			if (found != NULL) {
				seen_dup = true;
			} else {
				const char *v = eq ? eq + 1 : seg_end;

				found = query_decode(v, (size_t)(seg_end - v), &bad);
				if (found == NULL) {
					free(key);
					return -1;
				}
			}
		}
		free(key);
	}
	if (found == NULL)
		return 0;
	*out = found;
	if (dup != NULL)
		*dup = seen_dup;
	return 1;
}

/* RFC 3986 unreserved and sub-delims: what a reg-name (and an IPvFuture
 * literal) is made of, besides percent-escapes. */
static bool
host_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("-._~!$&'()*+,;=", ch) != NULL);
}

/* uri-host [ ":" port ], or empty (RFC 9110 section 7.2). */
static bool
host_value_ok(const char *v)
{
	const char *p = v;

	if (*p == '[') {
		/* IP-literal: an IPv6 address (hex digits, ':' and '.') or an
		 * IPvFuture, which may use any unreserved or sub-delim too. */
		for (p++; *p != ']'; p++)
			if (*p != ':' && !host_char((unsigned char)*p))
				return false;
		if (p == v + 1)
			return false;
		p++;
	} else {
		for (; *p != '\0' && *p != ':'; p++) {
			if (*p == '%') {
				if (hex_value((unsigned char)p[1]) < 0 ||
				    hex_value((unsigned char)p[2]) < 0)
					return false;
				p += 2;
			} else if (!host_char((unsigned char)*p)) {
				return false;
			}
		}
	}
	if (*p == ':')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	return *p == '\0';
}

const char *
http_host_check(int http_major, int http_minor, const char *headers, size_t len)
{
	const char *p = headers, *end = headers != NULL ? headers + len : NULL, *host = NULL;
	int hosts = 0;

	while (p < end) {
		const char *value = p + strlen(p) + 1;

		if (value >= end)
			break;
		if (strcasecmp(p, "Host") == 0 && hosts++ == 0)
			host = value;
		p = value + strlen(value) + 1;
	}
	if (hosts > 1)
		return "more than one Host header";
	if (hosts == 0) {
		/* HTTP/1.0 predates Host: its clients may leave it out. */
		if (http_major < 1 || (http_major == 1 && http_minor < 1))
			return NULL;
		return "an HTTP/1.1 request needs a Host header";
	}
	if (!host_value_ok(host))
		return "malformed Host header";
	return NULL;
}

/* clang-format off */
static const struct {
	const char *ext;
	const char *type;
} mime_types[] = {
	{ "html",  "text/html; charset=utf-8" },
	{ "htm",   "text/html; charset=utf-8" },
	{ "css",   "text/css; charset=utf-8" },
	{ "js",    "text/javascript; charset=utf-8" },
	{ "mjs",   "text/javascript; charset=utf-8" },
	{ "json",  "application/json" },
	{ "map",   "application/json" },
	{ "svg",   "image/svg+xml" },
	{ "png",   "image/png" },
	{ "jpg",   "image/jpeg" },
	{ "jpeg",  "image/jpeg" },
	{ "gif",   "image/gif" },
	{ "webp",  "image/webp" },
	{ "ico",   "image/x-icon" },
	{ "txt",   "text/plain; charset=utf-8" },
	{ "woff2", "font/woff2" },
	{ "woff",  "font/woff" },
};
/* clang-format on */

const char *
http_mime_type(const char *path)
{
	const char *base, *dot;
	size_t i;

	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	/* ".hidden" is a name, not an extension. */
	if (dot == NULL || dot == base)
		return "application/octet-stream";
	for (i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
		if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
			return mime_types[i].type;
	return "application/octet-stream";
}

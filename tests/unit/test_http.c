/* Unit tests for src/http.c. */
#include <stdarg.h>
#include <stdlib.h>

#include "http.h"
#include "unit.h"

/* Decodes a C string; returns the decoded text in a static buffer, or
 * "<bad>" when http_percent_decode refused it. */
static const char *
dec(const char *s, bool plus)
{
	static char out[256];
	long n = http_percent_decode(out, s, strlen(s), plus);

	if (n < 0)
		return "<bad>";
	if ((size_t)n != strlen(out))
		return "<length mismatch>";
	return out;
}

/* Looks name up in query; "<absent>", "<bad>" or the value.  *dup out. */
static const char *
param(const char *query, const char *name, bool *dup)
{
	static char got[256];
	char *v = (char *)"sentinel";
	int rc = http_query_param(query, strlen(query), name, &v, dup);

	if (rc == 0) {
		CHECK(v == NULL);
		return "<absent>";
	}
	if (rc < 0) {
		CHECK(v == NULL);
		return "<bad>";
	}
	CHECK_INT(rc, 1);
	snprintf(got, sizeof(got), "%s", v);
	free(v);
	return got;
}

static void
test_status_text(void)
{
	CHECK_STR(http_status_text(200), "OK");
	CHECK_STR(http_status_text(304), "Not Modified");
	CHECK_STR(http_status_text(400), "Bad Request");
	CHECK_STR(http_status_text(403), "Forbidden");
	CHECK_STR(http_status_text(404), "Not Found");
	CHECK_STR(http_status_text(405), "Method Not Allowed");
	CHECK_STR(http_status_text(408), "Request Timeout");
	CHECK_STR(http_status_text(413), "Content Too Large");
	CHECK_STR(http_status_text(414), "URI Too Long");
	CHECK_STR(http_status_text(422), "Unprocessable Content");
	CHECK_STR(http_status_text(431), "Request Header Fields Too Large");
	CHECK_STR(http_status_text(500), "Internal Server Error");
	CHECK_STR(http_status_text(503), "Service Unavailable");
	/* Unknown codes still get a class-appropriate phrase, never NULL. */
	CHECK_STR(http_status_text(299), "Success");
	CHECK_STR(http_status_text(499), "Client Error");
	CHECK_STR(http_status_text(599), "Server Error");
}

static void
test_decode_plain(void)
{
	CHECK_STR(dec("", false), "");
	CHECK_STR(dec("/index.html", false), "/index.html");
	CHECK_STR(dec("a%20b", false), "a b");
	CHECK_STR(dec("%41%62%63", false), "Abc");
	CHECK_STR(dec("%2e%2E", false), "..");
	CHECK_STR(dec("%2F", false), "/");
	CHECK_STR(dec("%e2%82%ac", false), "\xe2\x82\xac");
	CHECK_STR(dec("%25", false), "%");
	CHECK_STR(dec("%2525", false), "%25"); /* decoded once, not twice */
	CHECK_STR(dec("%ff", false), "\xff");
}

static void
test_decode_plus(void)
{
	CHECK_STR(dec("a+b", true), "a b");
	CHECK_STR(dec("a+b", false), "a+b");  /* paths keep '+' */
	CHECK_STR(dec("a%2Bb", true), "a+b"); /* an encoded plus stays a plus */
	CHECK_STR(dec("+++", true), "   ");
}

static void
test_decode_bad(void)
{
	char out[8];

	CHECK_STR(dec("%", false), "<bad>");
	CHECK_STR(dec("%4", false), "<bad>");
	CHECK_STR(dec("abc%", false), "<bad>");
	CHECK_STR(dec("abc%2", false), "<bad>");
	CHECK_STR(dec("%zz", false), "<bad>");
	CHECK_STR(dec("%g0", false), "<bad>");
	CHECK_STR(dec("%0g", false), "<bad>");
	CHECK_STR(dec("% 1", false), "<bad>");
	CHECK_STR(dec("%-1", false), "<bad>");
	CHECK_STR(dec("%00", false), "<bad>");
	CHECK_STR(dec("a%00b", true), "<bad>");
	/* A raw NUL inside the given length is refused just like %00. */
	CHECK_INT(http_percent_decode(out, "a\0b", 3, false), -1);
	/* The length bounds the input: an escape cut by it is truncated. */
	CHECK_INT(http_percent_decode(out, "%41%42", 5, false), -1);
	CHECK_INT(http_percent_decode(out, "%41%42", 3, false), 1);
	CHECK_STR(out, "A");
}

static void
test_query_basic(void)
{
	bool dup = true;

	CHECK_STR(param("limit=5", "limit", &dup), "5");
	CHECK(!dup);
	CHECK_STR(param("a=1&limit=5&b=2", "limit", &dup), "5");
	CHECK_STR(param("a=1&b=2", "limit", &dup), "<absent>");
	CHECK(!dup);
	CHECK_STR(param("", "limit", &dup), "<absent>");
	CHECK_STR(param("cursor=2026-02-19T19%3A19%3A32Z~x", "cursor", &dup),
	          "2026-02-19T19:19:32Z~x");
	CHECK_STR(param("q=a+b%2Bc", "q", &dup), "a b+c");
	/* Only the '=' before the value separates: later ones belong to it. */
	CHECK_STR(param("x=a=b", "x", &dup), "a=b");
	/* The length is honoured: nothing after it is seen. */
	{
		char *v = NULL;

		CHECK_INT(http_query_param(NULL, 0, "limit", &v, NULL), 0);
		CHECK(v == NULL);
		CHECK_INT(http_query_param("limit=5&cursor=x", 7, "cursor", &v, NULL), 0);
		CHECK_INT(http_query_param("limit=50", 7, "limit", &v, NULL), 1);
		CHECK_STR(v, "5");
		free(v);
	}
}

static void
test_query_empty(void)
{
	bool dup;

	CHECK_STR(param("limit=", "limit", &dup), "");
	CHECK_STR(param("limit", "limit", &dup), "");
	CHECK_STR(param("a=1&limit&b=2", "limit", &dup), "");
	CHECK_STR(param("&&limit=3&&", "limit", &dup), "3");
	CHECK_STR(param("=5", "limit", &dup), "<absent>");
	CHECK_STR(param("=5", "", &dup), "5");
	CHECK_STR(param("&", "limit", &dup), "<absent>");
}

static void
test_query_prefix_names(void)
{
	bool dup;

	/* Names that are prefixes or extensions of the wanted one never match. */
	CHECK_STR(param("limitx=1&limit=2", "limit", &dup), "2");
	CHECK_STR(param("xlimit=1", "limit", &dup), "<absent>");
	CHECK_STR(param("lim=1", "limit", &dup), "<absent>");
	CHECK_STR(param("limit=2&limitx=1", "limitx", &dup), "1");
	CHECK_STR(param("limit_=7", "limit", &dup), "<absent>");
	/* Names are decoded before comparing. */
	CHECK_STR(param("li%6Dit=9", "limit", &dup), "9");
}

static void
test_query_repeated(void)
{
	bool dup = false;

	CHECK_STR(param("limit=1&limit=2", "limit", &dup), "1");
	CHECK(dup);
	dup = false;
	CHECK_STR(param("limit=1&a=b&limit=%zz", "limit", &dup), "1");
	CHECK(dup);
	dup = true;
	CHECK_STR(param("limit=1&limits=2", "limit", &dup), "1");
	CHECK(!dup);
	/* dup may be NULL when the caller does not care. */
	CHECK_STR(param("limit=1&limit=2", "limit", NULL), "1");
}

static void
test_query_bad(void)
{
	bool dup;

	CHECK_STR(param("limit=%zz", "limit", &dup), "<bad>");
	CHECK_STR(param("limit=%", "limit", &dup), "<bad>");
	CHECK_STR(param("limit=5%", "limit", &dup), "<bad>");
	CHECK_STR(param("limit=%2", "limit", &dup), "<bad>");
	CHECK_STR(param("limit=%00", "limit", &dup), "<bad>");
	/* Another parameter's broken encoding does not spoil this one. */
	CHECK_STR(param("x=%zz&limit=4", "limit", &dup), "4");
	CHECK_STR(param("%zz=1&limit=4", "limit", &dup), "4");
}

static void
test_mime(void)
{
	CHECK_STR(http_mime_type("/index.html"), "text/html; charset=utf-8");
	CHECK_STR(http_mime_type("feed.css"), "text/css; charset=utf-8");
	CHECK_STR(http_mime_type("/a/b/feed.js"), "text/javascript; charset=utf-8");
	CHECK_STR(http_mime_type("x.json"), "application/json");
	CHECK_STR(http_mime_type("logo.svg"), "image/svg+xml");
	CHECK_STR(http_mime_type("logo.png"), "image/png");
	CHECK_STR(http_mime_type("photo.jpg"), "image/jpeg");
	CHECK_STR(http_mime_type("favicon.ico"), "image/x-icon");
	CHECK_STR(http_mime_type("robots.txt"), "text/plain; charset=utf-8");
	CHECK_STR(http_mime_type("font.woff2"), "font/woff2");
	CHECK_STR(http_mime_type("feed.js.map"), "application/json");
	CHECK_STR(http_mime_type("pic.webp"), "image/webp");
	CHECK_STR(http_mime_type("INDEX.HTML"), "text/html; charset=utf-8");
	CHECK_STR(http_mime_type("archive.tar.gz"), "application/octet-stream");
	CHECK_STR(http_mime_type("README"), "application/octet-stream");
	CHECK_STR(http_mime_type(".html"), "application/octet-stream");
	CHECK_STR(http_mime_type("/dir.html/file"), "application/octet-stream");
	CHECK_STR(http_mime_type("/dir/.css"), "application/octet-stream");
	CHECK_STR(http_mime_type("trailingdot."), "application/octet-stream");
	CHECK_STR(http_mime_type(""), "application/octet-stream");
}

/* http_host_check over the headers given as name, value, ..., NULL, laid
 * out as conn.c hands them over ("name\0value\0" pairs). */
static const char *
host_check(int major, int minor, ...)
{
	char list[512];
	size_t len = 0;
	const char *s;
	va_list ap;

	va_start(ap, minor);
	while ((s = va_arg(ap, const char *)) != NULL) {
		size_t n = strlen(s) + 1;

		if (len + n > sizeof(list)) {
			va_end(ap);
			return "<list too long>";
		}
		memcpy(list + len, s, n);
		len += n;
	}
	va_end(ap);
	return http_host_check(major, minor, len > 0 ? list : NULL, len);
}

static void
test_host_required(void)
{
	const char *missing = "an HTTP/1.1 request needs a Host header";

	CHECK_STR(host_check(1, 1, "Host", "example.com", NULL), NULL);
	CHECK_STR(host_check(1, 1, "host", "example.com", NULL), NULL);
	CHECK_STR(host_check(1, 1, "User-Agent", "x", "HOST", "t", "Accept", "*/*", NULL), NULL);
	CHECK_STR(host_check(1, 1, NULL), missing);
	CHECK_STR(host_check(1, 1, "User-Agent", "x", "Accept", "*/*", NULL), missing);
	/* Names that only start like Host, and values that say Host, are not it. */
	CHECK_STR(host_check(1, 1, "Hostname", "t", "X-Host", "t", "Referer", "Host", NULL),
	          missing);
	/* HTTP/1.0 clients may leave it out. */
	CHECK_STR(host_check(1, 0, NULL), NULL);
	CHECK_STR(host_check(1, 0, "User-Agent", "x", NULL), NULL);
	CHECK_STR(host_check(1, 0, "Host", "t", NULL), NULL);
}

static void
test_host_once(void)
{
	const char *twice = "more than one Host header";

	CHECK_STR(host_check(1, 1, "Host", "a", "Host", "a", NULL), twice);
	CHECK_STR(host_check(1, 1, "Host", "a", "X", "y", "host", "b", NULL), twice);
	CHECK_STR(host_check(1, 0, "Host", "a", "Host", "b", NULL), twice);
	CHECK_STR(host_check(1, 1, "Host", "", "Host", "", NULL), twice);
}

static void
test_host_value(void)
{
	const char *bad = "malformed Host header";
	const char *good[] = {
	        "", /* allowed: a target without authority */
	        "t",
	        "example.com",
	        "example.com.",
	        "localhost:8080",
	        "127.0.0.1",
	        "127.0.0.1:80",
	        "example.com:", /* port = *DIGIT: may be empty */
	        "my_host-1.example",
	        "caf%C3%A9.example",
	        "[::1]",
	        "[::1]:8080",
	        "[2001:db8::7]",
	        "[::ffff:192.0.2.1]:443",
	        "[v1.fe80::a+en1]",
	};
	const char *evil[] = {
	        "a b",
	        "example.com/path",
	        "user@example.com",
	        "example.com?q",
	        "example.com#f",
	        "\"quoted\"",
	        "a\\b",
	        "example.com:80a",
	        "example.com:80:81",
	        "host:-1",
	        "[::1",
	        "[]",
	        "[::1]x",
	        "[::1]:8x",
	        "[::1/64]",
	        "%zz.example",
	        "%4",
	        "a<b>",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK_STR(host_check(1, 1, "Host", good[i], NULL), NULL);
	for (i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		CHECK_STR(host_check(1, 1, "Host", evil[i], NULL), bad);
		/* HTTP/1.0 may leave Host out, but not send a broken one. */
		CHECK_STR(host_check(1, 0, "Host", evil[i], NULL), bad);
	}
}

int
main(void)
{
	RUN(test_status_text);
	RUN(test_decode_plain);
	RUN(test_decode_plus);
	RUN(test_decode_bad);
	RUN(test_query_basic);
	RUN(test_query_empty);
	RUN(test_query_prefix_names);
	RUN(test_query_repeated);
	RUN(test_query_bad);
	RUN(test_mime);
	RUN(test_host_required);
	RUN(test_host_once);
	RUN(test_host_value);
	return unit_done();
}

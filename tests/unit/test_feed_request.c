/* Unit tests for src/feed_request.c. */
#include "unit.h"

#include "feed_request.h"

#define LIMIT_LOC  "{\"loc\":[\"query\",\"limit\"],"
#define CURSOR_LOC "{\"loc\":[\"query\",\"cursor\"],"
#define GE_ERR                                                                                     \
	LIMIT_LOC "\"msg\":\"Input should be greater than or equal to 1\","                        \
	          "\"type\":\"greater_than_equal\"}"
#define LE_ERR                                                                                     \
	LIMIT_LOC "\"msg\":\"Input should be less than or equal to 50\","                          \
	          "\"type\":\"less_than_equal\"}"
#define INT_ERR                                                                                    \
	LIMIT_LOC "\"msg\":\"Input should be a valid integer, unable to parse "                    \
	          "string as an integer\",\"type\":\"int_parsing\"}"
#define BODY(...) "{\"detail\":[" __VA_ARGS__ "]}"

static feed_request_t req;

/* Parses q; returns the 422 body, or "" on success. */
static const char *
parse(const char *q)
{
	static char out[1024];
	buf_t err = BUF_INIT;
	int rc = feed_request_parse(q, q ? strlen(q) : 0, &req, &err);

	if (rc == 0 && err.len != 0)
		snprintf(out, sizeof(out), "(success with a body: %s)", err.data);
	else if (rc == 0)
		out[0] = '\0';
	else if (rc != -1 || err.len == 0)
		snprintf(out, sizeof(out), "(rc %d, no body)", rc);
	else
		snprintf(out, sizeof(out), "%s", err.data);
	buf_free(&err);
	return out;
}

static void
test_defaults(void)
{
	CHECK_STR(parse(""), "");
	CHECK_INT(req.limit, 20);
	CHECK(!req.has_cursor);
	CHECK_STR(req.key, "20|-");
	CHECK_STR(parse(NULL), "");
	CHECK_INT(req.limit, FEED_LIMIT_DEFAULT);
	CHECK_STR(req.key, "20|-");
	/* Unknown parameters are ignored; an empty cursor means none. */
	CHECK_STR(parse("foo=bar&x&&=1&cursor="), "");
	CHECK(!req.has_cursor);
	CHECK_STR(req.key, "20|-");
	CHECK_STR(parse("cursor"), "");
	CHECK(!req.has_cursor);
}

static void
test_limit(void)
{
	CHECK_STR(parse("limit=5"), "");
	CHECK_INT(req.limit, 5);
	CHECK_STR(req.key, "5|-");
	CHECK_STR(parse("limit=1"), "");
	CHECK_INT(req.limit, 1);
	CHECK_STR(parse("limit=50"), "");
	CHECK_INT(req.limit, 50);
	CHECK_STR(parse("limit=050"), "");
	CHECK_INT(req.limit, 50);
	/* The first of a repeated parameter wins. */
	CHECK_STR(parse("limit=7&limit=abc"), "");
	CHECK_INT(req.limit, 7);
	CHECK_STR(parse("limit=abc&limit=7"), BODY(INT_ERR));

	CHECK_STR(parse("limit=0"), BODY(GE_ERR));
	CHECK_STR(parse("limit=-1"), BODY(GE_ERR));
	CHECK_STR(parse("limit=-0"), BODY(GE_ERR));
	CHECK_STR(parse("limit=-99999999999999999999"), BODY(GE_ERR));
	CHECK_STR(parse("limit=51"), BODY(LE_ERR));
	CHECK_STR(parse("limit=500"), BODY(LE_ERR));
	CHECK_STR(parse("limit=99999999999999999999999"), BODY(LE_ERR));
	CHECK_STR(parse("limit="), BODY(INT_ERR));
	CHECK_STR(parse("limit"), BODY(INT_ERR));
	CHECK_STR(parse("limit=abc"), BODY(INT_ERR));
	CHECK_STR(parse("limit=1.5"), BODY(INT_ERR));
	CHECK_STR(parse("limit=5.0"), BODY(INT_ERR));
	CHECK_STR(parse("limit=%205"), BODY(INT_ERR));
	CHECK_STR(parse("limit=5%20"), BODY(INT_ERR));
	CHECK_STR(parse("limit=+5"), BODY(INT_ERR));
	CHECK_STR(parse("limit=%2B5"), BODY(INT_ERR));
	CHECK_STR(parse("limit=5x"), BODY(INT_ERR));
	CHECK_STR(parse("limit=-"), BODY(INT_ERR));
	CHECK_STR(parse("limit=1e1"), BODY(INT_ERR));
	CHECK_STR(parse("limit=%zz"), BODY(INT_ERR));
	/* A rejected request leaves no key behind to cache under. */
	CHECK_STR(req.key, "");
}

static void
test_cursor(void)
{
	CHECK_STR(parse("cursor=2026-02-19T19:19:32.123456Z~graduated-0b7e"), "");
	CHECK(req.has_cursor);
	CHECK_INT(req.cursor.time_us, 1771528772123456LL);
	CHECK_STR(req.cursor.id, "graduated-0b7e");
	CHECK_STR(req.key, "20|1771528772123456~graduated-0b7e");

	CHECK_STR(parse("cursor=nope"),
	          BODY(CURSOR_LOC "\"msg\":\"cursor time is not an ISO-8601 timestamp\","
	                          "\"type\":\"value_error\"}"));
	CHECK(!req.has_cursor);
	CHECK_STR(parse("cursor=2026-02-19T19:19:32Z~a%2Fb"),
	          BODY(CURSOR_LOC "\"msg\":\"cursor id has invalid characters\","
	                          "\"type\":\"value_error\"}"));
	CHECK_STR(parse("cursor=2026-02-19T19:19:32.1234567Z"),
	          BODY(CURSOR_LOC "\"msg\":\"cursor time has more than 6 fraction digits\","
	                          "\"type\":\"value_error\"}"));
	CHECK_STR(parse("cursor=%G0"),
	          BODY(CURSOR_LOC "\"msg\":\"cursor is not valid percent-encoding\","
	                          "\"type\":\"value_error\"}"));
	/* Both bad: both listed, cursor first whatever the query order. */
	CHECK_STR(parse("cursor=x&limit=0"),
	          BODY(CURSOR_LOC "\"msg\":\"cursor time is not an ISO-8601 timestamp\","
	                          "\"type\":\"value_error\"}," GE_ERR));
	CHECK_STR(parse("limit=abc&cursor=2026-02-30"),
	          BODY(CURSOR_LOC "\"msg\":\"cursor date or time is out of range\","
	                          "\"type\":\"value_error\"}," INT_ERR));
	/* A good cursor with a bad limit is still a 422. */
	CHECK_STR(parse("cursor=2026-02-19T19:19:32Z&limit=51"), BODY(LE_ERR));
	CHECK(!req.has_cursor);
}

static char *
key_of(const char *q)
{
	static char keys[8][FEED_KEY_MAX];
	static int next;
	char *k = keys[next++ % 8];

	if (parse(q)[0] != '\0')
		return strcpy(k, "(rejected)");
	return strcpy(k, req.key);
}

static void
test_key(void)
{
	static const char *const same[] = {
	        "cursor=2026-02-19T19:19:32.123456Z~a-1",
	        "cursor=2026-02-19T19:19:32.123456%2B00:00~a-1",
	        "cursor=2026-02-19T19:19:32.123456+00:00~a-1", /* '+' arrives as ' ' */
	        "cursor=2026-02-19T19:19:32.123456%2b00:00|a-1",
	        "cursor=2026-02-19%2019:19:32.123456~a-1&limit=20",
	        "limit=20&cursor=2026-02-19T20:19:32.123456%2B01:00~a-1",
	        "limit=020&foo=1&cursor=2026-02-19T19:19:32.123456~a-1",
	        "cursor=2026-02-19T19:19:32.123456Z~a-1&cursor=garbage",
	};
	char want[FEED_KEY_MAX];

	snprintf(want, sizeof(want), "%s", key_of(same[0]));

	CHECK_STR(want, "20|1771528772123456~a-1");
	for (size_t i = 1; i < sizeof(same) / sizeof(same[0]); i++)
		CHECK_STR(key_of(same[i]), want);

	/* Different requests, different keys. */
	CHECK(strcmp(key_of("cursor=2026-02-19T19:19:32.123456Z~a-2"), want) != 0);
	CHECK(strcmp(key_of("cursor=2026-02-19T19:19:32.123457Z~a-1"), want) != 0);
	CHECK(strcmp(key_of("cursor=2026-02-19T19:19:32.123456Z~a-1&limit=19"), want) != 0);
	CHECK(strcmp(key_of("cursor=2026-02-19T19:19:32.123456Z"), want) != 0);
	CHECK_STR(key_of("cursor=2026-02-19T19:19:32.123456Z"), "20|1771528772123456~");
	CHECK_STR(key_of("limit=20"), key_of(""));
	CHECK_STR(key_of("limit=7"), "7|-");
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_limit);
	RUN(test_cursor);
	RUN(test_key);
	return unit_done();
}

/* Unit tests for src/cursor.c. */
#include "unit.h"

#include <stdlib.h>

#include "cursor.h"

#define T0 1771528772123456LL /* 2026-02-19T19:19:32.123456Z */

/* Parses s; returns the microseconds, or INT64_MIN on failure (and *why). */
/* Parses s from an exact-size heap copy without a NUL, so that ASan
 * catches any read past len. */
static int
parse_exact(const char *s, cursor_t *c, const char **why)
{
	size_t len = strlen(s);
	char *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, s, len);
	rc = cursor_parse(copy, len, c, why);
	free(copy);
	return rc;
}

static int64_t
parse_us(const char *s, const char **why)
{
	cursor_t c;
	const char *w = NULL;

	if (parse_exact(s, &c, &w) < 0) {
		if (why)
			*why = w;
		return INT64_MIN;
	}
	if (w != NULL)
		return INT64_MIN + 1; /* success must not leave a reason behind */
	return c.time_us;
}

static const char *
parse_id(const char *s)
{
	static cursor_t c;
	const char *w;

	if (parse_exact(s, &c, &w) < 0)
		return "(error)";
	return c.id;
}

static void
test_time_forms(void)
{
	static const char *const same[] = {
	        "2026-02-19T19:19:32.123456Z",
	        "2026-02-19T19:19:32.123456z",
	        "2026-02-19T19:19:32.123456+00:00",
	        "2026-02-19T19:19:32.123456-00:00",
	        "2026-02-19T19:19:32.123456+0000",
	        "2026-02-19T19:19:32.123456+00",
	        "2026-02-19 19:19:32.123456+00:00",
	        "2026-02-19t19:19:32.123456Z",
	        /* naive = UTC */
	        "2026-02-19T19:19:32.123456",
	        "2026-02-19 19:19:32.123456",
	        /* "+00:00" sent unencoded in a query string arrives as " 00:00" */
	        "2026-02-19T19:19:32.123456 00:00",
	        "2026-02-19 19:19:32.123456 00:00",
	        /* non-UTC offsets converted */
	        "2026-02-19T20:19:32.123456+01:00",
	        "2026-02-19T20:19:32.123456 01:00",
	        "2026-02-20T00:49:32.123456+05:30",
	        "2026-02-20T00:49:32.123456+0530",
	        "2026-02-19T14:49:32.123456-04:30",
	        "2026-02-19T09:19:32.123456-10",
	};

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		int64_t got = parse_us(same[i], NULL);

		if (got != T0)
			fprintf(stderr, "form %s\n", same[i]);
		CHECK_INT(got, T0);
	}
	/* Shorter fractions are scaled, not read as microseconds. */
	CHECK_INT(parse_us("2026-02-19T19:19:32.1Z", NULL), 1771528772100000LL);
	CHECK_INT(parse_us("2026-02-19T19:19:32.000001Z", NULL), 1771528772000001LL);
	CHECK_INT(parse_us("2026-02-19T19:19:32.12 00:00", NULL), 1771528772120000LL);
	CHECK_INT(parse_us("2026-02-19T19:19:32Z", NULL), 1771528772000000LL);
	CHECK_INT(parse_us("2026-02-19T19:19Z", NULL), 1771528740000000LL);
	CHECK_INT(parse_us("2026-02-19T19:19", NULL), 1771528740000000LL);
	CHECK_INT(parse_us("2026-02-19", NULL), 1771459200000000LL);
	/* An offset that crosses midnight and a month end. */
	CHECK_INT(parse_us("2026-03-01T00:30:00+01:00", NULL), 1772321400000000LL);
	/* Unix seconds (pydantic), and milliseconds above its watershed. */
	CHECK_INT(parse_us("1771528772", NULL), 1771528772000000LL);
	CHECK_INT(parse_us("0", NULL), 0);
	CHECK_INT(parse_us("1771528772123", NULL), 1771528772123000LL);
}

static void
test_calendar(void)
{
	CHECK_INT(parse_us("2024-02-29T00:00:00Z", NULL), 1709164800000000LL);
	CHECK_INT(parse_us("2000-02-29", NULL), 951782400000000LL);
	CHECK_INT(parse_us("1600-02-29T12:00:00Z", NULL), -11670955200000000LL);
	CHECK_INT(parse_us("1900-01-01T00:00:00Z", NULL), -2208988800000000LL);
	CHECK_INT(parse_us("1969-12-31T23:59:59.999999Z", NULL), -1);
	CHECK_INT(parse_us("1970-01-01T00:00:00Z", NULL), 0);
	CHECK_INT(parse_us("0001-01-01T00:00:00Z", NULL), -62135596800000000LL);
	CHECK_INT(parse_us("9999-12-31T23:59:59.999999Z", NULL), 253402300799999999LL);
	CHECK_INT(parse_us("2026-12-31T23:59:59Z", NULL), 1798761599000000LL);
	CHECK_INT(parse_us("2026-04-30", NULL), 1777507200000000LL);
}

static void
check_reject(const char *s, const char *want_why)
{
	const char *why = NULL;
	int64_t got = parse_us(s, &why);

	if (got != INT64_MIN)
		fprintf(stderr, "accepted: \"%s\"\n", s);
	CHECK_INT(got, INT64_MIN);
	CHECK(why != NULL && why[0] != '\0');
	if (want_why != NULL)
		CHECK_STR(why, want_why);
}

static void
test_rejections(void)
{
	const char *iso = "cursor time is not an ISO-8601 timestamp";
	const char *range = "cursor date or time is out of range";
	const char *idchars = "cursor id has invalid characters";
	char longid[200];

	check_reject("", NULL);
	check_reject("abc", iso);
	check_reject("yesterday", iso);
	check_reject("2026-02-19T19:19:32.1234567Z", "cursor time has more than 6 fraction digits");
	check_reject("2026-02-19T19:19:32.1234560", "cursor time has more than 6 fraction digits");
	check_reject("2026-13-01", range);
	check_reject("2026-00-10", range);
	check_reject("2026-01-00", range);
	check_reject("2026-04-31", range);
	check_reject("2023-02-29", range);
	check_reject("1900-02-29", range);
	check_reject("2026-02-19T24:00:00Z", range);
	check_reject("2026-02-19T19:60Z", range);
	check_reject("2026-02-19T19:19:60Z", range);
	check_reject("2026-02-19T19:19:32+24:00", "cursor time offset is out of range");
	check_reject("2026-02-19T19:19:32+01:60", "cursor time offset is out of range");
	check_reject("2026-02-19T19:19:32.Z", iso);
	check_reject("2026-02-19T19:19:32.12a", iso);
	check_reject("2026-02-19T19:19:32ZZ", iso);
	check_reject("2026-02-19T19:19:32Z ", iso);
	check_reject(" 2026-02-19T19:19:32Z", iso);
	/* Space-mangled offsets only in the one unambiguous shape. */
	check_reject("2026-02-19T19:19:32  00:00", iso);
	check_reject("2026-02-19T19:19:32 0000", iso);
	check_reject("2026-02-19T19:19:32 00", iso);
	check_reject("2026-02-19T19:19:32+0", iso);
	check_reject("2026-02-19T19:19:32+00:0", iso);
	check_reject("2026-02-19T19:19:32+00:", iso);
	check_reject("2026-02-19T19:19:32+000", iso);
	check_reject("2026-2-19", iso);
	check_reject("2026-02-19T", iso);
	check_reject("2026-02-19T19", iso);
	check_reject("2026-02-19T19:1", iso);
	check_reject("2026-02-19X19:19", iso);
	check_reject("20260219T191932Z", iso);
	check_reject("-1", iso);
	check_reject("1.5", iso);
	/* Outside years 0000-9999 after the offset is applied. */
	check_reject("0000-01-01T00:00:00+01:00", "cursor time is out of range");
	check_reject("9999-12-31T23:59:59-01:00", "cursor time is out of range");
	check_reject("99999999999999999999", "cursor Unix time is out of range");
	check_reject("999999999999999", "cursor Unix time is out of range");

	/* The id part. */
	check_reject("~abc", "cursor time is missing");
	check_reject("2026-02-19T19:19:32Z~", "cursor id is empty");
	check_reject("2026-02-19T19:19:32Z|", "cursor id is empty");
	check_reject("2026-02-19T19:19:32Z~a/b", idchars);
	check_reject("2026-02-19T19:19:32Z~a_b", idchars);
	check_reject("2026-02-19T19:19:32Z~a b", idchars);
	check_reject("2026-02-19T19:19:32Z~a%20b", idchars);
	check_reject("2026-02-19T19:19:32Z~a~b", idchars);
	check_reject("2026-02-19T19:19:32Z~a|b", idchars);
	check_reject("2026-02-19T19:19:32Z~\xc3\xa9", idchars);
	check_reject("2026-02-19T19:19:3x~abc", iso);
	memset(longid, 'a', sizeof(longid));
	memcpy(longid, "2026-02-19T19:19:32Z~", 21);
	longid[21 + CURSOR_ID_MAX + 1] = '\0';
	check_reject(longid, "cursor id is too long");
	longid[21 + CURSOR_ID_MAX] = '\0';
	CHECK_INT(parse_us(longid, NULL), 1771528772000000LL);
	CHECK_INT(strlen(parse_id(longid)), CURSOR_ID_MAX);

	/* An embedded NUL within len is not a terminator to skip over. */
	{
		cursor_t c;
		const char *why = NULL;

		CHECK_INT(cursor_parse("2026-02-19\0xyz", 14, &c, &why), -1);
		CHECK(why != NULL);
		CHECK_INT(cursor_parse(NULL, 0, &c, &why), -1);
	}
}

static void
test_ids(void)
{
	CHECK_STR(parse_id("2026-02-19T19:19:32.123456Z~graduated-0b7e1a2c-0000-4000-8000-"
	                   "000000000001"),
	          "graduated-0b7e1a2c-0000-4000-8000-000000000001");
	CHECK_STR(parse_id("2026-02-19T19:19:32.123456+00:00|thread-ABC-def-9"),
	          "thread-ABC-def-9");
	CHECK_STR(parse_id("2026-02-19T19:19:32.123456 00:00~x"), "x");
	CHECK_STR(parse_id("2026-02-19T19:19:32.123456Z"), "");
	CHECK_STR(parse_id("1771528772~feedback-resolved-a-b"), "feedback-resolved-a-b");
	CHECK_INT(parse_us("2026-02-19T20:19:32.123456+01:00~a-revision", NULL), T0);
}

static const char *
fmt(int64_t us, const char *id)
{
	static char out[CURSOR_TIME_MAX + CURSOR_ID_MAX + 2];
	cursor_t c = {.time_us = us};

	snprintf(c.id, sizeof(c.id), "%s", id);
	if (cursor_format(&c, out, sizeof(out)) != (int)strlen(out))
		return "(length mismatch)";
	return out;
}

static void
test_format(void)
{
	char small[40];
	cursor_t c = {.time_us = T0, .id = "abc"};

	CHECK_STR(fmt(T0, "graduated-0b7e"), "2026-02-19T19:19:32.123456Z~graduated-0b7e");
	CHECK_STR(fmt(1771528772000000LL, "x"), "2026-02-19T19:19:32Z~x");
	CHECK_STR(fmt(T0, ""), "2026-02-19T19:19:32.123456Z");
	CHECK_STR(fmt(-1, "a"), "1969-12-31T23:59:59.999999Z~a");
	CHECK_STR(fmt(-2208988800000000LL, "a"), "1900-01-01T00:00:00Z~a");

	/* Too small a buffer is an error, never a truncated cursor. */
	CHECK_INT(cursor_format(&c, small, 24), -1);
	CHECK_INT(cursor_format(&c, small, 28), -1);
	{
		char exact[32];

		CHECK_INT(cursor_format(&c, exact, 32), 31);
		CHECK_STR(exact, "2026-02-19T19:19:32.123456Z~abc");
		CHECK_INT(cursor_format(&c, exact, 31), -1);
	}

	{
		char t[CURSOR_TIME_MAX];

		CHECK_INT(cursor_format_time(T0, false, t, sizeof(t)), 32);
		CHECK_STR(t, "2026-02-19T19:19:32.123456+00:00");
		CHECK_INT(cursor_format_time(0, true, t, sizeof(t)), 20);
		CHECK_STR(t, "1970-01-01T00:00:00Z");
		CHECK_INT(cursor_format_time(INT64_MIN, true, t, sizeof(t)), -1);
		CHECK_INT(cursor_format_time(INT64_MAX, true, t, sizeof(t)), -1);
	}
}

static void
test_round_trip(void)
{
	static const int64_t times[] = {
	        0,
	        1,
	        -1,
	        T0,
	        1771528772000000LL,
	        1771528772100000LL,
	        -2208988800000001LL,
	        951782400000000LL,
	        -62135596800000000LL,
	        253402300799999999LL,
	        86399999999LL,
	};
	static const char *const ids[] = {"", "a", "thread-0b7e-1", "x-revision"};

	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		for (size_t j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
			char out[CURSOR_TIME_MAX + CURSOR_ID_MAX + 2];
			cursor_t c = {.time_us = times[i]}, back;
			const char *why;
			int n;

			snprintf(c.id, sizeof(c.id), "%s", ids[j]);
			n = cursor_format(&c, out, sizeof(out));
			CHECK(n > 0);
			CHECK_INT(cursor_parse(out, (size_t)n, &back, &why), 0);
			CHECK_INT(back.time_us, times[i]);
			CHECK_STR(back.id, ids[j]);
		}
	}
	/* parse -> format gives the canonical form. */
	{
		cursor_t c;
		const char *why;
		char out[80];
		const char *in = "2026-02-19 20:19:32.1 01:00|thread-a";

		CHECK_INT(cursor_parse(in, strlen(in), &c, &why), 0);
		CHECK(cursor_format(&c, out, sizeof(out)) > 0);
		CHECK_STR(out, "2026-02-19T19:19:32.100000Z~thread-a");
	}
	/* len bounds the input: the rest of the buffer is not read. */
	{
		cursor_t c;
		const char *why;

		CHECK_INT(cursor_parse("2026-02-19T19:19:32Z~abcGARBAGE/", 24, &c, &why), 0);
		CHECK_STR(c.id, "abc");
	}
}

static void
test_parse_i64(void)
{
	int64_t v = 7;

	CHECK_INT(cursor_parse_i64("0", &v), 0);
	CHECK_INT(v, 0);
	CHECK_INT(cursor_parse_i64("-0", &v), 0);
	CHECK_INT(v, 0);
	CHECK_INT(cursor_parse_i64("1771528772123456", &v), 0);
	CHECK_INT(v, 1771528772123456LL);
	CHECK_INT(cursor_parse_i64("-62135596800000000", &v), 0);
	CHECK_INT(v, -62135596800000000LL);
	CHECK_INT(cursor_parse_i64("9223372036854775807", &v), 0);
	CHECK_INT(v, INT64_MAX);
	CHECK_INT(cursor_parse_i64("-9223372036854775808", &v), 0);
	CHECK_INT(v, INT64_MIN);
	v = 7;
	CHECK_INT(cursor_parse_i64("9223372036854775808", &v), -1);
	CHECK_INT(cursor_parse_i64("-9223372036854775809", &v), -1);
	CHECK_INT(cursor_parse_i64("99999999999999999999", &v), -1);
	CHECK_INT(cursor_parse_i64("", &v), -1);
	CHECK_INT(cursor_parse_i64("-", &v), -1);
	CHECK_INT(cursor_parse_i64("+1", &v), -1);
	CHECK_INT(cursor_parse_i64(" 1", &v), -1);
	CHECK_INT(cursor_parse_i64("1 ", &v), -1);
	CHECK_INT(cursor_parse_i64("1e3", &v), -1);
	CHECK_INT(cursor_parse_i64(NULL, &v), -1);
	CHECK_INT(v, 7);
}

int
main(void)
{
	RUN(test_time_forms);
	RUN(test_calendar);
	RUN(test_rejections);
	RUN(test_ids);
	RUN(test_format);
	RUN(test_round_trip);
	RUN(test_parse_i64);
	return unit_done();
}

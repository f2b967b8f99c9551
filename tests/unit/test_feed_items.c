/* Unit tests for src/feed_items.c. */
#include "unit.h"

#include <stdlib.h>

#include "feed_items.h"

/* Serialises o exactly as items are served (via feed_item_finish) into a
 * static buffer; "(null)" stands for a NULL object. */
static const char *
text(json_object *o)
{
	static char out[4096];
	feed_item_t it = {0};

	if (o == NULL)
		return "(null)";
	if (feed_item_finish(&it, o) < 0)
		return "(finish failed)";
	if (it.json_len != strlen(it.json))
		return "(json_len wrong)";
	snprintf(out, sizeof(out), "%s", it.json);
	feed_item_clear(&it);
	return out;
}

static void
test_time(void)
{
	CHECK_STR(text(feed_json_time("0")), "\"1970-01-01T00:00:00+00:00\"");
	CHECK_STR(text(feed_json_time("1")), "\"1970-01-01T00:00:00.000001+00:00\"");
	CHECK_STR(text(feed_json_time("1771528772123456")), "\"2026-02-19T19:19:32.123456+00:00\"");
	/* A zero fraction is omitted entirely, like Python's isoformat(). */
	CHECK_STR(text(feed_json_time("1771528772000000")), "\"2026-02-19T19:19:32+00:00\"");
	CHECK_STR(text(feed_json_time("1771528772100000")), "\"2026-02-19T19:19:32.100000+00:00\"");
	/* Before 1970: floor division, the fraction stays positive. */
	CHECK_STR(text(feed_json_time("-1")), "\"1969-12-31T23:59:59.999999+00:00\"");
	CHECK_STR(text(feed_json_time("-86400000001")), "\"1969-12-30T23:59:59.999999+00:00\"");
	CHECK_STR(text(feed_json_time("-86400000000")), "\"1969-12-31T00:00:00+00:00\"");
	CHECK_STR(text(feed_json_time("951782400000000")), "\"2000-02-29T00:00:00+00:00\"");
	CHECK_STR(text(feed_json_time("-62135596800000000")), "\"0001-01-01T00:00:00+00:00\"");
	CHECK_STR(text(feed_json_time("253402300799999999")),
	          "\"9999-12-31T23:59:59.999999+00:00\"");
	/* Beyond year 9999 there is no four-digit text: null, not garbage. */
	CHECK(feed_json_time("253402300800000000") == NULL);
	CHECK(feed_json_time(NULL) == NULL);
	CHECK(feed_json_time("") == NULL);
	CHECK(feed_json_time("12x") == NULL);
	CHECK(feed_json_time("1.5") == NULL);
}

static void
test_truncated(void)
{
	CHECK_STR(text(feed_json_truncated("abc", 3)), "\"abc\"");
	CHECK_STR(text(feed_json_truncated("abcd", 3)), "\"abc...\"");
	CHECK_STR(text(feed_json_truncated("abcde", 3)), "\"abc...\"");
	CHECK_STR(text(feed_json_truncated("ab", 3)), "\"ab\"");
	CHECK_STR(text(feed_json_truncated("", 3)), "\"\"");
	CHECK_STR(text(feed_json_truncated("", 0)), "\"\"");
	CHECK_STR(text(feed_json_truncated("a", 0)), "\"...\"");
	/* Code points, not bytes: "héllo" is 5 code points, 6 bytes. */
	CHECK_STR(text(feed_json_truncated("h\xc3\xa9llo", 5)), "\"h\xc3\xa9llo\"");
	CHECK_STR(text(feed_json_truncated("h\xc3\xa9llo", 4)), "\"h\xc3\xa9ll...\"");
	CHECK_STR(text(feed_json_truncated("h\xc3\xa9llo", 2)), "\"h\xc3\xa9...\"");
	CHECK_STR(text(feed_json_truncated("h\xc3\xa9llo", 1)), "\"h...\"");
	/* Three-byte (CJK) and four-byte (emoji) sequences. */
	CHECK_STR(text(feed_json_truncated("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 3)),
	          "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"");
	CHECK_STR(text(feed_json_truncated("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 2)),
	          "\"\xe6\x97\xa5\xe6\x9c\xac...\"");
	CHECK_STR(text(feed_json_truncated("\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80x", 2)),
	          "\"\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80...\"");
	CHECK_STR(text(feed_json_truncated("\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80x", 1)),
	          "\"\xf0\x9f\x9a\x80...\"");
	/* Invalid bytes count one each; an incomplete sequence is not swallowed. */
	CHECK_STR(text(feed_json_truncated("\xff\xfe"
	                                   "ab",
	                                   2)),
	          "\"\xff\xfe...\"");
	CHECK_STR(text(feed_json_truncated("\xe6\x97"
	                                   "ab",
	                                   2)),
	          "\"\xe6\x97...\"");
	CHECK_STR(text(feed_json_truncated("\xe6\x97", 2)), "\"\xe6\x97\"");
	CHECK_STR(text(feed_json_truncated("\xe6\x97", 1)), "\"\xe6...\"");
	/* Overlong and surrogate encodings are invalid, hence byte by byte. */
	CHECK_STR(text(feed_json_truncated("\xc0\xaf"
	                                   "x",
	                                   1)),
	          "\"\xc0...\"");
	CHECK_STR(text(feed_json_truncated("\xed\xa0\x80", 1)), "\"\xed...\"");
	CHECK(feed_json_truncated(NULL, 5) == NULL);

	/* Exactly N, N+1 code points at a realistic length (200 like proposals). */
	{
		char s[260];

		memset(s, 'x', 201);
		s[200] = '\0';
		CHECK_INT(strlen(text(feed_json_truncated(s, 200))), 202);
		s[200] = 'y';
		s[201] = '\0';
		CHECK_INT(strlen(text(feed_json_truncated(s, 200))), 205);
		CHECK(strstr(text(feed_json_truncated(s, 200)), "xxx...\"") != NULL);
		CHECK(strchr(text(feed_json_truncated(s, 200)), 'y') == NULL);
	}
}

static void
test_scalars(void)
{
	CHECK_STR(text(feed_json_int_or_null("42")), "42");
	CHECK_STR(text(feed_json_int_or_null("-7")), "-7");
	CHECK_STR(text(feed_json_int_or_null("0")), "0");
	CHECK_STR(text(feed_json_int_or_null("9223372036854775807")), "9223372036854775807");
	CHECK_STR(text(feed_json_int_or_null("-9223372036854775808")), "-9223372036854775808");
	CHECK(feed_json_int_or_null("9223372036854775808") == NULL);
	CHECK(feed_json_int_or_null("1.5") == NULL);
	CHECK(feed_json_int_or_null("") == NULL);
	CHECK(feed_json_int_or_null(" 1") == NULL);
	CHECK(feed_json_int_or_null("-") == NULL);
	CHECK(feed_json_int_or_null(NULL) == NULL);

	CHECK_STR(text(feed_json_bool_or_null("t")), "true");
	CHECK_STR(text(feed_json_bool_or_null("f")), "false");
	CHECK(feed_json_bool_or_null("x") == NULL);
	CHECK(feed_json_bool_or_null(NULL) == NULL);

	CHECK_STR(text(feed_json_string_or_null("plain")), "\"plain\"");
	CHECK(feed_json_string_or_null(NULL) == NULL);
	/* "/" is not escaped; UTF-8 passes through; controls and quotes are. */
	CHECK_STR(text(feed_json_string_or_null("https://x.example/a/b.png")),
	          "\"https://x.example/a/b.png\"");
	CHECK_STR(text(feed_json_string_or_null("caf\xc3\xa9 \xe6\x97\xa5")),
	          "\"caf\xc3\xa9 \xe6\x97\xa5\"");
	CHECK_STR(text(feed_json_string_or_null("a\"b\\c\nd\te")), "\"a\\\"b\\\\c\\nd\\te\"");

	CHECK_STR(text(feed_json_enum("THIRD_PERSON_LIMITED")), "\"third_person_limited\"");
	CHECK_STR(text(feed_json_enum("APPROVE")), "\"approve\"");
	CHECK_STR(text(feed_json_enum("already_low")), "\"already_low\"");
	CHECK_STR(text(feed_json_enum("")), "\"\"");
	CHECK(feed_json_enum(NULL) == NULL);
}

static void
test_refs(void)
{
	CHECK_STR(text(feed_json_agent_ref("u1", "bob", "Bob B")),
	          "{\"id\":\"u1\",\"username\":\"@bob\",\"name\":\"Bob B\"}");
	CHECK_STR(text(feed_json_agent_ref("u1", "bob", NULL)),
	          "{\"id\":\"u1\",\"username\":\"@bob\",\"name\":null}");
	CHECK_STR(text(feed_json_agent_ref("u1", "", "n")),
	          "{\"id\":\"u1\",\"username\":\"@\",\"name\":\"n\"}");
	CHECK(feed_json_agent_ref(NULL, "bob", "Bob") == NULL);

	CHECK_STR(text(feed_json_world_ref("w1", "Mars/2", "2089")),
	          "{\"id\":\"w1\",\"name\":\"Mars/2\",\"year_setting\":2089}");
	CHECK_STR(text(feed_json_world_ref("w1", NULL, NULL)),
	          "{\"id\":\"w1\",\"name\":null,\"year_setting\":null}");
	CHECK(feed_json_world_ref(NULL, "x", "1") == NULL);

	CHECK_STR(text(feed_json_dweller_ref("d1", "Ann", "pilot")),
	          "{\"id\":\"d1\",\"name\":\"Ann\",\"role\":\"pilot\"}");
	CHECK(feed_json_dweller_ref(NULL, "Ann", "pilot") == NULL);

	/* A null reference inside an object is written as JSON null. */
	{
		json_object *o = json_object_new_object();

		json_object_object_add(o, "agent", feed_json_agent_ref(NULL, NULL, NULL));
		json_object_object_add(o, "world", feed_json_world_ref(NULL, NULL, NULL));
		CHECK_STR(text(o), "{\"agent\":null,\"world\":null}");
	}
}

static void
test_parse(void)
{
	CHECK_STR(text(feed_json_parse("{\"a\": [1, 2.50], \"b\": null, \"u\": \"x/y\"}")),
	          "{\"a\":[1,2.50],\"b\":null,\"u\":\"x/y\"}");
	CHECK_STR(text(feed_json_parse("123")), "123");
	CHECK_STR(text(feed_json_parse(" [] ")), "[]");
	CHECK_STR(text(feed_json_parse("\"\xc3\xa9\"")), "\"\xc3\xa9\"");
	CHECK(feed_json_parse("null") == NULL);
	CHECK(feed_json_parse(NULL) == NULL);
	CHECK(feed_json_parse("") == NULL);
	CHECK(feed_json_parse("[1,") == NULL);
	CHECK(feed_json_parse("1 2") == NULL);
	CHECK(feed_json_parse("{\"a\":1} x") == NULL);
}

static void
test_begin_and_finish(void)
{
	feed_item_t it = {0};
	json_object *o;

	o = feed_item_begin("world_created", 1771528772123456LL, "0b7e-1", 1771528772000000LL);
	json_object_object_add(o, "world", NULL);
	it.sort_us = 1771528772123456LL;
	it.id = strdup("0b7e-1");
	CHECK_INT(feed_item_finish(&it, o), 0);
	CHECK_STR(it.json, "{\"type\":\"world_created\","
	                   "\"sort_date\":\"2026-02-19T19:19:32.123456+00:00\","
	                   "\"id\":\"0b7e-1\","
	                   "\"created_at\":\"2026-02-19T19:19:32+00:00\","
	                   "\"world\":null}");
	CHECK_INT(it.json_len, strlen(it.json));
	feed_item_clear(&it);
	CHECK(it.json == NULL && it.id == NULL && it.json_len == 0);
	/* Clearing twice is harmless (error paths may do it). */
	feed_item_clear(&it);

	CHECK_INT(feed_item_finish(&it, NULL), -1);
}

static int
sign(int v)
{
	return (v > 0) - (v < 0);
}

static void
test_cmp(void)
{
	feed_item_t a = {.sort_us = 2, .id = "a"}, b = {.sort_us = 1, .id = "z"};
	feed_item_t c = {.sort_us = 2, .id = "b"}, d = {.sort_us = 2, .id = "b"};
	feed_item_t hi = {.sort_us = 2, .id = "\xc3\xa9"}, pre = {.sort_us = 2, .id = "bb"};
	feed_item_t neg = {.sort_us = -5, .id = "a"};

	/* Newer first, whatever the ids. */
	CHECK(feed_item_cmp(&a, &b) < 0);
	CHECK(feed_item_cmp(&b, &a) > 0);
	/* Same time: larger id first. */
	CHECK(feed_item_cmp(&c, &a) < 0);
	CHECK(feed_item_cmp(&a, &c) > 0);
	CHECK_INT(feed_item_cmp(&c, &d), 0);
	/* Bytes, unsigned: 0xc3 sorts above every ASCII letter (COLLATE "C"). */
	CHECK(feed_item_cmp(&hi, &c) < 0);
	/* A longer id with the same prefix is larger. */
	CHECK(feed_item_cmp(&pre, &c) < 0);
	CHECK(feed_item_cmp(&b, &neg) < 0);
	CHECK_INT(sign(feed_item_cmp(&a, &hi)), -sign(feed_item_cmp(&hi, &a)));
	/* Extreme times must not overflow a subtraction. */
	{
		feed_item_t lo = {.sort_us = INT64_MIN, .id = "a"};
		feed_item_t top = {.sort_us = INT64_MAX, .id = "a"};

		CHECK(feed_item_cmp(&top, &lo) < 0);
		CHECK(feed_item_cmp(&lo, &top) > 0);
	}
}

int
main(void)
{
	RUN(test_time);
	RUN(test_truncated);
	RUN(test_scalars);
	RUN(test_refs);
	RUN(test_parse);
	RUN(test_begin_and_finish);
	RUN(test_cmp);
	return unit_done();
}

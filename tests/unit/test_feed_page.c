/* Unit tests for src/feed_page.c. */
#include "unit.h"

#include <json-c/json.h>
#include <stdlib.h>

#include "cursor.h"
#include "feed_page.h"

static feed_item_t
mk(int64_t us, const char *id)
{
	feed_item_t it = {.sort_us = us, .id = strdup(id)};
	char buf[256];

	snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"t\":%lld}", id, (long long)us);
	it.json = strdup(buf);
	it.json_len = strlen(buf);
	return it;
}

/* Adds one source given as (time, id) pairs. */
static int
add(feed_page_t *p, size_t n, const int64_t *t, const char *const *ids)
{
	feed_item_t items[64];
	int rc;

	for (size_t i = 0; i < n; i++)
		items[i] = mk(t[i], ids[i]);
	rc = feed_page_add(p, items, n);
	/* Ownership moved: the caller's slots are emptied. */
	for (size_t i = 0; i < n; i++)
		CHECK(items[i].id == NULL && items[i].json == NULL);
	return rc;
}

/* "id,id,..." of a JSON array text (a page's items or streamed batches). */
static const char *
ids_of(const char *array_text)
{
	static char out[8192];
	json_object *a = json_tokener_parse(array_text);
	size_t o = 0;

	out[0] = '\0';
	if (a == NULL || !json_object_is_type(a, json_type_array)) {
		json_object_put(a);
		return "(not an array)";
	}
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *id;

		if (!json_object_object_get_ex(json_object_array_get_idx(a, i), "id", &id))
			continue;
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", i ? "," : "",
		                      json_object_get_string(id));
	}
	json_object_put(a);
	return out;
}

static const char *
take(feed_page_t *p, size_t *count)
{
	static char out[8192];
	buf_t b = BUF_INIT;
	size_t n = feed_page_take_new(p, &b);

	snprintf(out, sizeof(out), "[%s]", b.len ? b.data : "");
	buf_free(&b);
	if (count)
		*count = n;
	return ids_of(out);
}

typedef struct finished {
	char body[8192];
	char items[8192];
	char ids[8192];
	char cursor[256]; /* "" when next_cursor is null */
	int nitems;
	int rc;
} finished_t;

static finished_t fin;

static void
finish(feed_page_t *p)
{
	buf_t b = BUF_INIT;
	size_t end = 0;
	json_object *o, *nc, *items;

	memset(&fin, 0, sizeof(fin));
	fin.nitems = -1;
	fin.rc = feed_page_finish(p, &b, &end, &fin.nitems);
	if (fin.rc < 0) {
		buf_free(&b);
		return;
	}
	snprintf(fin.body, sizeof(fin.body), "%s", b.data);
	CHECK(end > 0 && end <= b.len && b.data[end - 1] == ']');
	CHECK(strncmp(b.data, "{\"items\":[", 10) == 0);
	snprintf(fin.items, sizeof(fin.items), "%.*s", (int)(end - 9), b.data + 9);
	o = json_tokener_parse(b.data);
	CHECK(o != NULL);
	if (o && json_object_object_get_ex(o, "next_cursor", &nc) && nc != NULL)
		snprintf(fin.cursor, sizeof(fin.cursor), "%s", json_object_get_string(nc));
	if (o && json_object_object_get_ex(o, "items", &items))
		CHECK_INT(json_object_array_length(items), fin.nitems);
	json_object_put(o);
	snprintf(fin.ids, sizeof(fin.ids), "%s", ids_of(fin.items));
	buf_free(&b);
}

static void
test_empty(void)
{
	feed_page_t *p = feed_page_new(20);
	size_t n = 99;

	CHECK(p != NULL);
	CHECK_INT(feed_page_add(p, NULL, 0), 0);
	CHECK_STR(take(p, &n), "");
	CHECK_INT(n, 0);
	finish(p);
	CHECK_INT(fin.rc, 0);
	CHECK_STR(fin.body, "{\"items\":[],\"next_cursor\":null}");
	CHECK_INT(fin.nitems, 0);
	feed_page_free(p);

	CHECK(feed_page_new(0) == NULL);
	CHECK(feed_page_new(-1) == NULL);
	feed_page_free(NULL);
}

static void
test_merge_order(void)
{
	feed_page_t *p = feed_page_new(10);
	/* Source A out of order on purpose: the page must not rely on it. */
	static const int64_t ta[] = {5, 10};
	static const char *const ia[] = {"a-1", "b"};
	static const int64_t tb[] = {10, 10, 7, -3};
	static const char *const ib[] = {"c", "a", "z", "old"};
	/* Bytes: "a" is a prefix of "a-1", so "a-1" is larger and comes first. */
	static const int64_t tc[] = {10, 5};
	static const char *const ic[] = {"a-1", "a"};

	CHECK_INT(add(p, 2, ta, ia), 0);
	CHECK_INT(add(p, 4, tb, ib), 0);
	CHECK_INT(add(p, 2, tc, ic), 0);
	finish(p);
	CHECK_INT(fin.rc, 0);
	CHECK_STR(fin.ids, "c,b,a-1,a,z,a-1,a,old");
	CHECK_INT(fin.nitems, 8);
	CHECK_STR(fin.cursor, "");
	CHECK(strstr(fin.body, ",\"next_cursor\":null}") != NULL);
	feed_page_free(p);

	/* Unsigned bytes: an id with a byte >= 0x80 is larger than ASCII. */
	p = feed_page_new(5);
	{
		static const int64_t t[] = {1, 1, 1};
		static const char *const i[] = {"z", "\xc3\xa9", "Z"};

		add(p, 3, t, i);
		finish(p);
		CHECK_STR(fin.ids, "\xc3\xa9,z,Z");
	}
	feed_page_free(p);
}

static void
test_next_cursor(void)
{
	static const int64_t t[] = {1771528772123456LL, 1771528772000000LL, 1771528772000000LL,
	                            1000};
	static const char *const ids[] = {"w-1", "thread-b", "thread-a", "x-revision"};
	feed_page_t *p;

	/* Exactly limit items: no next page. */
	p = feed_page_new(3);
	add(p, 3, t, ids);
	finish(p);
	CHECK_INT(fin.nitems, 3);
	CHECK_STR(fin.cursor, "");
	feed_page_free(p);

	/* limit + 1: the cursor of the limit-th item, in the Z~id form. */
	p = feed_page_new(3);
	add(p, 2, t, ids);
	add(p, 2, t + 2, ids + 2);
	finish(p);
	CHECK_INT(fin.nitems, 3);
	CHECK_STR(fin.ids, "w-1,thread-b,thread-a");
	CHECK_STR(fin.cursor, "2026-02-19T19:19:32Z~thread-a");
	CHECK(strstr(fin.body, "],\"next_cursor\":\"2026-02-19T19:19:32Z~thread-a\"}") != NULL);
	feed_page_free(p);

	/* limit 1 and a fraction in the cursor time. */
	p = feed_page_new(1);
	add(p, 4, t, ids);
	finish(p);
	CHECK_STR(fin.ids, "w-1");
	CHECK_STR(fin.cursor, "2026-02-19T19:19:32.123456Z~w-1");
	feed_page_free(p);

	/* An id no cursor can carry is an error, not a broken walk. */
	p = feed_page_new(1);
	{
		static const int64_t tt[] = {5, 4};
		static const char *const bad[] = {"has/slash", "a"};

		add(p, 2, tt, bad);
		finish(p);
		CHECK_INT(fin.rc, -1);
	}
	feed_page_free(p);
}

static void
test_items_end_offset(void)
{
	feed_page_t *p = feed_page_new(2);
	static const int64_t t[] = {3, 2, 1};
	static const char *const ids[] = {"c", "b", "a"};
	buf_t b = BUF_INIT;
	size_t end = 0;
	int n = 0;

	add(p, 3, t, ids);
	/* The body may follow earlier bytes (an SSE prefix): offsets are absolute. */
	buf_append_str(&b, "data: ");
	CHECK_INT(feed_page_finish(p, &b, &end, &n), 0);
	CHECK_INT(n, 2);
	CHECK_STR(b.data, "data: {\"items\":[{\"id\":\"c\",\"t\":3},{\"id\":\"b\",\"t\":2}],"
	                  "\"next_cursor\":\"1970-01-01T00:00:00.000002Z~b\"}");
	CHECK_INT(end, strlen("data: {\"items\":[{\"id\":\"c\",\"t\":3},{\"id\":\"b\",\"t\":2}]"));
	buf_free(&b);
	feed_page_free(p);
}

static void
test_duplicates_and_bad_items(void)
{
	feed_page_t *p = feed_page_new(5);
	static const int64_t t[] = {3, 3, 2};
	static const char *const ids[] = {"x", "x", "y"};
	feed_item_t bad[2] = {{.sort_us = 9, .id = strdup("noj")}, {.sort_us = 9}};

	add(p, 3, t, ids);
	add(p, 1, t, ids); /* the same item from another source */
	CHECK_INT(feed_page_add(p, bad, 2), 0);
	CHECK(bad[0].id == NULL);
	finish(p);
	CHECK_STR(fin.ids, "x,y");
	CHECK_INT(fin.nitems, 2);
	feed_page_free(p);
}

static void
test_take_new(void)
{
	feed_page_t *p = feed_page_new(2);
	static const int64_t ta[] = {10, 9, 8};
	static const char *const ia[] = {"a10", "a9", "a8"};
	static const int64_t tb[] = {7};
	static const char *const ib[] = {"b7"};
	static const int64_t tc[] = {9, 1};
	static const char *const ic[] = {"c9", "c1"};
	static const int64_t td[] = {11};
	static const char *const id[] = {"d11"};
	size_t n;

	add(p, 3, ta, ia);
	/* a8 already has 2 newer known items: it can never make the page. */
	CHECK_STR(take(p, &n), "a10,a9");
	CHECK_INT(n, 2);
	CHECK_STR(take(p, &n), "");
	CHECK_INT(n, 0);
	add(p, 1, tb, ib);
	CHECK_STR(take(p, &n), "");
	/* c9 ties a9 on time and wins on id bytes ("c9" > "a9"). */
	add(p, 2, tc, ic);
	CHECK_STR(take(p, &n), "c9");
	CHECK_INT(n, 1);
	add(p, 1, td, id);
	CHECK_STR(take(p, &n), "d11");
	finish(p);
	CHECK_STR(fin.ids, "d11,a10");
	CHECK_STR(fin.cursor, "1970-01-01T00:00:00.000010Z~a10");
	feed_page_free(p);
}

/* ---- randomised: the page and the stream against a brute-force reference ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

typedef struct ref {
	int64_t t;
	char id[32];
} ref_t;

static int
ref_cmp(const void *a, const void *b)
{
	const ref_t *x = a, *y = b;
	int c;

	if (x->t != y->t)
		return x->t > y->t ? -1 : 1;
	c = strcmp(x->id, y->id);
	return c > 0 ? -1 : c < 0;
}

static int
item_cmp(const void *a, const void *b)
{
	return feed_item_cmp(a, b);
}

/* skip_settled: as feed_fetch does, each source in the total order and cut
 * at its first item feed_page_settled_before says cannot make the page;
 * the page must come out the same. */
static void
one_round(int limit, int nsources, int maxper, bool skip_settled)
{
	ref_t all[15 * 51], streamed[15 * 51];
	size_t nall = 0, nstreamed = 0, nkept = 0;
	feed_page_t *p = feed_page_new(limit);
	char want[8192] = "", got[8192] = "";
	size_t o = 0;

	for (int s = 0; s < nsources; s++) {
		feed_item_t items[51];
		size_t n = rnd((uint32_t)maxper + 1);
		buf_t b = BUF_INIT;
		json_object *arr;
		char *text;

		for (size_t i = 0; i < n; i++) {
			ref_t *r = &all[nall++];

			/* Few distinct times: many ties broken by id. */
			r->t = (int64_t)rnd(8) * 1000 - 2000;
			snprintf(r->id, sizeof(r->id), "s%02d-%c%u", s, 'a' + (int)rnd(26),
			         (unsigned)i);
			items[i] = mk(r->t, r->id);
		}
		if (skip_settled) {
			qsort(items, n, sizeof(items[0]), item_cmp);
			for (size_t i = 0; i < n; i++) {
				if (feed_page_settled_before(p, items[i].sort_us)) {
					for (size_t j = i; j < n; j++)
						feed_item_clear(&items[j]);
					n = i;
					break;
				}
			}
		}
		CHECK_INT(feed_page_add(p, items, n), 0);
		feed_page_take_new(p, &b);
		if (asprintf(&text, "[%s]", b.len ? b.data : "") < 0)
			abort();
		arr = json_tokener_parse(text);
		CHECK(arr != NULL);
		for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
			json_object *it = json_object_array_get_idx(arr, i), *v;
			ref_t *r = &streamed[nstreamed++];

			json_object_object_get_ex(it, "id", &v);
			snprintf(r->id, sizeof(r->id), "%s", json_object_get_string(v));
			json_object_object_get_ex(it, "t", &v);
			r->t = json_object_get_int64(v);
			/* Within a batch: the total order. */
			if (i > 0)
				CHECK(ref_cmp(&streamed[nstreamed - 2], r) < 0);
		}
		json_object_put(arr);
		free(text);
		buf_free(&b);
	}
	finish(p);
	CHECK_INT(fin.rc, 0);
	qsort(all, nall, sizeof(all[0]), ref_cmp);
	for (size_t i = 0; i < nall && i < (size_t)limit; i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%s", i ? "," : "", all[i].id);
	CHECK_STR(fin.ids, want);
	CHECK_INT(fin.nitems, nall < (size_t)limit ? nall : (size_t)limit);
	if (nall > (size_t)limit) {
		char c[256];
		cursor_t cur = {.time_us = all[limit - 1].t};

		snprintf(cur.id, sizeof(cur.id), "%s", all[limit - 1].id);
		cursor_format(&cur, c, sizeof(c));
		CHECK_STR(fin.cursor, c);
	} else {
		CHECK_STR(fin.cursor, "");
	}

	/* The client's view: streamed items, minus those after next_cursor,
	 * sorted, are exactly the page; nothing streamed twice. */
	if (fin.cursor[0] != '\0') {
		cursor_t cur;
		const char *why;

		CHECK_INT(cursor_parse(fin.cursor, strlen(fin.cursor), &cur, &why), 0);
		for (size_t i = 0; i < nstreamed; i++)
			if (streamed[i].t > cur.time_us ||
			    (streamed[i].t == cur.time_us && strcmp(streamed[i].id, cur.id) >= 0))
				streamed[nkept++] = streamed[i];
	} else {
		nkept = nstreamed;
	}
	qsort(streamed, nkept, sizeof(streamed[0]), ref_cmp);
	o = 0;
	for (size_t i = 0; i < nkept; i++) {
		if (i > 0)
			CHECK(ref_cmp(&streamed[i - 1], &streamed[i]) != 0);
		o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s", i ? "," : "",
		                      streamed[i].id);
	}
	CHECK_STR(got, want);
	feed_page_free(p);
}

static void
test_settled_before(void)
{
	feed_page_t *p = feed_page_new(2);
	const int64_t t[] = { 300, 200, 200 };
	const char *ids[] = { "c", "b", "a" };

	/* Not full (limit + 1 = 3 items): anything can still come in. */
	CHECK(!feed_page_settled_before(p, -1000));
	CHECK_INT(add(p, 2, t, ids), 0);
	CHECK(!feed_page_settled_before(p, 100));
	CHECK_INT(add(p, 1, t + 2, ids + 2), 0);
	/* Full: only strictly older than the last kept item is settled; a tie
	 * on time may still win on its id. */
	CHECK(feed_page_settled_before(p, 199));
	CHECK(!feed_page_settled_before(p, 200));
	CHECK(!feed_page_settled_before(p, 250));
	feed_page_free(p);
}

static void
test_randomised(void)
{
	for (int round = 0; round < 300; round++) {
		int limit = 1 + (int)rnd(50);

		one_round(limit, 1 + (int)rnd(15), limit + 1, round % 2 == 1);
	}
	/* Full size: 15 sources of limit + 1. */
	for (int round = 0; round < 20; round++)
		one_round(50, 15, 51, round % 2 == 1);
	one_round(20, 15, 0, false);
}

int
main(void)
{
	RUN(test_empty);
	RUN(test_merge_order);
	RUN(test_next_cursor);
	RUN(test_items_end_offset);
	RUN(test_duplicates_and_bad_items);
	RUN(test_take_new);
	RUN(test_settled_before);
	RUN(test_randomised);
	return unit_done();
}

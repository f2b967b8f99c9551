/* Unit tests for src/buf.c. */
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "unit.h"

/* Under ASan a huge malloc aborts instead of returning NULL; the
 * out-of-memory path is exactly what test_reserve wants to see. */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

static void
test_empty(void)
{
	buf_t b = BUF_INIT;

	CHECK(b.data == NULL);
	CHECK_INT(buf_append(&b, "", 0), 0);
	CHECK(b.data != NULL);
	CHECK_INT(b.len, 0);
	CHECK(b.cap > 0);
	CHECK_STR(b.data, "");
	buf_free(&b);
	CHECK(b.data == NULL);
	CHECK_INT(b.cap, 0);
	CHECK_INT(b.len, 0);
}

static void
test_append(void)
{
	buf_t b = BUF_INIT;

	CHECK_INT(buf_append_str(&b, "hello"), 0);
	CHECK_INT(buf_append(&b, ", world", 7), 0);
	CHECK_STR(b.data, "hello, world");
	CHECK_INT(b.len, 12);
	/* Embedded NUL bytes are data like any other. */
	CHECK_INT(buf_append(&b, "a\0b", 3), 0);
	CHECK_INT(b.len, 15);
	CHECK(memcmp(b.data + 12, "a\0b", 4) == 0);
	buf_free(&b);
}

/* Capacity at least doubles, so n appends cost O(n) copies; and the data
 * stays intact and terminated through every realloc. */
static void
test_growth(void)
{
	buf_t b = BUF_INIT;
	size_t i, grows = 0, cap = 0;
	int ok = 1;

	for (i = 0; i < 100000; i++) {
		char c = (char)('a' + i % 26);

		if (buf_append(&b, &c, 1) < 0) {
			ok = 0;
			break;
		}
		if (b.cap != cap) {
			CHECK(cap == 0 || b.cap >= 2 * cap);
			cap = b.cap;
			grows++;
		}
		if (b.data[b.len] != '\0')
			ok = 0;
	}
	CHECK(ok);
	CHECK_INT(b.len, 100000);
	CHECK(b.cap > b.len);
	CHECK(grows < 20);
	for (i = 0; i < b.len; i++) {
		if (b.data[i] != (char)('a' + i % 26)) {
			ok = 0;
			break;
		}
	}
	CHECK(ok);
	buf_free(&b);
}

static void
test_reserve(void)
{
	buf_t b = BUF_INIT;
	char *before;
	size_t cap;

	CHECK_INT(buf_reserve(&b, 1000), 0);
	CHECK(b.cap >= 1001);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	CHECK_INT(buf_append_str(&b, "abc"), 0);

	/* Requests whose size overflows fail cleanly, buffer untouched. */
	before = b.data;
	cap = b.cap;
	CHECK_INT(buf_reserve(&b, SIZE_MAX), -1);
	CHECK_INT(buf_reserve(&b, SIZE_MAX - 3), -1);
	CHECK_INT(buf_reserve(&b, PTRDIFF_MAX), -1);
	CHECK_INT(buf_reserve(&b, PTRDIFF_MAX - 4), -1);
	/* Not an overflow, just more memory than exists: realloc fails. */
	CHECK_INT(buf_reserve(&b, (size_t)1 << 62), -1);
	CHECK_INT(buf_append(&b, "x", SIZE_MAX - 1), -1);
	CHECK(b.data == before);
	CHECK_INT(b.cap, cap);
	CHECK_INT(b.len, 3);
	CHECK_STR(b.data, "abc");
	buf_free(&b);
}

static void
test_printf(void)
{
	buf_t b = BUF_INIT;
	char *big;
	size_t i;
	int ok = 1;

	CHECK_INT(buf_printf(&b, "%d-%s", 42, "x"), 0);
	CHECK_STR(b.data, "42-x");
	CHECK_INT(buf_printf(&b, "%s", ""), 0);
	CHECK_STR(b.data, "42-x");
	CHECK_INT(b.len, 4);

	/* Longer than the free space: the second formatting pass. */
	big = malloc(10001);
	CHECK(big != NULL);
	if (big == NULL)
		return;
	memset(big, 'z', 10000);
	big[10000] = '\0';
	CHECK_INT(buf_printf(&b, "[%s]", big), 0);
	CHECK_INT(b.len, 4 + 10002);
	CHECK(memcmp(b.data, "42-x[", 5) == 0);
	for (i = 5; i < 10005; i++) {
		if (b.data[i] != 'z')
			ok = 0;
	}
	CHECK(ok);
	CHECK_STR(b.data + 10005, "]");
	free(big);
	buf_free(&b);
}

static void
test_consume(void)
{
	buf_t b = BUF_INIT;
	size_t cap;

	buf_append_str(&b, "0123456789");
	buf_consume(&b, 0);
	CHECK_STR(b.data, "0123456789");
	buf_consume(&b, 4);
	CHECK_STR(b.data, "456789");
	CHECK_INT(b.len, 6);
	buf_consume(&b, 6);
	CHECK_STR(b.data, "");
	CHECK_INT(b.len, 0);
	buf_append_str(&b, "abc");
	buf_consume(&b, 100);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");

	/* reset keeps the memory for the next request */
	buf_append_str(&b, "keep");
	cap = b.cap;
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_INT(b.cap, cap);
	CHECK_STR(b.data, "");
	buf_free(&b);

	/* on a buffer that never allocated */
	buf_consume(&b, 1);
	buf_reset(&b);
	CHECK(b.data == NULL);
	buf_free(&b);
}

int
main(void)
{
	RUN(test_empty);
	RUN(test_append);
	RUN(test_growth);
	RUN(test_reserve);
	RUN(test_printf);
	RUN(test_consume);
	return unit_done();
}

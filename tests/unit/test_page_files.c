/* Unit tests for src/page_files.c. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "page_files.h"

/* page_files never looks through ref.slot: any distinct address will do. */
static char slots[4];

static cache_ref_t
ref_of(uint64_t keyhash, int slot, uint64_t seq)
{
	return (cache_ref_t){.slot = &slots[slot], .seq = seq, .keyhash = keyhash};
}

/* Whether f holds exactly body. */
static int
file_is(const page_file_t *f, const char *body, size_t len)
{
	char *got = malloc(len + 1);
	ssize_t n;
	int same;

	if (got == NULL)
		return 0;
	n = pread(f->fd, got, len + 1, 0);
	same = n == (ssize_t)len && f->len == len && memcmp(got, body, len) == 0;
	free(got);
	return same;
}

static void
test_second_sighting_makes_a_file(void)
{
	page_files_t *t = page_files_create(1 << 20);
	cache_ref_t r1 = ref_of(11, 0, 2), r2 = ref_of(11, 0, 4);
	page_file_t *f;

	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK(page_files_find(t, 11, "k") == NULL);
	page_files_note(t, "k", &r1, "one", 3);
	CHECK(page_files_find(t, 11, "k") == NULL); /* seen once: no file */
	/* Seen again, but from another copy: still once for that copy. */
	page_files_note(t, "k", &r2, "two", 3);
	CHECK(page_files_find(t, 11, "k") == NULL);
	page_files_note(t, "k", &r2, "two", 3);
	f = page_files_find(t, 11, "k");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK(file_is(f, "two", 3));
		CHECK(f->ref.seq == 4 && f->ref.slot == &slots[0]);
		/* The same hash under another key is another key. */
		CHECK(page_files_find(t, 11, "other") == NULL);
	}
	page_files_destroy(t);
}

static void
test_file_is_sealed(void)
{
	page_files_t *t = page_files_create(1 << 20);
	cache_ref_t r = ref_of(5, 1, 2);
	page_file_t *f;
	int seals;

	if (t == NULL) {
		CHECK(t != NULL);
		return;
	}
	page_files_note(t, "k", &r, "page", 4);
	page_files_note(t, "k", &r, "page", 4);
	f = page_files_find(t, 5, "k");
	CHECK(f != NULL);
	if (f != NULL) {
		seals = fcntl(f->fd, F_GET_SEALS);
		CHECK(seals >= 0);
		CHECK((seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
		      (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
		errno = 0;
		CHECK(pwrite(f->fd, "X", 1, 0) < 0 && errno == EPERM);
		CHECK(ftruncate(f->fd, 1) < 0);
		CHECK(file_is(f, "page", 4));
	}
	page_files_destroy(t);
}

/* A file being sent outlives its replacement, its eviction and the table. */
static void
test_held_file_outlives_the_table(void)
{
	page_files_t *t = page_files_create(1 << 20);
	cache_ref_t r1 = ref_of(7, 0, 2), r2 = ref_of(7, 0, 4);
	page_file_t *old, *cur;

	if (t == NULL) {
		CHECK(t != NULL);
		return;
	}
	page_files_note(t, "k", &r1, "old page", 8);
	page_files_note(t, "k", &r1, "old page", 8);
	old = page_files_find(t, 7, "k");
	CHECK(old != NULL);
	if (old == NULL) {
		page_files_destroy(t);
		return;
	}
	page_file_hold(old);
	/* A key with a file gets the new copy's file at once. */
	page_files_note(t, "k", &r2, "new page", 8);
	cur = page_files_find(t, 7, "k");
	CHECK(cur != NULL && cur != old);
	if (cur != NULL)
		CHECK(file_is(cur, "new page", 8));
	CHECK(file_is(old, "old page", 8));
	page_files_destroy(t);
	CHECK(file_is(old, "old page", 8));
	page_file_release(old); /* valgrind: nothing left */
}

static void
test_least_recently_used_file_goes(void)
{
	enum { LEN = 20000 };
	page_files_t *t = page_files_create(50000); /* two files of LEN fit */
	char *page = malloc(LEN);
	cache_ref_t r[4];

	if (t == NULL || page == NULL) {
		CHECK(t != NULL && page != NULL);
		free(page);
		page_files_destroy(t);
		return;
	}
	for (int i = 0; i < 4; i++) {
		char key[2] = {(char)('a' + i), 0};

		r[i] = ref_of(100 + (uint64_t)i, i, 2);
		memset(page, 'a' + i, LEN);
		page_files_note(t, key, &r[i], page, LEN);
		page_files_note(t, key, &r[i], page, LEN);
		if (i == 1)
			CHECK(page_files_find(t, 100, "a") != NULL); /* a is now newer than b */
	}
	/* c evicted b (a had just been used), then d evicted a. */
	CHECK(page_files_find(t, 101, "b") == NULL);
	CHECK(page_files_find(t, 100, "a") == NULL);
	CHECK(page_files_find(t, 102, "c") != NULL);
	CHECK(page_files_find(t, 103, "d") != NULL);

	/* A page larger than the whole budget gets no file, and evicts nothing. */
	{
		char *big = malloc(60000);
		cache_ref_t rb = ref_of(200, 0, 8);

		if (big != NULL) {
			memset(big, 'z', 60000);
			page_files_note(t, "big", &rb, big, 60000);
			page_files_note(t, "big", &rb, big, 60000);
			CHECK(page_files_find(t, 200, "big") == NULL);
			CHECK(page_files_find(t, 102, "c") != NULL);
			free(big);
		}
	}
	free(page);
	page_files_destroy(t);
}

/* Keys read once churn their own list; the files of hot keys stay. */
static void
test_flood_of_keys_seen_once_keeps_the_files(void)
{
	page_files_t *t = page_files_create(1 << 20);
	cache_ref_t hot = ref_of(1, 0, 2);
	char key[32];

	if (t == NULL) {
		CHECK(t != NULL);
		return;
	}
	page_files_note(t, "hot", &hot, "hot page", 8);
	page_files_note(t, "hot", &hot, "hot page", 8);
	for (int i = 0; i < 100000; i++) {
		cache_ref_t r = ref_of(1000 + (uint64_t)i, 1, 2);

		snprintf(key, sizeof(key), "cold%d", i);
		page_files_note(t, key, &r, "cold", 4);
	}
	CHECK(page_files_find(t, 1, "hot") != NULL);
	/* The oldest cold keys were forgotten: seen again, they are "once". */
	{
		cache_ref_t r = ref_of(1000, 1, 2);

		page_files_note(t, "cold0", &r, "cold", 4);
		CHECK(page_files_find(t, 1000, "cold0") == NULL);
	}
	page_files_destroy(t);
}

/* Each file is a descriptor: at most a quarter of RLIMIT_NOFILE. */
static void
test_files_bounded_by_descriptor_limit(void)
{
	struct rlimit old, low;
	page_files_t *t;
	int kept = 0;
	char key[32];

	if (getrlimit(RLIMIT_NOFILE, &old) < 0) {
		CHECK(0);
		return;
	}
	low = old;
	low.rlim_cur = 64;
	if (setrlimit(RLIMIT_NOFILE, &low) < 0) {
		CHECK(0);
		return;
	}
	t = page_files_create(1 << 20); /* would otherwise allow 256 */
	setrlimit(RLIMIT_NOFILE, &old);
	if (t == NULL) {
		CHECK(t != NULL);
		return;
	}
	for (int i = 0; i < 40; i++) {
		cache_ref_t r = ref_of((uint64_t)i + 1, 0, 2);

		snprintf(key, sizeof(key), "k%d", i);
		page_files_note(t, key, &r, "page", 4);
		page_files_note(t, key, &r, "page", 4);
	}
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		if (page_files_find(t, (uint64_t)i + 1, key) != NULL) {
			kept++;
			CHECK(i >= 24); /* the newest 16 */
		}
	}
	CHECK_INT(kept, 16);
	page_files_destroy(t);
}

int
main(void)
{
	RUN(test_second_sighting_makes_a_file);
	RUN(test_file_is_sealed);
	RUN(test_held_file_outlives_the_table);
	RUN(test_least_recently_used_file_goes);
	RUN(test_flood_of_keys_seen_once_keeps_the_files);
	RUN(test_files_bounded_by_descriptor_limit);
	return unit_done();
}

/* Unit tests for src/cache.c. */
/*
 * FEEDD_UNIT_QUICK=1 shortens the multi-process tests (fewer processes, a
 * fraction of the time): set it when running under valgrind, e.g.
 *   FEEDD_UNIT_QUICK=1 valgrind --trace-children=yes ./tests/unit/test_cache
 */
#include "unit.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "log.h"

#define ENTRY_MAX 1024

static int quick;
static int name_seq;

static const char *
test_name(void)
{
	static char name[64];

	snprintf(name, sizeof(name), "/feedd-unit-%d-%d", (int)getpid(), name_seq++);
	return name;
}

static cache_t *
make(size_t bytes, size_t entry_max, int64_t ttl, int64_t stale, char *name_out)
{
	const char *name = test_name();
	cache_t *c = cache_create(name, bytes, entry_max, ttl, stale);

	if (name_out != NULL)
		strcpy(name_out, name);
	return c;
}

static int
put_str(cache_t *c, const char *key, const char *body, int64_t now)
{
	cache_meta_t m = {(uint32_t)strlen(body), (uint32_t)strlen(body)};

	return cache_put(c, key, body, strlen(body), &m, now);
}


/* A forked test process ends here: nothing left for valgrind to call lost. */
static void __attribute__((noreturn)) child_exit(cache_t *c, int code)
{
	cache_destroy(c, 0);
	_exit(code);
}

/* ---- single process ---- */

static void
test_hit_miss(void)
{
	cache_t *c = make(256 * 1024, ENTRY_MAX, 1000, 5000, NULL);
	buf_t b = BUF_INIT;
	cache_meta_t m = {0, 0}, in = {7, 11};
	cache_stats_t st;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_INT(cache_get(c, "20|-", 100, &b, &m), CACHE_MISS);
	CHECK_INT(b.len, 0);
	CHECK_INT(cache_put(c, "20|-", "{\"items\":[]}", 12, &in, 100), 0);
	CHECK_INT(cache_get(c, "20|-", 100, &b, &m), CACHE_HIT);
	CHECK_STR(b.data, "{\"items\":[]}");
	CHECK_INT(b.len, 12);
	CHECK_INT(m.nitems, 7);
	CHECK_INT(m.items_end, 11);
	/* A key that only shares a prefix is another key. */
	CHECK_INT(cache_get(c, "20|", 100, &b, &m), CACHE_MISS);
	CHECK_INT(cache_get(c, "20|-x", 100, &b, &m), CACHE_MISS);
	CHECK_INT(b.len, 0);
	/* Replacing keeps one copy. */
	CHECK_INT(put_str(c, "20|-", "second", 200), 0);
	CHECK_INT(cache_get(c, "20|-", 200, &b, &m), CACHE_HIT);
	CHECK_STR(b.data, "second");
	CHECK_INT(put_str(c, "", "empty key", 200), 0);
	CHECK_INT(cache_get(c, "", 200, &b, &m), CACHE_HIT);
	CHECK_STR(b.data, "empty key");
	CHECK_INT(put_str(c, "5|x", "", 200), 0);
	CHECK_INT(cache_get(c, "5|x", 200, &b, &m), CACHE_HIT);
	CHECK_INT(b.len, 0);

	cache_stats(c, &st);
	CHECK(st.capacity_entries >= 32);
	CHECK_INT(st.evictions, 0);
	buf_free(&b);
	cache_destroy(c, 1);
}

/* Flips one byte of every copy of needle in the segment's file, behind the
 * seqlock's back: what a writer that resumed after its claim was taken
 * over leaves in a slot another writer has published. */
static int
corrupt_segment(const char *name, const char *needle, size_t at)
{
	char path[128];
	struct stat sb;
	unsigned char *map, *p, *end;
	size_t nlen = strlen(needle);
	int fd, n = 0;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || (map = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE,
	                                      MAP_SHARED, fd, 0)) == MAP_FAILED) {
		close(fd);
		return -1;
	}
	close(fd);
	end = map + sb.st_size;
	for (p = map; (p = memmem(p, (size_t)(end - p), needle, nlen)) != NULL; p += nlen) {
		p[at] ^= 0x20;
		n++;
	}
	munmap(map, (size_t)sb.st_size);
	return n;
}

static void
test_get_append(void)
{
	char name[64], body[150];
	cache_t *c = make(256 * 1024, ENTRY_MAX, 1000, 0, name);
	buf_t b = BUF_INIT;
	cache_meta_t m = {0, 0};
	cache_stats_t st;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	/* 149 bytes: 18 words and a tail, so both copy paths run. */
	for (size_t i = 0; i < sizeof(body) - 1; i++)
		body[i] = (char)('a' + i % 26);
	memcpy(body, "append-body:", 12);
	body[sizeof(body) - 1] = '\0';

	CHECK_INT(buf_append_str(&b, "HEAD|"), 0);
	CHECK_INT(cache_get_append(c, "k", 100, &b, &m), CACHE_MISS);
	CHECK_INT(b.len, 5);
	CHECK_STR(b.data, "HEAD|");

	CHECK_INT(put_str(c, "k", body, 100), 0);
	CHECK_INT(cache_get_append(c, "k", 100, &b, &m), CACHE_HIT);
	CHECK_INT(b.len, 5 + strlen(body));
	CHECK(strncmp(b.data, "HEAD|", 5) == 0);
	CHECK_STR(b.data + 5, body);
	CHECK_INT(m.nitems, strlen(body));

	/* Expired: read and checked, then dropped again. */
	b.len = 5;
	b.data[5] = '\0';
	CHECK_INT(cache_get_append(c, "k", 1100, &b, &m), CACHE_MISS);
	CHECK_INT(b.len, 5);
	CHECK_STR(b.data, "HEAD|");

	/* Torn under an even seq: the checksum rejects the copy, whose bytes
	 * were already in the buffer's spare room and must stay out of it. */
	CHECK_INT(put_str(c, "k", body, 2000), 0);
	CHECK_INT(corrupt_segment(name, body, 100), 1);
	CHECK_INT(cache_get_append(c, "k", 2000, &b, &m), CACHE_MISS);
	CHECK_INT(b.len, 5);
	CHECK_STR(b.data, "HEAD|");
	cache_get(c, "k", 2000, &b, &m);
	CHECK_INT(b.len, 0);
	cache_stats(c, &st);
	CHECK_INT(st.checksum_failures, 2);

	/* A new put replaces the torn entry; cache_get replaces the buffer. */
	CHECK_INT(put_str(c, "k", body, 2000), 0);
	CHECK_INT(cache_get(c, "k", 2000, &b, &m), CACHE_HIT);
	CHECK_STR(b.data, body);
	buf_free(&b);
	cache_destroy(c, 1);
}

static void
test_stale_window(void)
{
	cache_t *c = make(256 * 1024, ENTRY_MAX, 1000, 5000, NULL);
	buf_t b = BUF_INIT;
	cache_meta_t m;

	if (c == NULL) {
		CHECK(c != NULL);
		return;
	}
	CHECK_INT(put_str(c, "k", "page", 10000), 0);
	CHECK_INT(cache_get(c, "k", 10000, &b, &m), CACHE_HIT);
	CHECK_INT(cache_get(c, "k", 10999, &b, &m), CACHE_HIT);
	CHECK_INT(cache_get(c, "k", 11000, &b, &m), CACHE_STALE);
	CHECK_STR(b.data, "page");
	CHECK_INT(cache_get(c, "k", 15999, &b, &m), CACHE_STALE);
	CHECK_INT(cache_get(c, "k", 16000, &b, &m), CACHE_MISS);
	CHECK_INT(b.len, 0);
	/* A refresh restarts the clock. */
	CHECK_INT(put_str(c, "k", "fresh", 16000), 0);
	CHECK_INT(cache_get(c, "k", 16999, &b, &m), CACHE_HIT);
	CHECK_STR(b.data, "fresh");
	buf_free(&b);
	cache_destroy(c, 1);

	/* Without a stale window an expired entry is a miss at once. */
	c = make(256 * 1024, ENTRY_MAX, 1000, 0, NULL);
	if (c == NULL) {
		CHECK(c != NULL);
		return;
	}
	CHECK_INT(put_str(c, "k", "page", 0), 0);
	CHECK_INT(cache_get(c, "k", 999, &b, &m), CACHE_HIT);
	CHECK_INT(cache_get(c, "k", 1000, &b, &m), CACHE_MISS);
	buf_free(&b);
	cache_destroy(c, 1);
}

static void
test_flush(void)
{
	cache_t *c = make(256 * 1024, ENTRY_MAX, 60000, 0, NULL);
	buf_t b = BUF_INIT;
	cache_meta_t m;
	cache_stats_t st;
	int64_t now = clock_mono_ms();

	if (c == NULL) {
		CHECK(c != NULL);
		return;
	}
	CHECK_INT(put_str(c, "a", "A", now), 0);
	CHECK_INT(put_str(c, "b", "BB", now), 0);
	cache_stats(c, &st);
	CHECK_INT(st.entries, 2);
	CHECK_INT(st.bytes, 3);
	cache_flush(c);
	CHECK_INT(cache_get(c, "a", now, &b, &m), CACHE_MISS);
	CHECK_INT(cache_get(c, "b", now, &b, &m), CACHE_MISS);
	cache_stats(c, &st);
	CHECK_INT(st.entries, 0);
	CHECK_INT(st.bytes, 0);
	CHECK_INT(put_str(c, "a", "A2", now), 0);
	CHECK_INT(cache_get(c, "a", now, &b, &m), CACHE_HIT);
	CHECK_STR(b.data, "A2");

	/* A fill that began before a flush stores a page that may predate it:
	 * it must not survive as a hit. */
	CHECK_INT(cache_lease(c, "c", now, 5000), 1);
	cache_flush(c);
	CHECK_INT(put_str(c, "c", "old data", now), 0);
	CHECK_INT(cache_get(c, "c", now, &b, &m), CACHE_MISS);
	CHECK_INT(cache_lease(c, "c", now, 5000), 1); /* put released it */
	CHECK_INT(put_str(c, "c", "new data", now), 0);
	CHECK_INT(cache_get(c, "c", now, &b, &m), CACHE_HIT);
	CHECK_STR(b.data, "new data");
	buf_free(&b);
	cache_destroy(c, 1);
}

static void
test_oversize(void)
{
	cache_t *c = make(256 * 1024, ENTRY_MAX, 60000, 0, NULL);
	char *big = malloc(ENTRY_MAX + 2), key[CACHE_KEY_MAX + 2];
	buf_t b = BUF_INIT;
	cache_meta_t m = {1, 2};

	if (c == NULL || big == NULL) {
		CHECK(c != NULL && big != NULL);
		free(big);
		cache_destroy(c, 1);
		return;
	}
	memset(big, 'x', ENTRY_MAX + 1);
	big[ENTRY_MAX + 1] = '\0';
	CHECK_INT(cache_lease(c, "big", 0, 5000), 1);
	CHECK_INT(cache_put(c, "big", big, ENTRY_MAX + 1, &m, 0), -1);
	CHECK_INT(cache_get(c, "big", 0, &b, &m), CACHE_MISS);
	CHECK_INT(cache_lease(c, "big", 0, 5000), 1); /* released on failure too */
	CHECK_INT(cache_put(c, "big", big, ENTRY_MAX, &m, 0), 0);
	CHECK_INT(cache_get(c, "big", 0, &b, &m), CACHE_HIT);
	CHECK_INT(b.len, ENTRY_MAX);
	CHECK(b.len == ENTRY_MAX && memcmp(b.data, big, ENTRY_MAX) == 0 &&
	      b.data[ENTRY_MAX] == '\0');

	memset(key, 'k', sizeof(key) - 1);
	key[CACHE_KEY_MAX + 1] = '\0';
	CHECK_INT(put_str(c, key, "long key", 0), -1);
	CHECK_INT(cache_get(c, key, 0, &b, &m), CACHE_MISS);
	key[CACHE_KEY_MAX] = '\0';
	CHECK_INT(put_str(c, key, "longest key", 0), 0);
	CHECK_INT(cache_get(c, key, 0, &b, &m), CACHE_HIT);
	CHECK_STR(b.data, "longest key");
	free(big);
	buf_free(&b);
	cache_destroy(c, 1);
}

static void
fill_page(char *page, size_t len, int k)
{
	memset(page, 'a' + k % 26, len);
	snprintf(page, len, "page %d of %zu bytes", k, len);
}

/* How many of the pages prefix0..prefix<n-1>, of len bytes each as
 * fill_page made them, the cache serves fresh and intact at now. */
static int
pages_cached(cache_t *c, const char *prefix, int n, size_t len, int64_t now, char *page,
             buf_t *b)
{
	cache_meta_t m;
	char key[32];
	int hits = 0;

	for (int k = 0; k < n; k++) {
		snprintf(key, sizeof(key), "%s%d", prefix, k);
		fill_page(page, len, k);
		if (cache_get(c, key, now, b, &m) == CACHE_HIT && b->len == len &&
		    memcmp(b->data, page, len) == 0)
			hits++;
	}
	return hits;
}

/* 8 MB with cache_entry_max 64 kB: 248 slots for bodies up to 16 kB and
 * 56 up to 64 kB, where one size of slot would give 120 of 64 kB. */
static void
test_tiers(void)
{
	cache_t *c = make(8 << 20, 64 * 1024, 60000, 0, NULL);
	char *page = malloc(64 * 1024), *big = malloc(64 * 1024), key[32];
	buf_t b = BUF_INIT;
	cache_meta_t m = {1, 1};
	cache_stats_t st;

	if (c == NULL || page == NULL || big == NULL) {
		CHECK(c != NULL && page != NULL && big != NULL);
		free(page);
		free(big);
		cache_destroy(c, 1);
		return;
	}
	cache_stats(c, &st);
	CHECK_INT(st.capacity_entries, 248 + 56);

	/* More 10 kB pages than 120 slots could hold all stay. */
	for (int k = 0; k < 150; k++) {
		snprintf(key, sizeof(key), "small%d", k);
		fill_page(page, 10000, k);
		CHECK_INT(cache_put(c, key, page, 10000, &m, 1000), 0);
	}
	CHECK_INT(pages_cached(c, "small", 150, 10000, 1000, page, &b), 150);

	/* A page that grows to the next tier and shrinks back: the newest
	 * copy is served each time, wherever it is. */
	fill_page(page, 10000, 1);
	CHECK_INT(cache_put(c, "moving", page, 10000, &m, 2000), 0);
	fill_page(big, 40000, 2);
	CHECK_INT(cache_put(c, "moving", big, 40000, &m, 2001), 0);
	CHECK_INT(cache_get(c, "moving", 2001, &b, &m), CACHE_HIT);
	CHECK(b.len == 40000 && memcmp(b.data, big, 40000) == 0);
	fill_page(page, 12000, 3);
	CHECK_INT(cache_put(c, "moving", page, 12000, &m, 2002), 0);
	CHECK_INT(cache_get(c, "moving", 2002, &b, &m), CACHE_HIT);
	CHECK(b.len == 12000 && memcmp(b.data, page, 12000) == 0);

	/* Small pages never evict a large page's live entry (it could go
	 * nowhere else); they only take free large slots. */
	cache_flush(c);
	for (int k = 0; k < 12; k++) {
		snprintf(key, sizeof(key), "large%d", k);
		fill_page(big, 40000, k);
		CHECK_INT(cache_put(c, key, big, 40000, &m, 3000), 0);
	}
	for (int k = 0; k < 3000; k++) {
		snprintf(key, sizeof(key), "flood%d", k);
		fill_page(page, 10000, k);
		cache_put(c, key, page, 10000, &m, 3001 + k);
	}
	CHECK_INT(pages_cached(c, "large", 12, 40000, 6001, big, &b), 12);
	cache_stats(c, &st);
	CHECK(st.entries <= st.capacity_entries);
	CHECK_INT(st.checksum_failures, 0);
	free(page);
	free(big);
	buf_free(&b);
	cache_destroy(c, 1);
}

/* cache_check says whether a copy read earlier is still what a read would
 * return, for every way it can stop being so. */
static void
test_check(void)
{
	cache_t *c = make(8 << 20, 64 * 1024, 1000, 5000, NULL);
	char *big = malloc(40000);
	buf_t b = BUF_INIT;
	cache_meta_t m = {1, 1};
	cache_ref_t ref, ref2;

	if (c == NULL || big == NULL) {
		CHECK(c != NULL && big != NULL);
		free(big);
		cache_destroy(c, 1);
		return;
	}
	memset(&ref, 0, sizeof(ref));
	CHECK_INT(put_str(c, "k", "one", 10000), 0);
	CHECK_INT(cache_get_ref(c, "k", 10000, &b, &m, &ref), CACHE_HIT);
	CHECK_STR(b.data, "one");
	CHECK_INT(cache_check(c, &ref, 10000), CACHE_HIT);
	CHECK_INT(cache_check(c, &ref, 10999), CACHE_HIT);
	/* Time moves it as it moves a read. */
	CHECK_INT(cache_check(c, &ref, 11000), CACHE_STALE);
	CHECK_INT(cache_check(c, &ref, 16000), CACHE_MISS);
	/* Reads and other keys' writes leave it current. */
	CHECK_INT(cache_get(c, "k", 10001, &b, &m), CACHE_HIT);
	CHECK_INT(put_str(c, "other", "x", 10001), 0);
	CHECK_INT(cache_check(c, &ref, 10001), CACHE_HIT);

	/* A new page for the key, in the same slot: not current. */
	CHECK_INT(put_str(c, "k", "two", 10002), 0);
	CHECK_INT(cache_check(c, &ref, 10002), CACHE_MISS);
	buf_reset(&b); /* cache_get_ref appends */
	CHECK_INT(cache_get_ref(c, "k", 10002, &b, &m, &ref), CACHE_HIT);
	CHECK_STR(b.data, "two");
	CHECK_INT(cache_check(c, &ref, 10002), CACHE_HIT);

	/* A newer copy in another tier, the old slot untouched: not current. */
	fill_page(big, 40000, 7);
	CHECK_INT(cache_put(c, "k", big, 40000, &m, 10003), 0);
	CHECK_INT(cache_check(c, &ref, 10003), CACHE_MISS);
	buf_reset(&b);
	CHECK_INT(cache_get_ref(c, "k", 10003, &b, &m, &ref2), CACHE_HIT);
	CHECK(b.len == 40000 && memcmp(b.data, big, 40000) == 0);
	CHECK(ref2.slot != ref.slot);
	CHECK_INT(cache_check(c, &ref2, 10003), CACHE_HIT);

	/* A flush. */
	cache_flush(c);
	CHECK_INT(cache_check(c, &ref2, 10003), CACHE_MISS);

	/* A miss leaves *ref alone. */
	ref2.seq = 12345;
	CHECK_INT(cache_get_ref(c, "k", 10003, &b, &m, &ref2), CACHE_MISS);
	CHECK_INT(ref2.seq, 12345);
	free(big);
	buf_free(&b);
	cache_destroy(c, 1);
}

static void
test_create_errors(void)
{
	char name[64];
	cache_t *c;
	int fd;

	CHECK(cache_create(test_name(), 1 << 20, 10, 1000, 0) == NULL); /* entry too small */
	CHECK(cache_create(test_name(), 1 << 20, (size_t)1 << 30, 1000, 0) ==
	      NULL);                                                        /* absurd entry */
	CHECK(cache_create(test_name(), 16 * 1024, 4096, 1000, 0) == NULL); /* < a few slots */
	CHECK(cache_create(test_name(), 1 << 20, 4096, -1, 0) == NULL);
	CHECK(cache_create("/a/b", 1 << 20, 4096, 1000, 0) == NULL);
	CHECK(cache_create("", 1 << 20, 4096, 1000, 0) == NULL);

	/* A segment left by a crashed instance is replaced, not reused. */
	snprintf(name, sizeof(name), "%s", test_name());
	fd = shm_open(name, O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(ftruncate(fd, 12345) == 0);
		close(fd);
	}
	c = cache_create(name, 256 * 1024, ENTRY_MAX, 1000, 0);
	CHECK(c != NULL);
	if (c != NULL) {
		struct stat st;
		char path[96];

		snprintf(path, sizeof(path), "/dev/shm%s", name);
		CHECK(stat(path, &st) == 0 && st.st_size != 12345 && st.st_size <= 256 * 1024);
		cache_destroy(c, 1);
		CHECK(stat(path, &st) < 0 && errno == ENOENT);
	}
}

static void
test_lease(void)
{
	cache_t *c = make(256 * 1024, ENTRY_MAX, 60000, 0, NULL);
	int64_t now = clock_mono_ms();
	int pfd[2];
	pid_t pid;
	char ch;

	if (c == NULL) {
		CHECK(c != NULL);
		return;
	}
	CHECK_INT(cache_lease(c, "k", now, 5000), 1);
	CHECK_INT(cache_lease(c, "k", now, 5000), 0); /* one holder, even in one process */
	CHECK_INT(cache_lease(c, "other", now, 5000), 1);
	cache_release(c, "k");
	CHECK_INT(cache_lease(c, "k", now, 5000), 1);
	CHECK_INT(put_str(c, "k", "v", now), 0);
	CHECK_INT(cache_lease(c, "k", now, 5000), 1);
	/* Releasing a key we do not hold changes nothing. */
	cache_release(c, "never-leased");
	CHECK_INT(cache_lease(c, "k", now, 5000), 0);
	cache_release(c, "k");
	cache_release(c, "other");

	/* Expiry: injected times. */
	CHECK_INT(cache_lease(c, "e", 1000, 500), 1);
	CHECK_INT(cache_lease(c, "e", 1499, 500), 0);
	CHECK_INT(cache_lease(c, "e", 1500, 500), 1);
	cache_release(c, "e");

	/* A live holder in another process keeps it; once dead, it is taken. */
	CHECK(pipe(pfd) == 0);
	pid = fork();
	if (pid == 0) {
		char r = cache_lease(c, "shared", now, 600000) == 1 ? 'y' : 'n';

		if (write(pfd[1], &r, 1) != 1)
			child_exit(c, 2);
		pause();
		child_exit(c, 0);
	}
	CHECK(pid > 0);
	CHECK(read(pfd[0], &ch, 1) == 1 && ch == 'y');
	CHECK_INT(cache_lease(c, "shared", now, 5000), 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK_INT(cache_lease(c, "shared", now, 5000), 1);
	cache_release(c, "shared");

	/* A holder that exits without releasing does not block the key either. */
	pid = fork();
	if (pid == 0)
		child_exit(c, cache_lease(c, "gone", now, 600000) == 1 ? 0 : 1);
	{
		int status = -1;

		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK_INT(cache_lease(c, "gone", now, 5000), 1);
	close(pfd[0]);
	close(pfd[1]);
	cache_destroy(c, 1);
}

/* Many processes ask for the same key at once: exactly one gets it.  Each
 * round's winner releases after everyone has tried, as a fill would. */
typedef struct race {
	_Atomic int go, wins, tried, done;
} race_t;

static void
race_child(cache_t *c, race_t *rc, int rounds, int nproc)
{
	for (int r = 0; r < rounds; r++) {
		char key[32];
		int won;

		while (atomic_load(&rc[r].go) == 0)
			sched_yield();
		snprintf(key, sizeof(key), "race-%d", r);
		won = cache_lease(c, key, clock_mono_ms(), 600000);
		if (won)
			atomic_fetch_add(&rc[r].wins, 1);
		atomic_fetch_add(&rc[r].tried, 1);
		while (atomic_load(&rc[r].tried) < nproc)
			sched_yield();
		if (won)
			cache_release(c, key);
		atomic_fetch_add(&rc[r].done, 1);
	}
	child_exit(c, 0);
}

static void
test_lease_race(void)
{
	cache_t *c = make(256 * 1024, ENTRY_MAX, 60000, 0, NULL);
	int nproc = quick ? 3 : 12, rounds = quick ? 10 : 300, bad = 0;
	size_t len = sizeof(race_t) * (size_t)rounds;
	race_t *rc;
	pid_t pids[12];

	if (c == NULL) {
		CHECK(c != NULL);
		return;
	}
	rc = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(rc != MAP_FAILED);
	if (rc == MAP_FAILED) {
		cache_destroy(c, 1);
		return;
	}
	for (int i = 0; i < nproc; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			race_child(c, rc, rounds, nproc);
	}
	for (int r = 0; r < rounds; r++) {
		atomic_store(&rc[r].go, 1);
		while (atomic_load(&rc[r].done) < nproc)
			sched_yield();
		if (atomic_load(&rc[r].wins) != 1)
			bad++;
	}
	for (int i = 0; i < nproc; i++) {
		int status = -1;

		waitpid(pids[i], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK_INT(bad, 0);
	CHECK_INT(atomic_load(&rc[0].wins), 1);
	munmap(rc, len);
	cache_destroy(c, 1);
}

/* A flood of distinct keys stays within the segment and never serves a
 * key another key's page. */
static void
test_flood(void)
{
	char name[64], path[96], key[64], want[96];
	size_t size = 256 * 1024;
	cache_t *c = make(size, ENTRY_MAX, 60000, 0, name);
	buf_t b = BUF_INIT;
	cache_meta_t m;
	cache_stats_t st;
	struct stat sb;
	long wrong = 0, hot_hits = 0, flood_hits = 0;
	int64_t now = clock_mono_ms();

	if (c == NULL) {
		CHECK(c != NULL);
		return;
	}
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "20|%d~flood", i);
		snprintf(want, sizeof(want), "page of flood key %d", i);
		if (put_str(c, key, want, now + i / 100) != 0)
			wrong++;
		if (i % 10 == 0) {
			for (int h = 0; h < 4; h++) {
				char hk[16], hv[32];

				snprintf(hk, sizeof(hk), "hot-%d", h);
				snprintf(hv, sizeof(hv), "hot page %d", h);
				switch (cache_get(c, hk, now + i / 100, &b, &m)) {
				case CACHE_HIT:
					hot_hits++;
					if (strcmp(b.data, hv) != 0)
						wrong++;
					break;
				case CACHE_STALE:
					wrong++;
					break;
				case CACHE_MISS:
					if (put_str(c, hk, hv, now + i / 100) != 0)
						wrong++;
					break;
				}
			}
		}
		if (i % 7 == 0 && i >= 50) {
			/* Some recent key: a hit must be its own page. */
			int j = i - (i % 50);

			snprintf(key, sizeof(key), "20|%d~flood", j);
			snprintf(want, sizeof(want), "page of flood key %d", j);
			if (cache_get(c, key, now + i / 100, &b, &m) != CACHE_MISS) {
				flood_hits++;
				if (strcmp(b.data, want) != 0)
					wrong++;
			}
		}
	}
	CHECK_INT(wrong, 0);
	CHECK(hot_hits > 0);
	CHECK(flood_hits > 0);
	cache_stats(c, &st);
	CHECK(st.entries <= st.capacity_entries);
	CHECK(st.entries > 0);
	CHECK(st.bytes <= st.entries * ENTRY_MAX);
	CHECK(st.evictions > 100000 - st.capacity_entries - 1000);
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	CHECK(stat(path, &sb) == 0 && (size_t)sb.st_size <= size);
	buf_free(&b);
	cache_destroy(c, 1);
}

/* ---- several processes ---- */

typedef struct torture_result {
	_Atomic long reads, hits, torn, puts, put_fails, flushes;
} torture_result_t;

#define NKEYS 48

static uint64_t
fnv1a(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * UINT64_C(0x100000001b3);
	return h;
}

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* "k=NN s=<16 hex>|" + payload; s covers the key and the payload. */
#define HDR_LEN 24

static size_t
make_page(char *out, int k, uint64_t *rng, size_t max)
{
	size_t n = HDR_LEN + xorshift(rng) % (max - HDR_LEN + 1), i;
	char key[16], hdr[HDR_LEN + 1];
	uint64_t sum;

	for (i = HDR_LEN; i < n; i++)
		out[i] = (char)('a' + xorshift(rng) % 26);
	snprintf(key, sizeof(key), "t%d", k);
	sum = fnv1a(out + HDR_LEN, n - HDR_LEN,
	            fnv1a(key, strlen(key), UINT64_C(0xcbf29ce484222325)));
	snprintf(hdr, sizeof(hdr), "k=%02d s=%016llx|", k, (unsigned long long)sum);
	memcpy(out, hdr, HDR_LEN);
	return n;
}

static int
page_ok(const buf_t *b, const cache_meta_t *m, int k)
{
	char key[16], hdr[HDR_LEN + 1];
	unsigned long long sum;
	int kk;

	if (b->len < HDR_LEN || m->items_end != b->len || m->nitems != (uint32_t)k)
		return 0;
	memcpy(hdr, b->data, HDR_LEN);
	hdr[HDR_LEN] = '\0';
	if (sscanf(hdr, "k=%02d s=%016llx|", &kk, &sum) != 2 || kk != k || hdr[HDR_LEN - 1] != '|')
		return 0;
	snprintf(key, sizeof(key), "t%d", k);
	return sum == fnv1a(b->data + HDR_LEN, b->len - HDR_LEN,
	                    fnv1a(key, strlen(key), UINT64_C(0xcbf29ce484222325)));
}

static size_t torture_entry_max = ENTRY_MAX;

static void
torture_writer(cache_t *c, torture_result_t *res, int id, int64_t until, long iters)
{
	char *page = malloc(torture_entry_max);
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);

	if (page == NULL)
		child_exit(c, 3);
	for (long i = 0; i < iters && clock_mono_ms() < until; i++) {
		int k = (int)(xorshift(&rng) % NKEYS);
		char key[16];
		cache_meta_t m;

		snprintf(key, sizeof(key), "t%d", k);
		m.items_end = (uint32_t)make_page(page, k, &rng, torture_entry_max);
		m.nitems = (uint32_t)k;
		if (xorshift(&rng) % 4 == 0 && cache_lease(c, key, clock_mono_ms(), 1000) == 0) {
			continue; /* someone else fills it */
		}
		if (cache_put(c, key, page, m.items_end, &m, clock_mono_ms()) == 0)
			atomic_fetch_add(&res->puts, 1);
		else
			atomic_fetch_add(&res->put_fails, 1);
		if (id == 0 && i % 20000 == 19999) {
			cache_flush(c);
			atomic_fetch_add(&res->flushes, 1);
		}
	}
	free(page);
	child_exit(c, 0);
}

#define PREFIX     "HTTP/1.1 200 OK\r\n\r\n"
#define PREFIX_LEN (sizeof(PREFIX) - 1)

static void
torture_reader(cache_t *c, torture_result_t *res, int id, int64_t until, long iters)
{
	buf_t b = BUF_INIT;
	uint64_t rng = 0xd1b54a32d192ed03ULL * (uint64_t)(id + 1);

	for (long i = 0; i < iters && clock_mono_ms() < until; i++) {
		int k = (int)(xorshift(&rng) % NKEYS);
		char key[16];
		cache_meta_t m = {0, 0};

		snprintf(key, sizeof(key), "t%d", k);
		atomic_fetch_add(&res->reads, 1);
		if (i & 1) {
			/* Appending after a prefix: a copy retried or refused
			 * must leave the prefix exactly as it was. */
			buf_t page;

			buf_reset(&b);
			if (buf_append_str(&b, PREFIX) < 0)
				child_exit(c, 3);
			if (cache_get_append(c, key, clock_mono_ms(), &b, &m) == CACHE_MISS) {
				if (b.len != PREFIX_LEN || strcmp(b.data, PREFIX) != 0)
					atomic_fetch_add(&res->torn, 1);
				continue;
			}
			atomic_fetch_add(&res->hits, 1);
			page.data = b.data + PREFIX_LEN;
			page.len = b.len - PREFIX_LEN;
			page.cap = 0;
			if (strncmp(b.data, PREFIX, PREFIX_LEN) != 0 || !page_ok(&page, &m, k))
				atomic_fetch_add(&res->torn, 1);
			continue;
		}
		if (cache_get(c, key, clock_mono_ms(), &b, &m) == CACHE_MISS)
			continue;
		atomic_fetch_add(&res->hits, 1);
		if (!page_ok(&b, &m, k))
			atomic_fetch_add(&res->torn, 1);
	}
	buf_free(&b);
	child_exit(c, 0);
}

static void
torture_run(size_t entry_max, size_t size, uint64_t capacity)
{
	cache_t *c = make(size, entry_max, 60000, 0, NULL);
	int nw = quick ? 2 : 4, nr = quick ? 2 : 4, n = 0, crashed = 0;
	long iters = quick ? 20000 : 2000000;
	int64_t until = clock_mono_ms() + (quick ? 300 : 2000);
	torture_result_t *res;
	cache_stats_t st;
	pid_t pids[8];

	if (c == NULL) {
		CHECK(c != NULL);
		return;
	}
	torture_entry_max = entry_max;
	cache_stats(c, &st);
	CHECK_INT(st.capacity_entries, capacity);
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		CHECK(res != MAP_FAILED);
		cache_destroy(c, 1);
		return;
	}
	for (int i = 0; i < nw + nr; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			if (i < nw)
				torture_writer(c, res, i, until, iters);
			torture_reader(c, res, i, until, iters);
		}
		CHECK(pid > 0);
		if (pid > 0)
			pids[n++] = pid;
	}
	for (int i = 0; i < n; i++) {
		int status = -1;

		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			crashed++;
	}
	printf("# torture: %ld reads, %ld hits, %ld torn, %ld puts, %ld busy puts, %ld flushes\n",
	       atomic_load(&res->reads), atomic_load(&res->hits), atomic_load(&res->torn),
	       atomic_load(&res->puts), atomic_load(&res->put_fails), atomic_load(&res->flushes));
	CHECK_INT(crashed, 0);
	CHECK_INT(atomic_load(&res->torn), 0);
	CHECK(atomic_load(&res->hits) > 0);
	CHECK(atomic_load(&res->puts) > 0);
	cache_stats(c, &st);
	CHECK_INT(st.checksum_failures, 0);
	CHECK(st.evictions > 0);
	munmap(res, sizeof(*res));
	cache_destroy(c, 1);
}

static void
test_torture(void)
{
	/* 32 slots in 4 sets for 48 keys: constant eviction and contention. */
	size_t slot = 64 + 256 + ENTRY_MAX;

	torture_run(ENTRY_MAX, 4096 + 36 * (slot + 32), 32);
}

/* Pages of 24 B to 64 kB over two tiers (16 kB and 64 kB slots): a key
 * moves between tiers as its size changes, and readers pick the newest
 * copy among both.  Tier 1 holds 32 slots, tier 0 120. */
static void
test_torture_tiers(void)
{
	size_t share = 32 * (65856 + 128) + 64;

	torture_run(64 * 1024, 4096 + 2 * share, 32 + 120);
}

#ifdef FEEDD_TEST_HOOKS
static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Starts a writer that stops for ever halfway through writing "victim"
 * (holding its fill lease), and waits until the write has begun. */
static pid_t
stalled_writer(cache_t *c, const char *body)
{
	pid_t pid = fork();
	buf_t b = BUF_INIT;
	cache_meta_t m;

	if (pid == 0) {
		setenv("FEEDD_TEST_CACHE_STALL_WRITE", "victim", 1);
		if (cache_lease(c, "victim", clock_mono_ms(), 600000) != 1)
			child_exit(c, 1);
		put_str(c, "victim", body, clock_mono_ms());
		child_exit(c, 2); /* not reached: the hook stalls */
	}
	CHECK(pid > 0);
	for (int i = 0; i < 5000; i++) {
		if (cache_get(c, "victim", clock_mono_ms(), &b, &m) == CACHE_MISS)
			break;
		sleep_ms(1);
	}
	buf_free(&b);
	return pid;
}

static void
test_killed_writer(void)
{
	cache_t *c = make(256 * 1024, ENTRY_MAX, 60000, 0, NULL);
	char a[ENTRY_MAX], bb[ENTRY_MAX];
	buf_t b = BUF_INIT;
	cache_meta_t m;
	cache_stats_t st;
	int nr = quick ? 1 : 3, status;
	torture_result_t *res;
	pid_t pid, readers[3];

	if (c == NULL) {
		CHECK(c != NULL);
		return;
	}
	memset(a, 'A', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memset(bb, 'B', sizeof(bb) - 1);
	bb[sizeof(bb) - 1] = '\0';
	CHECK_INT(put_str(c, "victim", a, clock_mono_ms()), 0);
	CHECK_INT(cache_get(c, "victim", clock_mono_ms(), &b, &m), CACHE_HIT);

	pid = stalled_writer(c, bb);
	/* The write is under way (seq odd): every reader misses, none sees
	 * half of A and half of B. */
	CHECK_INT(cache_get(c, "victim", clock_mono_ms(), &b, &m), CACHE_MISS);
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(res != MAP_FAILED);
	if (res != MAP_FAILED) {
		for (int i = 0; i < nr; i++) {
			readers[i] = fork();
			if (readers[i] == 0) {
				int64_t until = clock_mono_ms() + (quick ? 100 : 300);

				while (clock_mono_ms() < until) {
					atomic_fetch_add(&res->reads, 1);
					if (cache_get(c, "victim", clock_mono_ms(), &b, &m) !=
					    CACHE_MISS)
						atomic_fetch_add(&res->hits, 1);
				}
				buf_free(&b);
				child_exit(c, 0);
			}
		}
		for (int i = 0; i < nr; i++) {
			status = -1;
			waitpid(readers[i], &status, 0);
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		CHECK(atomic_load(&res->reads) > 0);
		CHECK_INT(atomic_load(&res->hits), 0);
		munmap(res, sizeof(*res));
	}
	/* Alive and stopped: its lease holds. */
	CHECK_INT(cache_lease(c, "victim", clock_mono_ms(), 5000), 0);

	kill(pid, SIGKILL);
	status = -1;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK_INT(cache_get(c, "victim", clock_mono_ms(), &b, &m), CACHE_MISS);
	/* Dead: its lease and its slot are taken over by the next filler. */
	CHECK_INT(cache_lease(c, "victim", clock_mono_ms(), 5000), 1);
	CHECK_INT(put_str(c, "victim", "refilled", clock_mono_ms()), 0);
	CHECK_INT(cache_get(c, "victim", clock_mono_ms(), &b, &m), CACHE_HIT);
	CHECK_STR(b.data, "refilled");
	cache_stats(c, &st);
	CHECK_INT(st.claims_stolen, 1);
	CHECK_INT(st.checksum_failures, 0);
	cache_destroy(c, 1);

	/* The master's way: reap the dead worker at once. */
	c = make(256 * 1024, ENTRY_MAX, 60000, 0, NULL);
	if (c == NULL) {
		CHECK(c != NULL);
		buf_free(&b);
		return;
	}
	CHECK_INT(put_str(c, "victim", a, clock_mono_ms()), 0);
	pid = stalled_writer(c, bb);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK_INT(cache_reap(c, pid), 2); /* its slot claim and its lease */
	CHECK_INT(cache_reap(c, pid), 0);
	CHECK_INT(cache_get(c, "victim", clock_mono_ms(), &b, &m), CACHE_MISS);
	CHECK_INT(cache_lease(c, "victim", clock_mono_ms(), 5000), 1);
	CHECK_INT(put_str(c, "victim", "after reap", clock_mono_ms()), 0);
	CHECK_INT(cache_get(c, "victim", clock_mono_ms(), &b, &m), CACHE_HIT);
	CHECK_STR(b.data, "after reap");
	cache_stats(c, &st);
	CHECK_INT(st.claims_stolen, 0);
	buf_free(&b);
	cache_destroy(c, 1);
}
#endif

int
main(void)
{
	const char *q = getenv("FEEDD_UNIT_QUICK");

	quick = q != NULL && q[0] != '\0' && strcmp(q, "0") != 0;
	/* Nothing buffered when a test forks, or the children print it again. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	RUN(test_hit_miss);
	RUN(test_get_append);
	RUN(test_stale_window);
	RUN(test_flush);
	RUN(test_oversize);
	RUN(test_create_errors);
	RUN(test_lease);
	RUN(test_lease_race);
	RUN(test_flood);
	RUN(test_tiers);
	RUN(test_check);
	RUN(test_torture);
	RUN(test_torture_tiers);
#ifdef FEEDD_TEST_HOOKS
	RUN(test_killed_writer);
#else
	printf("# skipped test_killed_writer: built without --enable-test-hooks\n");
#endif
	return unit_done();
}

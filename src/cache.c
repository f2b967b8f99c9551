/* The feed cache shared by all workers: POSIX shared memory, seqlocks, fill leases, generations. */
#include "cache.h"

/*
 * Layout of the segment (one POSIX shm object, mapped MAP_SHARED by the
 * master before it forks, so every worker inherits the same mapping):
 *
 *   [ header, 4 KiB ][ lease table: nleases x 32 B ][ tier 0 slots ]...[ tier n-1 slots ]
 *
 * header   magic, version, geometry (for a reader of a core dump; processes
 *          use their own copy of it, taken before fork, so a stray write into
 *          the segment cannot send anyone outside it), the per-instance hash
 *          seed, the generation, and counters.
 * slot     a 64-byte header (seq, writer claim, key hash, generation, time
 *          stored, lengths, meta, checksum), the key (CACHE_KEY_MAX + 1
 *          rounded to 256 B), the body (its tier's body_max rounded to 8 B);
 *          slot_size is a multiple of 64 so no two slots share a cache line.
 * tier     slots of one size: bodies up to 16 kB, 64 kB, ... (x4 each), the
 *          last up to cache_entry_max; each tier its own sets.
 * lease    one record per key hash (direct-mapped): owner, key hash, the
 *          generation when taken.  2 to 4 records per slot, a power of two.
 *
 * Why this shape:
 * - Fixed size, computed once from cache_size: nslots = what fits; memory is
 *   reserved at start (posix_fallocate) so a full /dev/shm fails the start,
 *   not a worker later with SIGBUS.  No allocator in shared memory, nothing
 *   that grows with what clients send.
 * - Tiers instead of one slot size: with every slot sized for
 *   cache_entry_max (512 kB by default), 64 MB held 120 pages of typically
 *   12 kB.  Each tier gets an equal share of the memory (as many tiers as
 *   leave each CACHE_MIN_SLOTS): nothing has to be known in advance about
 *   the pages' sizes, and the defaults hold 1,704 pages.  A page goes to
 *   the smallest tier it fits or to a free slot of a larger one, and evicts
 *   only in the smallest: a large page's entry is never lost to small ones.
 *   A page that changed tier leaves its older copy behind; readers take the
 *   newest copy over all tiers, and the old one expires like any entry.
 * - Set-associative, 8 ways: a key may live only in the 8 slots of its set
 *   (SipHash-2-4 of the key with a random per-instance seed, so clients cannot
 *   aim a flood of cursors at one set).  A new key takes, in order: a slot
 *   already holding it, an empty / flushed / expired / abandoned slot, else
 *   the one stored longest ago (an eviction).  Readers never write, so there
 *   is no LRU: an access time written on every hit would bounce cache lines
 *   between workers; entries live at most ttl + stale anyway, and hot keys
 *   are refreshed every ttl, which keeps them among the newest of their set.
 * - Readers take no lock: a seqlock per slot (odd while written), all fields
 *   accessed as relaxed atomics between the acquire load of seq and the
 *   acquire fence before its re-check, so a torn copy is detected and
 *   retried, and a length is read once and bounds-checked before use.
 * - Writers exclude each other per slot with a claim word (pid + expiry)
 *   taken by CAS; a claim whose process is dead, or whose expiry passed, is
 *   taken over, so nothing a dead worker held stays held.
 * - Flush is one increment of the header generation: entries of an older
 *   generation are misses and free for reuse.
 * - Fill leases live in their own table, not in the slots: a key being filled
 *   for the first time has no slot yet, and two processes choosing a slot for
 *   it at once could pick different ones and both "win".  A record found from
 *   the key hash alone is one place every process agrees on, so one CAS on
 *   its owner word decides.  It also leaves the key's stale entry readable
 *   during the refresh, and a lease costs no slot.  The price: two keys
 *   filled at the same moment may share a record (probability: fills in
 *   flight / nleases, with a seed clients cannot predict); the second then
 *   waits for the first fill, as for its own, and retries.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "testhook.h"

#define CACHE_MAGIC     UINT64_C(0x6361636864646566) /* "feeddcac" little-endian */
#define CACHE_VERSION   2
#define CACHE_WAYS      8
#define CACHE_MIN_SLOTS (4 * CACHE_WAYS)
/* Slot tiers: bodies up to 16 kB, then 4 times more per tier, the last
 * one cache_entry_max.  Each tier gets an equal share of cache_size. */
#define CACHE_TIERS       5
#define CACHE_TIER0_BODY  ((size_t)16 << 10)
#define CACHE_TIER_GROWTH 4
#define CACHE_HDR_SIZE    4096
#define CACHE_KEY_AREA    256 /* CACHE_KEY_MAX + 1, multiple of 8 */
#define CACHE_KEY_WORDS   (CACHE_KEY_AREA / 8)
#define CACHE_ENTRY_MIN   256
#define CACHE_ENTRY_LIMIT ((size_t)64 << 20)
#define CACHE_SIZE_LIMIT  ((size_t)1 << 40)
#define CACHE_TIME_LIMIT  ((int64_t)1 << 40) /* ms, ~35 years: no overflow in sums */
/* A write of the largest entry takes microseconds; a claim older than this
 * belongs to a process that is stopped (SIGSTOP, debugger) or whose pid was
 * reused after it died. */
#define CACHE_CLAIM_MS 1000
/* Lease records are direct-mapped by key hash; two keys filled at the same
 * moment share one with probability (fills in flight) / nleases. */
#define CACHE_LEASES_PER_SLOT 4
#define CACHE_READ_TRIES      8
#define CACHE_ODD_SPINS       256

/* Owner words (writer claims and leases): expiry ms << 22 | pid.  Linux
 * pids are below 2^22 (PID_MAX_LIMIT); 42 bits of monotonic ms last 139
 * years.  One word, so taking it over is one CAS.  0 is free. */
#define OWNER_PID_BITS 22
#define OWNER_PID_MASK ((UINT64_C(1) << OWNER_PID_BITS) - 1)
#define OWNER_EXP_MASK ((UINT64_C(1) << (64 - OWNER_PID_BITS)) - 1)

_Static_assert(
        ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2,
        "shared-memory atomics must be lock-free: a lock-based atomic's lock is per process");
_Static_assert(CACHE_KEY_AREA > CACHE_KEY_MAX, "the key area holds the longest key");

typedef struct cache_slot {
	_Atomic uint64_t seq;   /* seqlock: odd while being written */
	_Atomic uint64_t owner; /* writer claim, owner word or 0 */
	/* The entry: written only by the claim holder inside the seqlock,
	 * read by anyone (relaxed; the seqlock validates the copy). */
	_Atomic uint64_t keyhash; /* 0: empty or dropped */
	_Atomic uint64_t generation;
	_Atomic uint64_t stored; /* monotonic ms, as int64 */
	_Atomic uint64_t lens;   /* key length << 32 | body length */
	_Atomic uint64_t meta;   /* items_end << 32 | nitems */
	_Atomic uint64_t checksum;
	_Atomic uint64_t data[]; /* key words (CACHE_KEY_AREA), then body words */
} cache_slot_t;

_Static_assert(sizeof(cache_slot_t) == 64, "slot header is one cache line");

typedef struct cache_lease_rec {
	_Atomic uint64_t owner;      /* owner word or 0 */
	_Atomic uint64_t keyhash;    /* the key being filled (read by its owner only) */
	_Atomic uint64_t generation; /* when the lease was taken */
	uint64_t pad;
} cache_lease_rec_t;

typedef struct cache_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t ways;
	uint64_t size, nslots, entry_max, nleases;
	uint64_t ntiers, tier_nslots[CACHE_TIERS], tier_slot_size[CACHE_TIERS];
	int64_t ttl_ms, stale_ms;
	uint64_t seed[2];
	/* Written at run time, on a line of their own. */
	alignas(64) _Atomic uint64_t generation;
	_Atomic uint64_t evictions;
	_Atomic uint64_t checksum_failures;
	_Atomic uint64_t claims_stolen;
	_Atomic uint32_t hook_fired;
} cache_hdr_t;

_Static_assert(sizeof(cache_hdr_t) <= CACHE_HDR_SIZE, "header fits its page");

/* Slots of one size.  A page goes to the smallest tier it fits (or to a
 * free slot of a larger one), so a 12 kB page does not hold a slot sized
 * for cache_entry_max. */
typedef struct cache_tier {
	unsigned char *slots;
	uint64_t nsets, nslots, slot_size, body_max;
	uint64_t first; /* number of the tier's first slot in the whole table (logs) */
} cache_tier_t;

/* Private to each process (copied by fork): the geometry it trusts. */
struct cache {
	cache_hdr_t *hdr;
	cache_lease_rec_t *leases;
	cache_tier_t tiers[CACHE_TIERS];
	unsigned ntiers;
	size_t size;
	uint64_t nslots, entry_max, nleases;
	uint64_t seed0, seed1;
	int64_t ttl_ms, stale_ms;
	char name[NAME_MAX + 1];
};

typedef struct cache_entry {
	uint64_t seq; /* the even value the copy was read under */
	uint64_t generation;
	int64_t stored;
	uint64_t meta;
} cache_entry_t;

enum { READ_OK, READ_OTHER, READ_BUSY };

/* ---- hashing ---- */

/* clang-format off */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
	do { \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)
/* clang-format on */

/* SipHash-2-4: keyed, so the set a key lands in cannot be predicted by a
 * client choosing cursors. */
static uint64_t
siphash24(const void *src, size_t len, uint64_t k0, uint64_t k1)
{
	const unsigned char *p = src;
	uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575);
	uint64_t v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
	uint64_t v2 = k0 ^ UINT64_C(0x6c7967656e657261);
	uint64_t v3 = k1 ^ UINT64_C(0x7465646279746573);
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, tail = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; j < tail; j++)
		b |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t
key_hash(const cache_t *c, const char *key, size_t len)
{
	uint64_t h = siphash24(key, len, c->seed0, c->seed1);

	return h ? h : 1; /* 0 marks an empty slot */
}

/*
 * Entry checksum, over the words exactly as stored (fields, padded key,
 * padded body).  What it protects: a writer whose claim was taken over
 * because it stopped longer than CACHE_CLAIM_MS (SIGSTOP, a debugger, heavy
 * swapping) and that then resumes and keeps storing into a slot another
 * writer has since published.  Its publish CAS fails, but its stray stores
 * can land after the other writer made seq even, and the seqlock cannot see
 * that.  A writer killed mid-write needs no checksum: it leaves seq odd.
 * Four independent multiply-xor lanes: each step is a bijection of the lane
 * state, so one differing word always changes the result; cheap next to the
 * copy it rides along with.
 */
typedef struct cache_sum {
	uint64_t v[4];
	unsigned n;
} cache_sum_t;

static void
sum_init(cache_sum_t *s)
{
	s->v[0] = UINT64_C(0x243f6a8885a308d3);
	s->v[1] = UINT64_C(0x13198a2e03707344);
	s->v[2] = UINT64_C(0xa4093822299f31d0);
	s->v[3] = UINT64_C(0x082efa98ec4e6c89);
	s->n = 0;
}

static inline void
sum_add(cache_sum_t *s, uint64_t w)
{
	uint64_t *v = &s->v[s->n++ & 3];

	*v = (*v ^ w) * UINT64_C(0x9e3779b97f4a7c15);
	*v ^= *v >> 29;
}

/* The body copy of a read: the same lanes as sum_add, 4 words per step in
 * registers (sum_add keeps its lanes in memory, one dependent step each). */
static void
sum_copy_words(cache_sum_t *s, const _Atomic uint64_t *src, char *dst, size_t nw)
{
	uint64_t v0, v1, v2, v3;
	unsigned r = s->n & 3;
	size_t i = 0;

	v0 = s->v[r];
	v1 = s->v[(r + 1) & 3];
	v2 = s->v[(r + 2) & 3];
	v3 = s->v[(r + 3) & 3];
	for (; i + 4 <= nw; i += 4) {
		uint64_t w0 = atomic_load_explicit(&src[i], memory_order_relaxed);
		uint64_t w1 = atomic_load_explicit(&src[i + 1], memory_order_relaxed);
		uint64_t w2 = atomic_load_explicit(&src[i + 2], memory_order_relaxed);
		uint64_t w3 = atomic_load_explicit(&src[i + 3], memory_order_relaxed);

		memcpy(dst + 8 * i, &w0, 8);
		memcpy(dst + 8 * i + 8, &w1, 8);
		memcpy(dst + 8 * i + 16, &w2, 8);
		memcpy(dst + 8 * i + 24, &w3, 8);
		v0 = (v0 ^ w0) * UINT64_C(0x9e3779b97f4a7c15);
		v0 ^= v0 >> 29;
		v1 = (v1 ^ w1) * UINT64_C(0x9e3779b97f4a7c15);
		v1 ^= v1 >> 29;
		v2 = (v2 ^ w2) * UINT64_C(0x9e3779b97f4a7c15);
		v2 ^= v2 >> 29;
		v3 = (v3 ^ w3) * UINT64_C(0x9e3779b97f4a7c15);
		v3 ^= v3 >> 29;
	}
	s->v[r] = v0;
	s->v[(r + 1) & 3] = v1;
	s->v[(r + 2) & 3] = v2;
	s->v[(r + 3) & 3] = v3;
	s->n += (unsigned)i;
	for (; i < nw; i++) {
		uint64_t w = atomic_load_explicit(&src[i], memory_order_relaxed);

		sum_add(s, w);
		memcpy(dst + 8 * i, &w, 8);
	}
}

static uint64_t
sum_final(const cache_sum_t *s)
{
	uint64_t h = s->v[0] ^ ROTL(s->v[1], 16) ^ ROTL(s->v[2], 32) ^ ROTL(s->v[3], 48);

	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

/* ---- owner words ---- */

static uint64_t
owner_word(pid_t pid, int64_t expires)
{
	uint64_t p =
	        (uint64_t)pid <= OWNER_PID_MASK ? (uint64_t)pid : 0; /* 0: expiry alone decides */
	uint64_t e = expires > 0 ? (uint64_t)expires & OWNER_EXP_MASK : 0;
	uint64_t w = e << OWNER_PID_BITS | p;

	return w ? w : UINT64_C(1) << OWNER_PID_BITS;
}

/* The pid as an owner word holds it: 0 when it does not fit. */
static pid_t
my_pid(void)
{
	pid_t pid = getpid();

	return (uint64_t)pid <= OWNER_PID_MASK ? pid : 0;
}

static pid_t
owner_pid(uint64_t w)
{
	return (pid_t)(w & OWNER_PID_MASK);
}

static bool
owner_alive(uint64_t w, int64_t now)
{
	pid_t pid;

	if (w == 0)
		return false;
	if ((int64_t)(w >> OWNER_PID_BITS) <= now)
		return false;
	pid = owner_pid(w);
	/* A zombie still counts: the master reaps workers (and calls
	 * cache_reap) before their pid can be reused. */
	return pid == 0 || kill(pid, 0) == 0 || errno != ESRCH;
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static cache_slot_t *
slot_at(const cache_tier_t *t, uint64_t i)
{
	return (cache_slot_t *)(void *)(t->slots + i * t->slot_size);
}

/* Slot i of the whole table (the tiers one after the other). */
static cache_slot_t *
slot_nth(const cache_t *c, uint64_t i)
{
	unsigned t = 0;

	while (t + 1 < c->ntiers && i >= c->tiers[t].first + c->tiers[t].nslots)
		t++;
	return slot_at(&c->tiers[t], i - c->tiers[t].first);
}

/* The first slot of h's set in tier t. */
static uint64_t
set_base(const cache_tier_t *t, uint64_t h)
{
	return (h % t->nsets) * CACHE_WAYS;
}

/* The slot's number in the whole table, for logs. */
static uint64_t
slot_number(const cache_t *c, const cache_slot_t *sl)
{
	const unsigned char *p = (const unsigned char *)sl;

	for (unsigned i = 0; i < c->ntiers; i++) {
		const cache_tier_t *t = &c->tiers[i];

		if (p >= t->slots && p < t->slots + t->nslots * t->slot_size)
			return t->first + (uint64_t)(p - t->slots) / t->slot_size;
	}
	return UINT64_MAX;
}

/* The smallest tier whose slots hold a body of len bytes. */
static unsigned
tier_for(const cache_t *c, size_t len)
{
	unsigned i = 0;

	while (i + 1 < c->ntiers && c->tiers[i].body_max < len)
		i++;
	return i;
}

static cache_lease_rec_t *
lease_of(const cache_t *c, uint64_t h)
{
	/* Other bits than the set index, so one set's keys spread over leases. */
	return &c->leases[ROTL(h, 29) & (c->nleases - 1)];
}

static cache_state_t
entry_state(const cache_t *c, uint64_t gen_now, uint64_t gen, int64_t stored, int64_t now)
{
	if (gen != gen_now)
		return CACHE_MISS;
	if (now < stored + c->ttl_ms)
		return CACHE_HIT;
	if (now < stored + c->ttl_ms + c->stale_ms)
		return CACHE_STALE;
	return CACHE_MISS;
}

/* The key as the words stored in a slot: zero-padded. */
static void
key_words(const char *key, size_t klen, uint64_t kw[CACHE_KEY_WORDS])
{
	memset(kw, 0, CACHE_KEY_AREA);
	memcpy(kw, key, klen);
}

/* ---- create / destroy ---- */

static size_t
round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

static int
shm_name(char *out, size_t outlen, const char *name)
{
	int n;

	if (name == NULL || name[0] == '\0' || strchr(name + 1, '/') != NULL) {
		log_error("cache: bad shared memory name \"%s\"", name ? name : "(null)");
		return -1;
	}
	n = snprintf(out, outlen, "%s%s", name[0] == '/' ? "" : "/", name);
	if (n < 0 || (size_t)n >= outlen || n > NAME_MAX) {
		log_error("cache: shared memory name \"%s\" too long", name);
		return -1;
	}
	return 0;
}

static void
seed_init(uint64_t seed[2])
{
	ssize_t n = getrandom(seed, 2 * sizeof(uint64_t), GRND_NONBLOCK);

	if (n == (ssize_t)(2 * sizeof(uint64_t)))
		return;
	/* Early boot without entropy: predictable seeds only make a set
	 * collision flood possible, which costs hit ratio, never memory. */
	log_warn("cache: getrandom: %s; hashing with a weaker seed",
	         n < 0 ? strerror(errno) : "short read");
	seed[0] = (uint64_t)clock_wall_us() ^ UINT64_C(0x9e3779b97f4a7c15);
	seed[1] = (uint64_t)getpid() * UINT64_C(0xc2b2ae3d27d4eb4f) ^ (uint64_t)clock_mono_ms();
}

static size_t
slot_bytes(size_t body_max)
{
	return round_up(sizeof(cache_slot_t) + CACHE_KEY_AREA + round_up(body_max, 8), 64);
}

/* Shares avail bytes equally among ntiers tiers of bodies up to 16 kB,
 * 64 kB, ..., the last up to entry_max.  -1 when a tier would hold fewer
 * than CACHE_MIN_SLOTS entries. */
static int
tiers_plan(size_t avail, size_t entry_max, unsigned ntiers, cache_tier_t *t)
{
	size_t body = CACHE_TIER0_BODY;

	for (unsigned i = 0; i < ntiers; i++, body *= CACHE_TIER_GROWTH) {
		size_t n;

		t[i].body_max = i + 1 == ntiers ? entry_max : body;
		t[i].slot_size = slot_bytes(t[i].body_max);
		n = avail / ntiers /
		    (t[i].slot_size + CACHE_LEASES_PER_SLOT * sizeof(cache_lease_rec_t));
		n -= n % CACHE_WAYS;
		if (n < CACHE_MIN_SLOTS)
			return -1;
		t[i].nslots = n;
		t[i].nsets = n / CACHE_WAYS;
	}
	return 0;
}

/* As many tiers as entry_max calls for and cache_size can give each at
 * least CACHE_MIN_SLOTS entries; 0 when not even one tier of entry_max. */
static unsigned
tiers_choose(size_t avail, size_t entry_max, cache_tier_t *t)
{
	unsigned want = 1;

	for (size_t body = CACHE_TIER0_BODY; body < entry_max && want < CACHE_TIERS;
	     body *= CACHE_TIER_GROWTH)
		want++;
	for (unsigned n = want; n > 0; n--)
		if (tiers_plan(avail, entry_max, n, t) == 0)
			return n;
	return 0;
}

cache_t *
cache_create(const char *name, size_t bytes, size_t entry_max, int64_t ttl_ms, int64_t stale_ms)
{
	cache_tier_t tiers[CACHE_TIERS];
	size_t nslots = 0, nleases, lease_bytes, size, off;
	unsigned ntiers;
	cache_hdr_t *hdr;
	cache_t *c;
	void *map;
	int fd, err;

	if (entry_max < CACHE_ENTRY_MIN || entry_max > CACHE_ENTRY_LIMIT) {
		log_error("cache: cache_entry_max %zu is outside %d..%zu", entry_max,
		          CACHE_ENTRY_MIN, CACHE_ENTRY_LIMIT);
		return NULL;
	}
	if (ttl_ms < 0 || ttl_ms > CACHE_TIME_LIMIT || stale_ms < 0 ||
	    stale_ms > CACHE_TIME_LIMIT) {
		log_error("cache: cache_ttl %lld ms / cache_stale %lld ms out of range",
		          (long long)ttl_ms, (long long)stale_ms);
		return NULL;
	}
	if (bytes > CACHE_SIZE_LIMIT) {
		log_error("cache: cache_size %zu is larger than %zu", bytes, CACHE_SIZE_LIMIT);
		return NULL;
	}
	ntiers =
	        bytes > CACHE_HDR_SIZE ? tiers_choose(bytes - CACHE_HDR_SIZE, entry_max, tiers) : 0;
	if (ntiers == 0) {
		size_t per_slot =
		        slot_bytes(entry_max) + CACHE_LEASES_PER_SLOT * sizeof(cache_lease_rec_t);

		log_error(
		        "cache: cache_size %zu holds fewer than %d entries of cache_entry_max %zu; "
		        "need at least %zu bytes",
		        bytes, CACHE_MIN_SLOTS, entry_max,
		        (size_t)CACHE_HDR_SIZE + CACHE_MIN_SLOTS * per_slot);
		return NULL;
	}
	for (unsigned i = 0; i < ntiers; i++)
		nslots += tiers[i].nslots;
	for (nleases = 1; nleases * 2 <= CACHE_LEASES_PER_SLOT * nslots; nleases *= 2)
		;
	lease_bytes = round_up(nleases * sizeof(cache_lease_rec_t), 64);
	size = CACHE_HDR_SIZE + lease_bytes;
	for (unsigned i = 0; i < ntiers; i++)
		size += tiers[i].nslots * tiers[i].slot_size;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		log_error("cache: out of memory");
		return NULL;
	}
	if (shm_name(c->name, sizeof(c->name), name) < 0)
		goto fail;
	if (shm_unlink(c->name) == 0)
		log_info("cache: removed %s left by an earlier instance", c->name);
	else if (errno != ENOENT)
		log_warn("cache: shm_unlink %s: %s", c->name, strerror(errno));
	fd = shm_open(c->name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("cache: shm_open %s: %s", c->name, strerror(errno));
		goto fail;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		log_error("cache: ftruncate %s to %zu: %s", c->name, size, strerror(errno));
		goto fail_fd;
	}
	/* Reserve the pages now: a /dev/shm too small for cache_size must fail
	 * the start, not kill a worker with SIGBUS on its first write. */
	err = posix_fallocate(fd, 0, (off_t)size);
	if (err != 0 && err != EOPNOTSUPP && err != EINVAL) {
		log_error("cache: reserving %zu bytes for %s: %s", size, c->name, strerror(err));
		goto fail_fd;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		log_error("cache: mmap %s (%zu bytes): %s", c->name, size, strerror(errno));
		goto fail_fd;
	}
	close(fd);

	c->hdr = hdr = map;
	c->leases = (cache_lease_rec_t *)(void *)((unsigned char *)map + CACHE_HDR_SIZE);
	off = CACHE_HDR_SIZE + lease_bytes;
	for (unsigned i = 0; i < ntiers; i++) {
		c->tiers[i] = tiers[i];
		c->tiers[i].slots = (unsigned char *)map + off;
		c->tiers[i].first = i == 0 ? 0 : c->tiers[i - 1].first + c->tiers[i - 1].nslots;
		off += tiers[i].nslots * tiers[i].slot_size;
		hdr->tier_nslots[i] = tiers[i].nslots;
		hdr->tier_slot_size[i] = tiers[i].slot_size;
	}
	c->ntiers = ntiers;
	c->size = size;
	c->nslots = nslots;
	c->entry_max = entry_max;
	c->nleases = nleases;
	c->ttl_ms = ttl_ms;
	c->stale_ms = stale_ms;
	seed_init(hdr->seed);
	c->seed0 = hdr->seed[0];
	c->seed1 = hdr->seed[1];

	hdr->version = CACHE_VERSION;
	hdr->ways = CACHE_WAYS;
	hdr->size = size;
	hdr->nslots = nslots;
	hdr->ntiers = ntiers;
	hdr->entry_max = entry_max;
	hdr->nleases = nleases;
	hdr->ttl_ms = ttl_ms;
	hdr->stale_ms = stale_ms;
	/* Generation 0 is what an untouched (zeroed) slot holds: never valid. */
	atomic_init(&hdr->generation, 1);
	hdr->magic = CACHE_MAGIC;
	{
		char tiers_text[160];
		size_t len = 0;

		tiers_text[0] = '\0';
		for (unsigned i = 0; i < ntiers && len < sizeof(tiers_text); i++) {
			int n = snprintf(tiers_text + len, sizeof(tiers_text) - len,
			                 "%s%llu up to %zu kB", i ? ", " : "",
			                 (unsigned long long)tiers[i].nslots,
			                 (size_t)((tiers[i].body_max + 1023) / 1024));

			if (n < 0)
				break;
			len += (size_t)n;
		}
		log_info("cache: %s: %zu entries (%s) in %zu bytes", c->name, nslots, tiers_text,
		         size);
	}
	return c;

fail_fd:
	close(fd);
	shm_unlink(c->name);
fail:
	free(c);
	return NULL;
}

void
cache_destroy(cache_t *c, int unlink_name)
{
	if (c == NULL)
		return;
	if (munmap(c->hdr, c->size) < 0)
		log_warn("cache: munmap %s: %s", c->name, strerror(errno));
	if (unlink_name && shm_unlink(c->name) < 0 && errno != ENOENT)
		log_warn("cache: shm_unlink %s: %s", c->name, strerror(errno));
	free(c);
}

/* ---- reading ---- */

/* A read that serves nothing: an earlier try may have copied over the NUL
 * that ends *body. */
static int
read_fail(buf_t *body, size_t base, int rc)
{
	if (body->data != NULL)
		body->data[base] = '\0';
	return rc;
}

/* One seqlock read of a slot expected to hold key (hash h, words kw).  The
 * body is copied after body->len, into reserved room, and becomes part of
 * *body (len moves) only once the re-check and the checksum accept it: the
 * bytes of a torn copy are never inside *body, whatever the caller does
 * with it.  Otherwise body->len stays and the NUL after it is restored. */
static int
slot_read(cache_t *c, const cache_tier_t *t, cache_slot_t *sl, uint64_t h, const uint64_t *kw,
          size_t klen, buf_t *body, cache_entry_t *e)
{
	const _Atomic uint64_t *bw = sl->data + CACHE_KEY_WORDS;
	size_t base = body->len;
	unsigned tries = 0, spins = 0;

	while (tries < CACHE_READ_TRIES) {
		uint64_t s0, s1, kh, lens, ck, w;
		size_t bl, nw, i;
		bool same = true;
		cache_sum_t sum;

		/* Pairs with the writer's release CAS that made seq even: seeing
		 * that value, every store of that write is visible below. */
		s0 = atomic_load_explicit(&sl->seq, memory_order_acquire);
		if (s0 & 1) {
			if (++spins > CACHE_ODD_SPINS)
				return read_fail(body, base, READ_BUSY);
			cpu_relax();
			continue;
		}
		tries++;
		/* Relaxed loads inside the seqlock: any of them may be torn
		 * across two writes; the re-check of seq below decides. */
		kh = atomic_load_explicit(&sl->keyhash, memory_order_relaxed);
		e->generation = atomic_load_explicit(&sl->generation, memory_order_relaxed);
		e->stored = (int64_t)atomic_load_explicit(&sl->stored, memory_order_relaxed);
		lens = atomic_load_explicit(&sl->lens, memory_order_relaxed);
		e->meta = atomic_load_explicit(&sl->meta, memory_order_relaxed);
		ck = atomic_load_explicit(&sl->checksum, memory_order_relaxed);
		bl = (size_t)(lens & UINT32_MAX);
		if (kh != h || (lens >> 32) != klen || bl > t->body_max) {
			same = false;
			goto recheck;
		}
		sum_init(&sum);
		sum_add(&sum, kh);
		sum_add(&sum, e->generation);
		sum_add(&sum, (uint64_t)e->stored);
		sum_add(&sum, lens);
		sum_add(&sum, e->meta);
		for (i = 0; i < (klen + 7) / 8; i++) {
			w = atomic_load_explicit(&sl->data[i], memory_order_relaxed);
			sum_add(&sum, w);
			if (w != kw[i])
				same = false;
		}
		if (!same)
			goto recheck;
		if (buf_reserve(body, bl) < 0) {
			log_error("cache: out of memory copying an entry of %zu bytes", bl);
			return read_fail(body, base, READ_BUSY);
		}
		nw = bl / 8;
		sum_copy_words(&sum, bw, body->data + base, nw);
		if (bl & 7) {
			w = atomic_load_explicit(&bw[nw], memory_order_relaxed);
			sum_add(&sum, w);
			memcpy(body->data + base + 8 * nw, &w, bl & 7);
		}
	recheck:
		/* Pairs with the writer's release fence after it made seq odd:
		 * if any load above saw a store of a later write, the load of
		 * seq below sees that write's odd value (or a later one). */
		atomic_thread_fence(memory_order_acquire);
		s1 = atomic_load_explicit(&sl->seq, memory_order_relaxed);
		if (s1 != s0)
			continue;
		if (!same)
			return read_fail(body, base, READ_OTHER);
		if (sum_final(&sum) != ck) {
			atomic_fetch_add_explicit(&c->hdr->checksum_failures, 1,
			                          memory_order_relaxed);
			log_warn("cache: torn entry in slot %llu caught by its checksum (a writer "
			         "stalled past its claim?); treated as a miss",
			         (unsigned long long)slot_number(c, sl));
			return read_fail(body, base, READ_OTHER);
		}
		body->len = base + bl;
		body->data[body->len] = '\0';
		e->seq = s0;
		return READ_OK;
	}
	return read_fail(body, base, READ_BUSY);
}

/* The slots that may hold a copy of the key with hash h (a hint read
 * outside the seqlock), newest first: two writers racing on a new key can
 * leave two copies in a set, and a page that changed size can leave its
 * older copy in another tier.  Returns how many. */
static size_t
candidates(const cache_t *c, uint64_t h, cache_slot_t **cand, const cache_tier_t **tier)
{
	int64_t when[CACHE_TIERS * CACHE_WAYS];
	size_t n = 0;

	for (unsigned t = 0; t < c->ntiers; t++) {
		const cache_tier_t *tt = &c->tiers[t];
		uint64_t base = set_base(tt, h);

		for (unsigned i = 0; i < CACHE_WAYS; i++) {
			cache_slot_t *sl = slot_at(tt, base + i);
			size_t j;
			int64_t st;

			if (atomic_load_explicit(&sl->keyhash, memory_order_relaxed) != h)
				continue;
			st = (int64_t)atomic_load_explicit(&sl->stored, memory_order_relaxed);
			for (j = n; j > 0 && when[j - 1] < st; j--) {
				cand[j] = cand[j - 1];
				tier[j] = tier[j - 1];
				when[j] = when[j - 1];
			}
			cand[j] = sl;
			tier[j] = tt;
			when[j] = st;
			n++;
		}
	}
	return n;
}

static uint64_t
generation_now(const cache_t *c)
{
	/* Relaxed: the generation publishes nothing else; a flush that has not
	 * reached this core yet is as if it came a moment later. */
	return atomic_load_explicit(&c->hdr->generation, memory_order_relaxed);
}

cache_state_t
cache_get_ref(cache_t *c, const char *key, int64_t now, buf_t *body, cache_meta_t *meta,
              cache_ref_t *ref)
{
	size_t klen = strlen(key), n, len0 = body->len;
	uint64_t kw[CACHE_KEY_WORDS], h, gen_now;
	cache_slot_t *cand[CACHE_TIERS * CACHE_WAYS];
	const cache_tier_t *tier[CACHE_TIERS * CACHE_WAYS];

	if (klen > CACHE_KEY_MAX)
		return CACHE_MISS;
	h = key_hash(c, key, klen);
	key_words(key, klen, kw);
	gen_now = generation_now(c);
	n = candidates(c, h, cand, tier);
	for (size_t i = 0; i < n; i++) {
		cache_entry_t e;
		cache_state_t st;

		if (slot_read(c, tier[i], cand[i], h, kw, klen, body, &e) != READ_OK)
			continue;
		st = entry_state(c, gen_now, e.generation, e.stored, now);
		if (st == CACHE_MISS) {
			body->len = len0;
			body->data[len0] = '\0';
			continue;
		}
		if (meta != NULL) {
			meta->nitems = (uint32_t)(e.meta & UINT32_MAX);
			meta->items_end = (uint32_t)(e.meta >> 32);
		}
		if (ref != NULL) {
			ref->slot = cand[i];
			ref->seq = e.seq;
			ref->keyhash = h;
			ref->generation = e.generation;
			ref->stored = e.stored;
		}
		return st;
	}
	return CACHE_MISS;
}

cache_state_t
cache_get_append(cache_t *c, const char *key, int64_t now, buf_t *body, cache_meta_t *meta)
{
	return cache_get_ref(c, key, now, body, meta, NULL);
}

cache_state_t
cache_get(cache_t *c, const char *key, int64_t now, buf_t *body, cache_meta_t *meta)
{
	buf_reset(body);
	return cache_get_append(c, key, now, body, meta);
}

uint64_t
cache_key_hash(const cache_t *c, const char *key)
{
	return key_hash(c, key, strlen(key));
}

cache_state_t
cache_check(cache_t *c, const cache_ref_t *ref, int64_t now)
{
	cache_slot_t *cand[CACHE_TIERS * CACHE_WAYS];
	const cache_tier_t *tier[CACHE_TIERS * CACHE_WAYS];

	/* A read would try the newest candidate first and return it if it
	 * is servable; if that is ref's slot with ref's seq, it would read
	 * the very bytes ref's holder copied then (seq only grows, and every
	 * write makes it odd first).  Anything else: let a read decide. */
	if (candidates(c, ref->keyhash, cand, tier) == 0 || cand[0] != ref->slot)
		return CACHE_MISS;
	/* Acquire, as a read's first load: pairs with the release that made
	 * ref->seq current, or shows a later write's value. */
	if (atomic_load_explicit(&cand[0]->seq, memory_order_acquire) != ref->seq)
		return CACHE_MISS;
	return entry_state(c, generation_now(c), ref->generation, ref->stored, now);
}

/* ---- leases ---- */

int
cache_lease(cache_t *c, const char *key, int64_t now, int64_t lease_ms)
{
	uint64_t h = key_hash(c, key, strlen(key));
	cache_lease_rec_t *r = lease_of(c, h);
	uint64_t me = owner_word(getpid(), now + (lease_ms > 0 ? lease_ms : 1));
	uint64_t w = atomic_load_explicit(&r->owner, memory_order_relaxed);

	for (int i = 0; i < 4; i++) {
		if (owner_alive(w, now))
			return 0;
		/* One CAS decides among all processes.  Acquire pairs with the
		 * release of the previous holder's put/release (not needed for
		 * correctness of the lease itself, which carries no data). */
		if (atomic_compare_exchange_strong_explicit(&r->owner, &w, me, memory_order_acquire,
		                                            memory_order_relaxed)) {
			/* Only this process reads these two back (in put/release). */
			atomic_store_explicit(&r->keyhash, h, memory_order_relaxed);
			atomic_store_explicit(
			        &r->generation,
			        atomic_load_explicit(&c->hdr->generation, memory_order_relaxed),
			        memory_order_relaxed);
			if (w != 0)
				log_info("cache: took over a fill lease of pid %d (%s)",
				         (int)owner_pid(w),
				         (int64_t)(w >> OWNER_PID_BITS) <= now ? "expired"
				                                               : "process gone");
			return 1;
		}
	}
	return 0;
}

/* Our lease record for h, or NULL. */
static cache_lease_rec_t *
lease_mine(cache_t *c, uint64_t h, uint64_t *word)
{
	cache_lease_rec_t *r = lease_of(c, h);
	uint64_t w = atomic_load_explicit(&r->owner, memory_order_relaxed);

	if (w == 0 || owner_pid(w) != my_pid() ||
	    atomic_load_explicit(&r->keyhash, memory_order_relaxed) != h)
		return NULL;
	*word = w;
	return r;
}

static void
lease_drop(cache_t *c, uint64_t h)
{
	uint64_t w;
	cache_lease_rec_t *r = lease_mine(c, h, &w);

	/* CAS, not store: if our lease expired and was taken over, it is no
	 * longer ours to free.  Release pairs with the next taker's acquire. */
	if (r != NULL)
		atomic_compare_exchange_strong_explicit(&r->owner, &w, 0, memory_order_release,
		                                        memory_order_relaxed);
}

void
cache_release(cache_t *c, const char *key)
{
	lease_drop(c, key_hash(c, key, strlen(key)));
}

/* ---- writing ---- */

static bool
slot_claim(cache_t *c, cache_slot_t *sl, uint64_t me, int64_t now)
{
	uint64_t w = atomic_load_explicit(&sl->owner, memory_order_relaxed);

	if (owner_alive(w, now))
		return false;
	/* Acquire pairs with the previous holder's release in slot_unclaim:
	 * its writes to the slot (seq included) happen before ours.  A holder
	 * that died never released; its stores are long visible (the kernel
	 * switched contexts since) and the seq we read only needs to be its
	 * latest value or older, as any value we then overwrite is. */
	if (!atomic_compare_exchange_strong_explicit(&sl->owner, &w, me, memory_order_acquire,
	                                             memory_order_relaxed))
		return false;
	if (w != 0) {
		atomic_fetch_add_explicit(&c->hdr->claims_stolen, 1, memory_order_relaxed);
		log_warn("cache: took over slot %llu from writer pid %d (%s)",
		         (unsigned long long)slot_number(c, sl), (int)owner_pid(w),
		         (int64_t)(w >> OWNER_PID_BITS) <= now ? "claim expired" : "process gone");
	}
	return true;
}

static void
slot_unclaim(cache_slot_t *sl, uint64_t me)
{
	/* Release pairs with the next claimant's acquire CAS.  CAS so that a
	 * claim taken over from us (we stalled) stays with its new holder. */
	atomic_compare_exchange_strong_explicit(&sl->owner, &me, 0, memory_order_release,
	                                        memory_order_relaxed);
}

/* Makes seq odd; returns the odd value. */
static uint64_t
seq_begin(cache_slot_t *sl)
{
	/* Relaxed: only claim holders store seq, and our claim's acquire
	 * ordered us after the previous holder.  Odd already means a writer
	 * died (or stalled) mid-write: step to a new odd value so that its
	 * publish CAS, should it resume, fails. */
	uint64_t s = atomic_load_explicit(&sl->seq, memory_order_relaxed);
	uint64_t odd = (s & 1) ? s + 2 : s + 1;

	atomic_store_explicit(&sl->seq, odd, memory_order_relaxed);
	/* Pairs with the reader's acquire fence before its re-check: a reader
	 * that sees any store below also sees seq odd (changed) on re-check. */
	atomic_thread_fence(memory_order_release);
	return odd;
}

/* Makes seq even; -1 when our claim was taken over meanwhile. */
static int
seq_end(cache_slot_t *sl, uint64_t odd)
{
	/* Release pairs with the reader's acquire load of seq: a reader that
	 * loads odd + 1 sees every store of this write. */
	return atomic_compare_exchange_strong_explicit(&sl->seq, &odd, odd + 1,
	                                               memory_order_release, memory_order_relaxed)
	               ? 0
	               : -1;
}

static void
store_words(_Atomic uint64_t *dst, const char *src, size_t len, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		uint64_t w = 0;

		memcpy(&w, src + 8 * i, 8 * i + 8 <= len ? 8 : len - 8 * i);
		/* Relaxed: ordered by the fence in seq_begin and the release in seq_end. */
		atomic_store_explicit(&dst[i], w, memory_order_relaxed);
	}
}

static bool
stall_hook_armed(cache_t *c, const char *key)
{
	const char *v = TESTHOOK("CACHE_STALL_WRITE");

	if (v == NULL || v[0] == '\0' || (strcmp(v, "1") != 0 && strcmp(v, key) != 0))
		return false;
	return atomic_exchange_explicit(&c->hdr->hook_fired, 1, memory_order_relaxed) == 0;
}

static int
slot_write(cache_t *c, cache_slot_t *sl, uint64_t h, const char *key, size_t klen, const char *body,
           size_t len, uint64_t meta, uint64_t gen, int64_t now)
{
	_Atomic uint64_t *bw = sl->data + CACHE_KEY_WORDS;
	uint64_t kw[CACHE_KEY_WORDS], lens = (uint64_t)klen << 32 | len, odd, w;
	size_t kn = (klen + 7) / 8, bn = (len + 7) / 8, i;
	cache_sum_t sum;

	key_words(key, klen, kw);
	sum_init(&sum);
	sum_add(&sum, h);
	sum_add(&sum, gen);
	sum_add(&sum, (uint64_t)now);
	sum_add(&sum, lens);
	sum_add(&sum, meta);
	for (i = 0; i < kn; i++)
		sum_add(&sum, kw[i]);
	for (i = 0; i < bn; i++) {
		w = 0;
		memcpy(&w, body + 8 * i, 8 * i + 8 <= len ? 8 : len - 8 * i);
		sum_add(&sum, w);
	}

	odd = seq_begin(sl);
	atomic_store_explicit(&sl->keyhash, h, memory_order_relaxed);
	atomic_store_explicit(&sl->generation, gen, memory_order_relaxed);
	atomic_store_explicit(&sl->stored, (uint64_t)now, memory_order_relaxed);
	atomic_store_explicit(&sl->lens, lens, memory_order_relaxed);
	atomic_store_explicit(&sl->meta, meta, memory_order_relaxed);
	atomic_store_explicit(&sl->checksum, sum_final(&sum), memory_order_relaxed);
	for (i = 0; i < kn; i++)
		atomic_store_explicit(&sl->data[i], kw[i], memory_order_relaxed);
	store_words(bw, body, len, 0, bn / 2);
	if (stall_hook_armed(c, key)) {
		log_warn("cache: test hook: stalling the write of \"%s\" halfway", key);
		for (;;)
			sleep(1);
	}
	store_words(bw, body, len, bn / 2, bn);
	if (seq_end(sl, odd) < 0) {
		log_warn("cache: slot %llu was taken over while this process wrote it "
		         "(stopped over %d ms); \"%s\" not stored",
		         (unsigned long long)slot_number(c, sl), CACHE_CLAIM_MS, key);
		return -1;
	}
	return 0;
}

typedef struct cache_cand {
	cache_slot_t *sl;
	int rank; /* 0 same key, 1 free, 2 live entry */
	unsigned tier;
	int64_t stored;
} cache_cand_t;

static bool
cand_before(const cache_cand_t *a, const cache_cand_t *b)
{
	if (a->rank != b->rank)
		return a->rank < b->rank;
	if (a->tier != b->tier)
		return a->tier < b->tier;
	return a->stored < b->stored;
}

/* The slots a new entry of len bytes may take, in the order it should try
 * them: one holding its key, then a free one (smallest tier first), then
 * the oldest live entry of the smallest tier it fits.  A larger tier's
 * live entries are not evicted for it: they may fit nowhere else.
 * Returns how many went into out. */
static unsigned
victims(cache_t *c, uint64_t h, size_t len, uint64_t gen_now, int64_t now,
        cache_cand_t out[CACHE_TIERS * CACHE_WAYS])
{
	unsigned n = 0, t0 = tier_for(c, len);

	for (unsigned t = t0; t < c->ntiers; t++) {
		const cache_tier_t *tt = &c->tiers[t];
		uint64_t base = set_base(tt, h);

		for (unsigned i = 0; i < CACHE_WAYS; i++) {
			cache_slot_t *sl = slot_at(tt, base + i);
			/* Hints read outside any seqlock; a wrong guess only
			 * picks a worse victim. */
			uint64_t kh = atomic_load_explicit(&sl->keyhash, memory_order_relaxed);
			uint64_t g = atomic_load_explicit(&sl->generation, memory_order_relaxed);
			int64_t st =
			        (int64_t)atomic_load_explicit(&sl->stored, memory_order_relaxed);
			uint64_t s = atomic_load_explicit(&sl->seq, memory_order_relaxed);
			cache_cand_t cd = {sl, 2, t, st};
			unsigned j;

			if (kh == h)
				cd.rank = 0;
			else if (kh == 0 || (s & 1) ||
			         entry_state(c, gen_now, g, st, now) == CACHE_MISS)
				cd.rank = 1;
			if (cd.rank == 2 && t != t0)
				continue;
			for (j = n; j > 0 && cand_before(&cd, &out[j - 1]); j--)
				out[j] = out[j - 1];
			out[j] = cd;
			n++;
		}
	}
	return n;
}

int
cache_put(cache_t *c, const char *key, const char *body, size_t len, const cache_meta_t *meta,
          int64_t now)
{
	size_t klen = strlen(key);
	uint64_t h = key_hash(c, key, klen), gen, gen_now, lw, me, m;
	cache_lease_rec_t *r;
	cache_cand_t cand[CACHE_TIERS * CACHE_WAYS];
	cache_slot_t *sl = NULL;
	unsigned ncand;
	bool evicted;
	int rc;

	gen_now = atomic_load_explicit(&c->hdr->generation, memory_order_relaxed);
	r = lease_mine(c, h, &lw);
	gen = r != NULL ? atomic_load_explicit(&r->generation, memory_order_relaxed) : gen_now;
	if (klen > CACHE_KEY_MAX || len > c->entry_max) {
		log_warn(
		        "cache: not caching \"%.64s\": %zu bytes (cache_entry_max %zu), key of %zu "
		        "(at most %d)",
		        key, len, c->entry_max, klen, CACHE_KEY_MAX);
		lease_drop(c, h);
		return -1;
	}

	me = owner_word(getpid(), now + CACHE_CLAIM_MS);
	ncand = victims(c, h, len, gen_now, now, cand);
	for (unsigned i = 0; i < ncand && sl == NULL; i++)
		if (slot_claim(c, cand[i].sl, me, now))
			sl = cand[i].sl;
	if (sl == NULL) {
		log_debug("cache: every slot for \"%.64s\" is being written; not cached", key);
		lease_drop(c, h);
		return -1;
	}

	/* Under our claim nobody else writes the slot: plain reads are exact. */
	{
		uint64_t kh = atomic_load_explicit(&sl->keyhash, memory_order_relaxed);
		uint64_t g = atomic_load_explicit(&sl->generation, memory_order_relaxed);
		int64_t st = (int64_t)atomic_load_explicit(&sl->stored, memory_order_relaxed);
		uint64_t s = atomic_load_explicit(&sl->seq, memory_order_relaxed);

		evicted = kh != 0 && kh != h && !(s & 1) &&
		          entry_state(c, gen_now, g, st, now) != CACHE_MISS;
	}
	m = (uint64_t)meta->items_end << 32 | meta->nitems;
	rc = slot_write(c, sl, h, key, klen, body, len, m, gen, now);
	if (rc == 0)
		slot_unclaim(sl, me);
	lease_drop(c, h);
	if (rc == 0 && evicted) {
		atomic_fetch_add_explicit(&c->hdr->evictions, 1, memory_order_relaxed);
		metrics_add(METRICS_CACHE_EVICTIONS, 1);
	}
	return rc;
}

void
cache_flush(cache_t *c)
{
	/* Relaxed: see cache_get.  Entries keep their old generation and
	 * become misses, free for the next put. */
	atomic_fetch_add_explicit(&c->hdr->generation, 1, memory_order_relaxed);
}

void
cache_stats(cache_t *c, cache_stats_t *out)
{
	uint64_t gen_now = atomic_load_explicit(&c->hdr->generation, memory_order_relaxed);
	int64_t now = clock_mono_ms();

	memset(out, 0, sizeof(*out));
	/* A racy scan without the seqlock: an estimate for /metrics, at most
	 * the few entries being written at this instant off. */
	for (uint64_t i = 0; i < c->nslots; i++) {
		cache_slot_t *sl = slot_nth(c, i);
		uint64_t g, lens;
		int64_t st;

		if (atomic_load_explicit(&sl->keyhash, memory_order_relaxed) == 0 ||
		    (atomic_load_explicit(&sl->seq, memory_order_relaxed) & 1))
			continue;
		g = atomic_load_explicit(&sl->generation, memory_order_relaxed);
		st = (int64_t)atomic_load_explicit(&sl->stored, memory_order_relaxed);
		if (entry_state(c, gen_now, g, st, now) == CACHE_MISS)
			continue;
		lens = atomic_load_explicit(&sl->lens, memory_order_relaxed);
		out->entries++;
		out->bytes += lens & UINT32_MAX;
	}
	out->capacity_entries = c->nslots;
	out->evictions = atomic_load_explicit(&c->hdr->evictions, memory_order_relaxed);
	out->checksum_failures =
	        atomic_load_explicit(&c->hdr->checksum_failures, memory_order_relaxed);
	out->claims_stolen = atomic_load_explicit(&c->hdr->claims_stolen, memory_order_relaxed);
}

int
cache_reap(cache_t *c, pid_t pid)
{
	int64_t now = clock_mono_ms();
	uint64_t me = owner_word(getpid(), now + CACHE_CLAIM_MS);
	int n = 0;

	if (pid <= 0 || (uint64_t)pid > OWNER_PID_MASK)
		return 0;
	for (uint64_t i = 0; i < c->nslots; i++) {
		cache_slot_t *sl = slot_nth(c, i);
		uint64_t w = atomic_load_explicit(&sl->owner, memory_order_relaxed);

		if (w == 0 || owner_pid(w) != pid)
			continue;
		/* Acquire/release as in slot_claim/slot_unclaim. */
		if (!atomic_compare_exchange_strong_explicit(
		            &sl->owner, &w, me, memory_order_acquire, memory_order_relaxed))
			continue;
		if (atomic_load_explicit(&sl->seq, memory_order_relaxed) & 1) {
			uint64_t odd = seq_begin(sl);

			atomic_store_explicit(&sl->keyhash, 0, memory_order_relaxed);
			seq_end(sl, odd);
			log_warn("cache: worker %d died while writing cache slot %llu; entry "
			         "dropped",
			         (int)pid, (unsigned long long)i);
		}
		slot_unclaim(sl, me);
		n++;
	}
	for (uint64_t i = 0; i < c->nleases; i++) {
		cache_lease_rec_t *r = &c->leases[i];
		uint64_t w = atomic_load_explicit(&r->owner, memory_order_relaxed);

		if (w == 0 || owner_pid(w) != pid)
			continue;
		if (atomic_compare_exchange_strong_explicit(&r->owner, &w, 0, memory_order_release,
		                                            memory_order_relaxed)) {
			log_info("cache: released a fill lease held by dead worker %d", (int)pid);
			n++;
		}
	}
	return n;
}

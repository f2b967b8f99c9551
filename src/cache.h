/* The feed cache shared by all workers: POSIX shared memory, seqlocks, fill leases, generations. */
#ifndef FEEDD_CACHE_H
#define FEEDD_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

typedef struct cache cache_t;

/* Longest key stored; a longer key is always a miss and never stored. */
#define CACHE_KEY_MAX 255

/* Metrics: cache.c counts only what it alone sees, METRICS_CACHE_EVICTIONS
 * (a put replaced another key's still servable entry).  Hits, misses, stale,
 * fills, lease waits and flushes are counted by the callers (feed_load /
 * feed_api, and the master for flushes), which know what was served. */

typedef enum cache_state {
	CACHE_MISS,
	CACHE_HIT,
	CACHE_STALE,     /* expired but within cache_stale: serve it, refresh behind */
} cache_state_t;

/* What is stored beside the body. */
typedef struct cache_meta {
	uint32_t nitems;      /* items on the page */
	uint32_t items_end;   /* offset just after the items array in the body */
} cache_meta_t;

typedef struct cache_stats {
	uint64_t entries;             /* servable now (hit or stale), current generation */
	uint64_t bytes;               /* bodies of those entries */
	uint64_t capacity_entries;
	uint64_t evictions;           /* since create, all processes */
	uint64_t checksum_failures;   /* torn copies caught by the checksum (see cache.c) */
	uint64_t claims_stolen;       /* writer claims taken from dead or stalled writers */
} cache_stats_t;

/* Master, before forking: creates (unlinking any left-over of a crashed
 * instance) and maps the segment; children inherit the mapping. */
cache_t *cache_create(const char *name, size_t bytes, size_t entry_max,
                      int64_t ttl_ms, int64_t stale_ms);
/* Unmaps; unlink: also remove the name (master at exit). */
void     cache_destroy(cache_t *c, int unlink_name);

/* Copies the entry of key into *body (replacing its contents) and *meta.
 * Never blocks and never returns a torn entry. now: monotonic ms. */
cache_state_t cache_get(cache_t *c, const char *key, int64_t now, buf_t *body, cache_meta_t *meta);
/* The same, appending the entry to what *body holds (one copy straight into
 * an output buffer).  On a MISS *body keeps its length and contents: the
 * bytes of a copy found torn are never part of it. */
cache_state_t cache_get_append(cache_t *c, const char *key, int64_t now, buf_t *body,
                               cache_meta_t *meta);

/* Which stored copy of a key a read returned.  A worker that keeps its own
 * copy of those bytes asks cache_check, on each later request, whether a
 * read would still return them: a few slot headers, never the body. */
typedef struct cache_ref {
	const void *slot;
	uint64_t    seq;     /* the slot's seqlock value the copy was read under */
	uint64_t    keyhash; /* cache_key_hash of its key */
	uint64_t    generation;
	int64_t     stored;
} cache_ref_t;

/* cache_get_append that also fills *ref (when not NULL) on a HIT or STALE. */
cache_state_t cache_get_ref(cache_t *c, const char *key, int64_t now, buf_t *body,
                            cache_meta_t *meta, cache_ref_t *ref);
/* HIT or STALE (as a read at now would say) when the copy ref names is
 * still what a read of its key would return, unwritten since; else MISS:
 * read the key again.  Never blocks. */
cache_state_t cache_check(cache_t *c, const cache_ref_t *ref, int64_t now);
/* The key's hash under this instance's secret seed (never 0): a table of
 * keys clients choose can use it without fearing crafted collisions. */
uint64_t      cache_key_hash(const cache_t *c, const char *key);

/* Single flight: returns 1 when the caller now holds the fill lease for key
 * (it must cache_put or cache_release), 0 when another live holder has it.
 * A lease ends at put/release, after lease_ms, or when its process dies.
 * 0 can also mean, rarely, that another key sharing the lease record is being
 * filled: wait as for any holder, poll cache_get, and ask again; a retry
 * after that fill ends succeeds. */
int  cache_lease(cache_t *c, const char *key, int64_t now, int64_t lease_ms);
void cache_release(cache_t *c, const char *key);

/* Stores a page and releases the caller's lease (also on failure).  A page
 * filled under a lease is stored with the generation current when the lease
 * was taken, so a flush during the fill makes it a miss.  Returns 0, or -1
 * when it does not fit (entry_max, CACHE_KEY_MAX) or every slot its key may
 * use is being written by another process at that instant (not stored). */
int  cache_put(cache_t *c, const char *key, const char *body, size_t len,
               const cache_meta_t *meta, int64_t now);

/* O(1): every entry stored before this call is a miss afterwards. */
void cache_flush(cache_t *c);
void cache_stats(cache_t *c, cache_stats_t *out);

/* Master, after reaping a dead worker (before forking its replacement, so
 * the pid cannot be reused yet): drops the entry it was writing and frees its
 * leases at once instead of when someone next trips over them; logs what it
 * found.  Returns how many claims and leases were freed. */
int  cache_reap(cache_t *c, pid_t pid);

/* Test hook (--enable-test-hooks): FEEDD_TEST_CACHE_STALL_WRITE=1 makes the
 * first cache_put of this cache (any process) stop for ever halfway through
 * writing the body, with the slot's seqlock odd; =KEY does so only for that
 * key.  One-shot per cache, so a respawned worker writes normally. */

#endif

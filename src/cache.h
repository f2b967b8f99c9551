/* The feed cache shared by all workers: POSIX shared memory, seqlocks, fill leases, generations. */
#ifndef FEEDD_CACHE_H
#define FEEDD_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

typedef struct cache cache_t;

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
	uint64_t entries;
	uint64_t bytes;
	uint64_t capacity_entries;
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

/* Single flight: returns 1 when the caller now holds the fill lease for key
 * (it must cache_put or cache_release), 0 when another live holder has it. */
int  cache_lease(cache_t *c, const char *key, int64_t now, int64_t lease_ms);
void cache_release(cache_t *c, const char *key);

/* Stores a page and releases the caller's lease.  Returns 0, or -1 when it
 * does not fit (entry_max). */
int  cache_put(cache_t *c, const char *key, const char *body, size_t len,
               const cache_meta_t *meta, int64_t now);

/* O(1): every entry stored before this call is a miss afterwards. */
void cache_flush(cache_t *c);
void cache_stats(cache_t *c, cache_stats_t *out);

#endif

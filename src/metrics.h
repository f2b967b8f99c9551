/* Counters in shared memory, one slot per worker, summed into the Prometheus text of /metrics. */
#ifndef FEEDD_METRICS_H
#define FEEDD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Endpoint label of feedd_http_requests_total. */
enum metrics_endpoint {
	METRICS_EP_FEED,
	METRICS_EP_STREAM,
	METRICS_EP_HEALTHZ,
	METRICS_EP_READYZ,
	METRICS_EP_METRICS,
	METRICS_EP_STATIC,
	METRICS_EP_OTHER,
	METRICS_EP_COUNT
};

/* Plain counters (monotonic, summed over workers). */
enum metrics_counter {
	METRICS_BYTES_SENT,
	METRICS_CONNECTIONS_ACCEPTED,
	METRICS_CONNECTIONS_REJECTED,     /* over max_connections */
	METRICS_CACHE_HITS,
	METRICS_CACHE_MISSES,
	METRICS_CACHE_STALE,
	METRICS_CACHE_FILLS,
	METRICS_CACHE_LEASE_WAITS,
	METRICS_CACHE_EVICTIONS,
	METRICS_CACHE_FLUSHES,
	METRICS_CACHE_SENDFILE_HITS,      /* hits sent from a worker's page file */
	METRICS_DB_QUEUE_REJECTED,
	METRICS_DB_RECONNECTS,
	METRICS_DB_CANCELLED,
	METRICS_DB_ERRORS,
	METRICS_SSE_TIMEOUTS,
	METRICS_SSE_CLIENT_GONE,
	METRICS_WORKER_RESTARTS,          /* master's slot */
	METRICS_CONFIG_RELOADS,           /* master's slot */
	METRICS_WORKER_WATCHDOG_KILLS,    /* master's slot */
	METRICS_COUNTER_COUNT
};

/* Gauges: each worker sets its own slot; a dead worker's slot is zeroed by the master. */
enum metrics_gauge {
	METRICS_OPEN_CONNECTIONS,
	METRICS_OPEN_STREAMS,
	METRICS_DB_CONN_IDLE,
	METRICS_DB_CONN_BUSY,
	METRICS_DB_CONN_CONNECTING,
	METRICS_DB_CONN_DOWN,
	METRICS_DB_QUEUE_LENGTH,
	METRICS_CACHE_SENDFILE_BYTES,     /* this worker's page files, open now */
	METRICS_GAUGE_COUNT
};

/* Histograms (seconds, except items per page). */
enum metrics_hist {
	METRICS_H_SSE_FIRST_ITEM,
	METRICS_H_SSE_COMPLETE,
	METRICS_H_JSON_COMPLETE,
	METRICS_H_SOURCE_LATENCY,         /* label: feed source 0..14 */
	METRICS_H_PAGE_ITEMS,
	METRICS_HIST_COUNT
};

/* Master, before forking: the shared segment for nslots workers (+1 for the master). */
int  metrics_create(int nslots);
void metrics_destroy(void);
/* Which slot this process writes (worker slot, or -1 for the master). */
void metrics_set_slot(int slot);
/* Master: a worker in slot died; its gauges no longer hold. */
void metrics_clear_gauges(int slot);

void metrics_add(enum metrics_counter m, uint64_t n);
void metrics_gauge_add(enum metrics_gauge g, int64_t delta);
void metrics_gauge_set(enum metrics_gauge g, int64_t value);
void metrics_request(enum metrics_endpoint ep, int status);
/* label: the source index for METRICS_H_SOURCE_LATENCY, else 0. */
void metrics_observe(enum metrics_hist h, int label, double value);

/* Worker: the label values of METRICS_H_SOURCE_LATENCY (the feed source
 * names, index = label).  metrics.c keeps the pointers, not copies: pass
 * strings that live as long as the process. */
void metrics_set_source_names(const char *const *names, int n);
/* Worker: the cache whose entries/bytes /metrics reports (NULL: none). */
struct cache;
void metrics_set_cache(struct cache *c);

/* The whole exposition text, summed over every slot. */
int  metrics_render(buf_t *out);

#endif

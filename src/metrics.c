/* Counters in shared memory, one slot per worker, summed into the Prometheus text of /metrics. */
#include "metrics.h"

/*
 * One MAP_SHARED|MAP_ANONYMOUS segment, created by the master before it
 * forks: slot 0 is the master's, slot 1 + i worker i's.  A process writes
 * only its own slot (no cache line is written by two workers, no lock on the
 * hot path); /metrics, served by any worker, reads and sums them all.  A
 * respawned worker takes its predecessor's slot and keeps adding to its
 * counters, which are never zeroed, so every total stays monotonic across
 * worker restarts; only gauges are cleared (metrics_clear_gauges).
 *
 * Why relaxed atomics are enough: each counter is its own monotonic number
 * and publishes no other memory.  The RMW makes every increment land (even
 * if an old worker draining after a reload still shares the slot); a scrape
 * that sees one counter's increment before another's is no worse than a
 * scrape taken a moment earlier or later, and Prometheus never assumes a
 * consistent snapshot across series.  A histogram's _count is rendered as
 * the sum of its buckets, so _count always equals the +Inf bucket.
 */

#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include "cache.h"
#include "log.h"

#define METRICS_SOURCES_MAX 16
#define METRICS_SLOTS_MAX   4096
#define METRICS_BUCKETS_MAX 14
#define METRICS_SUM_SCALE   1000000 /* sums kept in micro-units, integers */

static const int metrics_codes[] = {200, 204, 304, 400, 403, 404, 405, 408,
                                    413, 414, 422, 431, 500, 503, 504};
#define METRICS_NCODES ((int)(sizeof(metrics_codes) / sizeof(metrics_codes[0])) + 1) /* + other */

static const double seconds_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10};
static const char *const seconds_le[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                         "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};
static const double items_bounds[] = {0, 1, 5, 10, 20, 50};
static const char *const items_le[] = {"0", "1", "5", "10", "20", "50"};

#define NSECONDS ((int)(sizeof(seconds_bounds) / sizeof(seconds_bounds[0])))
#define NITEMS   ((int)(sizeof(items_bounds) / sizeof(items_bounds[0])))

_Static_assert(NSECONDS + 1 <= METRICS_BUCKETS_MAX, "bucket room");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2,
               "shared-memory atomics must be lock-free");

typedef struct metrics_cells {
	_Atomic uint64_t bucket[METRICS_BUCKETS_MAX]; /* per bucket, the last is +Inf */
	_Atomic uint64_t sum;                         /* micro-units */
} metrics_cells_t;

/* One histogram per enum value, except one per source for the latency. */
#define METRICS_NCELLS (METRICS_HIST_COUNT - 1 + METRICS_SOURCES_MAX)

typedef struct metrics_slot {
	alignas(64) _Atomic uint64_t counter[METRICS_COUNTER_COUNT];
	_Atomic int64_t gauge[METRICS_GAUGE_COUNT];
	_Atomic uint64_t requests[METRICS_EP_COUNT][METRICS_NCODES];
	metrics_cells_t hist[METRICS_NCELLS];
} metrics_slot_t;

static struct {
	metrics_slot_t *slots; /* NULL before metrics_create */
	int nslots;            /* workers + 1 */
	metrics_slot_t *mine;
	const char *const *source_names;
	int nsources;
	struct cache *cache;
} M;

/* Where a process without a shared slot (unit tests of other modules, a
 * worker given a bad slot) counts: harmless and never rendered. */
static metrics_slot_t metrics_private;

static metrics_slot_t *
mine(void)
{
	return M.mine != NULL ? M.mine : &metrics_private;
}

int
metrics_create(int nslots)
{
	size_t len;
	void *p;

	if (nslots < 0 || nslots >= METRICS_SLOTS_MAX) {
		log_error("metrics: %d worker slots out of range 0..%d", nslots,
		          METRICS_SLOTS_MAX - 1);
		return -1;
	}
	if (M.slots != NULL)
		metrics_destroy();
	len = (size_t)(nslots + 1) * sizeof(metrics_slot_t);
	/* Anonymous and shared: inherited by every fork, gone with the last
	 * process, no name to clean up.  Zero-filled by the kernel. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_error("metrics: mmap of %zu bytes: %s", len, strerror(errno));
		return -1;
	}
	M.slots = p;
	M.nslots = nslots + 1;
	M.mine = &M.slots[0];
	return 0;
}

void
metrics_destroy(void)
{
	if (M.slots != NULL && munmap(M.slots, (size_t)M.nslots * sizeof(metrics_slot_t)) < 0)
		log_warn("metrics: munmap: %s", strerror(errno));
	M.slots = NULL;
	M.nslots = 0;
	M.mine = NULL;
}

static metrics_slot_t *
slot_of(int slot)
{
	if (M.slots == NULL || slot < -1 || slot + 1 >= M.nslots)
		return NULL;
	return &M.slots[slot + 1];
}

void
metrics_set_slot(int slot)
{
	M.mine = slot_of(slot);
	if (M.mine == NULL && M.slots != NULL)
		log_error("metrics: slot %d out of range (%d worker slots); this process's "
		          "metrics are not reported",
		          slot, M.nslots - 1);
}

void
metrics_clear_gauges(int slot)
{
	metrics_slot_t *s = slot_of(slot);

	if (s == NULL)
		return;
	for (int g = 0; g < METRICS_GAUGE_COUNT; g++)
		atomic_store_explicit(&s->gauge[g], 0, memory_order_relaxed);
}

void
metrics_add(enum metrics_counter m, uint64_t n)
{
	if ((unsigned)m >= METRICS_COUNTER_COUNT)
		return;
	/* Relaxed: see the top of this file. */
	atomic_fetch_add_explicit(&mine()->counter[m], n, memory_order_relaxed);
}

void
metrics_gauge_add(enum metrics_gauge g, int64_t delta)
{
	if ((unsigned)g >= METRICS_GAUGE_COUNT)
		return;
	atomic_fetch_add_explicit(&mine()->gauge[g], delta, memory_order_relaxed);
}

void
metrics_gauge_set(enum metrics_gauge g, int64_t value)
{
	if ((unsigned)g >= METRICS_GAUGE_COUNT)
		return;
	atomic_store_explicit(&mine()->gauge[g], value, memory_order_relaxed);
}

static int
code_index(int status)
{
	for (int i = 0; i < METRICS_NCODES - 1; i++)
		if (metrics_codes[i] == status)
			return i;
	return METRICS_NCODES - 1;
}

void
metrics_request(enum metrics_endpoint ep, int status)
{
	if ((unsigned)ep >= METRICS_EP_COUNT)
		ep = METRICS_EP_OTHER;
	atomic_fetch_add_explicit(&mine()->requests[ep][code_index(status)], 1,
	                          memory_order_relaxed);
}

static int
cell_index(enum metrics_hist h, int label)
{
	if (h == METRICS_H_SOURCE_LATENCY)
		return label >= 0 && label < METRICS_SOURCES_MAX ? (int)h + label : -1;
	return h < METRICS_H_SOURCE_LATENCY ? (int)h : (int)h + METRICS_SOURCES_MAX - 1;
}

void
metrics_observe(enum metrics_hist h, int label, double value)
{
	const double *bounds = h == METRICS_H_PAGE_ITEMS ? items_bounds : seconds_bounds;
	int n = h == METRICS_H_PAGE_ITEMS ? NITEMS : NSECONDS, i, cell;
	metrics_cells_t *c;

	if ((unsigned)h >= METRICS_HIST_COUNT || isnan(value))
		return;
	cell = cell_index(h, label);
	if (cell < 0)
		return;
	c = &mine()->hist[cell];
	for (i = 0; i < n && value > bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&c->bucket[i], 1, memory_order_relaxed);
	if (value > 0)
		atomic_fetch_add_explicit(&c->sum,
		                          value < 1e12 ? (uint64_t)(value * METRICS_SUM_SCALE + 0.5)
		                                       : (uint64_t)1e18,
		                          memory_order_relaxed);
}

void
metrics_set_source_names(const char *const *names, int n)
{
	M.source_names = names;
	M.nsources = n < 0 ? 0 : n > METRICS_SOURCES_MAX ? METRICS_SOURCES_MAX : n;
}

void
metrics_set_cache(struct cache *c)
{
	M.cache = c;
}

/* ---- rendering ---- */

static const char *const endpoint_names[METRICS_EP_COUNT] = {
        [METRICS_EP_FEED] = "feed",       [METRICS_EP_STREAM] = "stream",
        [METRICS_EP_HEALTHZ] = "healthz", [METRICS_EP_READYZ] = "readyz",
        [METRICS_EP_METRICS] = "metrics", [METRICS_EP_STATIC] = "static",
        [METRICS_EP_OTHER] = "other",
};

static const struct {
	const char *name;
	const char *help;
} counter_info[METRICS_COUNTER_COUNT] = {
        [METRICS_BYTES_SENT] = {"feedd_http_response_bytes_total",
                                "Bytes written to clients (headers and bodies)."},
        [METRICS_CONNECTIONS_ACCEPTED] = {"feedd_connections_accepted_total",
                                          "Client connections accepted."},
        [METRICS_CONNECTIONS_REJECTED] =
                {"feedd_connections_rejected_total",
                 "Client connections closed at once: over max_connections."},
        [METRICS_CACHE_HITS] = {"feedd_cache_hits_total",
                                "Feed pages served fresh from the cache."},
        [METRICS_CACHE_MISSES] = {"feedd_cache_misses_total",
                                  "Feed requests the cache could not answer."},
        [METRICS_CACHE_STALE] = {"feedd_cache_stale_total",
                                 "Feed pages served stale while one process refreshed them."},
        [METRICS_CACHE_FILLS] = {"feedd_cache_fills_total",
                                 "Feed pages built from the database and stored in the cache."},
        [METRICS_CACHE_LEASE_WAITS] =
                {"feedd_cache_lease_waits_total",
                 "Requests that waited for another process's fill of their page."},
        [METRICS_CACHE_EVICTIONS] = {"feedd_cache_evictions_total",
                                     "Servable cache entries replaced by another key's page."},
        [METRICS_CACHE_FLUSHES] = {"feedd_cache_flushes_total",
                                   "Cache flushes (SIGUSR2, feedd -s flush)."},
        [METRICS_CACHE_SENDFILE_HITS] =
                {"feedd_cache_sendfile_hits_total",
                 "Cache hits and stale pages sent from a worker's sealed page file."},
        [METRICS_DB_QUEUE_REJECTED] = {"feedd_db_queue_rejected_total",
                                       "Statements refused because the pool queue was full."},
        [METRICS_DB_RECONNECTS] = {"feedd_db_reconnects_total",
                                   "Database connection attempts after a loss."},
        [METRICS_DB_CANCELLED] = {"feedd_db_cancelled_total",
                                  "Queries cancelled (client gone, timeout)."},
        [METRICS_DB_ERRORS] = {"feedd_db_errors_total", "Queries or connections that failed."},
        [METRICS_SSE_TIMEOUTS] = {"feedd_sse_timeouts_total",
                                  "Streams ended by the stream timeout."},
        [METRICS_SSE_CLIENT_GONE] = {"feedd_sse_client_gone_total",
                                     "Streams whose client went away before feed_complete."},
        [METRICS_WORKER_RESTARTS] = {"feedd_worker_restarts_total",
                                     "Workers respawned by the master after they died."},
        [METRICS_CONFIG_RELOADS] = {"feedd_config_reloads_total",
                                    "Configuration reloads (SIGHUP)."},
        [METRICS_WORKER_WATCHDOG_KILLS] = {"feedd_worker_watchdog_kills_total",
                                           "Workers killed because their event loop stopped "
                                           "(worker_watchdog)."},
};

static const struct {
	const char *name;
	const char *help;
} gauge_info[METRICS_GAUGE_COUNT] = {
        [METRICS_OPEN_CONNECTIONS] = {"feedd_open_connections", "Client connections open now."},
        [METRICS_OPEN_STREAMS] = {"feedd_open_streams", "Server-Sent Events streams open now."},
        [METRICS_DB_QUEUE_LENGTH] = {"feedd_db_queue_length",
                                     "Queries waiting for a free database connection."},
        [METRICS_CACHE_SENDFILE_BYTES] = {"feedd_cache_sendfile_bytes",
                                          "Bytes of the workers' sealed page files."},
};

static const struct {
	enum metrics_gauge g;
	const char *state;
} db_states[] = {
        {METRICS_DB_CONN_IDLE, "idle"},
        {METRICS_DB_CONN_BUSY, "busy"},
        {METRICS_DB_CONN_CONNECTING, "connecting"},
        {METRICS_DB_CONN_DOWN, "down"},
};

static const struct {
	const char *name;
	const char *help;
} hist_info[METRICS_HIST_COUNT] = {
        [METRICS_H_SSE_FIRST_ITEM] =
                {"feedd_stream_first_item_seconds",
                 "Time from request to the first items of a stream (from the cache or not)."},
        [METRICS_H_SSE_COMPLETE] =
                {"feedd_stream_complete_seconds",
                 "Time from request to feed_complete of a stream (from the cache or not)."},
        [METRICS_H_JSON_COMPLETE] = {"feedd_feed_complete_seconds",
                                     "Time from request to the whole JSON page of /api/feed."},
        [METRICS_H_SOURCE_LATENCY] =
                {"feedd_source_query_seconds",
                 "Time from a page's statements being issued to each source's result."},
        [METRICS_H_PAGE_ITEMS] = {"feedd_page_items",
                                  "Items on each feed page built from the database."},
};

/* Label values: backslash, double quote and newline escaped. */
static int
label_value(buf_t *out, const char *s)
{
	int rc = 0;

	for (; *s != '\0' && rc == 0; s++) {
		if (*s == '\\')
			rc = buf_append(out, "\\\\", 2);
		else if (*s == '"')
			rc = buf_append(out, "\\\"", 2);
		else if (*s == '\n')
			rc = buf_append(out, "\\n", 2);
		else
			rc = buf_append(out, s, 1);
	}
	return rc;
}

static int
family(buf_t *out, const char *name, const char *type, const char *help)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
nslots_rendered(void)
{
	return M.slots != NULL ? M.nslots : 0;
}

static uint64_t
sum_counter(int m)
{
	uint64_t v = 0;

	for (int s = 0; s < nslots_rendered(); s++)
		v += atomic_load_explicit(&M.slots[s].counter[m], memory_order_relaxed);
	return v;
}

static int64_t
sum_gauge(int g)
{
	int64_t v = 0;

	for (int s = 0; s < nslots_rendered(); s++)
		v += atomic_load_explicit(&M.slots[s].gauge[g], memory_order_relaxed);
	return v;
}

static int
render_requests(buf_t *out)
{
	int rc = family(out, "feedd_http_requests_total", "counter",
	                "HTTP requests answered, by endpoint and status code.");

	for (int ep = 0; ep < METRICS_EP_COUNT; ep++) {
		for (int ci = 0; ci < METRICS_NCODES; ci++) {
			uint64_t v = 0;

			for (int s = 0; s < nslots_rendered(); s++)
				v += atomic_load_explicit(&M.slots[s].requests[ep][ci],
				                          memory_order_relaxed);
			if (v == 0)
				continue;
			if (ci < METRICS_NCODES - 1)
				rc |= buf_printf(out,
				                 "feedd_http_requests_total{endpoint=\"%s\",code="
				                 "\"%d\"} %llu\n",
				                 endpoint_names[ep], metrics_codes[ci],
				                 (unsigned long long)v);
			else
				rc |= buf_printf(out,
				                 "feedd_http_requests_total{endpoint=\"%s\",code="
				                 "\"other\"} %llu\n",
				                 endpoint_names[ep], (unsigned long long)v);
		}
	}
	return rc;
}

/* One histogram series; label: NULL or a complete `name="value",` prefix. */
static int
render_series(buf_t *out, const char *name, int cell, bool items, const char *label)
{
	uint64_t b[METRICS_BUCKETS_MAX] = {0}, sum = 0, cum = 0;
	int n = items ? NITEMS : NSECONDS, rc = 0;
	const char *const *le = items ? items_le : seconds_le;
	const char *lab = label ? label : "";

	for (int s = 0; s < nslots_rendered(); s++) {
		metrics_cells_t *c = &M.slots[s].hist[cell];

		for (int i = 0; i <= n; i++)
			b[i] += atomic_load_explicit(&c->bucket[i], memory_order_relaxed);
		sum += atomic_load_explicit(&c->sum, memory_order_relaxed);
	}
	for (int i = 0; i <= n; i++) {
		cum += b[i];
		rc |= buf_printf(out, "%s_bucket{%sle=\"%s\"} %llu\n", name, lab,
		                 i < n ? le[i] : "+Inf", (unsigned long long)cum);
	}
	/* The label prefix ends in ','; without the comma it closes the braces. */
	if (label != NULL) {
		size_t ll = strlen(label) - 1;

		rc |= buf_printf(out, "%s_sum{%.*s} %llu.%06llu\n", name, (int)ll, label,
		                 (unsigned long long)(sum / METRICS_SUM_SCALE),
		                 (unsigned long long)(sum % METRICS_SUM_SCALE));
		rc |= buf_printf(out, "%s_count{%.*s} %llu\n", name, (int)ll, label,
		                 (unsigned long long)cum);
	} else {
		rc |= buf_printf(out, "%s_sum %llu.%06llu\n", name,
		                 (unsigned long long)(sum / METRICS_SUM_SCALE),
		                 (unsigned long long)(sum % METRICS_SUM_SCALE));
		rc |= buf_printf(out, "%s_count %llu\n", name, (unsigned long long)cum);
	}
	return rc;
}

static bool
cell_used(int cell)
{
	for (int s = 0; s < nslots_rendered(); s++)
		for (int i = 0; i < METRICS_BUCKETS_MAX; i++)
			if (atomic_load_explicit(&M.slots[s].hist[cell].bucket[i],
			                         memory_order_relaxed))
				return true;
	return false;
}

static int
render_sources(buf_t *out)
{
	const char *name = hist_info[METRICS_H_SOURCE_LATENCY].name;
	int rc = family(out, name, "histogram", hist_info[METRICS_H_SOURCE_LATENCY].help);

	for (int src = 0; src < METRICS_SOURCES_MAX; src++) {
		int cell = cell_index(METRICS_H_SOURCE_LATENCY, src);
		buf_t lab = BUF_INIT;

		/* Named sources always; an unnamed index only once it has data. */
		if (src >= M.nsources && !cell_used(cell))
			continue;
		rc |= buf_append_str(&lab, "source=\"");
		if (src < M.nsources && M.source_names[src] != NULL)
			rc |= label_value(&lab, M.source_names[src]);
		else
			rc |= buf_printf(&lab, "%d", src);
		rc |= buf_append_str(&lab, "\",");
		if (rc == 0)
			rc |= render_series(out, name, cell, false, lab.data);
		buf_free(&lab);
	}
	return rc;
}

int
metrics_render(buf_t *out)
{
	int rc;

	rc = family(out, "feedd_build_info", "gauge",
	            "Always 1; the version label says which feedd runs.");
	rc |= buf_append_str(out, "feedd_build_info{version=\"");
	rc |= label_value(out, PACKAGE_VERSION);
	rc |= buf_append_str(out, "\"} 1\n");

	rc |= render_requests(out);
	for (int m = 0; m < METRICS_COUNTER_COUNT; m++) {
		rc |= family(out, counter_info[m].name, "counter", counter_info[m].help);
		rc |= buf_printf(out, "%s %llu\n", counter_info[m].name,
		                 (unsigned long long)sum_counter(m));
	}
	for (int g = 0; g < METRICS_GAUGE_COUNT; g++) {
		if (gauge_info[g].name == NULL)
			continue;
		rc |= family(out, gauge_info[g].name, "gauge", gauge_info[g].help);
		rc |= buf_printf(out, "%s %lld\n", gauge_info[g].name, (long long)sum_gauge(g));
	}
	rc |= family(out, "feedd_db_connections", "gauge",
	             "Database connections by state, all workers.");
	for (size_t i = 0; i < sizeof(db_states) / sizeof(db_states[0]); i++)
		rc |= buf_printf(out, "feedd_db_connections{state=\"%s\"} %lld\n",
		                 db_states[i].state, (long long)sum_gauge(db_states[i].g));

	if (M.cache != NULL) {
		cache_stats_t st;

		cache_stats(M.cache, &st);
		rc |= family(out, "feedd_cache_entries", "gauge",
		             "Cache entries servable now (fresh or stale).");
		rc |= buf_printf(out, "feedd_cache_entries %llu\n", (unsigned long long)st.entries);
		rc |= family(out, "feedd_cache_bytes", "gauge",
		             "Bytes of page bodies in those entries.");
		rc |= buf_printf(out, "feedd_cache_bytes %llu\n", (unsigned long long)st.bytes);
		rc |= family(out, "feedd_cache_capacity_entries", "gauge",
		             "Entries the cache can hold (cache_size / slot size).");
		rc |= buf_printf(out, "feedd_cache_capacity_entries %llu\n",
		                 (unsigned long long)st.capacity_entries);
		rc |= family(
		        out, "feedd_cache_checksum_failures_total", "counter",
		        "Cache reads that caught a torn entry by its checksum (a stalled writer).");
		rc |= buf_printf(out, "feedd_cache_checksum_failures_total %llu\n",
		                 (unsigned long long)st.checksum_failures);
		rc |= family(
		        out, "feedd_cache_writer_takeovers_total", "counter",
		        "Cache slots taken over from a writer that died or stalled mid-write.");
		rc |= buf_printf(out, "feedd_cache_writer_takeovers_total %llu\n",
		                 (unsigned long long)st.claims_stolen);
	}

	for (int h = 0; h < METRICS_HIST_COUNT; h++) {
		if (h == METRICS_H_SOURCE_LATENCY) {
			rc |= render_sources(out);
			continue;
		}
		rc |= family(out, hist_info[h].name, "histogram", hist_info[h].help);
		rc |= render_series(out, hist_info[h].name, cell_index(h, 0),
		                    h == METRICS_H_PAGE_ITEMS, NULL);
	}
	if (rc != 0)
		log_error("metrics: out of memory rendering /metrics");
	return rc ? -1 : 0;
}

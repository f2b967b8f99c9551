/* Host names of the db conninfo, resolved off the event loop into the lists libpq takes. */
#include "pgresolve.h"

/*
 * Why: PQconnectStart resolves a host name with getaddrinfo(), which blocks
 * (with DNS down the resolver's timeouts add up to tens of seconds), and a
 * worker's loop must never block.  So the names written in host= are
 * resolved here with glibc's getaddrinfo_a, whose lookups run on threads of
 * their own, and libpq gets the addresses: host= keeps the names (for SSL
 * verification, .pgpass and messages), hostaddr= has one address per entry,
 * and a name with several addresses becomes several entries, tried in
 * order as libpq would have.  Completion is polled from a loop timer, every
 * few ms and only while a lookup runs: no signal, no thread of ours, no
 * descriptor.  A result is reused for RESOLVE_REUSE_MS, so a reconnect wave
 * of the pool makes one lookup and a changed DNS record is followed within
 * that time; a failure is the answer for a second (the connections that
 * waited for the lookup all get it; the reconnect back-off paces retries).
 * Names from PGHOST are looked up too; a service file's are left to libpq
 * (it has no interface to read one without connecting).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "testhook.h"

#define RESOLVE_REUSE_MS 15000
#define RESOLVE_FAIL_MS  1000 /* a failure is the answer for this long */
#define RESOLVE_POLL_MS  2
#define RESOLVE_ADDRS    8 /* addresses kept per name, in the resolver's order */
#define RESOLVE_ERR_MAX  256

struct pgresolve {
	loop_t *loop;
	void (*done)(void *arg);
	void *arg;
	int n;             /* entries of host= */
	char **host;       /* each entry */
	char **port;       /* each entry's port, or NULL: port= left alone */
	struct gaicb *req; /* [n]; ar_name NULL for entries that are no names */
	struct gaicb **list;
	struct addrinfo hints;
	bool running;
	int64_t started;
	int64_t resolved_at; /* 0: no usable result */
	int64_t failed_at;   /* 0: the last lookup did not fail */
	buf_t host_v, hostaddr_v, port_v;
	char error[RESOLVE_ERR_MAX];
	loop_timer_t poll;
};

int
pgresolve_is_name(const char *entry)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (entry[0] == '\0' || entry[0] == '/' || entry[0] == '@')
		return 0;
	return inet_pton(AF_INET, entry, a) != 1 && inet_pton(AF_INET6, entry, a) != 1;
}

/* Splits a comma-separated libpq list; *n entries, malloc'd. */
static char **
split_list(const char *s, int *n)
{
	char **out;
	int k = 1;

	for (const char *p = s; *p != '\0'; p++)
		if (*p == ',')
			k++;
	out = calloc((size_t)k, sizeof(*out));
	if (out == NULL)
		return NULL;
	for (int i = 0; i < k; i++) {
		const char *end = strchr(s, ',');
		size_t len = end != NULL ? (size_t)(end - s) : strlen(s);

		out[i] = strndup(s, len);
		if (out[i] == NULL) {
			while (i-- > 0)
				free(out[i]);
			free(out);
			return NULL;
		}
		s += len + (end != NULL);
	}
	*n = k;
	return out;
}

static void
free_list(char **l, int n)
{
	if (l == NULL)
		return;
	for (int i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static const char *
option(const PQconninfoOption *opts, const char *key)
{
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0)
			return o->val;
	return NULL;
}

/* A lookup glibc could not cancel still writes into its request: what it
 * points to stays allocated (and reachable) until the process exits. */
static pgresolve_t *abandoned;

void
pgresolve_destroy(pgresolve_t *r)
{
	if (r == NULL)
		return;
	loop_timer_stop(r->loop, &r->poll);
	for (int i = 0; r->running && i < r->n; i++) {
		if (r->req[i].ar_name != NULL && gai_cancel(&r->req[i]) == EAI_NOTCANCELED) {
			log_debug("pgpool: a host name lookup still runs; left to finish");
			abandoned = r;
			return;
		}
	}
	for (int i = 0; r->req != NULL && i < r->n; i++)
		if (r->req[i].ar_result != NULL)
			freeaddrinfo(r->req[i].ar_result);
	free(r->req);
	free(r->list);
	free_list(r->host, r->n);
	free_list(r->port, r->n);
	buf_free(&r->host_v);
	buf_free(&r->hostaddr_v);
	buf_free(&r->port_v);
	free(r);
}

static void poll_cb(loop_timer_t *t);

pgresolve_t *
pgresolve_create(loop_t *loop, const char *conninfo, void (*done)(void *arg), void *arg)
{
	PQconninfoOption *opts;
	const char *host, *hostaddr, *port;
	char *err = NULL, **ports = NULL;
	int nports = 0, names = 0;
	pgresolve_t *r;

	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL) {
		PQfreemem(err); /* pgpool_create reports a bad conninfo */
		return NULL;
	}
	host = option(opts, "host");
	hostaddr = option(opts, "hostaddr");
	port = option(opts, "port");
	/* What the string leaves out, libpq takes from a service file first,
	 * then from the environment: without a service, the environment's
	 * values are the ones libpq would use. */
	if (option(opts, "service") == NULL && getenv("PGSERVICE") == NULL) {
		if (host == NULL)
			host = getenv("PGHOST");
		if (hostaddr == NULL)
			hostaddr = getenv("PGHOSTADDR");
		if (port == NULL)
			port = getenv("PGPORT");
	}
	if (host == NULL || host[0] == '\0' || (hostaddr != NULL && hostaddr[0] != '\0')) {
		PQconninfoFree(opts);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto oom;
	r->loop = loop;
	r->done = done;
	r->arg = arg;
	loop_timer_init(&r->poll, poll_cb);
	r->host = split_list(host, &r->n);
	if (r->host == NULL)
		goto oom;
	if (port != NULL && port[0] != '\0' && strchr(port, ',') != NULL) {
		ports = split_list(port, &nports);
		if (ports == NULL)
			goto oom;
		if (nports != r->n) {
			/* libpq refuses it too; let it say so. */
			free_list(ports, nports);
			pgresolve_destroy(r);
			PQconninfoFree(opts);
			return NULL;
		}
		r->port = ports;
	}
	r->req = calloc((size_t)r->n, sizeof(*r->req));
	r->list = calloc((size_t)r->n, sizeof(*r->list));
	if (r->req == NULL || r->list == NULL)
		goto oom;
	r->hints.ai_family = AF_UNSPEC;
	r->hints.ai_socktype = SOCK_STREAM;
	for (int i = 0; i < r->n; i++) {
		if (!pgresolve_is_name(r->host[i]))
			continue;
		r->req[i].ar_name = r->host[i];
		r->req[i].ar_request = &r->hints;
		names++;
	}
	PQconninfoFree(opts);
	if (names == 0) {
		pgresolve_destroy(r);
		return NULL;
	}
	return r;
oom:
	log_error("pgpool: out of memory preparing host name lookups");
	pgresolve_destroy(r);
	PQconninfoFree(opts);
	return NULL;
}

/* One entry of the lists libpq gets. */
static int
add_entry(pgresolve_t *r, int i, const char *addr, int entries)
{
	const char *sep = entries > 0 ? "," : "";
	int rc = buf_printf(&r->host_v, "%s%s", sep, r->host[i]);

	rc |= buf_printf(&r->hostaddr_v, "%s%s", sep, addr);
	if (r->port != NULL)
		rc |= buf_printf(&r->port_v, "%s%s", sep, r->port[i]);
	return rc < 0 ? -1 : 0;
}

/* The lists libpq gets, from the lookups' results: -1 out of memory, else
 * the number of entries. */
static int
build_lists(pgresolve_t *r)
{
	int entries = 0;

	buf_reset(&r->host_v);
	buf_reset(&r->hostaddr_v);
	buf_reset(&r->port_v);
	for (int i = 0; i < r->n; i++) {
		const struct addrinfo *ai;
		int kept = 0;

		/* A socket directory or an address goes as written, with an
		 * empty hostaddr item: libpq then uses host, without a lookup. */
		if (r->req[i].ar_name == NULL) {
			if (add_entry(r, i, "", entries++) < 0)
				return -1;
			continue;
		}
		for (ai = r->req[i].ar_result; ai != NULL && kept < RESOLVE_ADDRS;
		     ai = ai->ai_next) {
			char addr[INET6_ADDRSTRLEN];

			if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0,
			                NI_NUMERICHOST) != 0)
				continue;
			if (add_entry(r, i, addr, entries++) < 0)
				return -1;
			kept++;
		}
	}
	return entries;
}

/* A name that does not resolve is left out, as libpq would skip it and try
 * the next host; the lookup fails when no entry is left. */
static void
lookups_end(pgresolve_t *r)
{
	int failed = -1, rc = 0, entries;

	r->running = false;
	for (int i = 0; i < r->n; i++) {
		int e = r->req[i].ar_name != NULL ? gai_error(&r->req[i]) : 0;

		if (e == 0)
			continue;
		if (failed < 0) {
			failed = i;
			rc = e;
		}
		if (r->n > 1)
			log_info("pgpool: could not resolve host name \"%s\": %s", r->host[i],
			         gai_strerror(e));
	}
	entries = build_lists(r);
	if (entries < 0)
		snprintf(r->error, sizeof(r->error), "out of memory listing addresses");
	else if (entries == 0 && failed >= 0)
		snprintf(r->error, sizeof(r->error), "could not resolve host name \"%s\": %s",
		         r->host[failed], gai_strerror(rc));
	else if (entries == 0)
		snprintf(r->error, sizeof(r->error), "no address for host \"%s\"", r->host[0]);
	if (entries <= 0) {
		r->resolved_at = 0;
		r->failed_at = clock_mono_ms();
	} else {
		r->resolved_at = clock_mono_ms();
		r->failed_at = 0;
		log_debug("pgpool: host=%s resolved: hostaddr=%s", r->host_v.data,
		          r->hostaddr_v.data);
	}
	for (int i = 0; i < r->n; i++) {
		if (r->req[i].ar_result != NULL)
			freeaddrinfo(r->req[i].ar_result);
		r->req[i].ar_result = NULL;
	}
	r->done(r->arg);
}

static void
poll_cb(loop_timer_t *t)
{
	pgresolve_t *r = container_of(t, pgresolve_t, poll);
	const char *hold = TESTHOOK("RESOLVE_HOLD_MS");

	for (int i = 0; i < r->n; i++) {
		if (r->req[i].ar_name != NULL && gai_error(&r->req[i]) == EAI_INPROGRESS) {
			loop_timer_start(r->loop, t, RESOLVE_POLL_MS);
			return;
		}
	}
	/* Test hook: a lookup that takes this long, to watch the loop serve
	 * meanwhile. */
	if (hold != NULL && clock_mono_ms() - r->started < atoll(hold)) {
		loop_timer_start(r->loop, t, RESOLVE_POLL_MS);
		return;
	}
	lookups_end(r);
}

int
pgresolve_get(pgresolve_t *r, pgresolve_addrs_t *out, const char **error)
{
	int rc, k = 0;

	if (r->running)
		return 0;
	if (r->resolved_at > 0 && clock_mono_ms() - r->resolved_at < RESOLVE_REUSE_MS) {
		out->host = r->host_v.data;
		out->hostaddr = r->hostaddr_v.data;
		out->port = r->port != NULL ? r->port_v.data : NULL;
		return 1;
	}
	/* Every connection that waited for the lookup gets its failure; one
	 * that asks later (after its back-off) gets a new lookup. */
	if (r->failed_at > 0 && clock_mono_ms() - r->failed_at < RESOLVE_FAIL_MS) {
		*error = r->error;
		return -1;
	}
	for (int i = 0; i < r->n; i++)
		if (r->req[i].ar_name != NULL)
			r->list[k++] = &r->req[i];
	rc = getaddrinfo_a(GAI_NOWAIT, r->list, k, NULL);
	if (rc != 0) {
		snprintf(r->error, sizeof(r->error), "cannot start a host name lookup: %s",
		         gai_strerror(rc));
		r->failed_at = clock_mono_ms();
		*error = r->error;
		return -1;
	}
	r->running = true;
	r->started = clock_mono_ms();
	loop_timer_start(r->loop, &r->poll, RESOLVE_POLL_MS);
	return 0;
}

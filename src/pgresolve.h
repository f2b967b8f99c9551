/* Host names of the db conninfo, resolved off the event loop into the lists libpq takes. */
#ifndef FEEDD_PGRESOLVE_H
#define FEEDD_PGRESOLVE_H

#include <stdint.h>

#include "loop.h"

typedef struct pgresolve pgresolve_t;

/* What pgresolve_get found. */
typedef struct pgresolve_addrs {
	const char *host;     /* host= as libpq must see it: one entry per address */
	const char *hostaddr; /* hostaddr=, the addresses */
	const char *port;     /* port= expanded to match, or NULL to leave it alone */
} pgresolve_addrs_t;

/* NULL when there is nothing to resolve (no host name in conninfo's host=,
 * or a hostaddr= given), or on error (logged).  done(arg) is called from
 * the loop when a resolution that pgresolve_get started has ended. */
pgresolve_t *pgresolve_create(loop_t *loop, const char *conninfo, void (*done)(void *arg),
                              void *arg);
void pgresolve_destroy(pgresolve_t *r);

/* 1: out holds a result younger than the reuse time; 0: a resolution is
 * running (started if needed): wait for done; -1: the last resolution
 * failed, *error says why (the next call starts another). */
int pgresolve_get(pgresolve_t *r, pgresolve_addrs_t *out, const char **error);

/* Pure helpers, for the unit tests. */

/* Whether a host= entry names a host to resolve: not a socket directory
 * ("/..." or "@..."), not an IPv4 or IPv6 address, not empty. */
int pgresolve_is_name(const char *entry);

#endif

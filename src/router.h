/* Maps a request to its handler; every error answer is JSON. */
#ifndef FEEDD_ROUTER_H
#define FEEDD_ROUTER_H

#include "conn.h"

void router_dispatch(conn_t *c, const request_t *r);

/* {"detail":"<detail>"} with the given status; detail is JSON-escaped here. */
void router_error(conn_t *c, int status, const char *detail, const char *extra_headers);

#endif

/* Files under www_root, with no way out of it. */
#ifndef FEEDD_STATIC_H
#define FEEDD_STATIC_H

#include "conn.h"

/* Answers the request (200, 304, 403, 404...). */
void static_handle(conn_t *c, const request_t *r);

#endif

/* A worker's pool of non-blocking libpq connections: connect, prepare, pipeline, cancel, reconnect. */
#include "pgpool.h"

/* The feed cache shared by all workers: POSIX shared memory, seqlocks, fill leases, generations. */
#include "cache.h"

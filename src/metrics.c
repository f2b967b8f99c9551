/* Counters in shared memory, one slot per worker, summed into the Prometheus text of /metrics. */
#include "metrics.h"

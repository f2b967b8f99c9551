/* A worker process: the event loop, accepting, timers, draining. */
#include "worker.h"

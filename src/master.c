/* The master process: sockets, pid file, workers, signals, reload, shutdown. */
#include "master.h"

/* The master process: sockets, pid file, workers, signals, reload, shutdown. */
#ifndef FEEDD_MASTER_H
#define FEEDD_MASTER_H

#include "config.h"

/* Takes ownership of *cfg.  Returns the process exit status. */
int master_run(config_t *cfg, const char *config_path);

/* feedd -s: signal the running master named by the config's pid file. */
int master_signal(const config_t *cfg, const char *action);

#endif

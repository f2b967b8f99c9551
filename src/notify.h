/* sd_notify when built with libsystemd; nothing otherwise. */
#ifndef FEEDD_NOTIFY_H
#define FEEDD_NOTIFY_H

#include <stdint.h>

void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* systemd's watchdog (WatchdogSec=): how often the master must send
 * notify_watchdog(), in ms; 0 when systemd does not ask for it. */
int64_t notify_watchdog_interval(void);
void notify_watchdog(void);

#endif

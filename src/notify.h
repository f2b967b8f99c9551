/* sd_notify when built with libsystemd; nothing otherwise. */
#ifndef FEEDD_NOTIFY_H
#define FEEDD_NOTIFY_H

void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

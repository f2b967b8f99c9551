/* sd_notify when built with libsystemd; nothing otherwise. */
#include "notify.h"

#ifdef HAVE_SYSTEMD

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"

/* sd_notify() returns 0 when NOTIFY_SOCKET is unset (not run by systemd):
 * only a real send failure is worth a line in the log. */
static void
send_state(const char *state)
{
	int rc = sd_notify(0, state);

	if (rc < 0)
		log_warn("sd_notify(\"%s\") failed: %s", state, strerror(-rc));
}

void
notify_ready(void)
{
	send_state("READY=1");
}

/* systemd >= 253 (Type=notify-reload) ties RELOADING=1 to the monotonic
 * time of the reload so it can tell this reload from an earlier one;
 * older versions ignore the extra field. */
void
notify_reloading(void)
{
	char msg[64];
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	                 (unsigned long long)ts.tv_nsec / 1000ULL);
	send_state(msg);
}

void
notify_stopping(void)
{
	send_state("STOPPING=1");
}

void
notify_status(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	n = snprintf(msg, sizeof(msg), "STATUS=");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	send_state(msg);
}

/* WATCHDOG_USEC (and WATCHDOG_PID, if set, naming this process) come from
 * systemd; half the interval, as sd_watchdog_enabled(3) advises. */
int64_t
notify_watchdog_interval(void)
{
	uint64_t usec = 0;
	int rc = sd_watchdog_enabled(0, &usec);

	if (rc < 0) {
		log_warn("systemd watchdog: %s; not sending WATCHDOG=1", strerror(-rc));
		return 0;
	}
	if (rc == 0 || usec == 0)
		return 0;
	return usec >= 2000 ? (int64_t)(usec / 2000) : 1;
}

void
notify_watchdog(void)
{
	send_state("WATCHDOG=1");
}

#else /* !HAVE_SYSTEMD */

void
notify_ready(void)
{
}

void
notify_reloading(void)
{
}

void
notify_stopping(void)
{
}

void
notify_status(const char *fmt, ...)
{
}

int64_t
notify_watchdog_interval(void)
{
	return 0;
}

void
notify_watchdog(void)
{
}

#endif

/* Unit tests for src/watchdog.c. */
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "watchdog.h"

static void
test_stamps_cross_fork(void)
{
	pid_t pid;
	int st;

	CHECK_INT(watchdog_create(3), 0);
	CHECK_INT(watchdog_last(0), 0);
	watchdog_beat(1, 1000);
	/* A worker writes its own slot after fork; the master sees it. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		watchdog_beat(2, 5000);
		_exit(watchdog_last(1) == 1000 ? 0 : 1);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_INT(watchdog_last(2), 5000);
	CHECK_INT(watchdog_last(1), 1000);
	CHECK_INT(watchdog_last(0), 0);
	/* Out of range: ignored, and read as "never". */
	watchdog_beat(3, 7000);
	watchdog_beat(-1, 7000);
	CHECK_INT(watchdog_last(3), 0);
	CHECK_INT(watchdog_last(-1), 0);
	watchdog_destroy();
	CHECK_INT(watchdog_last(1), 0);
	CHECK_INT(watchdog_create(0), -1);
}

static void
test_beat_interval(void)
{
	/* A quarter of the watchdog: a loop is taken for stuck only after it
	 * missed four stamps in a row.  At most a second, at least 10 ms. */
	CHECK_INT(watchdog_beat_interval(1000), 250);
	CHECK_INT(watchdog_beat_interval(2000), 500);
	CHECK_INT(watchdog_beat_interval(30000), 1000);
	CHECK_INT(watchdog_beat_interval(3600000), 1000);
	CHECK_INT(watchdog_beat_interval(20), 10);
}

int
main(void)
{
	RUN(test_stamps_cross_fork);
	RUN(test_beat_interval);
	return unit_done();
}

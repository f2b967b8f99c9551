"""Process model: the master's workers, respawn with back-off, fatal exits,
and workers that never outlive their master."""

import os
import re
import signal

import pytest

from helpers import metric, running, shm_path, wait_until


def uid_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


def test_starts_the_configured_number_of_workers(feedd_factory):
    f = feedd_factory(workers=3)
    pids = wait_until(lambda: len(f.worker_pids()) == 3 and f.worker_pids())
    assert pids and len(pids) == 3, f"children: {f.worker_pids()}"


def test_killed_worker_is_respawned(feedd):
    before = feedd.worker_pids()
    assert len(before) == 2
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_until(lambda: (p := feedd.worker_pids()) and len(p) == 2 and victim not in p and p)
    assert after, f"no replacement for {victim}: children {feedd.worker_pids()}\n{feedd.logs()}"
    assert before[1] in after, "the other worker was left alone"
    assert feedd.get("/healthz")[0] == 200
    log = feedd.error_log()
    assert f"(pid {victim}) was killed by signal 9" in log, log
    assert metric(feedd, "feedd_worker_restarts_total") == 1


def test_worker_that_keeps_dying_backs_off(feedd_factory):
    f = feedd_factory(workers=1, wait=False, env={"FEEDD_TEST_WORKER_EXIT": "1"})
    delays = wait_until(lambda: len(d := re.findall(r"respawning in (\d+) ms", f.error_log())) >= 5 and d,
                        timeout=15)
    assert delays, f"no respawns logged\n{f.logs()}"
    assert [int(d) for d in delays[:5]] == [100, 200, 400, 800, 1600]
    assert f.alive()


def test_back_off_is_capped(feedd_factory):
    f = feedd_factory(workers=1, wait=False, env={"FEEDD_TEST_WORKER_EXIT": "1"})
    # 100+200+...+3200 ms: the delay after that would be 6400 without a cap.
    delays = wait_until(lambda: len(d := re.findall(r"respawning in (\d+) ms", f.error_log())) >= 7 and d,
                        timeout=20)
    assert delays, f"fewer than 7 respawns logged\n{f.logs()}"
    assert [int(d) for d in delays[:7]] == [100, 200, 400, 800, 1600, 3200, 5000]


def test_fatal_worker_is_not_respawned(feedd_factory):
    f = feedd_factory(workers=2, wait=False, env={"FEEDD_TEST_WORKER_EXIT": "2"})
    status = f.wait_exit(timeout=15)
    assert status == 1, f"master exit status {status}\n{f.logs()}"
    log = f.error_log()
    assert len(re.findall(r"worker \d+ started", log)) == 2, log
    assert "not respawning" in log
    assert not (f.dir / "feedd.pid").exists()


def test_workers_exit_when_the_master_is_killed(feedd_factory):
    f = feedd_factory(shutdown_timeout="1s")
    workers = f.worker_pids()
    assert workers
    f.proc.send_signal(signal.SIGKILL)
    f.proc.wait(timeout=10)
    # A killed master cannot remove its cache segment: do it for it.
    shm = shm_path(f.dir / "feedd.pid")
    try:
        left = wait_until(lambda: not any(running(p) for p in workers) or None, timeout=10)
        assert left, f"workers still running after the master died: {[p for p in workers if running(p)]}"
    finally:
        shm.unlink(missing_ok=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_workers_switch_to_user(feedd_factory):
    import pwd
    nobody = pwd.getpwnam("nobody")
    f = feedd_factory(user="nobody")
    assert uid_of(f.pid)[0] == 0, "the master keeps root (to bind on reload)"
    for pid in f.worker_pids():
        assert set(uid_of(pid)) == {nobody.pw_uid}, f"worker {pid} uids {uid_of(pid)}"
    assert f.get("/healthz")[0] == 200


def test_unknown_user_refuses_to_start(feedd_factory):
    f = feedd_factory(user="no-such-user-feedd", wait=False)
    assert f.wait_exit(timeout=15) == 1
    assert "no-such-user-feedd" in f.error_log()


def test_gauges_of_a_dead_worker_are_cleared(feedd_factory):
    import socket
    f = feedd_factory(workers=1, header_timeout="60s")
    idle = [socket.create_connection(("127.0.0.1", f.port)) for _ in range(3)]
    try:
        # The /metrics request counts itself.
        assert wait_until(lambda: metric(f, "feedd_open_connections") == 4)
        (victim,) = f.worker_pids()
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: (p := f.worker_pids()) and victim not in p)
        assert wait_until(lambda: metric(f, "feedd_open_connections") == 1)
    finally:
        for s in idle:
            s.close()

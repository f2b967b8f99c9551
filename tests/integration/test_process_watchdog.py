"""Process model: the worker watchdog.  Each worker accepts on listen
sockets of its own, so a worker whose event loop stops would leave its
share of new connections waiting for ever; the master kills it and its
successor serves them."""

import socket
import time

from helpers import metric, read_all, request_bytes, wait_until


def send_requests(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(request_bytes("/healthz"))
        socks.append(s)
    return socks


def answered(socks, timeout):
    """Status of each answer (None: none within timeout of the call)."""
    deadline = time.monotonic() + timeout
    out = []
    for s in socks:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = read_all(s)
        except OSError:
            data = b""
        out.append(int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None)
        s.close()
    return out


def start_with_a_stuck_worker(feedd_factory, tmp_path, watchdog, deaf=False):
    marker = tmp_path / "hang"
    env = {"FEEDD_TEST_WORKER_HANG": str(marker)}
    if deaf:
        env["FEEDD_TEST_WORKER_HANG_DEAF"] = "1"
    f = feedd_factory(workers=2, worker_watchdog=watchdog, header_timeout="60s", wait=False,
                      env=env)
    assert wait_until(lambda: "event loop stops here" in f.error_log()), f.logs()
    return f


def test_a_stuck_worker_is_killed_and_its_queued_connections_served(feedd_factory, tmp_path):
    f = start_with_a_stuck_worker(feedd_factory, tmp_path, "1s")
    stuck = set(f.worker_pids())
    # Sent at once: the kernel queues about half of them on the stuck
    # worker's socket; they are answered once its successor has it.
    statuses = answered(send_requests(f.port, 40), timeout=15)
    assert statuses == [200] * 40, (statuses, f.logs())
    log = f.error_log()
    assert "its event loop has not run for" in log and "killing it with SIGABRT" in log, log
    assert "was killed by signal 6 (SIGABRT)" in log, log
    assert "survived SIGABRT" not in log, log
    assert metric(f, "feedd_worker_watchdog_kills_total") == 1
    assert metric(f, "feedd_worker_restarts_total") == 1
    assert len(stuck - set(f.worker_pids())) == 1, "the stuck worker is gone"
    assert f.alive()


def test_without_the_watchdog_a_stuck_worker_strands_its_share(feedd_factory, tmp_path):
    """The control: what the watchdog is for.  With it off, the requests the
    kernel queued on the stuck worker's socket are never answered."""
    f = start_with_a_stuck_worker(feedd_factory, tmp_path, "0")
    pids = f.worker_pids()
    statuses = answered(send_requests(f.port, 40), timeout=3)
    # Binomial(40, 1/2): none on the stuck worker's socket once in 10^12 runs.
    assert None in statuses, (statuses, f.logs())
    assert 200 in statuses, (statuses, f.logs())
    assert f.worker_pids() == pids, "nothing was killed"
    assert "event loop has not run" not in f.error_log()


def test_a_worker_deaf_to_sigabrt_gets_sigkill(feedd_factory, tmp_path):
    f = start_with_a_stuck_worker(feedd_factory, tmp_path, "1s", deaf=True)
    assert wait_until(lambda: "was killed by signal 9" in f.error_log(), timeout=10), f.logs()
    log = f.error_log()
    assert "killing it with SIGABRT" in log and "survived SIGABRT for 1000 ms: SIGKILL" in log, log
    assert answered(send_requests(f.port, 20), timeout=10) == [200] * 20, f.logs()
    assert metric(f, "feedd_worker_watchdog_kills_total") == 1


def test_idle_and_busy_workers_are_left_alone(feedd_factory):
    """The loop stamps from a timer: a worker with nothing to do, or with
    requests to serve, is not taken for a stuck one."""
    f = feedd_factory(workers=2, worker_watchdog="1s")
    pids = f.worker_pids()
    time.sleep(2.5)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        assert f.get("/healthz")[0] == 200
    assert f.worker_pids() == pids, f.logs()
    assert metric(f, "feedd_worker_watchdog_kills_total") == 0
    assert "event loop has not run" not in f.error_log()

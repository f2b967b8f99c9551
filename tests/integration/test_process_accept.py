"""Process model: how workers accept: max_connections, the spread of
connections over the workers' listen sockets, and running out of file
descriptors."""

import os
import resource
import signal
import socket
import time

from helpers import client_conns, read_all, request_bytes, wait_until


def open_idle(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
    return socks


def http_get(sock, path="/healthz"):
    sock.settimeout(10)
    sock.sendall(request_bytes(path))
    data = read_all(sock)
    return int(data.split()[1]) if data else None


def test_over_max_connections_is_503(feedd_factory):
    f = feedd_factory(workers=1, max_connections=2, header_timeout="60s")
    (worker,) = f.worker_pids()
    idle = open_idle(f.port, 2)
    try:
        assert wait_until(lambda: client_conns(worker, f.port) == 2)
        extra = socket.create_connection(("127.0.0.1", f.port), timeout=5)
        assert http_get(extra) == 503
        extra.close()
        idle.pop().close()
        assert wait_until(lambda: client_conns(worker, f.port) == 1)
        assert f.get("/healthz")[0] == 200
    finally:
        for s in idle:
            s.close()


def held_by(workers, port):
    return [client_conns(w, port) for w in workers]


def test_a_burst_of_connections_is_spread_over_the_workers(feedd_factory):
    """64 connects at once from one client: each worker takes its share.
    With one listen socket shared by the workers, one worker took all 64
    (the one that had just accepted was the first to wake again)."""
    f = feedd_factory(workers=2, header_timeout="60s")
    workers = f.worker_pids()
    idle = open_idle(f.port, 64)
    try:
        assert wait_until(lambda: sum(held_by(workers, f.port)) == 64), held_by(workers, f.port)
        # Binomial(64, 1/2): under 16 on either side once in 40,000 runs.
        assert min(held_by(workers, f.port)) >= 16, held_by(workers, f.port)
    finally:
        for s in idle:
            s.close()


def test_connections_made_while_a_worker_is_dead_wait_for_its_successor(feedd_factory):
    """The master keeps a dead worker's listen sockets and hands them to
    the worker it respawns: connections the kernel queued on them in the
    meantime are served, and the successor gets its share of new ones."""
    f = feedd_factory(workers=2, header_timeout="60s")
    victim, other = f.worker_pids()
    os.kill(victim, signal.SIGKILL)
    early = open_idle(f.port, 16)
    try:
        assert all(http_get(s) == 200 for s in early), f.logs()
    finally:
        for s in early:
            s.close()
    successor = wait_until(lambda: next((p for p in f.worker_pids() if p not in (victim, other)),
                                        None))
    assert successor, f.logs()
    idle = open_idle(f.port, 64)
    try:
        assert wait_until(lambda: sum(held_by([other, successor], f.port)) == 64)
        assert min(held_by([other, successor], f.port)) >= 16, \
            held_by([other, successor], f.port)
    finally:
        for s in idle:
            s.close()


def test_a_worker_left_dead_takes_no_connections(feedd_factory):
    """A worker that exits fatally is not respawned, and its sockets are
    closed: no connection waits in them for nobody."""
    f = feedd_factory(workers=2, wait=False,
                      env={"FEEDD_TEST_WORKER_EXIT": "2", "FEEDD_TEST_WORKER_EXIT_SLOT": "1"})
    assert wait_until(lambda: "not respawning" in f.error_log()), f.logs()
    f.wait_healthy()
    socks = open_idle(f.port, 40)
    try:
        assert [http_get(s) for s in socks] == [200] * 40, f.logs()
    finally:
        for s in socks:
            s.close()
    assert f.alive()


def test_a_worker_that_keeps_dying_takes_no_connections_meanwhile(feedd_factory):
    """A worker that dies young again is respawned after a growing
    back-off, and it exits at once every time here: its sockets are closed
    meanwhile, so no connection waits in them for it."""
    f = feedd_factory(workers=2, wait=False,
                      env={"FEEDD_TEST_WORKER_EXIT": "1", "FEEDD_TEST_WORKER_EXIT_SLOT": "1"})
    assert wait_until(lambda: "keeps dying" in f.error_log()), f.logs()
    f.wait_healthy()
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", f.port), timeout=5)
        try:
            s.settimeout(2)     # the back-off is 200 ms and more by now
            s.sendall(request_bytes("/healthz"))
            data = read_all(s)
            assert data.startswith(b"HTTP/1.1 200"), (data[:100], f.logs())
        finally:
            s.close()


def test_a_worker_back_from_dying_twice_takes_its_share_again(feedd_factory):
    """Killed twice in a row, a worker's sockets are closed during its
    back-off and opened again for its successor."""
    f = feedd_factory(workers=2, header_timeout="60s")
    victim, other = f.worker_pids()
    os.kill(victim, signal.SIGKILL)
    second = wait_until(lambda: next((p for p in f.worker_pids() if p not in (victim, other)),
                                     None))
    assert second, f.logs()
    os.kill(second, signal.SIGKILL)
    assert wait_until(lambda: "keeps dying" in f.error_log()), f.logs()
    third = wait_until(lambda: next((p for p in f.worker_pids()
                                     if p not in (victim, other, second)), None))
    assert third, f.logs()
    idle = open_idle(f.port, 64)
    try:
        assert wait_until(lambda: sum(held_by([other, third], f.port)) == 64)
        assert min(held_by([other, third], f.port)) >= 16, held_by([other, third], f.port)
    finally:
        for s in idle:
            s.close()


def test_out_of_descriptors_pauses_accepting(feedd_factory):
    f = feedd_factory(workers=1, header_timeout="60s")
    (worker,) = f.worker_pids()
    old = resource.prlimit(worker, resource.RLIMIT_NOFILE)
    nfds = len(os.listdir(f"/proc/{worker}/fd"))
    resource.prlimit(worker, resource.RLIMIT_NOFILE, (nfds + 2, old[1]))
    idle = open_idle(f.port, 6)
    try:
        assert wait_until(lambda: "pausing accepts" in f.error_log()), f.logs()
        time.sleep(0.5)   # several retries, each failing again
        assert f.error_log().count("pausing accepts") == 1, "logged once per episode"
        assert client_conns(worker, f.port) < len(idle), "the rest wait in the backlog"
        resource.prlimit(worker, resource.RLIMIT_NOFILE, old)
        for s in idle:
            s.close()
        idle = []
        assert wait_until(lambda: "accepting again" in f.error_log()), f.logs()
        assert f.get("/healthz")[0] == 200
    finally:
        for s in idle:
            s.close()
        try:
            resource.prlimit(worker, resource.RLIMIT_NOFILE, old)
        except ProcessLookupError:
            pass

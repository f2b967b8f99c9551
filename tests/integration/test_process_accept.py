"""Process model: how workers accept: max_connections, spreading the load
near the limit, and running out of file descriptors."""

import os
import resource
import socket
import time

from helpers import read_all, request_bytes, wait_until


def established_inodes(port):
    """Socket inodes of established TCP connections whose local port is port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except FileNotFoundError:
            pass
    return inodes


def client_conns(pid, port):
    """How many client connections of port the process pid holds."""
    inodes = established_inodes(port)
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                n += 1
    except FileNotFoundError:
        pass
    return n


def open_idle(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
    return socks


def got_nothing(sock):
    sock.setblocking(False)
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


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


def test_near_the_limit_workers_leave_connections_to_others(feedd_factory):
    """Two workers of max_connections = 10 take 18 connections without a
    503: a worker at 90% stops accepting and the other takes the rest,
    whichever worker the kernel woke first."""
    f = feedd_factory(workers=2, max_connections=10, header_timeout="60s")
    workers = f.worker_pids()
    idle = open_idle(f.port, 18)
    try:
        assert wait_until(lambda: sum(client_conns(w, f.port) for w in workers) == 18), \
            [client_conns(w, f.port) for w in workers]
        counts = [client_conns(w, f.port) for w in workers]
        assert all(0 < c <= 10 for c in counts), counts
        assert all(got_nothing(s) for s in idle), "no connection was turned away"
        for s in idle:
            assert http_get(s) == 200
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

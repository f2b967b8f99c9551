"""Signals to the master: HUP reload, QUIT/TERM/INT shutdowns, USR1, USR2.

Requests "in flight" are downloads of a large static file by a client with
a tiny receive window that reads nothing until the test says so: the worker
holds megabytes of unsent response for as long as the test wants."""

import http.client
import os
import signal
import socket
import threading
import time

import pytest

from conftest import free_port
from helpers import metric, running, socket_owners, wait_until

BIG = 7 * 1024 * 1024   # static files stay below 8 MB


def get(port, path, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def answers(port):
    try:
        return get(port, "/healthz")[0] == 200
    except OSError:
        return False


@pytest.fixture
def www(tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    (d / "index.html").write_text("<!doctype html><title>A</title>site A\n")
    # Not compressible, not repetitive: a corrupted transfer shows.
    (d / "big.bin").write_bytes(os.urandom(BIG))
    return d


class SlowDownload:
    """GET of a big file by a client that reads only when asked to."""

    def __init__(self, port, path="/big.bin"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        self.sock.settimeout(10)
        self.data = self.sock.recv(1024)
        assert self.data.startswith(b"HTTP/1.1 200"), self.data[:200]

    def read_all(self, timeout=30):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    break
                self.data += chunk
        except ConnectionResetError:
            pass
        self.sock.close()
        head, _, body = self.data.partition(b"\r\n\r\n")
        return head, body


# --- HUP ----------------------------------------------------------------------


def test_hup_starts_new_workers_and_retires_the_old(feedd):
    old = feedd.worker_pids()
    feedd.signal(signal.SIGHUP)
    new = wait_until(lambda: (p := feedd.worker_pids()) and not set(p) & set(old) and p)
    assert new and len(new) == 2, f"old {old}, now {feedd.worker_pids()}\n{feedd.logs()}"
    assert wait_until(lambda: not any(running(p) for p in old))
    assert feedd.get("/healthz")[0] == 200
    assert "reloaded" in feedd.error_log()
    assert metric(feedd, "feedd_config_reloads_total") == 1
    assert metric(feedd, "feedd_worker_restarts_total") == 0, "a reload is not a restart"


def test_hup_applies_a_new_worker_count(feedd):
    feedd.reconfigure(workers=3)
    feedd.signal(signal.SIGHUP)
    # Two old workers drain while three new ones start: then three are left.
    assert wait_until(lambda: "reloaded" in feedd.error_log() and len(feedd.worker_pids()) == 3), \
        feedd.logs()
    # The third worker has listen sockets of its own and takes its share.
    socks = [socket.create_connection(("127.0.0.1", feedd.port), timeout=5) for _ in range(60)]
    try:
        owners = wait_until(lambda: None not in (o := socket_owners(feedd, socks)) and o)
        assert owners, socket_owners(feedd, socks)
        share = [owners.count(p) for p in feedd.worker_pids()]
        assert min(share) >= 5 and sum(share) == 60, share
    finally:
        for s in socks:
            s.close()

    feedd.reconfigure(workers=1)
    feedd.signal(signal.SIGHUP)
    assert wait_until(lambda: len(feedd.worker_pids()) == 1), feedd.worker_pids()
    # The sockets of the two positions gone were closed: nothing waits on them.
    assert [get(feedd.port, "/healthz")[0] for _ in range(40)] == [200] * 40, feedd.logs()


def test_hup_applies_a_new_listen_address(feedd):
    p1, p2 = feedd.port, free_port()
    feedd.reconfigure(listen=f"127.0.0.1:{p1},127.0.0.1:{p2}")
    feedd.signal(signal.SIGHUP)
    assert wait_until(lambda: answers(p2)), feedd.logs()
    assert answers(p1)

    # And a removed one goes away, while the kept one keeps serving.
    feedd.reconfigure(listen=f"127.0.0.1:{p2}")
    feedd.signal(signal.SIGHUP)

    def p1_closed():
        try:
            get(p1, "/healthz", timeout=1)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False
    assert wait_until(p1_closed), feedd.logs()
    assert answers(p2)


def test_hup_applies_a_new_www_root(feedd_factory, www, tmp_path):
    f = feedd_factory(www_root=str(www))
    assert get(f.port, "/index.html") == (200, (www / "index.html").read_bytes())
    other = tmp_path / "www2"
    other.mkdir()
    (other / "index.html").write_text("<!doctype html><title>B</title>site B\n")
    f.reconfigure(www_root=str(other))
    f.signal(signal.SIGHUP)

    def serves_b():
        # Requests racing the reload are test_hup_drops_no_request's business.
        try:
            return get(f.port, "/index.html")[1] == (other / "index.html").read_bytes()
        except OSError:
            return False
    assert wait_until(serves_b), f.logs()


def test_hup_with_a_bad_config_keeps_the_old_one(feedd):
    old = feedd.worker_pids()
    feedd.reconfigure(no_such_setting=1)
    lines = feedd.config_path.read_text().splitlines()
    lineno = next(i + 1 for i, l in enumerate(lines) if l.startswith("no_such_setting"))
    feedd.signal(signal.SIGHUP)
    assert wait_until(lambda: "reload failed" in feedd.error_log()), feedd.logs()
    log = feedd.error_log()
    assert f"{feedd.config_path}:{lineno}" in log, log
    assert feedd.worker_pids() == old, "the old workers keep serving"
    assert feedd.get("/healthz")[0] == 200
    assert metric(feedd, "feedd_config_reloads_total") == 0

    # The failure left nothing behind: a good file reloads again.
    feedd.reconfigure(no_such_setting=None)
    feedd.signal(signal.SIGHUP)
    assert wait_until(lambda: (p := feedd.worker_pids()) and not set(p) & set(old)), feedd.logs()
    assert feedd.get("/healthz")[0] == 200


def test_hup_with_an_unbindable_address_keeps_the_old_config(feedd):
    old = feedd.worker_pids()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        busy = blocker.getsockname()[1]
        feedd.reconfigure(listen=f"127.0.0.1:{feedd.port},127.0.0.1:{busy}")
        feedd.port = int(feedd.settings["listen"].split(",")[0].rsplit(":", 1)[1])
        feedd.signal(signal.SIGHUP)
        assert wait_until(lambda: "reload failed" in feedd.error_log()), feedd.logs()
        assert f"127.0.0.1:{busy}" in feedd.error_log()
        assert feedd.worker_pids() == old
        assert feedd.get("/healthz")[0] == 200
    finally:
        blocker.close()


def test_hup_drops_no_request(feedd):
    failures, count = [], [0]
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                status, _ = get(feedd.port, "/healthz")
                if status != 200:
                    failures.append(f"status {status}")
            except OSError as e:
                failures.append(repr(e))
            count[0] += 1

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for _ in range(5):
            old = feedd.worker_pids()
            feedd.signal(signal.SIGHUP)
            wait_until(lambda: not any(running(p) for p in old))
    finally:
        stop.set()
        t.join(timeout=30)
    assert count[0] > 0
    assert not failures, f"{len(failures)} of {count[0]} requests failed: {failures[:5]}\n{feedd.logs()}"


def test_hup_lets_the_old_workers_finish_a_download(feedd_factory, www):
    f = feedd_factory(www_root=str(www))
    dl = SlowDownload(f.port)
    old = f.worker_pids()
    f.signal(signal.SIGHUP)
    assert wait_until(lambda: (p := f.worker_pids()) and set(p) - set(old)), f.logs()
    head, body = dl.read_all()
    assert body == (www / "big.bin").read_bytes(), f"got {len(body)} of {BIG} bytes"
    assert wait_until(lambda: not any(running(p) for p in old))


# --- shutdowns ----------------------------------------------------------------


def test_quit_finishes_the_request_in_flight(feedd_factory, www):
    f = feedd_factory(www_root=str(www))
    dl = SlowDownload(f.port)
    f.signal(signal.SIGQUIT)
    assert wait_until(lambda: "SIGQUIT" in f.error_log())
    time.sleep(0.5)
    assert f.alive(), "the master waits for the download"
    head, body = dl.read_all()
    assert body == (www / "big.bin").read_bytes(), f"got {len(body)} of {BIG} bytes"
    assert f.wait_exit(timeout=15) == 0, f.logs()
    assert not (f.dir / "feedd.pid").exists()


def test_quit_serves_the_connections_waiting_to_be_accepted(feedd_factory):
    """Connections the kernel queued on a worker's listen socket before the
    shutdown are accepted and answered, not reset when the socket closes."""
    f = feedd_factory(workers=1)
    (worker,) = f.worker_pids()
    os.kill(worker, signal.SIGSTOP)
    try:
        socks = [socket.create_connection(("127.0.0.1", f.port), timeout=10) for _ in range(8)]
        for s in socks:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        f.signal(signal.SIGQUIT)
        assert wait_until(lambda: "SIGQUIT" in f.error_log()), f.logs()
        time.sleep(0.2)      # the master has closed its copies of the sockets
    finally:
        os.kill(worker, signal.SIGCONT)
    statuses = []
    for s in socks:
        try:
            data = s.recv(4096)
            statuses.append(int(data.split()[1]) if data else "closed")
        except OSError as e:
            statuses.append(repr(e))
        s.close()
    assert statuses == [200] * 8, f"{statuses}\n{f.logs()}"
    assert f.wait_exit(timeout=15) == 0, f.logs()


def test_quit_is_not_bounded_by_shutdown_timeout(feedd_factory, www):
    f = feedd_factory(www_root=str(www), shutdown_timeout="1s")
    dl = SlowDownload(f.port)
    f.signal(signal.SIGQUIT)
    time.sleep(3)
    assert f.alive(), f.logs()
    head, body = dl.read_all()
    assert len(body) == BIG
    assert f.wait_exit(timeout=15) == 0, f.logs()


def test_quit_stops_accepting(feedd_factory, www):
    f = feedd_factory(www_root=str(www))
    dl = SlowDownload(f.port)
    f.signal(signal.SIGQUIT)
    assert wait_until(lambda: not answers(f.port)), "new connections refused while draining"
    assert f.alive()
    dl.read_all()
    assert f.wait_exit(timeout=15) == 0


def test_term_is_bounded_by_shutdown_timeout(feedd_factory, www):
    f = feedd_factory(www_root=str(www), shutdown_timeout="1s")
    dl = SlowDownload(f.port)
    f.signal(signal.SIGTERM)
    # Bound (1 s) + the master's grace (1 s) + slack for a loaded machine.
    status = f.wait_exit(timeout=8)
    assert status == 0, f.logs()
    assert "shutdown_timeout passed" in f.error_log(), "the worker waited for the bound, then cut"
    head, body = dl.read_all()
    assert len(body) < BIG, "the stuck download was cut at the bound"


def test_term_finishes_a_quick_request(feedd_factory, www):
    f = feedd_factory(www_root=str(www), shutdown_timeout="30s")
    dl = SlowDownload(f.port)
    f.signal(signal.SIGTERM)
    assert wait_until(lambda: "SIGTERM" in f.error_log())
    head, body = dl.read_all()
    assert len(body) == BIG
    assert f.wait_exit(timeout=15) == 0, f.logs()


def test_int_is_fast(feedd_factory, www):
    f = feedd_factory(www_root=str(www), shutdown_timeout="60s")
    dl = SlowDownload(f.port)
    f.signal(signal.SIGINT)
    assert f.wait_exit(timeout=10) == 0, f.logs()
    head, body = dl.read_all()
    assert len(body) < BIG


def test_second_term_escalates(feedd_factory, www):
    f = feedd_factory(www_root=str(www), shutdown_timeout="60s")
    workers = f.worker_pids()
    dl = SlowDownload(f.port)
    f.signal(signal.SIGTERM)
    assert wait_until(lambda: "SIGTERM" in f.error_log())
    time.sleep(0.3)
    assert f.alive(), "the first TERM waits for the download"
    f.signal(signal.SIGTERM)
    assert f.wait_exit(timeout=10) == 0, f.logs()
    assert not any(running(p) for p in workers)
    dl.read_all()


# --- USR1, USR2 -----------------------------------------------------------------


def test_usr1_reopens_the_logs(feedd):
    error_log = feedd.dir / "error.log"
    access_log = feedd.dir / "access.log"
    error_log.rename(feedd.dir / "error.log.1")
    access_log.rename(feedd.dir / "access.log.1")
    feedd.signal(signal.SIGUSR1)
    assert wait_until(lambda: "reopening" in (feedd.dir / "error.log.1").read_text())
    # Workers got the signal after the master: every worker reopens once
    # its signal is read, so ask until the new file sees a request.
    assert wait_until(lambda: feedd.get("/usr1-marker")[0] and access_log.exists()
                      and "/usr1-marker" in access_log.read_text()), feedd.logs()
    feedd.signal(signal.SIGHUP)
    assert wait_until(lambda: error_log.exists() and "reloading" in error_log.read_text())


def test_usr2_flushes_the_cache(feedd):
    feedd.signal(signal.SIGUSR2)
    assert wait_until(lambda: "flushing the feed cache" in feedd.error_log()), feedd.logs()
    assert feedd.alive()
    assert len(feedd.worker_pids()) == 2, "workers are not disturbed"
    assert metric(feedd, "feedd_cache_flushes_total") == 1


def test_quit_finishes_a_feed_request_waiting_on_the_database(feedd_factory):
    # The hook holds one of the fifteen statements back for 3 s.
    f = feedd_factory(env={"FEEDD_TEST_SLOW_SOURCE": "worlds:3000"})
    result = {}

    def request():
        try:
            result["resp"] = f.get("/api/feed", timeout=30)
        except Exception as e:   # noqa: BLE001 - reported below
            result["error"] = repr(e)

    t = threading.Thread(target=request)
    t.start()
    time.sleep(0.5)   # the request is parsed and waiting on the statement
    f.signal(signal.SIGQUIT)
    t.join(timeout=30)
    assert "error" not in result, f"{result['error']}\n{f.logs()}"
    status, headers, body = result["resp"]
    assert status == 200, body
    assert body.startswith(b"{")
    assert f.wait_exit(timeout=15) == 0, f.logs()

"""Database host names are resolved off the event loop (src/pgresolve.c):
libpq's own lookup, a blocking getaddrinfo(), would stall the worker for as
long as DNS takes.  PostgreSQL here listens on a Unix socket only, so a
small TCP forwarder on 127.0.0.1 stands in for a server reached by name."""

import os
import socket
import threading

import pytest

from helpers import wait_until


class UnixForwarder:
    """127.0.0.1:port -> a Unix socket, a thread per direction."""

    def __init__(self, path):
        self.path = path
        self.accepted = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.connect(self.path)
            except OSError:
                client.close()
                continue
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


@pytest.fixture
def forwarder(pg):
    fw = UnixForwarder(os.path.join(pg.socket_dir, f".s.PGSQL.{pg.port}"))
    yield fw
    fw.close()


def test_a_host_name_is_resolved_while_the_worker_serves(feedd_factory, pg, forwarder):
    """The lookup is held for 3 s (test hook): meanwhile the workers answer
    /healthz and say they have no database; then they connect to the
    address found, 127.0.0.1, and serve the feed."""
    f = feedd_factory(
        workers=1, log_level="debug",
        db=f"host=localhost port={forwarder.port} dbname={pg.dbname} user=postgres",
        env={"FEEDD_TEST_RESOLVE_HOLD_MS": "3000"})
    assert f.get("/healthz")[0] == 200
    assert f.get("/readyz")[0] == 503, f.logs()
    assert forwarder.accepted == 0
    assert f.get("/healthz")[0] == 200
    assert wait_until(lambda: f.get("/readyz")[0] == 200, timeout=20), f.logs()
    status, _, body = f.get("/api/feed?limit=5")
    assert status == 200, body
    assert forwarder.accepted >= 1, "connected over TCP, to the address looked up"
    log = f.error_log()
    assert "host=localhost" in log and "resolved: hostaddr=" in log, log
    assert "127.0.0.1" in log.split("resolved: hostaddr=")[1].splitlines()[0], log


def test_a_host_name_that_does_not_resolve(feedd_factory):
    """A name under .invalid never resolves (RFC 6761): the pool reports the
    lookup's failure like any failed connection and tries again later,
    and the worker keeps answering."""
    f = feedd_factory(workers=1, db="host=feedd-test.invalid port=5432 dbname=x user=x",
                      env={"RES_OPTIONS": "timeout:1 attempts:1"})
    assert wait_until(lambda: 'could not resolve host name "feedd-test.invalid"'
                      in f.error_log(), timeout=20), f.logs()
    assert f.get("/healthz")[0] == 200
    assert f.get("/readyz")[0] == 503
    status, _, body = f.get("/api/feed")
    assert status == 503, body


def test_a_host_that_does_not_resolve_is_skipped_for_the_next(feedd_factory, pg, forwarder):
    """Several hosts: one whose name does not resolve is left out, as libpq
    would skip it, and the pool connects to the next."""
    p = forwarder.port
    f = feedd_factory(workers=1,
                      db=f"host=feedd-test.invalid,localhost port={p},{p} dbname={pg.dbname} "
                         f"user=postgres",
                      env={"RES_OPTIONS": "timeout:1 attempts:1"})
    assert wait_until(lambda: f.get("/readyz")[0] == 200, timeout=20), f.logs()
    assert f.get("/api/feed?limit=3")[0] == 200
    assert 'could not resolve host name "feedd-test.invalid"' in f.error_log(), f.logs()
    assert forwarder.accepted >= 1

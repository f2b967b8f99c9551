"""Database faults: PostgreSQL down at start, stopped mid-load and
restarted, a statement stuck past its deadline.  feedd answers clean JSON
errors meanwhile, never crashes a worker, recovers fully, leaks no
database connection."""

import json
import threading
import time

import pytest

from helpers import feed_tables_locked, feedd_conns, lock_waiters, metric, poll, readyz_everywhere

WORKERS = 2
POOL = 2


def assert_json_error(status, body, statuses):
    assert status in statuses, (status, body)
    doc = json.loads(body)
    assert isinstance(doc.get("detail"), str) and doc["detail"], doc
    return doc["detail"]


def test_starts_and_serves_healthz_while_db_is_down(demo, feedd_factory):
    demo.stop()
    try:
        feedd = feedd_factory(workers=WORKERS, db_pool_size=POOL, db_reconnect_max="500ms")
        workers = feedd.worker_pids()
        status, _, body = feedd.get("/healthz")
        assert status == 200, body
        status, _, body = feedd.get("/readyz")
        assert_json_error(status, body, {503})
        status, _, body = feedd.get("/api/feed?limit=3")
        detail = assert_json_error(status, body, {503})
        assert "database" in detail, detail
        assert feedd.worker_pids() == workers, "no worker died"
    finally:
        demo.start()
    poll("/readyz 200 after the database came up", lambda: readyz_everywhere(feedd, 200))
    status, _, body = feedd.get("/api/feed?limit=3")
    assert status == 200, body
    assert feedd.worker_pids() == workers


class Load(threading.Thread):
    """Cold pages in a loop (a distinct cursor each, so every request
    queries the database); records (phase at start, phase at end, status,
    body): a request across a phase change belongs to neither side."""

    def __init__(self, feedd):
        super().__init__(daemon=True)
        self.feedd = feedd
        self.phase = "before"
        self.results = []
        self.stop_flag = threading.Event()

    def run(self):
        n = 0
        while not self.stop_flag.is_set():
            n += 1
            path = f"/api/feed?limit=5&cursor=2100-01-01T00:00:00.{n % 1000000:06d}Z"
            phase = self.phase
            try:
                status, _, body = self.feedd.get(path, timeout=15)
            except OSError as e:
                status, body = None, repr(e).encode()
            self.results.append((phase, self.phase, status, body))

    def stop(self):
        self.stop_flag.set()
        self.join(30)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_db_stopped_mid_load_then_recovers(demo, feedd_factory, mode):
    feedd = feedd_factory(workers=WORKERS, db_pool_size=POOL, db_reconnect_max="500ms")
    poll("ready", lambda: readyz_everywhere(feedd, 200))
    workers = feedd.worker_pids()
    load = Load(feedd)
    load.start()
    try:
        time.sleep(0.5)
        load.phase = "down"
        demo.stop(mode)
        time.sleep(1.5)
        load.phase = "restarting"
        demo.start()
        poll("/readyz 200 after the restart", lambda: readyz_everywhere(feedd, 200))
        load.phase = "after"
        time.sleep(0.5)
    finally:
        load.stop()
        demo.start()

    assert feedd.worker_pids() == workers, "a worker died\n" + feedd.logs()
    by_phase = {}
    for started, ended, status, body in load.results:
        assert status is not None, f"{started}: no HTTP answer: {body!r}"
        if status != 200:
            assert_json_error(status, body, {503, 504})
        if started == ended:
            by_phase.setdefault(started, []).append(status)
    assert by_phase.get("before") and set(by_phase["before"]) == {200}, by_phase.get("before")
    assert 503 in by_phase.get("down", []), "requests while the database is down get 503"
    assert by_phase.get("after") and set(by_phase["after"]) == {200}, by_phase.get("after")

    # Every worker reconnected, and only its pool.
    poll("the pools reconnected", lambda: feedd_conns(demo) == WORKERS * POOL)
    for i in range(10):
        status, _, body = feedd.get(f"/api/feed?limit=4&cursor=2100-01-02T00:00:00.{i:06d}Z")
        assert status == 200, body
    assert feedd_conns(demo) == WORKERS * POOL


def test_stuck_statement_is_cancelled(demo, feedd_factory):
    """Every feed table locked by a test transaction: the statements wait
    for the lock until db_query_timeout; the request fails 504, feedd sends
    cancel requests (the statements end "due to user request", not by the
    server's statement_timeout backstop) and no feedd backend keeps waiting."""
    feedd = feedd_factory(workers=1, db_pool_size=POOL, db_query_timeout="1s")
    poll("ready", lambda: readyz_everywhere(feedd, 200, 3))
    cancelled_before = metric(feedd, "feedd_db_cancelled_total")
    with open(demo.logfile, "rb") as f:
        log_start = len(f.read())

    assert demo.tables()
    with feed_tables_locked(demo):
        status, _, body = feedd.get("/api/feed?limit=12&cursor=2100-01-03T00:00:00Z")
        detail = assert_json_error(status, body, {504})
        assert "time" in detail, detail
        poll("no feedd backend waiting for the lock", lambda: lock_waiters(demo) == 0, timeout=5)

    def cancelled_in_log():
        with open(demo.logfile, "rb") as f:
            return b"canceling statement due to user request" in f.read()[log_start:]
    poll("a cancel in the server log", cancelled_in_log, timeout=5)
    assert metric(feedd, "feedd_db_cancelled_total") > cancelled_before

    # The pool is whole again: pages are served, no connection was lost.
    status, _, body = feedd.get("/api/feed?limit=12&cursor=2100-01-04T00:00:00Z")
    assert status == 200, body
    assert feedd_conns(demo) == POOL

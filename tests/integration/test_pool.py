"""The per-worker database pool: its size, /readyz, the bounded queue, no
leaked connections (stop, reload), and a client that goes away takes its
statements with it (cancelled on the server, lease released)."""

import json
import re
import signal
import socket
import subprocess
import time

import pytest

from helpers import (FEED_STATEMENTS, NSOURCES, feed_tables_locked, feedd_conns, lock_waiters,
                     poll, readyz_everywhere, wait_until)


def db_connection_gauges(feedd):
    status, _, body = feedd.get("/metrics")
    assert status == 200, body
    states = {}
    for line in body.decode().splitlines():
        if line.startswith("feedd_db_connections{"):
            state = line.split('state="', 1)[1].split('"', 1)[0]
            states[state] = int(float(line.split()[-1]))
    return states


def test_each_worker_opens_db_pool_size_connections(demo, feedd_factory):
    feedd = feedd_factory(workers=2, db_pool_size=3)
    poll("2 x 3 connections", lambda: feedd_conns(demo) == 6)
    poll("the gauges to show them up",
         lambda: db_connection_gauges(feedd).get("idle", 0)
         + db_connection_gauges(feedd).get("busy", 0) == 6)
    for i in range(20):
        status, _, body = feedd.get(f"/api/feed?limit=3&cursor=2100-01-01T00:00:{i:02d}Z")
        assert status == 200, body
    assert feedd_conns(demo) == 6, "load opens no connection beyond the pools"


def test_readyz_follows_the_database(demo, feedd_factory):
    feedd = feedd_factory(workers=2, db_pool_size=2, db_reconnect_max="300ms")
    poll("ready", lambda: readyz_everywhere(feedd, 200))
    demo.stop()
    try:
        poll("/readyz 503", lambda: readyz_everywhere(feedd, 503))
        status, _, body = feedd.get("/readyz")
        assert isinstance(json.loads(body), dict)
        assert feedd.get("/healthz")[0] == 200
        poll("the gauges to show them down",
             lambda: db_connection_gauges(feedd).get("idle", 0) == 0)
    finally:
        demo.start()
    poll("/readyz 200 again", lambda: readyz_everywhere(feedd, 200))


def test_connections_close_with_feedd(demo, feedd_factory):
    feedd = feedd_factory(workers=2, db_pool_size=2)
    poll("2 x 2 connections", lambda: feedd_conns(demo) == 4)
    assert feedd.stop() == 0
    poll("no feedd connection left", lambda: feedd_conns(demo) == 0)


def test_reload_leaks_no_connection(demo, feedd_factory):
    feedd = feedd_factory(workers=2, db_pool_size=3)
    poll("2 x 3 connections", lambda: feedd_conns(demo) == 6)
    old = set(feedd.worker_pids())
    feedd.reconfigure(db_pool_size=1)
    feedd.signal(signal.SIGHUP)
    poll("the new workers", lambda: not old & set(feedd.worker_pids())
         and len(feedd.worker_pids()) == 2)
    poll("2 x 1 connections", lambda: feedd_conns(demo) == 2)
    status, _, body = feedd.get("/api/feed?limit=3")
    assert status == 200, body


def test_page_that_cannot_be_queued_is_503_and_costs_nothing(demo, feedd_factory):
    """One connection carries one page's 15 statements in its pipeline and
    the queue holds 15 more (the smallest queue the configuration allows:
    one page).  With the tables locked, a first cold page fills the
    pipeline, a second fills the queue; a third (15 statements) no longer
    fits and is refused at once, before anything of it reaches the
    database."""
    # cache_lease_timeout: should two pages' fill leases share a record of
    # the direct-mapped lease table (src/cache.c), the second would wait for
    # the first, locked, fill for the whole default 10 s instead of queueing.
    feedd = feedd_factory(workers=1, db_pool_size=1, db_queue_size=15,
                          db_query_timeout="20s", cache_lease_timeout="1ms")
    poll("ready", lambda: readyz_everywhere(feedd, 200, 3))
    waiting = ["/api/feed?limit=5&cursor=2100-01-01T00:00:00Z",
               "/api/feed?limit=5&cursor=2100-01-02T00:00:00Z"]
    refused = "/api/feed?limit=5&cursor=2100-01-03T00:00:00Z"
    clients = []
    with feed_tables_locked(demo):
        demo.reset_stats()
        def send(path):
            client = socket.create_connection(("127.0.0.1", feedd.port))
            client.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            clients.append(client)

        def queued():
            m = re.search(rb"^feedd_db_queue_length (\d+)$", feedd.get("/metrics")[2], re.M)
            return int(m.group(1))

        send(waiting[0])
        poll("the first page's statements waiting for the lock",
             lambda: lock_waiters(demo) > 0, timeout=5)
        # The whole page went out on the one connection: one round trip.
        assert queued() == 0
        send(waiting[1])
        if not wait_until(lambda: queued() == 15, timeout=5):
            # Seen once in a full run before cache_lease_timeout was set
            # above (a lease collision: 1 run in 256 then): say what was
            # going on if it happens again.
            backends = demo.sql("SELECT pid, state, wait_event_type, left(query, 60)"
                                " FROM pg_stat_activity WHERE application_name = 'feedd'")
            pytest.fail(f"the second page was not queued: queue length {queued()}, "
                        f"feedd backends {backends}\n{feedd.logs()}")
        status, _, body = feedd.get(refused)
        assert status == 503, body
        detail = json.loads(body)["detail"]
        assert isinstance(detail, str) and "database" in detail, detail
        # The database is up: the detail says the queue is the cause.
        assert "busy" in detail and "queue full" in detail, detail
    for client in clients:
        client.settimeout(10)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = client.recv(65536)
            assert chunk, "connection closed before a waiting page's answer"
            reply += chunk
        client.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    # Only the two waiting pages' statements ran: the refused page cost nothing.
    assert demo.count_statements(FEED_STATEMENTS) == 2 * NSOURCES
    assert feedd.get("/healthz")[0] == 200


def source_answers(feedd):
    """feedd_source_query_seconds_count by source: statements answered."""
    body = feedd.get("/metrics")[2].decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^feedd_source_query_seconds_count\{source="(\w+)"\} (\S+)$', body, re.M)}


class StoryReviewsLocked:
    """story_reviews is the only statement reading platform_story_reviews:
    with that table locked, it alone waits on the server."""

    def __init__(self, pg, feedd):
        self.pg, self.feedd = pg, feedd

    def __enter__(self):
        self.locker = self.pg.connect()
        self.locker.execute("BEGIN")
        self.locker.execute('LOCK TABLE public."platform_story_reviews" IN ACCESS EXCLUSIVE MODE')
        return self

    def send(self, path):
        self.client = socket.create_connection(("127.0.0.1", self.feedd.port), timeout=10)
        self.client.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        poll("story_reviews waiting for the lock", lambda: lock_waiters(self.pg) == 1,
             timeout=5)

    def __exit__(self, *exc):
        self.locker.execute("ROLLBACK")
        self.locker.close()
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = self.client.recv(65536)
            assert chunk, "connection closed before the page"
            reply += chunk
        self.client.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_costly_statement_gets_a_connection_of_its_own(demo, feedd_factory):
    """The pool learns what each statement costs the server and a page
    sends its costliest first, to the connection with the least work
    ahead, and the others where they answer before it.  Once story_reviews
    has been slow, it goes out alone on one connection and the other 14
    share one other connection of the four: none of them waits behind it
    (in source order revised_proposals and graduated would), and the page
    holds two of the server's backends, not four."""
    feedd = feedd_factory(workers=1, db_pool_size=4, db_query_timeout="20s")
    poll("ready", lambda: readyz_everywhere(feedd, 200, 3))
    for day in (1, 2):
        with StoryReviewsLocked(demo, feedd) as locked:
            locked.send(f"/api/feed?limit=5&cursor=2100-01-{day:02d}T00:00:00Z")
            time.sleep(0.3)
    before = source_answers(feedd)
    assert len(before) == 15, before
    others = [name for name in before if name != "story_reviews"]
    poll("every connection idle", lambda: demo.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'feedd'"
        " AND state = 'idle'")[0][0] == 4)
    start = demo.sql("SELECT clock_timestamp()")[0][0]
    with StoryReviewsLocked(demo, feedd) as locked:
        locked.send("/api/feed?limit=5&cursor=2100-01-03T00:00:00Z")
        answered = poll("the 14 others answered while story_reviews waits", lambda: (
            a := source_answers(feedd)) and all(a[n] == before[n] + 1 for n in others) and a,
            timeout=5)
        assert answered["story_reviews"] == before["story_reviews"]
        used = demo.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'feedd'"
                        " AND state_change >= %s", start)[0][0]
        assert used == 2


def test_config_refuses_a_queue_smaller_than_one_page(tmp_path, build_dir):
    conf = tmp_path / "small-queue.conf"
    conf.write_text("db_queue_size = 14\n")
    r = subprocess.run([str(build_dir / "feedd"), "-t", "-c", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "db_queue_size" in r.stdout + r.stderr


def test_client_gone_cancels_its_statements(demo, feedd_factory):
    """The feed tables are locked, so a cold page's statements wait; the
    client hangs up long before db_query_timeout: feedd cancels them on
    the server and releases the fill lease (the next request for the same
    page does not wait for cache_lease_timeout)."""
    feedd = feedd_factory(workers=1, db_pool_size=2, db_query_timeout="20s",
                          cache_lease_timeout="30s")
    poll("ready", lambda: readyz_everywhere(feedd, 200, 3))
    path = "/api/feed?limit=13&cursor=2100-01-05T00:00:00Z"
    with open(demo.logfile, "rb") as f:
        log_start = len(f.read())

    with feed_tables_locked(demo):
        client = socket.create_connection(("127.0.0.1", feedd.port))
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        poll("feedd's statements waiting for the lock", lambda: lock_waiters(demo) > 0, timeout=5)
        client.close()
        poll("no feedd backend waiting for the lock", lambda: lock_waiters(demo) == 0, timeout=10)

    with open(demo.logfile, "rb") as f:
        assert b"canceling statement due to user request" in f.read()[log_start:]
    status, headers, body = feedd.get(path, timeout=10)
    assert status == 200, body
    assert headers["x-cache"] == "miss"


def test_silent_database_fails_requests_after_connect_timeout(feedd_factory):
    """A server that accepts TCP connections and never answers: start-up
    is fine, the first request waits at most db_connect_timeout for the
    connections under way, then gets a 503."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        port = silent.getsockname()[1]
        feedd = feedd_factory(workers=1, db_pool_size=2, db_connect_timeout="500ms",
                              db_reconnect_max="500ms",
                              db=f"host=127.0.0.1 port={port} dbname=feedd user=postgres"
                                 " sslmode=disable gssencmode=disable")
        assert feedd.get("/healthz")[0] == 200
        assert feedd.get("/readyz")[0] == 503
        status, _, body = feedd.get("/api/feed?limit=3", timeout=10)
        assert status == 503, body
        assert "database" in json.loads(body)["detail"]
        assert "no connection within 500 ms" in feedd.error_log()
    finally:
        silent.close()


def test_statement_that_cannot_be_prepared(demo, feedd_factory):
    """A table gone (renamed): no connection gets ready, the failing
    statement is logged as an error with the server's message, and the
    pool recovers by itself once the table is back."""
    demo.sql("ALTER TABLE platform_worlds RENAME TO platform_worlds_away")
    try:
        feedd = feedd_factory(workers=1, db_pool_size=2, db_reconnect_max="300ms")
        poll("the prepare error in the log", lambda: "cannot prepare statement"
             in feedd.error_log(), timeout=5)
        log = feedd.error_log()
        assert "platform_worlds" in log and "does not exist" in log, log
        assert feedd.get("/readyz")[0] == 503
        status, _, body = feedd.get("/api/feed?limit=3")
        assert status == 503, body
    finally:
        demo.sql("ALTER TABLE platform_worlds_away RENAME TO platform_worlds")
    poll("/readyz 200 once the table is back", lambda: readyz_everywhere(feedd, 200, 3))
    status, _, body = feedd.get("/api/feed?limit=3")
    assert status == 200, body
    errors = [l for l in feedd.error_log().splitlines() if "cannot prepare statement" in l]
    assert errors and all(" error: " in l for l in errors), errors

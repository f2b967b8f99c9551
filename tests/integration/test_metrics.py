"""GET /metrics: valid Prometheus text (read by prometheus_client's parser
and, when installed, promtool), every metric documented in doc/metrics.md,
and counters that move by exactly what known traffic implies: hits, misses,
one fill for many concurrent cold requests over both workers, statuses by
endpoint, every byte sent, the gauges, the pool, totals that survive
kill -9 of the workers, consistent histograms, metrics_allow, and
bench/metrics-summary."""

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from helpers import (Scrape, cold_path, connections_on_every_worker, delta, feed_tables_locked,
                     keepalive_get, poll, raw_get, read_all, request_bytes, requests_delta,
                     scrape, settle, split_response, wait_pools)

SOURCES = {"worlds", "proposals", "validations", "aspects", "actions", "dwellers", "agents",
           "stories", "revised_stories", "reviews", "story_reviews", "resolved_feedback",
           "revised_proposals", "revised_aspects", "graduated"}
HISTOGRAMS = ("feedd_feed_complete_seconds", "feedd_stream_first_item_seconds",
              "feedd_stream_complete_seconds", "feedd_source_query_seconds", "feedd_page_items")


# --- the exposition itself -------------------------------------------------------


def documented_metrics(repo_root):
    """{name: type} from the table in doc/metrics.md."""
    doc = (repo_root / "doc" / "metrics.md").read_text()
    rows = re.findall(r"^\| `(feedd_[a-z0-9_]+)` \| (counter|gauge|histogram) \|", doc, re.M)
    assert rows, "doc/metrics.md has no metric table"
    return dict(rows)


def exposed_name(fam):
    """The family's name as its # TYPE line spells it."""
    return fam.name + "_total" if fam.type == "counter" else fam.name


def test_exposition_is_valid_and_documented(demo, feedd, repo_root):
    wait_pools(feedd)
    feedd.get(cold_path(0))
    feedd.get(cold_path(0))
    feedd.get(cold_path(1, stream=True))
    feedd.get("/api/nope")
    s = scrape(feedd)
    name_re = re.compile(r"^feedd_[a-z0-9_]+$")
    label_re = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    for fam in s.families.values():
        assert name_re.match(fam.name), fam.name
        assert fam.type in ("counter", "gauge", "histogram"), (fam.name, fam.type)
        assert fam.documentation.strip(), f"{fam.name} has no # HELP"
        name = exposed_name(fam)
        assert re.search(rf"^# TYPE {name} {fam.type}$", s.text, re.M), name
        assert re.search(rf"^# HELP {name} \S", s.text, re.M), name
        for sample in fam.samples:
            assert all(label_re.match(k) and not k.startswith("__") for k in sample.labels)
            assert math.isfinite(sample.value) and sample.value >= 0, sample
            if fam.type == "counter":
                assert sample.name == fam.name + "_total", sample
    # Every line is a comment or a sample of a declared family: nothing the
    # parser would have skipped or guessed at.
    for line in s.text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or \
            re.match(r"^feedd_[a-z0-9_]+(\{[^}]*\})? \S+$", line), line
    assert s.text.endswith("\n")

    # The same set, with the same types, as doc/metrics.md.
    documented = documented_metrics(repo_root)
    exposed = {exposed_name(fam): fam.type for fam in s.families.values()}
    differ = sorted(n for n in exposed if n in documented and exposed[n] != documented[n])
    assert exposed == documented, (
        f"in /metrics, not documented: {sorted(set(exposed) - set(documented))}; "
        f"documented, not in /metrics: {sorted(set(documented) - set(exposed))}; "
        f"types differ: {differ}")

    status, headers, _ = feedd.get("/healthz")
    version = headers["server"].split("/", 1)[1]
    assert s.series("feedd_build_info") == [({"version": version}, 1.0)]


def promtool():
    return os.environ.get("FEEDD_PROMTOOL") or shutil.which("promtool")


@pytest.mark.skipif(not promtool(), reason="promtool not installed (Debian package prometheus)")
def test_promtool_finds_no_problem(demo, feedd):
    wait_pools(feedd)
    feedd.get(cold_path(2))
    feedd.get(cold_path(3, stream=True))
    status, _, body = feedd.get("/metrics")
    assert status == 200
    r = subprocess.run([promtool(), "check", "metrics"], input=body, capture_output=True,
                       timeout=60)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0 and not out.strip(), out


# --- counters after known traffic ---------------------------------------------------


def test_hits_misses_and_fills(demo, feedd):
    wait_pools(feedd)
    misses, repeats = 3, 4
    before = scrape(feedd)
    pages = {}
    for i in range(misses):
        status, headers, body = feedd.get(cold_path(10 + i))
        assert (status, headers["x-cache"]) == (200, "miss"), body
        pages[cold_path(10 + i)] = body
    for _ in range(repeats):
        for path, page in pages.items():
            status, headers, body = feedd.get(path)
            assert (status, headers["x-cache"], body) == (200, "hit", page)
    after = settle(feedd, "every request counted", lambda a: requests_delta(
        before, a, "feed", "200") >= misses * (repeats + 1))

    def d(name, **labels):
        return delta(before, after, name, **labels)

    assert d("feedd_cache_misses_total") == misses
    assert d("feedd_cache_hits_total") == misses * repeats
    assert d("feedd_cache_fills_total") == misses
    assert d("feedd_cache_stale_total") == 0
    assert d("feedd_cache_lease_waits_total") == 0
    assert d("feedd_cache_evictions_total") == 0
    assert d("feedd_http_requests_total", endpoint="feed", code="200") == misses * (repeats + 1)
    assert d("feedd_cache_entries") == misses
    assert d("feedd_cache_bytes") == sum(len(p) for p in pages.values())
    assert d("feedd_feed_complete_seconds_count") == misses * (repeats + 1)
    assert d("feedd_page_items_count") == misses
    assert d("feedd_page_items_sum") == sum(len(json.loads(p)["items"]) for p in pages.values())
    for src in SOURCES:
        assert d("feedd_source_query_seconds_count", source=src) == misses, src
    assert d("feedd_stream_complete_seconds_count") == 0


def test_cached_answers_are_timed_from_their_own_request(demo, feedd):
    """A cached answer completes its request at once, which clears it for
    the next: its time must come from the request, not from a field read
    after that (which observed the whole uptime of the machine)."""
    wait_pools(feedd)
    path = cold_path(30)
    assert feedd.get(path)[1]["x-cache"] == "miss"
    before = scrape(feedd)
    for _ in range(5):  # by copy, then from the worker's page file
        assert feedd.get(path)[1]["x-cache"] == "hit"
    for _ in range(2):
        status, headers, _ = feedd.get(cold_path(30, stream=True))
        assert (status, headers["x-cache"]) == (200, "hit")
    after = settle(feedd, "every request counted",
                   lambda a: requests_delta(before, a, "feed", "200") >= 5 and
                   requests_delta(before, a, "stream", "200") >= 2)

    def d(name):
        return delta(before, after, name)

    assert d("feedd_feed_complete_seconds_count") == 5
    assert d("feedd_stream_complete_seconds_count") == 2
    assert d("feedd_stream_first_item_seconds_count") == 2
    # A bound no answer from memory comes near, far below any uptime.
    assert d("feedd_feed_complete_seconds_sum") < 5 * 60
    assert d("feedd_stream_complete_seconds_sum") < 2 * 60
    assert d("feedd_stream_first_item_seconds_sum") < 2 * 60


def test_stale_pages_and_their_refresh(demo, feedd_factory):
    f = feedd_factory(cache_ttl="1s", cache_stale="60s",
                      env={"FEEDD_TEST_SLOW_SOURCE": "worlds:1000"})
    wait_pools(f)
    path = cold_path(20)
    before = scrape(f)
    status, headers, _ = f.get(path)
    assert (status, headers["x-cache"]) == (200, "miss")
    time.sleep(1.2)  # past cache_ttl
    seen = []
    while True:
        status, headers, _ = f.get(path)
        assert status == 200
        seen.append(headers["x-cache"])
        if seen[-1] == "hit":
            break
        assert len(seen) < 200, seen
        time.sleep(0.05)
    after = settle(f, "the refresh counted",
                   lambda a: delta(before, a, "feedd_cache_fills_total") >= 2)
    assert seen[0] == "stale" and set(seen[:-1]) == {"stale"}, seen
    assert delta(before, after, "feedd_cache_stale_total") == len(seen) - 1
    assert delta(before, after, "feedd_cache_hits_total") == 1
    assert delta(before, after, "feedd_cache_misses_total") == 1
    # The first page and one background refresh; nobody waited for it.
    assert delta(before, after, "feedd_cache_fills_total") == 2
    assert delta(before, after, "feedd_cache_lease_waits_total") == 0
    assert delta(before, after, "feedd_page_items_count") == 2


def test_one_fill_for_concurrent_cold_requests_on_two_workers(demo, feedd_factory):
    """K requests for one cold page at once, on connections held by both
    workers (the worlds statement is held back a second, so they all
    arrive during the fill): one fill, one set of 15 source timings, and
    every other request either waited for the fill or came after it."""
    k = 40
    f = feedd_factory(workers=2,
                      env={"FEEDD_TEST_SLOW_SOURCE": "worlds:1000"})
    wait_pools(f)
    by_worker = connections_on_every_worker(f, each=k // 2)
    socks = [s for group in by_worker.values() for s in group]
    assert len(by_worker) == 2 and len(socks) == k
    path = cold_path(30)
    before = scrape(f)
    try:
        for s in socks:
            s.sendall(request_bytes(path))
        answers = [split_response(read_all(s)) for s in socks]
    finally:
        for s in socks:
            s.close()
    after = settle(f, "every request counted",
                   lambda a: requests_delta(before, a, "feed", "200") >= k)

    assert [a[0] for a in answers] == [200] * k
    assert len({a[2] for a in answers}) == 1, "everyone gets the same page"
    caches = [a[1]["x-cache"] for a in answers]
    assert caches.count("miss") == 1, caches

    def d(name, **labels):
        return delta(before, after, name, **labels)

    assert d("feedd_cache_fills_total") == 1
    misses, hits = d("feedd_cache_misses_total"), d("feedd_cache_hits_total")
    assert misses + hits == k and misses >= 1
    # Everyone who missed but the one who filled waited for the fill.
    assert d("feedd_cache_lease_waits_total") == misses - 1
    assert d("feedd_http_requests_total", endpoint="feed", code="200") == k
    assert d("feedd_feed_complete_seconds_count") == k
    assert d("feedd_page_items_count") == 1
    for src in SOURCES:
        assert d("feedd_source_query_seconds_count", source=src) == 1, src


def test_statuses_counted_by_endpoint(demo, feedd):
    expect = {}

    def hit(path, method="GET", endpoint=None, code=None):
        status, _, body = feedd.request(method, path)
        assert status == code, (path, status, body)
        expect[(endpoint, str(code))] = expect.get((endpoint, str(code)), 0) + 1

    # Starting up, the fixture asked /healthz once.
    before = settle(feedd, "the start-up /healthz counted", lambda b: b.get(
        "feedd_http_requests_total", endpoint="healthz", code="200") == 1)
    for v in ("abc", "0", "51"):
        hit(f"/api/feed?limit={v}", endpoint="feed", code=422)
    for v in ("yesterday", "2026-02-30T10:00:00Z"):
        hit(f"/api/feed/stream?cursor={v}", endpoint="stream", code=422)
    hit("/api/nope", endpoint="other", code=404)
    hit("/api/feed/x", endpoint="other", code=404)
    hit("/no-such-file.txt", endpoint="static", code=404)
    hit("/api/feed", method="POST", endpoint="feed", code=405)
    hit("/api/feed/stream", method="DELETE", endpoint="stream", code=405)
    hit("/healthz", endpoint="healthz", code=200)
    hit("/healthz", endpoint="healthz", code=200)

    def others(a):
        return sum(v - before.get("feedd_http_requests_total", **l)
                   for l, v in a.series("feedd_http_requests_total")
                   if l["endpoint"] != "metrics")

    after = settle(feedd, "every request counted",
                   lambda a: others(a) >= sum(expect.values()))

    labels = {(l["endpoint"], l["code"]) for l, _ in after.series("feedd_http_requests_total")}
    for endpoint, code in labels | set(expect):
        got = delta(before, after, "feedd_http_requests_total", endpoint=endpoint, code=code)
        if endpoint == "metrics":
            assert code == "200" and got >= 1, "the scrapes, counted once sent"
        else:
            assert got == expect.get((endpoint, code), 0), (endpoint, code)
    # A 422 never looks at the cache.
    assert delta(before, after, "feedd_cache_misses_total") == 0


def test_every_byte_sent_is_counted(demo, feedd):
    """Counted bytes = every byte the clients read, headers included.  A
    scrape's own bytes are counted once it is sent, so they show in the
    next scrape: the expected value grows by each scrape read."""
    def counted(data):
        return Scrape(split_response(data)[2].decode()).get("feedd_http_response_bytes_total")

    wait_pools(feedd)
    # Start from a scrape that found every earlier byte counted.
    first = raw_get(feedd.port, "/metrics")
    while True:
        prev, first = first, raw_get(feedd.port, "/metrics")
        if counted(first) == counted(prev) + len(prev):
            break
    base = counted(first)
    expected = base + len(first)
    for path in ("/healthz", cold_path(40), cold_path(40), "/api/feed?limit=x", "/api/nope",
                 cold_path(41, stream=True), "/"):
        expected += len(raw_get(feedd.port, path))
    expected += len(raw_get(feedd.port, "/healthz", method="HEAD"))
    while True:
        data = raw_get(feedd.port, "/metrics")
        got = counted(data)
        assert got <= expected, f"{got - expected} bytes counted that nobody read"
        if got == expected:
            break
        # A worker may count its last send() a moment after the client read it.
        expected += len(data)
        assert expected - base < 10_000_000, "never caught up"


def test_connection_and_stream_gauges(demo, feedd_factory):
    f = feedd_factory(env={"FEEDD_TEST_SLOW_SOURCE": "worlds:1500"})
    wait_pools(f)
    # Only the connection asking.
    poll("1 open connection", lambda: scrape(f).get("feedd_open_connections") == 1)
    idle = [socket.create_connection(("127.0.0.1", f.port)) for _ in range(5)]
    try:
        poll("6 open connections", lambda: scrape(f).get("feedd_open_connections") == 6)
    finally:
        for s in idle:
            s.close()
    poll("1 open connection again", lambda: scrape(f).get("feedd_open_connections") == 1)

    before = scrape(f)
    stream = socket.create_connection(("127.0.0.1", f.port), timeout=10)
    try:
        stream.sendall(request_bytes(cold_path(50, stream=True)))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = stream.recv(4096)
            assert chunk, "stream closed before its headers"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200"), head
        poll("1 open stream on 2 open connections", lambda: (
            (s := scrape(f)).get("feedd_open_streams"), s.get("feedd_open_connections"))
            == (1, 2))
        body = head + read_all(stream)
    finally:
        stream.close()
    assert b"event: feed_complete" in body
    poll("no open stream", lambda: scrape(f).get("feedd_open_streams") == 0)
    after = settle(f, "the stream counted",
                   lambda a: requests_delta(before, a, "stream", "200") >= 1)
    assert delta(before, after, "feedd_stream_first_item_seconds_count") == 1
    assert delta(before, after, "feedd_stream_complete_seconds_count") == 1
    assert delta(before, after, "feedd_feed_complete_seconds_count") == 0
    assert delta(before, after, "feedd_http_requests_total", endpoint="stream", code="200") == 1
    assert delta(before, after, "feedd_sse_client_gone_total") == 0
    assert delta(before, after, "feedd_sse_timeouts_total") == 0


def test_stream_timeout_is_counted(demo, feedd_factory):
    f = feedd_factory(sse_timeout="300ms", env={"FEEDD_TEST_SLOW_SOURCE": "worlds:2000"})
    wait_pools(f)
    before = scrape(f)
    status, _, body = f.get(cold_path(60, stream=True))
    assert status == 200 and b"event: error" in body, body
    poll("no open stream", lambda: scrape(f).get("feedd_open_streams") == 0)
    after = settle(f, "the stream counted",
                   lambda a: requests_delta(before, a, "stream", "200") >= 1)
    assert delta(before, after, "feedd_sse_timeouts_total") == 1
    assert delta(before, after, "feedd_sse_client_gone_total") == 0
    assert delta(before, after, "feedd_stream_complete_seconds_count") == 0
    assert delta(before, after, "feedd_http_requests_total", endpoint="stream", code="200") == 1


def test_stream_client_gone_is_counted(demo, feedd_factory):
    f = feedd_factory(env={"FEEDD_TEST_SLOW_SOURCE": "worlds:5000"})
    wait_pools(f)
    before = scrape(f)
    # The page is held back: this client leaves while its stream waits.
    s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
    s.sendall(request_bytes(cold_path(61, stream=True)))
    poll("the stream open", lambda: scrape(f).get("feedd_open_streams") == 1)
    s.close()
    poll("the client's departure counted",
         lambda: delta(before, scrape(f), "feedd_sse_client_gone_total") == 1)
    poll("no open stream", lambda: scrape(f).get("feedd_open_streams") == 0)
    after = scrape(f)
    assert delta(before, after, "feedd_sse_client_gone_total") == 1
    assert delta(before, after, "feedd_sse_timeouts_total") == 0
    assert delta(before, after, "feedd_stream_complete_seconds_count") == 0


def test_cache_evictions_and_gauges(demo, feedd_factory):
    """A cache of a few slots and more distinct pages than slots: every fill
    took a free slot or evicted a page, and the gauges stay in bounds."""
    f = feedd_factory(workers=1, cache_size="160kB", cache_entry_max="4kB")
    wait_pools(f, workers=1)
    before = scrape(f)
    capacity = before.get("feedd_cache_capacity_entries")
    assert 32 <= capacity < 64, capacity
    n = int(capacity) + 5
    for i in range(n):
        status, headers, body = f.get(cold_path(70 + i, limit=1))
        assert (status, headers["x-cache"]) == (200, "miss"), body
    after = scrape(f)
    fills = delta(before, after, "feedd_cache_fills_total")
    assert fills == n
    entries = after.get("feedd_cache_entries")
    assert 1 <= entries <= capacity
    assert delta(before, after, "feedd_cache_evictions_total") == fills - entries
    assert delta(before, after, "feedd_cache_evictions_total") >= 5
    assert 0 < after.get("feedd_cache_bytes") <= entries * 4 * 1024


def test_pool_gauges_and_database_faults(demo, feedd_factory):
    f = feedd_factory(workers=2, db_pool_size=3, db_reconnect_max="200ms")
    total = 2 * 3

    def states():
        s = scrape(f)
        return {st: s.get("feedd_db_connections", state=st)
                for st in ("idle", "busy", "connecting", "down")}, s

    poll("all connections idle", lambda: states()[0]["idle"] == total)
    st, before = states()
    assert sum(st.values()) == total and before.get("feedd_db_queue_length") == 0

    demo.stop()
    try:
        poll("every connection down", lambda: states()[0]["down"] == total)
        status, _, body = f.get(cold_path(90))
        assert status == 503, body
        during = scrape(f)
        assert delta(before, during, "feedd_http_requests_total", endpoint="feed",
                     code="503") == 1
    finally:
        demo.start()
    poll("all connections idle again", lambda: states()[0]["idle"] == total)
    after = scrape(f)
    assert delta(before, after, "feedd_db_errors_total") >= total
    assert delta(before, after, "feedd_db_reconnects_total") >= total
    assert delta(before, during, "feedd_db_reconnects_total") <= \
        delta(before, after, "feedd_db_reconnects_total")
    status, _, body = f.get(cold_path(90))
    assert status == 200, body


class LockedPages:
    """The feed tables locked; two cold pages sent, each on its own
    connection: the first page's 15 statements fill the only connection's
    pipeline, the second page's wait in the queue (all its 15 places)."""

    def __init__(self, pg, f):
        self.pg, self.f = pg, f
        self.locked = feed_tables_locked(pg)
        self.clients = []

    def __enter__(self):
        self.locked.__enter__()
        for i in (100, 102):
            client = socket.create_connection(("127.0.0.1", self.f.port), timeout=10)
            client.sendall(request_bytes(cold_path(i)))
            self.clients.append(client)
        self.during = poll("a page's statements queued", lambda: (s := scrape(self.f)).get(
            "feedd_db_queue_length") == 15 and s)
        return self

    def leave(self):
        for client in self.clients:
            client.close()
        self.clients = []

    def __exit__(self, *exc):
        self.leave()
        self.locked.__exit__(*exc)


def single_connection_feedd(feedd_factory):
    f = feedd_factory(workers=1, db_pool_size=1, db_queue_size=15, db_query_timeout="20s")
    wait_pools(f, workers=1, size=1)
    poll("the connection idle", lambda: scrape(f).get("feedd_db_connections",
                                                      state="idle") == 1)
    return f


def test_queue_gauge_refusal_and_cancels(demo, feedd_factory):
    """A second page that does not fit in the queue is refused at once
    (503); the first page's client leaving gets its statements cancelled
    on the server."""
    f = single_connection_feedd(feedd_factory)
    before = scrape(f)
    with LockedPages(demo, f) as locked:
        assert locked.during.get("feedd_db_connections", state="busy") == 1
        assert locked.during.get("feedd_db_queue_length") == 15
        status, _, body = f.get(cold_path(101))
        assert status == 503, body
        locked.leave()
        poll("the abandoned statements cancelled",
             lambda: delta(before, scrape(f), "feedd_db_cancelled_total") >= 1)
    after = settle(f, "the 503 counted", lambda a: requests_delta(before, a, "feed", "503") >= 1)
    assert delta(before, after, "feedd_http_requests_total", endpoint="feed", code="503") == 1
    assert delta(before, after, "feedd_cache_fills_total") == 0
    poll("the queue empty", lambda: scrape(f).get("feedd_db_queue_length") == 0)


def test_refused_page_counts_its_statements_as_rejected(demo, feedd_factory):
    f = single_connection_feedd(feedd_factory)
    before = scrape(f)
    with LockedPages(demo, f):
        status, _, body = f.get(cold_path(101))
        assert status == 503, body
    after = settle(f, "the 503 counted", lambda a: requests_delta(before, a, "feed", "503") >= 1)
    assert delta(before, after, "feedd_db_queue_rejected_total") == 15


# --- totals survive the processes ---------------------------------------------------


def test_killed_workers_keep_every_total(demo, feedd_factory):
    """Both workers served pages, then both die by SIGKILL: after the
    respawn every counter and bucket is where it was (none lost, none
    doubled), the restarts are counted, and the dead workers' connections
    are gone from the gauge."""
    f = feedd_factory(workers=2)
    wait_pools(f)
    by_worker = connections_on_every_worker(f, each=2)
    assert len(by_worker) == 2
    # One page per worker, asked twice: a miss, then a hit.  Keep-alive:
    # the connections stay open after their request.
    for i, socks in enumerate(by_worker.values()):
        for s in socks:
            assert keepalive_get(s, cold_path(110 + i)) == 200
    poll("5 open connections", lambda: scrape(f).get("feedd_open_connections") == 5)
    before = settle(f, "the 4 pages counted", lambda b: b.get(
        "feedd_http_requests_total", endpoint="feed", code="200") >= 4)
    assert before.get("feedd_cache_misses_total") == 2
    assert before.get("feedd_cache_hits_total") == 2

    old = set(f.worker_pids())
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    poll("two new workers", lambda: (p := set(f.worker_pids())) and len(p) == 2 and not p & old)
    wait_pools(f)
    poll("1 open connection", lambda: scrape(f).get("feedd_open_connections") == 1)
    after = scrape(f)
    for socks in by_worker.values():
        for s in socks:
            s.close()

    b, a = before.cumulative(), after.cumulative()
    lost = {k: (v, a.get(k)) for k, v in b.items() if a.get(k, -1) < v}
    assert not lost, f"went down across the restart: {lost}"
    for name in ("feedd_cache_hits_total", "feedd_cache_misses_total", "feedd_cache_fills_total",
                 "feedd_page_items_count", "feedd_feed_complete_seconds_count"):
        assert after.get(name) == before.get(name), name
    assert after.get("feedd_http_requests_total", endpoint="feed", code="200") == \
        before.get("feedd_http_requests_total", endpoint="feed", code="200")
    assert delta(before, after, "feedd_worker_restarts_total") == 2


def test_reload_and_flush_are_counted_and_keep_totals(demo, feedd):
    wait_pools(feedd)
    for i in range(4):
        assert feedd.get(cold_path(120 + i % 2))[0] == 200
    before = scrape(feedd)
    old = set(feedd.worker_pids())
    feedd.signal(signal.SIGHUP)
    poll("the reload counted",
         lambda: delta(before, scrape(feedd), "feedd_config_reloads_total") == 1)
    poll("the old workers gone", lambda: not set(feedd.worker_pids()) & old)
    feedd.signal(signal.SIGUSR2)
    poll("the flush counted",
         lambda: delta(before, scrape(feedd), "feedd_cache_flushes_total") == 1)
    r = feedd.cli("-s", "flush")
    assert r.returncode == 0, r.stderr
    poll("the second flush counted",
         lambda: delta(before, scrape(feedd), "feedd_cache_flushes_total") == 2)
    # A bad file is refused and not counted as a reload.
    feedd.reconfigure(workers="many")
    feedd.signal(signal.SIGHUP)
    poll("the refusal logged", lambda: "many" in feedd.error_log())
    after = scrape(feedd)
    assert delta(before, after, "feedd_config_reloads_total") == 1
    b, a = before.cumulative(), after.cumulative()
    assert not {k for k, v in b.items() if a.get(k, -1) < v}
    assert delta(before, after, "feedd_worker_restarts_total") == 0
    assert delta(before, after, "feedd_cache_hits_total") == 0
    status, headers, _ = feedd.get(cold_path(120))
    assert (status, headers["x-cache"]) == (200, "miss"), "flushed"


# --- histograms ---------------------------------------------------------------------


def check_histograms(s):
    """Buckets cumulative, _count == +Inf, sums sane; -> {(family, labels): count}."""
    counts = {}
    for name in HISTOGRAMS:
        fam = s.families[name]
        assert fam.type == "histogram"
        series = {}
        for sample in fam.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            key = tuple(sorted(labels.items()))
            part = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
            if sample.name == name + "_bucket":
                part["buckets"].append((float(sample.labels["le"]), sample.value))
            elif sample.name == name + "_count":
                part["count"] = sample.value
            elif sample.name == name + "_sum":
                part["sum"] = sample.value
            else:
                pytest.fail(f"unexpected sample {sample.name} in {name}")
        les = None
        for key, part in series.items():
            buckets = part["buckets"]
            bounds = [le for le, _ in buckets]
            assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), (name, bounds)
            assert bounds and math.isinf(bounds[-1]), (name, key, "no +Inf bucket")
            values = [v for _, v in buckets]
            assert values == sorted(values), (name, key, "buckets not cumulative", values)
            assert part["count"] == values[-1], (name, key, "_count != +Inf bucket")
            assert part["sum"] is not None and part["sum"] >= 0, (name, key)
            if part["count"] == 0:
                assert part["sum"] == 0, (name, key)
            else:
                # Every observation is at most its bucket's bound: the sum
                # cannot exceed what the finite buckets allow plus the rest.
                prev, bound_sum = 0, 0.0
                for le, v in buckets:
                    if not math.isinf(le):
                        bound_sum += (v - prev) * le
                        prev = v
                if values[-1] == prev:
                    assert part["sum"] <= bound_sum + 1e-6 * max(1, values[-1]), (name, key)
            assert les is None or bounds == les, (name, "series with different buckets")
            les = bounds
            counts[(name, key)] = part["count"]
    return counts


def test_histograms_are_consistent(demo, feedd_factory):
    f = feedd_factory(env={"FEEDD_TEST_SLOW_SOURCE": "worlds:300"})
    wait_pools(f)
    for i in range(3):
        f.get(cold_path(130 + i))
        f.get(cold_path(130 + i))
        f.get(cold_path(140 + i, stream=True))
    f.get(cold_path(130, stream=True))  # a stream answered from the cache
    counts = check_histograms(scrape(f))
    # Not vacuous: every histogram has data.
    assert counts[("feedd_feed_complete_seconds", ())] == 6
    assert counts[("feedd_stream_first_item_seconds", ())] >= 3
    assert counts[("feedd_stream_complete_seconds", ())] >= 3
    assert counts[("feedd_page_items", ())] == 6
    s = scrape(f)
    # The held-back source took at least its 300 ms every time.
    assert s.get("feedd_source_query_seconds_bucket", source="worlds", le="0.25") == 0
    assert s.get("feedd_source_query_seconds_sum", source="worlds") >= 6 * 0.3


def test_all_15_sources_timed_after_one_cold_page(demo, feedd):
    wait_pools(feedd)
    before = scrape(feedd)
    assert {l["source"] for l, _ in before.series("feedd_source_query_seconds_count")} == SOURCES
    status, headers, _ = feedd.get(cold_path(150))
    assert (status, headers["x-cache"]) == (200, "miss")
    after = scrape(feedd)
    got = {l["source"]: v - before.get("feedd_source_query_seconds_count", **l)
           for l, v in after.series("feedd_source_query_seconds_count")}
    assert got == {src: 1 for src in SOURCES}
    for src in SOURCES:
        assert delta(before, after, "feedd_source_query_seconds_bucket", source=src,
                     le="+Inf") == 1
    check_histograms(after)


# --- metrics_allow ------------------------------------------------------------------


def test_metrics_allow(feedd_factory):
    f = feedd_factory(metrics_allow=["10.0.0.0/8", "::1"])
    status, headers, body = f.get("/metrics")
    assert status == 403, body
    assert headers["content-type"].startswith("application/json")
    assert "metrics_allow" in json.loads(body)["detail"]
    assert f.get("/healthz")[0] == 200, "only /metrics is restricted"

    # A reload applies a new list: loopback by its network.
    f.reconfigure(metrics_allow=["10.0.0.0/8", "127.0.0.0/8"])
    old = set(f.worker_pids())
    f.signal(signal.SIGHUP)
    poll("the old workers gone", lambda: (p := set(f.worker_pids())) and not p & old)
    s = scrape(f)
    assert s.get("feedd_http_requests_total", endpoint="metrics", code="403") >= 1

    g = feedd_factory(metrics_allow=["127.0.0.1"])
    assert g.get("/metrics")[0] == 200
    h = feedd_factory(metrics_allow=None)
    assert h.get("/metrics")[0] == 200, "no list: anyone"


# --- bench/metrics-summary ----------------------------------------------------------


def test_metrics_summary_script(demo, feedd, repo_root, tmp_path):
    script = repo_root / "bench" / "metrics-summary"
    wait_pools(feedd)
    snapshot = tmp_path / "before.txt"
    r = subprocess.run([str(script), "--save", str(snapshot), feedd.url("/metrics")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    for i in range(2):
        feedd.get(cold_path(160 + i))
    for _ in range(6):
        feedd.get(cold_path(160))
    feedd.get("/api/feed?limit=0")
    settle(feedd, "the 422 counted", lambda a: a.get("feedd_http_requests_total",
                                                     endpoint="feed", code="422") == 1)

    r = subprocess.run([str(script), "--since", str(snapshot), f"127.0.0.1:{feedd.port}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout

    def row(label):
        m = re.search(rf"^  {re.escape(label)}\s+(.*?)\s*$", out, re.M)
        assert m, f"no row {label!r} in:\n{out}"
        return m.group(1).split()

    assert row("feed") == ["200", "8"], out
    assert re.search(r"^  feed\s+422\s+1$", out, re.M), out
    assert row("hits") == ["6"] and row("misses") == ["2"] and row("fills") == ["2"]
    assert row("hit ratio (fresh)") == ["75.0%"]
    for src in SOURCES:
        assert row(src)[0] == "2", src
    assert row("JSON page, time to complete")[0] == "8"
    assert row("items per page built")[0] == "2"
    assert row("connections idle/busy/connecting/down")[0].count("/") == 3

    # Without a snapshot: everything since start, at least as much.
    r = subprocess.run([str(script), feedd.url("/metrics")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(re.search(r"^  all\s+(\d+)$", r.stdout, re.M).group(1)) >= 9

    r = subprocess.run([str(script), str(tmp_path / "missing.txt")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "cannot read" in r.stderr

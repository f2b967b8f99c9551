"""GET /api/feed: page shape, 422 errors, the shared cache (miss, hit,
stale, flush), one round of 15 statements per cold page, single flight."""

import asyncio
import json
import re
import signal
import socket
import time
from datetime import datetime
from urllib.parse import quote

import pytest

from helpers import FEED_STATEMENTS, NSOURCES, get_many, statements_settled, wait_ready

# A cursor after every demo row: the page is "the newest items", under a
# cache key of its own (unlike the first page, which other tests request).
FUTURE = "2100-01-01T00:00:00"


def feed(feedd, query=""):
    """-> (status, X-Cache, parsed body)."""
    status, headers, body = feedd.get("/api/feed" + query)
    assert headers["content-type"].split(";")[0].strip() == "application/json", body
    try:
        doc = json.loads(body)
    except ValueError:
        pytest.fail(f"/api/feed{query}: {status} body is not JSON: {body[:300]!r}")
    return status, headers.get("x-cache"), doc


def assert_422(feedd, query, field):
    status, headers, body = feedd.get("/api/feed" + query)
    assert status == 422, f"{query}: {status} {body!r}"
    assert headers["content-type"].split(";")[0].strip() == "application/json"
    doc = json.loads(body)
    assert list(doc) == ["detail"], doc
    assert isinstance(doc["detail"], list) and doc["detail"], doc
    err = doc["detail"][0]
    assert err["loc"] == ["query", field], doc
    assert isinstance(err["msg"], str) and err["msg"], doc
    assert isinstance(err["type"], str) and err["type"], doc


# --- the page ------------------------------------------------------------


def test_page_shape(demo, feedd):
    status, _, doc = feed(feedd, "?limit=5")
    assert status == 200, doc
    assert list(doc) == ["items", "next_cursor"], doc
    items = doc["items"]
    assert isinstance(items, list)
    assert len(items) == 5, "the demo data holds far more than 5 items in the window"
    for item in items:
        assert list(item)[:4] == ["type", "sort_date", "id", "created_at"], item
    # Total order: sort_date descending, then id descending as bytes.
    keys = [(datetime.fromisoformat(i["sort_date"]), i["id"].encode()) for i in items]
    assert keys == sorted(keys, reverse=True), keys
    assert len({i["id"] for i in items}) == len(items)
    assert isinstance(doc["next_cursor"], str) and doc["next_cursor"]


def test_default_limit_is_20(demo, feedd):
    status, _, doc = feed(feedd)
    assert status == 200, doc
    assert len(doc["items"]) == 20


def test_next_cursor_leads_to_older_items(demo, feedd):
    status, _, first = feed(feedd, "?limit=4")
    assert status == 200, first
    cursor = first["next_cursor"]
    assert cursor
    status, _, second = feed(feedd, "?limit=4&cursor=" + quote(cursor, safe=""))
    assert status == 200, second
    assert second["items"], "more items follow the first page"
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    assert (datetime.fromisoformat(second["items"][0]["sort_date"])
            <= datetime.fromisoformat(first["items"][-1]["sort_date"]))


# --- 422 -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "0", "51", "-1", "1.5", "", "20x", "99999999999999999999"])
def test_bad_limit_is_422(feedd, value):
    assert_422(feedd, "?limit=" + quote(value, safe=""), "limit")


@pytest.mark.parametrize("value", [
    "yesterday",
    "2026-02-30T10:00:00Z",
    "2026-02-19T25:00:00Z",
    "2026-02-19T19:19:32.123456Z~",
    "2026-02-19T19:19:32Zjunk",
    "2026-02-19T19:19:32.1234567Z",
    "~graduated-x",
])
def test_malformed_cursor_is_422(feedd, value):
    assert_422(feedd, "?cursor=" + quote(value, safe=""), "cursor")


def test_limit_bounds_are_accepted(demo, feedd):
    for limit in (1, 50):
        status, _, doc = feed(feedd, f"?limit={limit}")
        assert status == 200, doc
        assert len(doc["items"]) <= limit


def test_unencoded_plus_is_the_same_page(demo, feedd):
    """An offset's '+' sent unencoded arrives as a space: accepted, and the
    same cache entry as the encoded and the Z spellings."""
    status, cache, encoded = feed(feedd, f"?limit=3&cursor={FUTURE}%2B00:00")
    assert (status, cache) == (200, "miss"), encoded
    status, cache, raw = feed(feedd, f"?limit=3&cursor={FUTURE}+00:00")
    assert (status, cache) == (200, "hit"), raw
    status, cache, zulu = feed(feedd, f"?limit=3&cursor={FUTURE}Z")
    assert (status, cache) == (200, "hit"), zulu
    assert encoded == raw == zulu


# --- cache ---------------------------------------------------------------


def test_miss_then_hit(demo, feedd):
    status, cache, first = feed(feedd, "?limit=6")
    assert (status, cache) == (200, "miss"), first
    status, cache, second = feed(feedd, "?limit=6")
    assert (status, cache) == (200, "hit"), second
    assert first == second
    # Another limit is another page.
    status, cache, _ = feed(feedd, "?limit=7")
    assert (status, cache) == (200, "miss")
    log = feedd.access_log()
    assert "cache=miss" in log and "cache=hit" in log, log


HIT_HEAD = re.compile(
    rb"HTTP/1\.1 200 OK\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n"
    rb"Server: feedd/\S+\r\nContent-Type: application/json\r\nX-Cache: hit\r\n"
    rb"Content-Length: (?P<len>\d+)\r\nConnection: (?P<conn>keep-alive|close)\r\n\r\n")


def test_cached_page_on_the_wire(demo, feedd):
    """A hit is copied from the cache straight into the connection's output,
    behind room left for its head: the head, its Content-Length and the
    framing of what follows on the same connection, GET and HEAD,
    pipelined, the last one closing."""
    path = "/api/feed?limit=4"
    status, cache, page = feed(feedd, "?limit=4")
    assert (status, cache) == (200, "miss"), page
    _, _, miss_body = feedd.get(path)
    s = socket.create_connection(("127.0.0.1", feedd.port), timeout=10)
    reqs = [("GET", ""), ("HEAD", ""), ("GET", ""), ("GET", "Connection: close\r\n")]
    s.sendall(b"".join(f"{m} {path} HTTP/1.1\r\nHost: t\r\n{h}\r\n".encode() for m, h in reqs))
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    for i, (method, _) in enumerate(reqs):
        m = HIT_HEAD.match(data)
        assert m, (i, data[:400])
        n = int(m.group("len"))
        assert n == len(miss_body), (i, n, len(miss_body))
        data = data[m.end():]
        if method == "GET":
            assert data[:n] == miss_body, i
            assert json.loads(data[:n]) == page
            data = data[n:]
        assert m.group("conn") == (b"close" if i == len(reqs) - 1 else b"keep-alive")
    assert data == b"", "nothing after the last answer"


def test_cold_page_is_exactly_15_statements(demo, feedd):
    wait_ready(feedd)
    demo.reset_stats()
    status, cache, doc = feed(feedd, f"?limit=9&cursor={FUTURE}Z")
    assert (status, cache) == (200, "miss"), doc
    statements_settled(demo, NSOURCES)
    rows = demo.statements(FEED_STATEMENTS)
    assert sum(calls for _, calls in rows) == NSOURCES, rows

    # A hit costs the database nothing.
    status, cache, _ = feed(feedd, f"?limit=9&cursor={FUTURE}Z")
    assert (status, cache) == (200, "hit")
    assert demo.count_statements(FEED_STATEMENTS) == NSOURCES


def test_single_flight_across_workers(demo, feedd_factory):
    """500 requests for one cold key at once, over both workers: one fill,
    15 statements; everyone gets the same page.  The worlds statement is
    held back a second (test hook) so that all of them arrive during the fill."""
    feedd = feedd_factory(workers=2, env={"FEEDD_TEST_SLOW_SOURCE": "worlds:1000"})
    wait_ready(feedd)
    demo.reset_stats()
    results = asyncio.run(get_many(feedd.port, f"/api/feed?limit=11&cursor={FUTURE}Z", 500))
    statuses = [r[0] for r in results]
    assert statuses == [200] * 500, sorted(set(statuses))
    assert len({r[2] for r in results}) == 1, "every response is the same page"
    caches = [r[1].get("x-cache") for r in results]
    assert caches.count("miss") == 1, {c: caches.count(c) for c in set(caches)}
    assert caches.count("hit") == 499
    statements_settled(demo, NSOURCES)
    rows = demo.statements(FEED_STATEMENTS)
    assert sum(calls for _, calls in rows) == NSOURCES, rows


def test_stale_is_served_without_waiting(demo, feedd_factory):
    """After cache_ttl the stale page comes back at once while one refresh
    runs behind it (held 2 s by the test hook): the request right after
    still sees the stale page, so the first did not wait for the refresh."""
    feedd = feedd_factory(cache_ttl="1s", cache_stale="60s",
                          env={"FEEDD_TEST_SLOW_SOURCE": "worlds:2000"})
    path = f"?limit=8&cursor={FUTURE}Z"
    status, cache, first = feed(feedd, path)
    assert (status, cache) == (200, "miss"), first
    time.sleep(1.2)
    status, cache, stale = feed(feedd, path)
    assert (status, cache) == (200, "stale"), stale
    assert stale == first
    status, cache, _ = feed(feedd, path)
    assert (status, cache) == (200, "stale"), "the refresh cannot be done yet"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, cache, fresh = feed(feedd, path)
        assert status == 200
        if cache == "hit":
            break
        time.sleep(0.1)
    assert cache == "hit", "the background refresh stored the page"
    assert "cache=stale" in feedd.access_log()


def test_flush_signal_makes_the_next_request_a_miss(demo, feedd):
    path = "?limit=10"
    assert feed(feedd, path)[:2] == (200, "miss")
    assert feed(feedd, path)[:2] == (200, "hit")
    feedd.signal(signal.SIGUSR2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status, cache, _ = feed(feedd, path)
        assert status == 200
        if cache == "miss":
            break
        time.sleep(0.05)
    assert cache == "miss", f"still {cache} after SIGUSR2\n{feedd.logs()}"
    assert feed(feedd, path)[:2] == (200, "hit")

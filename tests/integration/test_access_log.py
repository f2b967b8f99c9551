"""The access log against its documentation: every line matches the regular
expression in doc/metrics.md, one line per request (and one count in
/metrics per line), the cache status of feed requests as in X-Cache (hit,
miss, stale), and time to first byte for event streams."""

import collections
import socket
import time
from datetime import datetime, timezone

import pytest

from helpers import (access_entries, access_log_re, cold_path, poll, read_all, request_bytes,
                     requests_delta, scrape, settle, split_response, wait_pools)

AGENT = "access-log-test/1"


@pytest.fixture(scope="module")
def line_re(repo_root):
    return access_log_re(repo_root)


def ours(f, line_re, agent=AGENT):
    return [e for e in access_entries(f, line_re) if e["agent"] == agent]


def seconds(field):
    return None if field == "-" else float(field)


def test_one_documented_line_per_request(demo, feedd, line_re):
    wait_pools(feedd)
    sent = []  # (request, status, cache, body bytes)

    def hit(path, method="GET", cache=None):
        status, headers, body = feedd.request(method, path, headers={"User-Agent": AGENT})
        assert headers.get("x-cache") == cache, (path, headers.get("x-cache"))
        sent.append((f"{method} {path} HTTP/1.1", str(status), cache or "-", str(len(body))))

    hit(cold_path(0), cache="miss")
    hit(cold_path(0), cache="hit")
    hit("/api/feed?limit=abc")
    hit(cold_path(1, stream=True), cache="miss")
    hit(cold_path(1, stream=True), cache="hit")
    hit(cold_path(0, stream=True), cache="hit")
    hit("/healthz")
    hit("/healthz", method="HEAD")
    hit("/no-such-file.txt")
    hit("/api/nope?x=%22quoted%22")
    # Three on one keep-alive connection.
    conn = feedd.connection()
    try:
        for path in ("/healthz", cold_path(2), "/healthz"):
            conn.request("GET", path, headers={"User-Agent": AGENT})
            resp = conn.getresponse()
            body = resp.read()
            sent.append((f"GET {path} HTTP/1.1", str(resp.status),
                         resp.headers.get("x-cache") or "-", str(len(body))))
    finally:
        conn.close()

    # A line is written once its response is on the wire, which the client
    # may see a moment before.
    poll("a line for every request", lambda: len(ours(feedd, line_re)) >= len(sent))
    got = ours(feedd, line_re)
    assert collections.Counter((e["request"], e["status"], e["cache"], e["bytes"]) for e in got) \
        == collections.Counter(sent)
    now = datetime.now(timezone.utc)
    for e in got:
        assert e["client"] == "127.0.0.1"
        assert e["referer"] == "-"
        when = datetime.strptime(e["time"], "%d/%b/%Y:%H:%M:%S %z")
        assert abs((now - when).total_seconds()) < 600, e["time"]
        ttfb, rt = seconds(e["ttfb"]), seconds(e["rt"])
        assert ttfb is not None, e  # every one of these got an answer
        assert 0 <= ttfb <= rt, e


def test_cache_status_stale_as_in_x_cache(demo, feedd_factory, line_re):
    f = feedd_factory(cache_ttl="1s", cache_stale="60s",
                      env={"FEEDD_TEST_SLOW_SOURCE": "worlds:1000"})
    wait_pools(f)
    path = cold_path(10)
    seen = []
    for p in (path, None, path, cold_path(10, stream=True), path):
        if p is None:
            time.sleep(1.2)  # past cache_ttl; the refresh is held back 1 s
            continue
        status, headers, _ = f.get(p, headers={"User-Agent": AGENT})
        assert status == 200
        seen.append((f"GET {p} HTTP/1.1", headers["x-cache"]))
    assert [c for _, c in seen] == ["miss", "stale", "stale", "stale"], seen
    poll("the lines", lambda: len(ours(f, line_re)) >= len(seen))
    assert collections.Counter((e["request"], e["cache"]) for e in ours(f, line_re)) == \
        collections.Counter(seen)


def test_stream_time_to_first_byte(demo, feedd_factory, line_re):
    """A cold stream opens at once and waits for its page (held back 1 s):
    its ttfb is when it opened, within what the client saw, and its rt
    covers the wait.  A JSON page sends nothing before it is complete."""
    hold = 1.0
    f = feedd_factory(env={"FEEDD_TEST_SLOW_SOURCE": f"worlds:{int(hold * 1000)}"})
    wait_pools(f)
    path = cold_path(20, stream=True)
    s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
    try:
        t0 = time.monotonic()
        s.sendall(request_bytes(path))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk
            head += chunk
        t_head = time.monotonic() - t0
        # The page is still held back: no line yet, the stream is open.
        assert not [e for e in access_entries(f, line_re)
                    if e["request"].startswith("GET " + path)]
        rest = read_all(s)
        t_all = time.monotonic() - t0
    finally:
        s.close()
    status, headers, body = split_response(head + rest)
    assert status == 200 and headers["x-cache"] == "miss"
    assert b"event: feed_complete" in body
    line = poll("the stream's line", lambda: [
        e for e in access_entries(f, line_re) if e["request"] == f"GET {path} HTTP/1.1"])
    (e,) = line
    ttfb, rt = seconds(e["ttfb"]), seconds(e["rt"])
    assert e["status"] == "200" and e["cache"] == "miss" and int(e["bytes"]) == len(body)
    # The server's intervals lie inside the client's (1 ms of rounding).
    assert ttfb is not None and ttfb <= t_head + 0.002, (e, t_head)
    assert hold <= rt <= t_all + 0.002, (e, t_all)

    # The same page as JSON, cold again under another limit: no byte
    # leaves before the page is whole, so ttfb covers the wait too.
    json_path = cold_path(20, limit=4)
    status, headers, _ = f.get(json_path)
    assert (status, headers["x-cache"]) == (200, "miss")
    (j,) = poll("the JSON line", lambda: [
        e for e in access_entries(f, line_re) if e["request"] == f"GET {json_path} HTTP/1.1"])
    assert hold <= seconds(j["ttfb"]) <= seconds(j["rt"]), j

    # From the cache, a stream is one quick answer: ttfb and rt both there.
    status, headers, _ = f.get(path)
    assert (status, headers["x-cache"]) == (200, "hit")
    hits = poll("the cached stream's line", lambda: [
        e for e in access_entries(f, line_re) if e["request"] == f"GET {path} HTTP/1.1"
        and e["cache"] == "hit"])
    assert seconds(hits[0]["ttfb"]) <= seconds(hits[0]["rt"])


def test_client_gone_before_any_byte_is_499(demo, feedd_factory, line_re):
    f = feedd_factory(env={"FEEDD_TEST_SLOW_SOURCE": "worlds:5000"})
    wait_pools(f)
    path = cold_path(30)
    before = scrape(f)
    s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
    s.sendall(request_bytes(path))
    poll("the page being loaded",
         lambda: scrape(f).get("feedd_cache_misses_total") > before.get("feedd_cache_misses_total"))
    s.close()
    (e,) = poll("the line", lambda: [
        e for e in access_entries(f, line_re) if e["request"] == f"GET {path} HTTP/1.1"])
    assert (e["status"], e["bytes"], e["ttfb"]) == ("499", "0", "-"), e
    assert seconds(e["rt"]) >= 0
    after = settle(f, "the 499 counted", lambda a: requests_delta(before, a, "feed", "other") >= 1)
    assert requests_delta(before, after, "feed", "other") == 1


def test_each_line_is_counted_in_metrics(demo, feedd, line_re):
    """Every line has its count in feedd_http_requests_total, by status, and
    nothing is counted that has no line (the scrapes aside)."""
    wait_pools(feedd)
    for path in (cold_path(40), cold_path(40), "/api/feed?limit=0", "/api/x", "/nope",
                 cold_path(41, stream=True), "/healthz", "/readyz"):
        feedd.get(path)
    feedd.request("PUT", "/api/feed")
    with socket.create_connection(("127.0.0.1", feedd.port), timeout=10) as s:
        s.sendall(b"BLAH\r\n\r\n")
        read_all(s)

    def compare():
        counted = collections.Counter()
        s = scrape(feedd)
        for labels, v in s.series("feedd_http_requests_total"):
            if labels["endpoint"] != "metrics":
                counted[labels["code"]] += int(v)
        logged = collections.Counter(
            e["status"] for e in access_entries(feedd, line_re) if not e["request"].startswith(
                "GET /metrics "))
        return counted == logged and counted

    counted = poll("the counts to match the lines", compare)
    for code in ("200", "400", "404", "405", "422"):
        assert counted[code] >= 1, (code, counted)

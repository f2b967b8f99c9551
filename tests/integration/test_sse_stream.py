"""GET /api/feed/stream: framing read by real SSE clients (the npm
`eventsource` package and curl -N) besides our own strict parser; a cold
page streamed source by source that ends as exactly /api/feed's page; a
hit in two events; keepalive and timeout; a database failure mid-stream;
a client gone mid-query (its statement cancelled on the server); a client
that does not read; reload and stop with streams open.

Its stream parser and client are also used by test_sse_many.py."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from helpers import NSOURCES, metric, statements_settled, wait_ready

# A cursor after every demo row: the newest items, under a key of its own.
FUTURE = "2100-01-01T00:00:00Z"
SSE_DIR = Path(__file__).resolve().parents[1] / "sse"

ITEMS_HEAD = '{"items":['
_DEC = json.JSONDecoder()


# --- a strict parser of the event stream ---------------------------------


def parse_block(text):
    """One block (the text between blank lines) -> dict:
    {"kind": "comment", "text"} or {"kind": "retry", "retry"} or
    {"kind": "event", "event", "data"}, after checking it has exactly the
    shape feedd writes: ": comment", "retry: N", or "event: X" + "data: JSON"."""
    lines = text.split("\n")
    assert "\r" not in text, repr(text)
    if len(lines) == 1 and lines[0].startswith(":"):
        return {"kind": "comment", "text": lines[0][1:].strip()}
    if len(lines) == 1 and lines[0].startswith("retry: "):
        value = lines[0][len("retry: "):]
        assert value.isdigit(), repr(text)
        return {"kind": "retry", "retry": int(value)}
    assert len(lines) == 2, f"an event is one event: and one data: line: {text[:300]!r}"
    assert lines[0].startswith("event: ") and lines[1].startswith("data: "), repr(text[:300])
    name = lines[0][len("event: "):]
    data = lines[1][len("data: "):]
    assert isinstance(json.loads(data), dict), data[:300]
    return {"kind": "event", "event": name, "data": data}


def parse_body(raw):
    """The whole body of a stream (bytes) -> blocks; it must end with a
    complete block (the server never cuts an event)."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), f"the stream ends inside a block: {text[-200:]!r}"
    return [parse_block(b) for b in text[:-2].split("\n\n")]


def parse_response(raw):
    """A whole HTTP response (bytes, read to EOF) -> (status, headers, blocks)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no end of headers in {raw[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, parse_body(body) if status == 200 else body


def split_items(data):
    """feed_items data -> ([(item, raw JSON text)], partial), checking the
    exact shape {"items":[...],"partial":bool}."""
    assert data.startswith(ITEMS_HEAD), data[:100]
    pos = len(ITEMS_HEAD)
    out = []
    if data[pos] != "]":
        while True:
            obj, end = _DEC.raw_decode(data, pos)
            out.append((obj, data[pos:end]))
            pos = end
            if data[pos] != ",":
                break
            pos += 1
    assert data[pos] == "]", data[pos - 50:pos + 50]
    rest = data[pos + 1:]
    assert rest in (',"partial":true}', ',"partial":false}'), rest
    return out, rest == ',"partial":true}'


def order_key(item):
    """Total order, newest first: (sort_date, id as bytes), both descending."""
    return (datetime.fromisoformat(item["sort_date"]), item["id"].encode())


def cursor_key(cursor):
    t, _, cid = cursor.partition("~")
    return (datetime.fromisoformat(t.replace("Z", "+00:00")), cid.encode())


class StreamResult:
    """The events of one stream, checked: retry first, keepalive comments
    anywhere, feed_items with partial:true but the last, then feed_complete
    (or an error event) and the end."""

    def __init__(self, blocks, limit=None):
        self.blocks = blocks
        assert blocks and blocks[0]["kind"] == "retry", blocks[:1]
        self.retry = blocks[0]["retry"]
        self.comments = [b["text"] for b in blocks if b["kind"] == "comment"]
        assert all(c == "keepalive" for c in self.comments), self.comments
        events = [b for b in blocks[1:] if b["kind"] != "comment"]
        assert all(b["kind"] == "event" for b in events), events
        self.names = [e["event"] for e in events]
        self.error = None
        self.complete = None
        self.batches = []     # [[(item, raw)]], one list per feed_items event
        self.partials = []    # their partial flags
        for i, e in enumerate(events):
            if e["event"] == "feed_items":
                items, partial = split_items(e["data"])
                assert self.complete is None and self.error is None, self.names
                self.batches.append(items)
                self.partials.append(partial)
                last_batch = not any(n == "feed_items" for n in self.names[i + 1:])
                if self.names[-1] == "feed_complete":
                    assert partial == (not last_batch), (i, self.names, partial)
                keys = [order_key(it) for it, _ in items]
                assert keys == sorted(keys, reverse=True), "a batch is in the total order"
            elif e["event"] == "feed_complete":
                assert i == len(events) - 1, f"feed_complete is the last event: {self.names}"
                self.complete = json.loads(e["data"])
                assert list(self.complete) == ["next_cursor", "total_items"], self.complete
            elif e["event"] == "error":
                assert i == len(events) - 1, f"error is the last event: {self.names}"
                self.error = json.loads(e["data"])
                assert list(self.error) == ["detail"] and isinstance(self.error["detail"], str)
                assert self.error["detail"], self.error
            else:
                pytest.fail(f"unexpected event {e['event']!r}")
        ids = [it["id"] for b in self.batches for it, _ in b]
        assert len(ids) == len(set(ids)), "no item is streamed twice"
        if limit is not None:
            # Each item could still make the page when it was sent: fewer
            # than limit items known by then come before it.
            seen = []
            for b in self.batches:
                seen.extend(order_key(it) for it, _ in b)
                for it, _ in b:
                    k = order_key(it)
                    assert sum(1 for s in seen if s > k) < limit, it["id"]

    def page_items(self):
        """The streamed items, merged in the total order, without those
        after next_cursor: what a client keeps."""
        assert self.complete is not None, self.names
        items = sorted((p for b in self.batches for p in b), key=lambda p: order_key(p[0]),
                       reverse=True)
        cursor = self.complete["next_cursor"]
        if cursor is not None:
            ck = cursor_key(cursor)
            items = [p for p in items if order_key(p[0]) >= ck]
        return items

    def page_body(self):
        """The page as /api/feed writes it, rebuilt from the streamed bytes."""
        raws = [raw for _, raw in self.page_items()]
        return (ITEMS_HEAD + ",".join(raws) + '],"next_cursor":'
                + json.dumps(self.complete["next_cursor"]) + "}").encode()


# --- clients -------------------------------------------------------------


class Stream:
    """A request to the stream over a raw socket, read as it comes."""

    def __init__(self, port, path, timeout=20.0, rcvbuf=None, mss=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if mss is not None:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"Accept: text/event-stream\r\n\r\n".encode())
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.status = None
        self.headers = None
        self.blocks = []

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("stream: nothing more within the time allowed")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
        self.buf += data

    def read_head(self):
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                raise AssertionError(f"closed before the headers: {self.buf!r}")
            self._recv(deadline)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip()
                        for k, _, v in (line.partition(":") for line in lines[1:])}
        return self.status

    def next_block(self):
        """The next block, or None at the end of the stream."""
        if self.status is None:
            self.read_head()
        deadline = time.monotonic() + self.timeout
        while b"\n\n" not in self.buf:
            if self.eof:
                assert self.buf == b"", f"the stream ends inside a block: {self.buf[-200:]!r}"
                return None
            self._recv(deadline)
        block, _, self.buf = self.buf.partition(b"\n\n")
        parsed = parse_block(block.decode("utf-8"))
        self.blocks.append(parsed)
        return parsed

    def until_event(self, name):
        while True:
            b = self.next_block()
            assert b is not None, f"the stream ended before a {name} event: {self.blocks}"
            if b["kind"] == "event" and b["event"] == name:
                return b

    def read_all(self):
        while self.next_block() is not None:
            pass
        return self.blocks

    def close(self):
        self.sock.close()


def stream(feedd, path, limit=None, timeout=20.0):
    """GET path to the end -> (headers, StreamResult)."""
    s = Stream(feedd.port, path, timeout=timeout)
    try:
        assert s.read_head() == 200, s.buf[:500]
        blocks = s.read_all()
    finally:
        s.close()
    return s.headers, StreamResult(blocks, limit)


@pytest.fixture(scope="session")
def eventsource_client():
    """`node tests/sse/check.mjs URL [TIMEOUT_MS]` -> its JSON report;
    installs the npm package (npm ci, from package-lock.json) when missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed (scripts/install-deps installs them)", pytrace=False)
    if not (SSE_DIR / "node_modules" / "eventsource").is_dir():
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SSE_DIR,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            pytest.fail(f"npm ci in {SSE_DIR} failed:\n{r.stdout}\n{r.stderr}", pytrace=False)

    def run(url, timeout_ms=20000):
        r = subprocess.run([node, str(SSE_DIR / "check.mjs"), url, str(timeout_ms)],
                           capture_output=True, text=True, timeout=timeout_ms / 1000 + 30)
        assert r.returncode == 0, f"check.mjs exited {r.returncode}:\n{r.stderr}"
        return json.loads(r.stdout)
    return run


def eventsource_blocks(report):
    """The events the npm client saw, as our parser's blocks (it hides the
    retry field and comments: a retry block is put first for StreamResult)."""
    blocks = [{"kind": "retry", "retry": 0}]
    for e in report["events"]:
        blocks.append({"kind": "event", "event": e["type"], "data": e["data"]})
    return blocks


def curl_stream(url, timeout=20):
    """curl -N (no buffering) to the end -> (exit status, status, headers, blocks)."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is needed (scripts/install-deps installs it)", pytrace=False)
    r = subprocess.run([curl, "-sS", "-N", "--max-time", str(timeout), "-D", "-",
                        "-H", "Accept: text/event-stream", url],
                       capture_output=True, timeout=timeout + 10)
    status, headers, blocks = parse_response(r.stdout)
    return r.returncode, status, headers, blocks


# --- tests ---------------------------------------------------------------


def check_stream_headers(headers):
    assert headers["content-type"] == "text/event-stream", headers
    assert headers["cache-control"] == "no-cache", headers
    assert headers["x-accel-buffering"] == "no", headers
    assert "content-length" not in headers, headers


@pytest.mark.parametrize("query,field", [
    ("limit=0", "limit"), ("limit=51", "limit"), ("limit=x", "limit"),
    ("cursor=yesterday", "cursor"), ("cursor=2026-02-30T10:00:00Z", "cursor"),
])
def test_bad_parameters_are_a_422_before_any_stream(feedd, query, field):
    status, headers, body = feedd.get("/api/feed/stream?" + query)
    assert status == 422, body
    assert headers["content-type"].split(";")[0] == "application/json"
    doc = json.loads(body)
    assert doc["detail"][0]["loc"] == ["query", field], doc


def test_eventsource_sees_a_422_as_a_failed_connection(feedd, eventsource_client):
    report = eventsource_client(feedd.url("/api/feed/stream?limit=0"))
    assert report["end"] == "connection-error", report
    assert report["connectionError"]["code"] == 422, report
    assert not report["open"] and report["events"] == [], report


def test_cold_stream_sends_fast_sources_first_and_ends_as_the_json_page(demo, feedd_factory):
    """One source held back 1.5 s (test hook): the other sources' items come
    in earlier events; the streamed items, trimmed after next_cursor, are
    /api/feed's page byte for byte; the page cost 15 statements."""
    limit = 50
    path = f"/api/feed/stream?limit={limit}"
    feedd = feedd_factory(workers=1, env={"FEEDD_TEST_SLOW_SOURCE": "worlds:1500"})
    wait_ready(feedd)
    demo.reset_stats()
    headers, res = stream(feedd, path, limit=limit)
    check_stream_headers(headers)
    assert headers["x-cache"] == "miss"
    assert res.retry == 10000, "sse_retry's default"
    assert res.error is None and res.complete is not None, res.names
    assert statements_settled(demo, NSOURCES) == NSOURCES

    # The JSON page, from another instance (its own, cold cache).
    other = feedd_factory(workers=1)
    status, _, body = other.get(f"/api/feed?limit={limit}")
    assert status == 200, body
    page = json.loads(body)
    assert res.page_body() == body, "the trimmed stream is the JSON page, byte for byte"
    assert [it for it, _ in res.page_items()] == page["items"]
    assert res.complete == {"next_cursor": page["next_cursor"], "total_items": len(page["items"])}

    worlds = [i for i, b in enumerate(res.batches) for it, _ in b
              if it["type"] == "world_created"]
    others = [i for i, b in enumerate(res.batches) for it, _ in b
              if it["type"] != "world_created"]
    assert any(it["type"] == "world_created" for it in page["items"]), \
        "the demo page holds worlds (else this test proves nothing)"
    assert len(res.batches) >= 2, res.names
    assert set(worlds) == {len(res.batches) - 1}, "the slow source's items come in the last batch"
    assert min(others) < min(worlds), "the fast sources' items come in earlier events"


def test_hit_is_one_batch_and_complete(demo, feedd):
    limit = 7
    path = f"/api/feed/stream?limit={limit}&cursor={FUTURE}"
    headers, miss = stream(feedd, path, limit=limit)
    assert headers["x-cache"] == "miss", headers
    headers, hit = stream(feedd, path, limit=limit)
    check_stream_headers(headers)
    assert headers["x-cache"] == "hit", headers
    assert [b["kind"] for b in hit.blocks] == ["retry", "event", "event"], hit.blocks
    assert hit.names == ["feed_items", "feed_complete"]
    assert len(hit.batches[0]) == hit.complete["total_items"] == limit
    assert hit.page_body() == miss.page_body()
    assert hit.complete == miss.complete
    # And the JSON endpoint serves the same cached page.
    status, headers, body = feedd.get(f"/api/feed?limit={limit}&cursor={quote(FUTURE)}")
    assert (status, headers["x-cache"]) == (200, "hit")
    assert body == hit.page_body()
    assert "cache=hit" in feedd.access_log()


def test_stale_page_is_streamed_at_once(demo, feedd_factory):
    feedd = feedd_factory(cache_ttl="1s", cache_stale="60s")
    path = f"/api/feed/stream?limit=4&cursor={quote('2100-01-11T00:00:00Z')}"
    headers, first = stream(feedd, path, limit=4)
    assert headers["x-cache"] == "miss"
    time.sleep(1.2)
    headers, stale = stream(feedd, path, limit=4)
    assert headers["x-cache"] == "stale", headers
    assert stale.names == ["feed_items", "feed_complete"]
    assert stale.page_body() == first.page_body()


def test_streams_of_one_page_share_one_fill(demo, feedd_factory):
    """A second stream for a page whose statements are running joins them
    (no second round of statements); it joined after the first batch, so
    it gets the whole page in one event when the page is complete."""
    feedd = feedd_factory(workers=1, db_query_timeout="60s")
    wait_ready(feedd)
    path = f"/api/feed/stream?limit=12&cursor={quote('2100-01-12T00:00:00Z')}"
    locker = demo.connect()
    locker.autocommit = False
    a = b = None
    try:
        locker.execute("LOCK TABLE platform_worlds IN ACCESS EXCLUSIVE MODE")
        demo.reset_stats()
        a = Stream(feedd.port, path)
        assert a.read_head() == 200
        a.until_event("feed_items")     # the sources that do not read worlds
        b = Stream(feedd.port, path)
        assert b.read_head() == 200 and b.headers["x-cache"] == "miss"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and metric(feedd, "feedd_open_streams") < 2:
            time.sleep(0.05)
        locker.rollback()
        a.read_all()
        b.read_all()
    finally:
        locker.rollback()
        locker.close()
        for s in (a, b):
            if s is not None:
                s.close()
    ra, rb = StreamResult(a.blocks, 12), StreamResult(b.blocks, 12)
    assert len(ra.batches) >= 2 and ra.complete is not None, ra.names
    assert rb.names == ["feed_items", "feed_complete"], rb.names
    assert rb.page_body() == ra.page_body()
    assert rb.complete == ra.complete
    assert statements_settled(demo, NSOURCES) == NSOURCES
    assert metric(feedd, "feedd_cache_lease_waits_total") >= 1


def test_head_gets_the_headers_only(demo, feedd):
    status, headers, body = feedd.request("HEAD", "/api/feed/stream?limit=3")
    assert status == 200
    check_stream_headers(headers)
    assert body == b""


def test_eventsource_and_curl_read_the_stream(demo, feedd_factory, eventsource_client):
    """The npm eventsource client reads a cold stream (several batches) and
    a hit; curl -N reads the hit; all agree with each other and with our
    strict parser."""
    limit = 20
    path = f"/api/feed/stream?limit={limit}&cursor={quote('2100-01-02T00:00:00Z')}"
    feedd = feedd_factory(workers=1, env={"FEEDD_TEST_SLOW_SOURCE": "agents:800"})
    wait_ready(feedd)
    cold = eventsource_client(feedd.url(path))
    assert cold["open"] and cold["end"] == "complete", cold
    cold_res = StreamResult(eventsource_blocks(cold), limit)
    assert len(cold_res.batches) >= 2, cold_res.names

    rc, status, headers, blocks = curl_stream(feedd.url(path))
    assert rc == 0, "curl saw the server close the stream cleanly"
    assert status == 200
    check_stream_headers(headers)
    curl_res = StreamResult(blocks, limit)
    assert curl_res.names == ["feed_items", "feed_complete"]
    assert curl_res.retry == 10000

    hot = eventsource_client(feedd.url(path))
    assert hot["end"] == "complete", hot
    assert [(e["type"], e["data"]) for e in hot["events"]] == \
        [(b["event"], b["data"]) for b in blocks if b["kind"] == "event"]
    assert all(e["lastEventId"] == "" for e in cold["events"] + hot["events"])
    assert cold_res.page_body() == curl_res.page_body()
    assert cold_res.complete == curl_res.complete


def test_keepalive_then_timeout_error_event(demo, feedd_factory, eventsource_client):
    """A page that takes longer than sse_timeout: keepalive comments every
    sse_keepalive while waiting, then an error event, then the close."""
    feedd = feedd_factory(workers=1, sse_keepalive="100ms", sse_timeout="1s",
                          env={"FEEDD_TEST_SLOW_SOURCE": "worlds:4000"})
    wait_ready(feedd)
    path = f"/api/feed/stream?limit=5&cursor={quote('2100-01-03T00:00:00Z')}"
    headers, res = stream(feedd, path)
    check_stream_headers(headers)
    assert res.complete is None
    assert res.error is not None and "did not complete" in res.error["detail"], res.error
    assert res.names[-1] == "error"
    assert len(res.comments) >= 3, f"keepalives while waiting: {res.blocks}"
    # Keepalives come while waiting, none after the end.
    assert res.blocks[-1]["kind"] == "event"
    assert metric(feedd, "feedd_sse_timeouts_total") >= 1

    report = eventsource_client(feedd.url(path.replace("2100-01-03", "2100-01-04")))
    assert report["end"] == "error-event", report
    assert "did not complete" in json.loads(report["events"][-1]["data"])["detail"]


def test_database_failure_mid_stream_is_an_error_event(demo, feedd_factory):
    feedd = feedd_factory(workers=1, env={"FEEDD_TEST_SLOW_SOURCE": "worlds:2000"})
    wait_ready(feedd)
    s = Stream(feedd.port, f"/api/feed/stream?limit=6&cursor={quote('2100-01-05T00:00:00Z')}")
    try:
        assert s.read_head() == 200
        s.until_event("feed_items")        # the fast sources are in
        demo.stop("fast")
        try:
            blocks = s.read_all()
        finally:
            demo.start()
    finally:
        s.close()
    res = StreamResult(s.blocks)
    assert res.complete is None, "no page without the slow source"
    assert res.error is not None, f"an error event, not a silent cut: {blocks}"
    assert "database" in res.error["detail"], res.error
    assert res.partials and all(res.partials), "no batch claimed to be the last one"


def feedd_backends(pg):
    return pg.sql("SELECT pid, state, wait_event_type, left(query, 60) FROM pg_stat_activity"
                  " WHERE application_name = 'feedd' AND state <> 'idle'")


def test_client_gone_mid_query_cancels_it_on_the_server(demo, feedd_factory):
    """A table locked by another session holds the statements that read it;
    the client goes away; feedd cancels them (pg_stat_activity shows no
    feedd backend busy soon after, well before any statement_timeout), and
    the worker serves on."""
    feedd = feedd_factory(workers=1, db_query_timeout="60s")
    wait_ready(feedd)
    locker = demo.connect()
    locker.autocommit = False
    try:
        locker.execute("LOCK TABLE platform_worlds IN ACCESS EXCLUSIVE MODE")
        s = Stream(feedd.port, f"/api/feed/stream?limit=4&cursor={quote('2100-01-06T00:00:00Z')}")
        assert s.read_head() == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = [r for r in feedd_backends(demo) if r[2] == "Lock"]
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, f"a feedd statement waits for the lock: {feedd_backends(demo)}"
        s.close()

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and feedd_backends(demo):
            time.sleep(0.1)
        assert feedd_backends(demo) == [], "the abandoned statements were cancelled"
        assert metric(feedd, "feedd_db_cancelled_total") >= 1
        assert metric(feedd, "feedd_sse_client_gone_total") >= 1
    finally:
        locker.rollback()
        locker.close()
    headers, res = stream(feedd, f"/api/feed/stream?limit=4&cursor={quote('2100-01-06T00:00:00Z')}")
    assert res.complete is not None and res.complete["total_items"] == 4
    assert "pgpool: cancel request failed" not in feedd.error_log()


def test_client_reset_as_its_page_arrives(demo, feedd_factory):
    """Clients that reset their connection just as the rest of their page
    comes in: the worker (stopped meanwhile, so the database's answers are
    ahead of the resets in its queue) meets the dead sockets while writing
    the batch.  It drops those streams and serves the others; nothing is
    used after it is freed (ASan, checked at teardown)."""
    feedd = feedd_factory(workers=1, db_query_timeout="60s")
    wait_ready(feedd)
    [worker] = feedd.worker_pids()
    path = f"/api/feed/stream?limit=8&cursor={quote('2100-01-09T00:00:00Z')}"
    locker = demo.connect()
    locker.autocommit = False
    streams = []
    try:
        locker.execute("LOCK TABLE platform_worlds IN ACCESS EXCLUSIVE MODE")
        streams = [Stream(feedd.port, path) for _ in range(10)]
        for s in streams:
            assert s.read_head() == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and metric(feedd, "feedd_open_streams") < 10:
            time.sleep(0.05)
        os.kill(worker, signal.SIGSTOP)
        try:
            locker.rollback()
            time.sleep(0.5)    # the statements end; their answers wait for the worker
            for s in streams[:5]:
                s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
        finally:
            os.kill(worker, signal.SIGCONT)
        for s in streams[5:]:
            s.read_all()
            res = StreamResult(s.blocks, 8)
            assert res.complete is not None and res.complete["total_items"] == 8, res.names
    finally:
        locker.rollback()
        locker.close()
        for s in streams:
            s.close()
    assert feedd.worker_pids() == [worker], "the worker lives on"
    assert metric(feedd, "feedd_open_streams") == 0


def test_database_error_text_is_escaped_in_the_error_event(demo, feedd_factory):
    """PostgreSQL's messages quote names ("relation \"x\" does not exist"):
    the error event is still one line of valid JSON."""
    feedd = feedd_factory(workers=1)
    wait_ready(feedd)
    path = f"/api/feed/stream?limit=3&cursor={quote('2100-01-10T00:00:00Z')}"
    demo.sql("ALTER TABLE platform_worlds RENAME TO platform_worlds_gone")
    try:
        headers, res = stream(feedd, path)
    finally:
        demo.sql("ALTER TABLE platform_worlds_gone RENAME TO platform_worlds")
    assert res.complete is None
    assert res.error is not None, res.names
    assert '"platform_worlds"' in res.error["detail"], res.error


def test_client_that_does_not_read_is_dropped(demo, feedd_factory):
    """output_buffer_limit bounds what a stream queues for its client: a
    client that reads nothing (small window and segments, so the kernel
    holds little) is closed, and the worker serves the others."""
    feedd = feedd_factory(workers=1, output_buffer_limit="4kB",
                          env={"FEEDD_TEST_SLOW_SOURCE": "worlds:300"})
    wait_ready(feedd)
    path = f"/api/feed/stream?limit=50&cursor={quote('2100-01-07T00:00:00Z')}"
    s = Stream(feedd.port, path, rcvbuf=1024, mss=536)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "client reads too slowly" not in feedd.error_log():
            time.sleep(0.05)
        assert "client reads too slowly" in feedd.error_log(), feedd.logs()
        # What the kernel held still arrives, then the end.
        received = b""
        s.sock.settimeout(10)
        try:
            while True:
                data = s.sock.recv(65536)
                if not data:
                    break
                received += data
        except ConnectionResetError:
            pass
        assert b"event: feed_complete" not in received
    finally:
        s.close()
    headers, res = stream(feedd, path, limit=50)
    assert res.complete is not None and res.complete["total_items"] == 50


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_open_streams_hear_of_a_restart(demo, feedd_factory, sig):
    """Reload (HUP: old workers drain) and stop (TERM): a stream waiting for
    its page gets an error event saying so, then the close."""
    feedd = feedd_factory(workers=1, shutdown_timeout="20s",
                          env={"FEEDD_TEST_SLOW_SOURCE": "worlds:3000"})
    wait_ready(feedd)
    cursor = quote(f"2100-01-08T00:00:0{int(sig) % 10}Z")
    s = Stream(feedd.port, f"/api/feed/stream?limit=5&cursor={cursor}")
    try:
        assert s.read_head() == 200
        s.until_event("feed_items")
        feedd.signal(sig)
        s.read_all()
    finally:
        s.close()
    res = StreamResult(s.blocks)
    assert res.complete is None
    assert res.error is not None and "restarting" in res.error["detail"], res.blocks
    if sig == signal.SIGTERM:
        assert feedd.wait_exit() == 0
        return
    # The new worker serves streams.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        headers, res = stream(feedd, f"/api/feed/stream?limit=5&cursor={cursor}")
        if res.complete is not None:
            break
        time.sleep(0.1)
    assert res.complete is not None and res.complete["total_items"] == 5, res.blocks

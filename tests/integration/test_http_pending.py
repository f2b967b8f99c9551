"""Requests whose handler answers later (a database round trip): pipelining
behind them, clients that leave meanwhile, and streamed responses.

The test hook FEEDD_TEST_SLOW_SOURCE=<statement>:<ms> makes one of the feed's
statements slow, which keeps /api/feed and /api/feed/stream pending.
"""

import json
import socket
import time

from helpers import read_all, split_response

SLOW = {"FEEDD_TEST_SLOW_SOURCE": "worlds:1500"}


def slow_feedd(feedd_factory, **overrides):
    f = feedd_factory(workers=1, env=SLOW, **overrides)
    # The pool connects in the background; a pending request needs it up.
    deadline = time.monotonic() + 10
    while f.get("/readyz")[0] != 200:
        assert time.monotonic() < deadline, "no database connection"
        time.sleep(0.1)
    return f


def read_response(fh):
    """One response from a buffered socket file: (status, headers, body)."""
    status = int(fh.readline().split(b" ")[1])
    headers = {}
    while True:
        line = fh.readline()
        if line == b"\r\n":
            break
        name, value = line.decode("latin-1").split(":", 1)
        headers[name.strip().lower()] = value.strip()
    n = int(headers.get("content-length", "0"))
    return status, headers, fh.read(n)


def test_pipelined_request_waits_for_the_pending_one(feedd_factory):
    f = slow_feedd(feedd_factory)
    s = socket.create_connection(("127.0.0.1", f.port), timeout=20)
    s.sendall(b"GET /api/feed?limit=5 HTTP/1.1\r\nHost: t\r\n\r\n"
              b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
              b"GET /api/after HTTP/1.1\r\nHost: t\r\n\r\n")
    fh = s.makefile("rb")
    first = read_response(fh)
    second = read_response(fh)
    third = read_response(fh)
    s.close()
    # In the order asked, although /healthz was ready long before the feed.
    assert first[0] == 200 and "items" in json.loads(first[2]), first
    assert second[0] == 200 and json.loads(second[2]) == {"status": "ok"}
    assert third[0] == 404 and "/api/after" in json.loads(third[2])["detail"]


def test_client_gone_while_pending(feedd_factory):
    f = slow_feedd(feedd_factory)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
        s.sendall(b"GET /api/feed?limit=7 HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.2)
        s.close()
    # The worker dropped those requests and still serves.
    status, _, body = f.get("/healthz")
    assert status == 200
    time.sleep(2)  # let the slow statements come back to nobody
    status, _, body = f.get("/api/feed?limit=7", timeout=20)
    assert status == 200 and "items" in json.loads(body)
    f.stop()
    gone = [line for line in f.access_log().splitlines()
            if "/api/feed?limit=7" in line and '" 499 ' in line]
    assert len(gone) == 3, f.access_log()


def test_stream_is_delimited_by_close(feedd_factory):
    f = slow_feedd(feedd_factory)
    s = socket.create_connection(("127.0.0.1", f.port), timeout=20)
    s.sendall(b"GET /api/feed/stream?limit=5 HTTP/1.1\r\nHost: t\r\n\r\n"
              b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    got = read_all(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 200 "), got[:200]
    _, headers, body = split_response(got)
    assert headers["content-type"].startswith("text/event-stream")
    assert "content-length" not in headers
    assert headers["connection"] == "close"
    assert b"event: feed_complete" in body
    # The pipelined request after a stream is never answered: the stream
    # ends with the connection.
    assert b"HTTP/1.1" not in body


def test_head_of_a_stream_has_no_body(feedd_factory):
    f = slow_feedd(feedd_factory)
    status, headers, body = f.request("HEAD", "/api/feed/stream?limit=5", timeout=20)
    assert status == 200 and body == b""
    assert headers["content-type"].startswith("text/event-stream")


def test_client_gone_mid_stream(feedd_factory):
    f = slow_feedd(feedd_factory)
    s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
    s.sendall(b"GET /api/feed/stream?limit=9 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200 ")   # headers come at once
    s.close()
    time.sleep(2)
    assert f.get("/healthz")[0] == 200
    f.stop()
    lines = [line for line in f.access_log().splitlines() if "/api/feed/stream?limit=9" in line]
    assert len(lines) == 1 and '" 200 ' in lines[0], lines

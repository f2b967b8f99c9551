"""max_connections: a worker over its limit answers 503 (JSON) and closes."""

import json
import socket
import time

from helpers import read_all


def open_served(port):
    """A connection that has been accepted and answered, kept open."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    got = b""
    while b'{"status":"ok"}' not in got:
        chunk = s.recv(4096)
        assert chunk, f"closed before answering: {got!r}"
        got += chunk
    return s


def test_over_the_limit_gets_503(feedd_factory):
    f = feedd_factory(workers=1, max_connections=2)
    held = [open_served(f.port), open_served(f.port)]
    s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
    got = read_all(s)
    s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), got[:300]
    assert b"\r\nConnection: close" in head
    assert json.loads(body)["detail"]
    for h in held:
        h.close()


def test_room_again_after_a_close(feedd_factory):
    f = feedd_factory(workers=1, max_connections=2)
    a, b = open_served(f.port), open_served(f.port)
    a.close()
    # The worker notices the close when it reads EOF: retry for a while.
    deadline = time.monotonic() + 10
    while True:
        s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        got = read_all(s)
        s.close()
        if got.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert got.startswith(b"HTTP/1.1 200 "), got[:300]
    b.close()


def test_held_connections_still_served_at_the_limit(feedd_factory):
    f = feedd_factory(workers=1, max_connections=2)
    held = [open_served(f.port), open_served(f.port)]
    s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
    assert read_all(s).startswith(b"HTTP/1.1 503 ")
    s.close()
    # The two inside are unaffected.
    for h in held:
        h.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert read_all(h).startswith(b"HTTP/1.1 200 ")
        h.close()

"""Connection timeouts: slow senders (slowloris), silent and idle clients.

The bounds below are generous on purpose: these tests check that the server
cuts a connection, and how it does so, not how fast.
"""

import json
import socket
import time

GIVE_UP = 15.0   # seconds: far beyond every timeout configured here


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_closed(s, trickle=None, every=0.2):
    """Reads until the server closes; meanwhile sends one trickle piece every
    `every` seconds (a slowloris client).  -> (bytes received, closed)."""
    s.settimeout(every)
    got = b""
    deadline = time.monotonic() + GIVE_UP
    pieces = iter(trickle or ())
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            piece = next(pieces, None)
            if piece is not None:
                try:
                    s.sendall(piece)
                except OSError:
                    pass
            continue
        except ConnectionResetError:
            return got, True
        if not chunk:
            return got, True
        got += chunk
    return got, False


def test_slowloris_gets_408_then_close(feedd_factory):
    f = feedd_factory(header_timeout="1s")
    s = connect(f.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
    # One header byte every 0.2 s: always sending, never finishing.
    got, closed = read_until_closed(s, trickle=(b"X" for _ in range(10 ** 6)))
    s.close()
    assert closed, f"still open after {GIVE_UP}s with header_timeout = 1s"
    assert got.startswith(b"HTTP/1.1 408 "), got[:200]
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"\r\nConnection: close" in head
    assert json.loads(body)["detail"]


def test_slow_request_line_is_cut_too(feedd_factory):
    f = feedd_factory(header_timeout="1s")
    s = connect(f.port)
    s.sendall(b"GET /hea")
    got, closed = read_until_closed(s, trickle=(b"a" for _ in range(10 ** 6)))
    s.close()
    assert closed
    assert got.startswith(b"HTTP/1.1 408 "), got[:200]


def test_silent_connection_closed_without_answer(feedd_factory):
    f = feedd_factory(header_timeout="1s")
    s = connect(f.port)
    got, closed = read_until_closed(s)
    s.close()
    assert closed
    assert got == b"", "nothing was asked, nothing is answered"


def test_prompt_request_is_not_affected(feedd_factory):
    f = feedd_factory(header_timeout="1s")
    s = connect(f.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\n")
    time.sleep(0.2)
    s.sendall(b"Host: t\r\nConnection: close\r\n\r\n")
    got, closed = read_until_closed(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 200 "), got[:200]
    assert closed


def test_idle_keepalive_connection_is_closed(feedd_factory):
    f = feedd_factory(keepalive_timeout="1s")
    s = connect(f.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    got, closed = read_until_closed(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nConnection: keep-alive\r\n" in got
    assert closed, "an idle keep-alive connection must be closed after keepalive_timeout"
    assert got.count(b"HTTP/1.1") == 1, "closing an idle connection sends nothing"


def test_keepalive_connection_survives_while_used(feedd_factory):
    # Each request restarts the idle clock: requests 0.5 s apart on a 1 s
    # keepalive_timeout keep one connection alive for longer than 1 s.
    f = feedd_factory(keepalive_timeout="1s")
    s = connect(f.port)
    fh = s.makefile("rb")
    for _ in range(4):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert fh.readline().startswith(b"HTTP/1.1 200 ")
        length = 0
        while True:
            line = fh.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            if line == b"\r\n":
                break
        fh.read(length)
        time.sleep(0.5)
    fh.close()
    s.close()


def test_keepalive_timeout_zero_closes_after_each_response(feedd_factory):
    f = feedd_factory(keepalive_timeout=0)
    s = connect(f.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    got, closed = read_until_closed(s)
    s.close()
    assert b"\r\nConnection: close\r\n" in got
    assert closed


def test_client_that_stops_reading_is_cut_by_send_timeout(feedd_factory, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    size = 7 * 1024 * 1024
    (www / "big.bin").write_bytes(b"z" * size)
    f = feedd_factory(www_root=str(www), send_timeout="1s")
    s = socket.socket()
    # A small window: the server's writes stall long before the file is out.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(GIVE_UP)
    s.connect(("127.0.0.1", f.port))
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(3)   # reads nothing for three send_timeouts
    got, closed = read_until_closed(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 200 ")
    assert closed
    assert len(got) < size, "the whole file arrived: the stalled send was not cut"

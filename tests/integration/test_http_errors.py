"""Every error status the HTTP layer produces: JSON bodies that say what was
wrong, and a closed connection where the request cannot be trusted."""

import json
import socket

import pytest

from helpers import read_all


def exchange(port, data, timeout=10.0, shut=False):
    """Sends data, reads until the server closes (or timeout).
    -> (status, {lower-case header: value}, body bytes, closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data if isinstance(data, bytes) else data.encode("latin-1"))
        if shut:
            s.shutdown(socket.SHUT_WR)
        raw, closed = b"", False
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            raw += chunk
            if complete(raw) and b"\r\nconnection: keep-alive\r\n" in raw.lower():
                break   # the server means to keep it open: no EOF to wait for
    finally:
        s.close()
    return parse(raw) + (closed,)


def complete(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse(raw):
    assert raw, "no response at all"
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status, _ = lines[0].split(" ", 2)
    assert version == "HTTP/1.1"
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        assert len(body) == int(headers["content-length"]), "exactly one response"
    return int(status), headers, body


def detail(headers, body):
    assert headers["content-type"].split(";")[0] == "application/json"
    doc = json.loads(body)
    assert isinstance(doc["detail"], str) and doc["detail"], body
    return doc["detail"]


@pytest.mark.parametrize("data", [
    "BLAH\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n",
    "GET / HTTP/9.7\r\nHost: t\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n",
], ids=["garbage", "header-without-colon", "bad-version", "two-lengths",
        "bad-chunk", "control-char-in-target"])
def test_malformed_request_is_400_and_close(feedd, data):
    status, headers, body, closed = exchange(feedd.port, data)
    assert status == 400, body
    detail(headers, body)
    assert headers["connection"] == "close"
    assert closed, "the connection must close after a malformed request"


@pytest.mark.parametrize("target", ["/%zz", "/a%2", "/x%00y", "*"])
def test_bad_target_is_400(feedd, target):
    status, headers, body, _ = exchange(feedd.port, f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 400, body
    detail(headers, body)


# RFC 9112 section 3.2: a Host header is required in HTTP/1.1, at most one
# in any version, and it must be a host[:port].
def test_http11_without_host_is_400(feedd):
    status, headers, body, _ = exchange(feedd.port, "GET /healthz HTTP/1.1\r\n\r\n")
    assert status == 400, body
    assert "Host" in detail(headers, body)


def test_http10_without_host_is_served(feedd):
    status, _, body, _ = exchange(feedd.port, "GET /healthz HTTP/1.0\r\n\r\n")
    assert status == 200, body
    assert json.loads(body) == {"status": "ok"}


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_two_host_headers_is_400(feedd, version):
    status, headers, body, _ = exchange(
        feedd.port, f"GET /healthz {version}\r\nHost: a\r\nAccept: */*\r\nhost: b\r\n\r\n")
    assert status == 400, body
    assert "Host" in detail(headers, body)


@pytest.mark.parametrize("host", ["a b", "example.com/x", "user@example.com", "t:80x", "[::1"])
def test_malformed_host_is_400(feedd, host):
    status, headers, body, _ = exchange(feedd.port,
                                        f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n")
    assert status == 400, body
    assert "Host" in detail(headers, body)


@pytest.mark.parametrize("host", ["example.com:8080", "127.0.0.1", "[::1]:8080", ""])
def test_well_formed_host_is_served(feedd, host):
    status, _, body, _ = exchange(feedd.port, f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n")
    assert status == 200, body


def test_missing_host_keeps_the_connection_usable(feedd):
    # The request is framed like any other: only it is refused.
    s = socket.create_connection(("127.0.0.1", feedd.port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n"
              b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    raw = read_all(s)
    s.close()
    assert raw.startswith(b"HTTP/1.1 400 "), raw[:300]
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 1, raw[:600]


@pytest.mark.parametrize("path", ["/api/nothing", "/api", "/api/feedx", "/api/feed/streamx",
                                  "/no/such/file.html"])
def test_unknown_path_is_404_json(feedd, path):
    status, headers, body = feedd.get(path)
    assert status == 404, body
    detail(headers, body)


@pytest.mark.parametrize("method,path", [
    ("POST", "/healthz"), ("PUT", "/readyz"), ("DELETE", "/metrics"),
    ("POST", "/api/feed"), ("PATCH", "/api/feed/stream"), ("POST", "/"),
    ("OPTIONS", "/index.html"),
])
def test_wrong_method_is_405_with_allow(feedd, method, path):
    status, headers, body = feedd.request(method, path, body=b"x" if method != "OPTIONS" else None)
    assert status == 405, body
    assert headers["allow"] == "GET, HEAD"
    assert headers["content-type"].split(";")[0] == "application/json"
    assert json.loads(body)["detail"]


def test_405_keeps_the_connection_usable(feedd):
    conn = feedd.connection()
    conn.request("POST", "/healthz", body=b'{"a": 1}')
    r = conn.getresponse()
    r.read()
    assert r.status == 405
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read()) == {"status": "ok"}
    conn.close()


def test_declared_body_over_1mb_is_413(feedd):
    # Refused on the headers alone: the body never has to be sent.
    status, headers, body, closed = exchange(
        feedd.port, "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n")
    assert status == 413, body
    detail(headers, body)
    assert closed


def test_chunked_body_over_1mb_is_413(feedd):
    chunk = b"x" * 65536
    data = b"GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    data += (b"10000\r\n" + chunk + b"\r\n") * 17 + b"0\r\n\r\n"
    status, headers, body, closed = exchange(feedd.port, data)
    assert status == 413, body
    detail(headers, body)
    assert closed


def test_body_just_under_1mb_is_drained(feedd):
    data = b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n"
    data += b"y" * 1000000
    data += b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", feedd.port), timeout=10)
    s.sendall(data)
    raw = read_all(s)
    s.close()
    assert raw.count(b"HTTP/1.1 200 OK") == 2, raw[:500]


def test_request_line_too_long_is_414(feedd):
    target = "/" + "a" * 9000   # default max_request_line = 8kB
    status, headers, body, closed = exchange(feedd.port, f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 414, body
    detail(headers, body)
    assert closed


def test_request_line_within_limit_is_served(feedd):
    target = "/" + "a" * 7000
    status, headers, body, _ = exchange(feedd.port, f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 404, body   # no such file, but not refused


def test_request_line_limit_is_configurable(feedd_factory):
    f = feedd_factory(max_request_line="512B")
    status, _, body, closed = exchange(f.port, "GET /" + "b" * 600 + " HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 414, body
    assert closed
    status, _, body, _ = exchange(f.port, "GET /" + "b" * 400 + " HTTP/1.1\r\nHost: t\r\n\r\n",
                                  timeout=2.0)
    assert status == 404, body


def test_headers_too_large_is_431(feedd):
    headers = "".join(f"X-Filler-{i}: {'v' * 100}\r\n" for i in range(200))   # ~22 kB > 16 kB
    status, hdrs, body, closed = exchange(feedd.port, f"GET /healthz HTTP/1.1\r\nHost: t\r\n{headers}\r\n")
    assert status == 431, body
    detail(hdrs, body)
    assert closed


def test_one_huge_header_is_431(feedd):
    status, hdrs, body, closed = exchange(
        feedd.port, f"GET /healthz HTTP/1.1\r\nHost: t\r\nCookie: {'c' * 20000}\r\n\r\n")
    assert status == 431, body
    assert closed


def test_headers_within_limit_are_served(feedd):
    headers = "".join(f"X-Filler-{i}: {'v' * 100}\r\n" for i in range(100))   # ~11 kB
    status, _, body, _ = exchange(feedd.port, f"GET /healthz HTTP/1.1\r\nHost: t\r\n{headers}\r\n")
    assert status == 200, body


def test_server_survives_all_of_the_above(feedd):
    for data in ("BLAH\r\n\r\n", "GET /" + "a" * 9000 + " HTTP/1.1\r\n\r\n",
                 "GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"):
        exchange(feedd.port, data, timeout=2.0)
    status, _, body = feedd.get("/healthz")
    assert status == 200
    assert len(feedd.worker_pids()) == 2

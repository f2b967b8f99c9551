"""HTTP/1.1 on the wire: keep-alive, pipelining, HTTP/1.0, HEAD, Connection: close.

Raw sockets where the exact bytes matter (pipelining, HEAD framing),
http.client where a real client's behaviour is the point.
"""

import email.utils
import json
import re
import socket


class Raw:
    """One client connection that sends bytes and parses responses in order."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode("latin-1"))

    def response(self, head=False):
        """-> (status, {lower-case name: value}, body), or None at EOF.
        head: the request was HEAD, so no body follows whatever the headers say."""
        line = self.f.readline()
        if not line:
            return None
        version, status, _ = line.decode("latin-1").split(" ", 2)
        assert version == "HTTP/1.1", line
        headers = {}
        while True:
            h = self.f.readline()
            assert h, "connection closed inside a response head"
            if h in (b"\r\n", b"\n"):
                break
            name, value = h.decode("latin-1").split(":", 1)
            assert name.strip().lower() not in headers, f"header {name} twice"
            headers[name.strip().lower()] = value.strip()
        status = int(status)
        if head or status in (204, 304):
            body = b""
        elif "content-length" in headers:
            body = self.f.read(int(headers["content-length"]))
        else:
            body = self.f.read()
        return status, headers, body

    def at_eof(self):
        """True when the server closed the connection (EOF or reset)."""
        try:
            return self.f.read(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.f.close()
        self.sock.close()


def req(method, target, *headers, version="HTTP/1.1"):
    lines = [f"{method} {target} {version}", "Host: test"] + list(headers)
    return "\r\n".join(lines) + "\r\n\r\n"


def test_keepalive_two_requests_on_one_socket(feedd):
    c = Raw(feedd.port)
    c.send(req("GET", "/healthz"))
    status, headers, body = c.response()
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert headers["connection"].lower() == "keep-alive"
    c.send(req("GET", "/api/second"))
    status, headers, body = c.response()
    assert status == 404
    assert "/api/second" in json.loads(body)["detail"]
    c.close()


def test_http_client_reuses_the_connection(feedd):
    conn = feedd.connection()
    conn.request("GET", "/healthz")
    r1 = conn.getresponse()
    r1.read()
    first = conn.sock.getsockname()
    conn.request("GET", "/healthz")
    r2 = conn.getresponse()
    r2.read()
    assert r1.status == r2.status == 200
    assert conn.sock is not None and conn.sock.getsockname() == first, \
        "the second request went over a new connection"
    conn.close()


def test_pipelined_requests_answered_in_order(feedd):
    c = Raw(feedd.port)
    c.send(req("GET", "/api/one") + req("GET", "/healthz") + req("GET", "/api/three"))
    r1, r2, r3 = c.response(), c.response(), c.response()
    assert r1[0] == 404 and "/api/one" in json.loads(r1[2])["detail"]
    assert r2[0] == 200 and json.loads(r2[2]) == {"status": "ok"}
    assert r3[0] == 404 and "/api/three" in json.loads(r3[2])["detail"]
    # Still open for more.
    c.send(req("GET", "/healthz"))
    assert c.response()[0] == 200
    c.close()


def test_pipelining_across_arbitrary_packet_boundaries(feedd):
    data = (req("GET", "/api/a") + req("GET", "/api/b") + req("GET", "/api/c")).encode()
    c = Raw(feedd.port)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Cut inside the request line, inside a header, between CR and LF, and
    # across two requests.
    for cut in (5, 17, 31, 40, len(data) // 2 + 3, len(data)):
        c.send(data[:cut])
        data = data[cut:]
        if not data:
            break
    for name in ("a", "b", "c"):
        status, _, body = c.response()
        assert status == 404 and f"/api/{name}" in json.loads(body)["detail"]
    c.close()


def test_head_then_get_pipelined(feedd):
    # A HEAD answer with a body would corrupt the framing of the next one.
    c = Raw(feedd.port)
    c.send(req("HEAD", "/healthz") + req("GET", "/healthz"))
    hs, hh, hb = c.response(head=True)
    gs, gh, gb = c.response()
    assert hs == gs == 200
    assert hb == b"" and json.loads(gb) == {"status": "ok"}
    assert hh["content-length"] == gh["content-length"] == str(len(gb))
    hh.pop("date"), gh.pop("date")
    assert hh == gh, "HEAD answers the headers GET would"
    c.close()


def test_head_with_http_client(feedd):
    status, headers, body = feedd.request("HEAD", "/healthz")
    assert status == 200 and body == b""
    assert int(headers["content-length"]) == len(b'{"status":"ok"}')


def test_http10_closes_by_default(feedd):
    c = Raw(feedd.port)
    c.send(req("GET", "/healthz", version="HTTP/1.0"))
    status, headers, body = c.response()
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert headers["connection"].lower() == "close"
    assert c.at_eof()
    c.close()


def test_http10_keepalive_when_asked(feedd):
    c = Raw(feedd.port)
    c.send(req("GET", "/healthz", "Connection: keep-alive", version="HTTP/1.0"))
    status, headers, _ = c.response()
    assert status == 200 and headers["connection"].lower() == "keep-alive"
    c.send(req("GET", "/healthz", version="HTTP/1.0"))
    status, headers, _ = c.response()
    assert status == 200 and headers["connection"].lower() == "close"
    assert c.at_eof()
    c.close()


def test_connection_close_is_honoured(feedd):
    c = Raw(feedd.port)
    # The request after the one that says close is never answered.
    c.send(req("GET", "/healthz", "Connection: close") + req("GET", "/api/never"))
    status, headers, _ = c.response()
    assert status == 200 and headers["connection"].lower() == "close"
    assert c.at_eof()
    c.close()


def test_standard_response_headers(feedd):
    c = Raw(feedd.port)
    c.send(req("GET", "/healthz"))
    status, headers, body = c.response()
    assert status == 200
    assert headers["server"].startswith("feedd/") and len(headers["server"]) > len("feedd/")
    assert email.utils.parsedate_to_datetime(headers["date"]).tzinfo is not None
    assert headers["content-type"].startswith("application/json")
    assert int(headers["content-length"]) == len(body)
    c.close()


def read_head(sock):
    """-> (the raw bytes of one response head, blank line included, what followed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed inside a response head: {data!r}"
        data += chunk
    end = data.index(b"\r\n\r\n") + 4
    return data[:end], data[end:]


def test_response_head_bytes(feedd):
    # The head is assembled by hand (no printf): every line, its order and
    # its CRLF, byte for byte, for a keep-alive answer and a closing one.
    date = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov" \
        rb"|Dec) \d{4} \d\d:\d\d:\d\d GMT"
    body = b'{"status":"ok"}'
    for conn_hdr, conn_value in (("", b"keep-alive"), ("Connection: close", b"close")):
        s = socket.create_connection(("127.0.0.1", feedd.port), timeout=10)
        s.sendall(req("GET", "/healthz", *([conn_hdr] if conn_hdr else [])).encode())
        head, _ = read_head(s)
        s.close()
        want = (rb"HTTP/1\.1 200 OK\r\nDate: " + date + rb"\r\nServer: feedd/[0-9A-Za-z.\-]+\r\n"
                rb"Content-Type: application/json\r\nCache-Control: no-store\r\n"
                rb"Content-Length: " + str(len(body)).encode() + rb"\r\n"
                rb"Connection: " + conn_value + rb"\r\n\r\n")
        assert re.fullmatch(want, head), head
    # An error: another status line, and a length of more than one digit.
    s = socket.create_connection(("127.0.0.1", feedd.port), timeout=10)
    s.sendall(req("GET", "/api/nothing-here").encode())
    head, rest = read_head(s)
    m = re.fullmatch(rb"HTTP/1\.1 404 Not Found\r\nDate: " + date + rb"\r\nServer: feedd/\S+\r\n"
                     rb"Content-Type: application/json\r\nContent-Length: (\d+)\r\n"
                     rb"Connection: keep-alive\r\n\r\n", head)
    assert m, head
    while len(rest) < int(m.group(1)):
        chunk = s.recv(65536)
        assert chunk, (head, rest)
        rest += chunk
    s.close()
    assert int(m.group(1)) == len(rest) and len(m.group(1)) > 1, (head, rest)


def test_small_request_body_is_drained(feedd):
    c = Raw(feedd.port)
    c.send(req("GET", "/healthz", "Content-Length: 11") + "hello world")
    assert c.response()[0] == 200
    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert c.response()[0] == 200
    # The bodies did not leak into the next request.
    c.send(req("GET", "/api/after"))
    status, _, body = c.response()
    assert status == 404 and "/api/after" in json.loads(body)["detail"]
    c.close()


def test_absolute_form_target(feedd):
    c = Raw(feedd.port)
    c.send(req("GET", f"http://127.0.0.1:{feedd.port}/healthz?x=1"))
    status, _, body = c.response()
    assert status == 200 and json.loads(body) == {"status": "ok"}
    c.close()


def test_half_closed_client_gets_its_answers(feedd):
    c = Raw(feedd.port)
    c.send(req("GET", "/healthz") + req("GET", "/api/two"))
    c.sock.shutdown(socket.SHUT_WR)
    assert c.response()[0] == 200
    status, _, body = c.response()
    assert status == 404 and "/api/two" in json.loads(body)["detail"]
    assert c.at_eof()
    c.close()


def test_query_string_does_not_change_the_route(feedd):
    status, _, body = feedd.get("/healthz?verbose=1&x=%20")
    assert status == 200 and json.loads(body) == {"status": "ok"}

"""The access log: one line per request, in the documented format."""

import re
import socket

LINE = re.compile(
    r'^(?P<peer>\S+) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)" '
    r'rt=(?P<rt>\d+\.\d{3}) ttfb=(?P<ttfb>\d+\.\d{3}|-) cache=(?P<cache>hit|miss|stale|-)$')


def lines_after_stop(f):
    # Workers may buffer their lines: a stopped feedd has written them all.
    f.stop()
    return [line for line in f.access_log().splitlines() if line]


def parsed(lines):
    out = []
    for line in lines:
        m = LINE.match(line)
        assert m, f"access log line not in the documented format: {line!r}"
        out.append(m.groupdict())
    return out


def test_one_line_per_request_with_fields(feedd):
    feedd.get("/healthz", headers={"User-Agent": "probe/1.0", "Referer": "http://example/x"})
    feedd.get("/api/missing?q=1")
    feedd.request("HEAD", "/healthz")
    entries = parsed(lines_after_stop(feedd))
    by_request = {e["request"]: e for e in entries}

    e = by_request["GET /api/missing?q=1 HTTP/1.1"]
    assert e["status"] == "404" and int(e["bytes"]) > 0
    assert e["peer"] == "127.0.0.1"

    probe = [e for e in entries if e["agent"] == "probe/1.0"]
    assert len(probe) == 1
    assert probe[0]["request"] == "GET /healthz HTTP/1.1"
    assert probe[0]["referer"] == "http://example/x"
    assert probe[0]["status"] == "200" and probe[0]["bytes"] == str(len(b'{"status":"ok"}'))
    assert probe[0]["cache"] == "-"

    head = by_request["HEAD /healthz HTTP/1.1"]
    assert head["bytes"] == "0"


def test_client_text_cannot_forge_a_line(feedd):
    feedd.get("/healthz", headers={"User-Agent": 'evil" 500 0 "x\\', "Referer": "a\tb"})
    entries = parsed(lines_after_stop(feedd))
    evil = [e for e in entries if "evil" in e["agent"]]
    assert len(evil) == 1
    assert evil[0]["status"] == "200"
    assert '"' not in evil[0]["agent"] and "\t" not in evil[0]["referer"]


def test_errors_of_the_http_layer_are_logged(feedd):
    s = socket.create_connection(("127.0.0.1", feedd.port), timeout=10)
    s.sendall(b"BLAH\r\n\r\n")
    while s.recv(4096):
        pass
    s.close()
    entries = parsed(lines_after_stop(feedd))
    assert any(e["status"] == "400" for e in entries)


def test_pipelined_requests_each_logged(feedd):
    s = socket.create_connection(("127.0.0.1", feedd.port), timeout=10)
    s.sendall(b"".join(b"GET /api/p%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(3))
              + b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    requests = [e["request"] for e in parsed(lines_after_stop(feedd))]
    for i in range(3):
        assert requests.count(f"GET /api/p{i} HTTP/1.1") == 1

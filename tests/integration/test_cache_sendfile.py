"""Cached pages sent from a worker's sealed page file with sendfile
(cache_sendfile_size): a page read twice from one cache copy is sent from
its file afterwards; the bytes are the cache's; a page that changed, was
flushed or expired is never sent from an old file; HEAD, pipelining, a
slow reader of a page far larger than the socket buffers, and a reader
that stops (send_timeout) all work on that path."""

import signal
import socket
import time

from helpers import access_entries, access_log_re, metric, poll, raw_get, split_response

PATH = "/api/feed?limit=20"
WIDE = "/api/feed?limit=50"


def sendfile_hits(f):
    return metric(f, "feedd_cache_sendfile_hits_total")


def warm(f, path, n=3):
    """n GETs of path: a miss, a hit remembered, a hit that makes the page's
    file; from the fourth on the worker sends the file.  -> bodies."""
    bodies = []
    for _ in range(n):
        status, _, body = f.get(path)
        assert status == 200, body
        bodies.append(body)
    return bodies


def world_on(f, path):
    """The name of a world some item of the page names."""
    _, _, page = f.get_json(path)
    for item in page["items"]:
        for world in (item.get("world_name"), (item.get("world") or {}).get("name")):
            if world:
                return world
    raise AssertionError(f"no world on {path}: {page}")


def dweller_on(f, path):
    """The id of a dweller some item of the page shows."""
    _, _, page = f.get_json(path)
    for item in page["items"]:
        if isinstance(item.get("dweller"), dict):
            return item["dweller"]["id"]
    raise AssertionError(f"no dweller on {path}: {page}")


def test_page_read_twice_is_then_sent_from_its_file(demo, feedd_factory, repo_root):
    f = feedd_factory(workers=1)
    answers = [f.get(PATH) for _ in range(5)]
    assert [a[1]["x-cache"] for a in answers] == ["miss", "hit", "hit", "hit", "hit"]
    body = answers[0][2]
    assert all(a[2] == body for a in answers)
    assert all(a[1]["content-length"] == str(len(body)) for a in answers)
    assert all(a[1]["content-type"] == "application/json" for a in answers)
    # The second read was remembered, the third made the file, the last
    # two were sent from it.
    assert sendfile_hits(f) == 2
    assert metric(f, "feedd_cache_hits_total") == 4
    assert metric(f, "feedd_cache_sendfile_bytes") == len(body)
    # The access log says hit for them, with the bytes sent, as for any hit.
    line_re = access_log_re(repo_root)

    def feed_lines():
        return [(e["cache"], e["bytes"]) for e in access_entries(f, line_re)
                if e["request"] == f"GET {PATH} HTTP/1.1"]

    poll("access log lines", lambda: len(feed_lines()) >= 5)
    assert feed_lines() == [("miss", str(len(body)))] + [("hit", str(len(body)))] * 4


def test_off_sends_every_page_by_copy(demo, feedd_factory):
    f = feedd_factory(workers=1, cache_sendfile_size=0)
    bodies = warm(f, PATH, 5)
    assert len(set(bodies)) == 1
    assert sendfile_hits(f) == 0
    assert metric(f, "feedd_cache_sendfile_bytes") == 0
    assert metric(f, "feedd_cache_hits_total") == 4


def test_changed_page_is_never_sent_from_the_old_file(demo, feedd_factory):
    f = feedd_factory(workers=1, cache_ttl="1s", cache_stale="60s")
    old = warm(f, WIDE, 4)[0]
    assert sendfile_hits(f) == 1
    world = world_on(f, WIDE)
    demo.sql("UPDATE platform_worlds SET name = name || ' (renamed)' WHERE name = %s", world)
    try:
        time.sleep(1.3)  # past cache_ttl: stale, and refreshed behind
        status, headers, body = f.get(WIDE)
        assert (status, headers["x-cache"], body) == (200, "stale", old)
        # The refresh rewrites the cache's copy; the old file, still within
        # its stale time, must not answer for the new page.
        answers = []
        poll("the refreshed page", lambda: answers.append(f.get(WIDE)) or
             answers[-1][1]["x-cache"] == "hit")
        new = answers[-1][2]
        assert new != old and b" (renamed)" in new
        assert all(a[2] == old for a in answers if a[1]["x-cache"] == "stale")
        hits = sendfile_hits(f)
        later = [f.get(WIDE) for _ in range(4)]
        assert all(a[1]["x-cache"] == "hit" and a[2] == new for a in later), \
            "an answer came from the old file"
        # The key had a file: the first hit after the refresh made the new
        # copy's file at once, the next ones are sent from it.
        assert sendfile_hits(f) >= hits + 3
        assert metric(f, "feedd_cache_sendfile_bytes") == len(new)

        # A flush: the next request is a miss, not the file.
        f.signal(signal.SIGUSR2)
        poll("the flush", lambda: metric(f, "feedd_cache_flushes_total") == 1)
        status, headers, body = f.get(WIDE)
        assert (status, headers["x-cache"], body) == (200, "miss", new)
    finally:
        demo.sql("UPDATE platform_worlds SET name = %s WHERE name = %s", world,
                 world + " (renamed)")


def test_stale_page_is_sent_from_its_file_and_refreshed(demo, feedd_factory):
    f = feedd_factory(workers=1, cache_ttl="1s", cache_stale="60s")
    body = warm(f, PATH)[0]
    hits = sendfile_hits(f)
    time.sleep(1.3)
    status, headers, stale = f.get(PATH)
    assert (status, headers["x-cache"], stale) == (200, "stale", body)
    assert sendfile_hits(f) == hits + 1
    poll("the refresh", lambda: f.get(PATH)[1]["x-cache"] == "hit")


def test_head_on_the_file_path(demo, feedd_factory):
    f = feedd_factory(workers=1)
    body = warm(f, PATH)[0]
    hits = sendfile_hits(f)
    status, headers, rest = split_response(raw_get(f.port, PATH, method="HEAD"))
    assert (status, headers["x-cache"], rest) == (200, "hit", b"")
    assert headers["content-length"] == str(len(body))
    assert sendfile_hits(f) == hits + 1


def read_responses(sock, methods):
    """Reads one response per method (HEAD: no body) -> [(status, headers, body)]."""
    data, out = b"", []
    for method in methods:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(out)} responses"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        status, headers, _ = split_response(head + b"\r\n\r\n")
        length = 0 if method == "HEAD" else int(headers["content-length"])
        while len(data) < length:
            chunk = sock.recv(65536)
            assert chunk, "closed inside a body"
            data += chunk
        out.append((status, headers, data[:length]))
        data = data[length:]
    assert data == b"", "bytes after the last response"
    return out


def test_pipelined_requests_get_whole_responses_in_order(demo, feedd_factory):
    f = feedd_factory(workers=1)
    body = warm(f, PATH)[0]
    status, _, other = f.get("/api/feed?limit=3")  # by copy: read once
    assert status == 200
    hits = sendfile_hits(f)
    reqs = [("GET", PATH), ("GET", "/api/feed?limit=3"), ("HEAD", PATH), ("GET", PATH),
            ("GET", "/healthz"), ("GET", PATH)]
    with socket.create_connection(("127.0.0.1", f.port), timeout=10) as s:
        s.sendall(b"".join(f"{m} {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for m, p in reqs))
        got = read_responses(s, [m for m, _ in reqs])
    assert [g[0] for g in got] == [200] * len(reqs)
    assert [g[2] for g in got] == [body, other, b"", body, got[4][2], body]
    assert sendfile_hits(f) == hits + 4


def test_big_page_to_slow_and_stalled_readers(demo, feedd_factory):
    # A dweller's role of 6 MB makes a page larger than what the socket
    # buffers hold (up to 4 MB on the server's side here; the stalled
    # reader below shows it): sendfile stops short and resumes when the
    # client reads.  The cache needs 32 entries of cache_entry_max.
    f = feedd_factory(workers=1, cache_size="300MB", cache_entry_max="8MB",
                      cache_sendfile_size="16MB", send_timeout="1s")
    dweller = dweller_on(f, WIDE)
    role = demo.sql("SELECT role FROM platform_dwellers WHERE id = %s", dweller)[0][0]
    demo.sql("UPDATE platform_dwellers SET role = repeat('r', 6000000) WHERE id = %s", dweller)
    try:
        f.signal(signal.SIGUSR2)
        poll("the flush", lambda: metric(f, "feedd_cache_flushes_total") == 1)
        body = warm(f, WIDE)[0]
        assert len(body) > 6000000
        hits = sendfile_hits(f)

        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", f.port))
        s.sendall(f"GET {WIDE} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        time.sleep(0.5)  # the server's send fills every buffer and waits
        data = b""
        while True:  # then small reads: a 4 kB window moves at a time
            chunk = s.recv(256 * 1024)
            assert chunk, "closed early"
            data += chunk
            _, sep, rest = data.partition(b"\r\n\r\n")
            if sep and len(rest) >= len(body):
                break
        s.close()
        status, headers, got = split_response(data)
        assert (status, headers["x-cache"]) == (200, "hit")
        assert got == body
        assert sendfile_hits(f) == hits + 1

        # A reader that stops is cut by send_timeout, and its file lets go.
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", f.port))
        s.sendall(f"GET {WIDE} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        time.sleep(3)
        data = b""
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        s.close()
        assert data.startswith(b"HTTP/1.1 200 ")
        assert len(data) < len(body), "the whole page arrived: the stalled send was not cut"
        status, _, again = f.get(WIDE)
        assert (status, again) == (200, body)
    finally:
        demo.sql("UPDATE platform_dwellers SET role = %s WHERE id = %s", role, dweller)

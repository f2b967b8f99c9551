"""2,000 streams open at once on one instance (two workers): every one
ends with feed_complete and holds its page; streams waiting for the same
page share one fill (single flight in the worker and across workers), so
the whole storm costs the database one round of 15 statements per page."""

import asyncio
import resource
from urllib.parse import quote

import pytest

from helpers import NSOURCES, statements_settled, wait_ready
from test_sse_stream import StreamResult, parse_response

NSTREAMS = 2000
# Four pages (keys), each wanted by 500 streams.
LIMITS = (5, 10, 20, 40)
CURSOR = quote("2100-02-01T00:00:00Z")


@pytest.fixture
def many_fds():
    """Room for the client sockets here and the server's in feedd, which
    inherits this limit."""
    need = NSTREAMS * 2 + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (need, max(hard, need) if hard != resource.RLIM_INFINITY else hard))
        except (ValueError, OSError) as e:
            pytest.fail(f"cannot raise the open files limit to {need} (now {soft}/{hard}): {e}",
                        pytrace=False)
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def get_stream(port, path, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Accept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def open_streams(feedd):
    status, _, body = feedd.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith("feedd_open_streams "):
            return int(float(line.split()[1]))
    raise AssertionError("feedd_open_streams not in /metrics")


async def storm_while_locked(feedd, paths, locker, timeout):
    """Starts every stream, waits until feedd holds them all open (the fills
    wait for the lock), then lets the database answer."""
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(get_stream(feedd.port, p, timeout)) for p in paths]
    deadline = loop.time() + timeout
    n = 0
    while loop.time() < deadline:
        n = await loop.run_in_executor(None, open_streams, feedd)
        if n >= len(paths) or all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.1)
    await loop.run_in_executor(None, locker.rollback)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return n, results


def test_2000_concurrent_streams(demo, feedd_factory, many_fds):
    # Lease and query timeouts far beyond the time the storm takes to
    # connect: the fills wait for the lock, not for a deadline.
    feedd = feedd_factory(workers=2, cache_lease_timeout="120s", db_query_timeout="120s")
    wait_ready(feedd)
    demo.reset_stats()
    paths = [f"/api/feed/stream?limit={LIMITS[i % len(LIMITS)]}&cursor={CURSOR}"
             for i in range(NSTREAMS)]
    # The worlds table locked by another session holds every fill until all
    # the streams are open at once.
    locker = demo.connect()
    locker.autocommit = False
    try:
        locker.execute("LOCK TABLE platform_worlds IN ACCESS EXCLUSIVE MODE")
        concurrent, results = asyncio.run(storm_while_locked(feedd, paths, locker, 120))
    finally:
        locker.rollback()
        locker.close()
    assert concurrent == NSTREAMS, f"only {concurrent} streams were open at once"

    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} streams failed, e.g. {failures[:3]!r}"
    pages = {}
    for limit in LIMITS:
        status, headers, body = feedd.get(f"/api/feed?limit={limit}&cursor={CURSOR}")
        assert status == 200 and headers["x-cache"] == "hit", (status, body[:200])
        pages[limit] = body
    for path, raw in zip(paths, results):
        status, headers, blocks = parse_response(raw)
        assert status == 200, raw[:300]
        limit = int(path.split("limit=")[1].split("&")[0])
        res = StreamResult(blocks, limit)
        assert res.complete is not None, (path, res.names)
        assert res.page_body() == pages[limit], path
    assert statements_settled(demo, NSOURCES * len(LIMITS)) == NSOURCES * len(LIMITS), \
        "one fill per page, however many streams wanted it"
    assert open_streams(feedd) == 0

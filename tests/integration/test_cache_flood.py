"""The shared cache stays within cache_size whatever keys clients send: a
flood of 100,000 distinct cursors (each one a cold page, stored, then
evicted by the next ones) leaves the shared memory segment and the
workers' memory where they were once the cache was full."""

import asyncio
import json
import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from helpers import metric

NPAGES = 100_000
SOCKETS = 16         # connections, each with BATCH requests pipelined
BATCH = 50
WARMUP = 5_000       # pages before the first measurement: the cache is full by then
CACHE_SIZE = 2 << 20
ENTRY_MAX = 16 << 10
# What a worker's private memory may grow by between the measurement after
# the warm-up and the end of the flood (95,000 more pages).  A leak of even
# 64 bytes per page would show as 6 MB; allocator and sanitizer caches that
# settle after the warm-up stay well under it.
ANON_GROWTH_MAX = 4 << 20


@pytest.fixture(scope="module")
def empty(pg):
    """No rows: each cold page still runs its 15 statements, but they cost
    the database next to nothing, so 100,000 of them fit in a minute.  What
    is stored per key is a fixed-size slot whatever the page holds."""
    pg.reset_data()
    yield pg


def cursors(n):
    """n distinct cursors, microseconds apart: each its own cache key."""
    t0 = datetime.now(timezone.utc) - timedelta(days=3)
    for i in range(n):
        t = t0 - timedelta(microseconds=37 * i)
        yield t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def _flood_socket(port, paths, tally, halfway, barrier):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(0, len(paths), BATCH):
            if i == halfway:
                await barrier.wait()    # the warm-up measurement
                await barrier.wait()
            batch = paths[i:i + BATCH]
            writer.write(b"".join(f"GET {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
                                  for p in batch))
            await writer.drain()
            for _ in batch:
                status, headers, body = await _read_response(reader)
                tally["status"][status] = tally["status"].get(status, 0) + 1
                cache = headers.get("x-cache")
                tally["cache"][cache] = tally["cache"].get(cache, 0) + 1
                if status == 200 and tally["checked"] < 200:
                    # Some bodies parsed in full: pages, not errors.
                    doc = json.loads(body)
                    assert list(doc) == ["items", "next_cursor"], doc
                    tally["checked"] += 1
                if status != 200 and len(tally["errors"]) < 5:
                    tally["errors"].append((status, body[:300]))
    finally:
        writer.close()


def flood(port, paths, warmup, at_warmup):
    """Requests every path once over SOCKETS keep-alive connections, BATCH
    pipelined requests at a time; calls at_warmup() once `warmup` paths
    are answered, with the same connections still open (so each worker is
    measured after serving its share of the warm-up, not before)."""
    tally = {"status": {}, "cache": {}, "checked": 0, "errors": []}
    per = [paths[i::SOCKETS] for i in range(SOCKETS)]
    halfway = (warmup // SOCKETS + BATCH - 1) // BATCH * BATCH

    async def run():
        barrier = asyncio.Barrier(SOCKETS + 1)
        tasks = [asyncio.create_task(_flood_socket(port, p, tally, halfway, barrier))
                 for p in per]
        await barrier.wait()
        at_warmup()
        await barrier.wait()
        await asyncio.gather(*tasks)
    asyncio.run(run())
    return tally


def cache_segment(pid):
    """(path, size, allocated bytes) of the /dev/shm/feedd-* segment pid maps."""
    with open(f"/proc/{pid}/maps") as f:
        names = {m.group(1) for m in re.finditer(r"(/dev/shm/feedd-[0-9a-f]+)", f.read())}
    assert len(names) == 1, f"process {pid} maps {names or 'no feed cache segment'}"
    path = names.pop()
    st = os.stat(path)
    return path, st.st_size, st.st_blocks * 512


def memory(pid):
    """{"RssAnon": bytes, "RssShmem": bytes} of a process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssShmem"):
                out[k] = int(v.split()[0]) * 1024
    return out


def test_flood_of_distinct_cursors_stays_within_cache_size(empty, feedd_factory):
    feedd = feedd_factory(workers=2, cache_size=CACHE_SIZE, cache_entry_max=ENTRY_MAX,
                          cache_ttl="1h", cache_stale="0s", access_log="off",
                          log_level="warn", db_pool_size=8, db_queue_size=2000,
                          # The sanitizers' quarantine of freed memory would
                          # read as growth; leaks are still reported at exit.
                          env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:"
                                               "quarantine_size_mb=4"})
    workers = feedd.worker_pids()
    assert len(workers) == 2
    path, size, allocated = cache_segment(feedd.pid)
    assert size <= CACHE_SIZE, f"{path} is {size} bytes, cache_size is {CACHE_SIZE}"
    capacity = metric(feedd, "feedd_cache_capacity_entries")
    assert 0 < capacity < WARMUP / 4, "the warm-up must fill the cache several times over"

    paths = [f"/api/feed?limit=2&cursor={c}" for c in cursors(NPAGES)]
    assert len(set(paths)) == NPAGES

    after_warmup = {}
    started = time.monotonic()
    tally = flood(feedd.port, paths, WARMUP,
                  lambda: after_warmup.update({pid: memory(pid) for pid in workers}))
    took = time.monotonic() - started

    assert tally["status"] == {200: NPAGES}, (tally["status"], tally["errors"])
    assert tally["cache"] == {"miss": NPAGES}, "every cursor is a new key"
    assert tally["checked"] > 0

    # Same workers: none died (and came back with fresh memory) on the way.
    assert feedd.worker_pids() == workers, feedd.logs()
    # The segment: the same file, the same size, never more than cache_size.
    path2, size2, allocated2 = cache_segment(feedd.pid)
    assert (path2, size2) == (path, size)
    assert allocated2 <= max(allocated, CACHE_SIZE)
    entries = metric(feedd, "feedd_cache_entries")
    assert 0 < entries <= capacity
    assert metric(feedd, "feedd_cache_evictions_total") >= NPAGES - capacity - WARMUP
    # Each worker: shared memory mapped at most the segment (plus the small
    # metrics segment), private memory flat since the warm-up.
    for pid in workers:
        end = memory(pid)
        assert end["RssShmem"] <= size + (1 << 20), (pid, end)
        growth = end["RssAnon"] - after_warmup[pid]["RssAnon"]
        assert growth <= ANON_GROWTH_MAX, (
            f"worker {pid}: private memory grew by {growth} bytes over "
            f"{NPAGES - WARMUP} pages ({after_warmup[pid]} -> {end})")
    print(f"{NPAGES} distinct pages in {took:.1f} s; capacity {capacity:.0f} entries; "
          f"segment {size} bytes; workers' memory after the warm-up {after_warmup}, "
          f"at the end { {pid: memory(pid) for pid in workers} }")

#!/usr/bin/python3
"""10,000 open /api/feed/stream streams on one feedd (issue 5 benchmark).

    bench/pg-large start          # once (any database with sql/schema.sql will do)
    bench/sse-streams.py --feedd /tmp/b-opt/feedd

feedd runs with --workers workers and sse_keepalive = --keepalive.  Another
session locks platform_worlds, so every page's statements that read it
wait: the streams stay open, waiting, as long as the lock is held.  The
client opens --streams streams (asyncio, one process) over --keys pages,
waits until feedd reports them all open (feedd_open_streams), holds them
--hold seconds, then releases the lock and checks that every stream ends
with feed_complete.

Reported: feedd's memory (RSS and PSS summed over the master and the
workers, from /proc/PID/smaps_rollup) before and with the streams open, per
stream; and the keepalives: how many arrived, their lateness (arrival minus
open + k x interval, client side, so an upper bound) and the intervals
between them.

Target (issue 5): under 100 MB for feedd's processes with 10,000 streams,
keepalives on time.
"""

import argparse
import asyncio
import resource

import psycopg

import benchlib as bl


def memory(pids):
    """(RSS, PSS) in bytes summed over pids."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, pss


def mb(n):
    return f"{n / 1e6:.1f} MB"


def open_streams(port):
    status, _, body = bl.get(port, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("feedd_open_streams "):
            return int(float(line.split()[1]))
    bl.die("feedd_open_streams not in /metrics")


class Client:
    def __init__(self, port, path, gate):
        self.port, self.path, self.gate = port, path, gate
        self.opened = None
        self.keepalives = []
        self.complete = False
        self.error = None

    async def run(self):
        loop = asyncio.get_running_loop()
        try:
            async with self.gate:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(f"GET {self.path} HTTP/1.1\r\nHost: bench\r\n"
                             f"Accept: text/event-stream\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
            self.opened = loop.time()
            if not head.startswith(b"HTTP/1.1 200"):
                self.error = head[:100]
                return
            while True:
                try:
                    block = await reader.readuntil(b"\n\n")
                except asyncio.IncompleteReadError:
                    break
                if block == b": keepalive\n\n":
                    self.keepalives.append(loop.time())
                elif block.startswith(b"event: feed_complete\n"):
                    self.complete = True
                elif block.startswith(b"event: error\n"):
                    self.error = block[:200]
            writer.close()
        except (OSError, asyncio.LimitOverrunError) as e:
            self.error = repr(e)


async def lag_monitor(result, stop):
    """The client's own event-loop lag: how late a 10 ms sleep wakes up."""
    loop = asyncio.get_running_loop()
    lags = result.setdefault("lag", [])
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.01)
        lags.append((t, loop.time() - t - 0.01))


async def storm(args, feedd, locker, pids, result):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    monitor = asyncio.create_task(lag_monitor(result, stop))
    gate = asyncio.Semaphore(256)      # connects in flight (the listen backlog is 511)
    cursor = "2100-03-01T00:00:00Z"
    clients = [Client(feedd.port, f"/api/feed/stream?limit={1 + i % args.keys}&cursor={cursor}",
                      gate) for i in range(args.streams)]
    t0 = loop.time()
    tasks = [asyncio.create_task(c.run()) for c in clients]
    n = 0
    while loop.time() - t0 < 300:
        n = await loop.run_in_executor(None, open_streams, feedd.port)
        if n >= args.streams or all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.2)
    result["open_after"] = loop.time() - t0
    result["all_open_at"] = loop.time()
    result["open"] = n
    if n < args.streams:
        print(f"only {n} streams open after {result['open_after']:.0f} s")
    await asyncio.sleep(args.hold)
    result["memory"] = memory(pids)
    result["hold_end"] = loop.time()
    result["open_end"] = await loop.run_in_executor(None, open_streams, feedd.port)
    await loop.run_in_executor(None, locker.rollback)
    t1 = loop.time()
    await asyncio.gather(*tasks)
    result["drain"] = loop.time() - t1
    stop.set()
    await monitor
    return clients


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--feedd", help="feedd binary (default $FEEDD_BIN, else build/feedd)")
    ap.add_argument("--streams", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keys", type=int, default=10, help="distinct pages the streams ask for")
    ap.add_argument("--keepalive", type=float, default=2.0, help="sse_keepalive, seconds")
    ap.add_argument("--hold", type=float, default=30.0, help="seconds the streams stay open")
    ap.add_argument("--http-port", type=int, default=24081)
    args = ap.parse_args()
    binary = bl.find_feedd(args.feedd)

    need = args.streams + 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, soft), max(hard, need)))
        except (ValueError, OSError) as e:
            bl.die(f"cannot raise the open files limit to {need} ({soft}/{hard}): {e}")

    print(f"sse-streams: feedd {binary}")
    for n in bl.build_notes(binary):
        print(n)
    keepalive_ms = int(args.keepalive * 1000)
    feedd = bl.Feedd(binary, args.http_port, {
        "db": bl.PG_CONNINFO, "workers": args.workers,
        "sse_keepalive": f"{keepalive_ms}ms", "sse_timeout": f"{int(args.hold + 600)}s",
        "cache_lease_timeout": "1h", "db_query_timeout": "1h",
        "max_connections": args.streams + 1000})
    locker = None
    try:
        feedd.wait_ready(30.0)
        for i in range(50):                      # warm-up: a few pages, hits
            bl.get(feedd.port, f"/api/feed/stream?limit={1 + i % 20}")
        pids = [feedd.pid] + feedd.worker_pids()
        before = memory(pids)
        feedd.flush()
        locker = psycopg.connect(bl.PG_CONNINFO)
        locker.execute("LOCK TABLE platform_worlds IN ACCESS EXCLUSIVE MODE")
        result = {}
        clients = asyncio.run(storm(args, feedd, locker, pids, result))
    finally:
        if locker is not None:
            locker.close()
        feedd.stop()

    during = result["memory"]
    complete = sum(c.complete for c in clients)
    errors = [c.error for c in clients if c.error]
    # Steady state: keepalives due once every stream is open, until the
    # end of the hold (the connect phase keeps the client itself busy).
    lo, hi = result["all_open_at"] + args.keepalive, result["hold_end"]
    lateness, intervals, counts = [], [], []
    for c in clients:
        counts.append(len(c.keepalives))
        prev = c.opened
        for k, t in enumerate(c.keepalives, 1):
            if lo <= t <= hi:
                lateness.append(t - (c.opened + k * args.keepalive))
                intervals.append(t - prev)
            prev = t
    lag = [x for t, x in result["lag"] if lo <= t <= hi]
    expected = int(args.hold // args.keepalive)

    print(f"feedd: {args.workers} workers, sse_keepalive {keepalive_ms} ms; {args.streams} "
          f"streams over {args.keys} pages, held {args.hold:g} s")
    print(f"open at once: {result['open']} (after {result['open_after']:.1f} s of connecting), "
          f"{result['open_end']} still open at the end of the hold")
    print(f"completed with feed_complete after the lock went: {complete} "
          f"(in {result['drain']:.1f} s); errors: {len(errors)} {errors[:3]}")
    print()
    bl.table(["feedd memory", "RSS", "PSS"], [
        ["before (idle, warm)", mb(before[0]), mb(before[1])],
        [f"{result['open']} streams open", mb(during[0]), mb(during[1])],
        ["per stream", f"{(during[0] - before[0]) / max(1, result['open']) / 1e3:.2f} kB",
         f"{(during[1] - before[1]) / max(1, result['open']) / 1e3:.2f} kB"],
    ])
    print()
    print(f"keepalives: {sum(counts)} received, per stream min {min(counts)} / max {max(counts)} "
          f"(at least {expected} expected in {args.hold:g} s)")
    bl.table(["keepalive (ms)", "p50", "p99", "max"], [
        ["lateness", bl.ms(bl.median(lateness)), bl.ms(bl.percentile(lateness, 99)),
         bl.ms(max(lateness) if lateness else float("nan"))],
        ["interval", bl.ms(bl.median(intervals)), bl.ms(bl.percentile(intervals, 99)),
         bl.ms(max(intervals) if intervals else float("nan"))],
        ["client loop lag", bl.ms(bl.median(lag)), bl.ms(bl.percentile(lag, 99)),
         bl.ms(max(lag) if lag else float("nan"))],
    ])
    print("Once all streams are open, until the end of the hold.  lateness: arrival - (stream")
    print("open + k x sse_keepalive) and interval: between a stream's keepalives, both measured")
    print("by the client, whose own loop lag (a 10 ms sleep's oversleep) adds to them.")


if __name__ == "__main__":
    main()

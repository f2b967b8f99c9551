#!/usr/bin/python3
"""Cold /api/feed/stream against a remote database (issue 5 benchmark).

    bench/pg-large start          # once: PostgreSQL with the large demo data
    bench/sse-latency.py --feedd /tmp/b-opt/feedd

For each --rtt, feedd (one worker, --pool connections) reaches PostgreSQL
through bench/delay-proxy.py.  Each measured stream is cold: the cache is
flushed (SIGUSR2 to the master) before it and only streams answered with
X-Cache: miss count.  For each stream the client notes, from the moment it
sent the request, when the first feed_items event holding an item arrived
and when feed_complete arrived.  Two pages: the first page (limit 20) and
a deep page (limit 20 after a cursor about 6 days back).

Beside it, the reference: each of the 15 statements run alone with psycopg
(prepared, same parameters, same session settings as feedd) through the
same proxy (JIT off, as in feedd's sessions); the table shows the fastest
and the slowest of their medians.
The SQL is read from src/feed_sources.c, so the binary measured must be
built from this tree.

Targets (issue 5): first items <= fastest statement + 5 ms;
feed_complete <= 1.1 x the slowest statement.
"""

import argparse
import socket
import time
import urllib.parse

import psycopg

import benchlib as bl
from feedsql import Reference, check_binary, cursor_params, deep_cursor, feed_statements


def timed_stream(port, path, timeout=60.0):
    """One stream, read to its end -> (X-Cache, first items s, complete s)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        t0 = time.perf_counter()
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
                  .encode())
        buf = b""
        head = None
        first = complete = None
        while complete is None:
            data = s.recv(65536)
            now = time.perf_counter() - t0
            if not data:
                break
            buf += data
            if head is None:
                if b"\r\n\r\n" not in buf:
                    continue
                head, _, buf = buf.partition(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    bl.die(f"GET {path}: {head[:200]!r}")
            while b"\n\n" in buf:
                block, _, buf = buf.partition(b"\n\n")
                if block.startswith(b"event: feed_items\n"):
                    if first is None and b'data: {"items":[]' not in block:
                        first = now
                elif block.startswith(b"event: feed_complete\n"):
                    complete = now
                elif block.startswith(b"event: error\n"):
                    bl.die(f"GET {path}: {block.decode(errors='replace')}")
        if complete is None:
            bl.die(f"GET {path}: the stream ended without feed_complete")
        cache = ""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"x-cache:"):
                cache = line.split(b":", 1)[1].strip().decode()
        return cache, first if first is not None else complete, complete
    finally:
        s.close()


def cold_stream(feedd, path):
    for _ in range(20):
        feedd.flush()
        time.sleep(0.02)
        cache, first, complete = timed_stream(feedd.port, path)
        if cache == "miss":
            return first, complete
    bl.die(f"GET {path}: never a miss after SIGUSR2")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--feedd", help="feedd binary (default $FEEDD_BIN, else build/feedd)")
    ap.add_argument("--rtt", default="400,20", help="proxy round trips in ms (default 400,20)")
    ap.add_argument("--pool", default="4", help="db_pool_size values (default 4)")
    ap.add_argument("--repeat", type=int, default=15, help="cold streams per page and setting")
    ap.add_argument("--ref-rounds", type=int, default=7,
                    help="rounds of the 15 single statements per delay and page")
    ap.add_argument("--http-port", type=int, default=24080)
    ap.add_argument("--proxy-port", type=int, default=24543)
    args = ap.parse_args()
    binary = bl.find_feedd(args.feedd)
    rtts = [float(x) for x in args.rtt.split(",") if x]
    pools = [int(x) for x in args.pool.split(",") if x]
    stmts = feed_statements()
    check_binary(binary, stmts)
    socket_path = f"{bl.PG_DIR}/.s.PGSQL.{bl.PG_PORT}"

    try:
        with psycopg.connect(bl.PG_CONNINFO, autocommit=True) as c:
            nact = c.execute("SELECT count(*) FROM platform_dweller_actions").fetchone()[0]
            pgver = c.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error as e:
        bl.die(f"cannot reach the benchmark database ({bl.PG_CONNINFO}): {e}\n"
               f"start it with bench/pg-large start")

    print(f"sse-latency: feedd {binary}")
    for n in bl.build_notes(binary):
        print(n)
    print(f"database: PostgreSQL {pgver}, {nact:,} dweller actions; {bl.PG_CONNINFO}")
    print(f"feedd: 1 worker, limit 20, cache flushed before each stream; {args.repeat} cold "
          f"streams per page and setting; medians in ms")
    print()

    probe = bl.Feedd(binary, args.http_port, {"db": bl.PG_CONNINFO, "workers": 1})
    try:
        probe.wait_ready(30.0)
        deep = deep_cursor(probe)
    finally:
        probe.stop()
    pages = {"first": "/api/feed/stream?limit=20",
             "deep": "/api/feed/stream?limit=20&cursor=" + urllib.parse.quote(deep, safe="")}
    params = {"first": cursor_params(""), "deep": cursor_params(deep)}

    rows = []
    for rtt in rtts:
        proxy = bl.DelayProxy(args.proxy_port, socket_path, rtt)
        try:
            refs = {k: (Reference(proxy.conninfo(), stmts), {}) for k in pages}
            for k in pages:
                refs[k][0].round(params[k], {})          # warm-up: plans, buffers
            for pool in pools:
                feedd = bl.Feedd(binary, args.http_port, {
                    "db": proxy.conninfo(), "db_pool_size": pool, "workers": 1,
                    "cache_ttl": "1h", "cache_stale": "0s",
                    "db_query_timeout": "30s", "db_connect_timeout": "30s"})
                try:
                    feedd.wait_ready(60.0)
                    res = {k: ([], []) for k in pages}
                    for k, path in pages.items():
                        cold_stream(feedd, path)         # warm-up
                    for i in range(args.repeat):
                        for k, path in pages.items():
                            first, complete = cold_stream(feedd, path)
                            res[k][0].append(first)
                            res[k][1].append(complete)
                            if pool == pools[0] and i < args.ref_rounds:
                                refs[k][0].round(params[k], refs[k][1])
                finally:
                    feedd.stop()
                for k in pages:
                    meds = {n: bl.median(v) for n, v in refs[k][1].items()}
                    fast = min(meds, key=meds.get)
                    slow = max(meds, key=meds.get)
                    first = bl.median(res[k][0])
                    complete = bl.median(res[k][1])
                    rows.append([f"{rtt:g} ms", pool, k, bl.ms(first), bl.ms(meds[fast]),
                                 fast, f"{(first - meds[fast]) * 1000:+.1f}", bl.ms(complete),
                                 bl.ms(meds[slow]), slow, f"{complete / meds[slow]:.2f}"])
            for k in pages:
                refs[k][0].close()
        finally:
            proxy.stop()

    bl.table(["rtt", "pool", "page", "first items", "fastest(15)", "fastest", "first-fastest",
              "complete", "slowest(15)", "slowest", "complete/slowest"], rows)
    print()
    print("first items: median time to the first feed_items event with an item; complete: to")
    print("feed_complete (client side, from sending the request); fastest(15)/slowest(15): the")
    print("fastest and slowest of the 15 statements' median latencies, each run alone (psycopg,")
    print("prepared) through the same proxy.")
    print("Targets: first-fastest <= +5 ms; complete/slowest <= 1.10.")


if __name__ == "__main__":
    main()

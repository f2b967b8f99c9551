#!/usr/bin/python3
"""A TCP proxy that delays every byte by a fixed time in each direction.

It stands in for a remote database (tc netem is not available here):
    delay-proxy.py --listen 127.0.0.1:6543 --target /tmp/pg/.s.PGSQL.5432 --rtt-ms 400
Each chunk read from one side is written to the other side rtt/2 later,
in order, so a request/response exchange costs one extra round trip of
rtt whatever its size, and pipelined statements share that round trip.
"""
import argparse
import asyncio
import signal
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        queue.put_nowait((loop.time() + delay, None))
    try:
        await task
    except (ConnectionResetError, BrokenPipeError):
        pass


async def handle(client_r, client_w, target, delay):
    try:
        if target.startswith("/"):
            server_r, server_w = await asyncio.open_unix_connection(target)
        else:
            host, port = target.rsplit(":", 1)
            server_r, server_w = await asyncio.open_connection(host, int(port))
    except OSError as e:
        print(f"delay-proxy: cannot reach {target}: {e}", file=sys.stderr)
        client_w.close()
        return
    await asyncio.gather(pump(client_r, server_w, delay), pump(server_r, client_w, delay))


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, help="host:port to listen on")
    ap.add_argument("--target", required=True, help="host:port or a unix socket path")
    ap.add_argument("--rtt-ms", type=float, required=True, help="added round-trip time")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    delay = args.rtt_ms / 2000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args.target, delay), host, int(port))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())

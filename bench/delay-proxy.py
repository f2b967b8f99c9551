#!/usr/bin/python3
"""A TCP proxy that delays every byte by a fixed time in each direction.

It stands in for a remote database (tc netem is not available here):
    delay-proxy.py --listen 127.0.0.1:6543 --target /tmp/pg/.s.PGSQL.5432 --rtt-ms 400
Each chunk read from one side is written to the other side rtt/2 after it
was read, in order, so a request/response exchange costs one extra round
trip of rtt whatever its size, and pipelined statements share that round
trip.  Bandwidth is not limited; the TCP handshake to the proxy is not
delayed (a real network would add one round trip to each connect: feedd
and the benchmarks connect once and reuse their connections).

Accuracy: each direction of each connection has a reader thread, which
timestamps what it reads, and a writer thread, which sleeps until the
chunk is due with clock_nanosleep (timer slack lowered to 1 us) instead of
an event loop's millisecond epoll timeout, which woke up to 1 ms late per
hop.  bench/cold-page measures what the proxy adds (SELECT 1 direct and
through the proxy at 0 ms and at each delay) and prints it with its
results: about 0.1 ms per round trip beyond the delay on this machine.
"""
import argparse
import collections
import ctypes
import signal
import socket
import sys
import threading
import time

_PR_SET_TIMERSLACK = 29


def precise_sleeps():
    """Lower this thread's timer slack (50 us by default) to 1 us."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Direction:
    """src -> dst, each chunk delivered `delay` seconds after it was read."""

    def __init__(self, src, dst, delay, done):
        self.src, self.dst, self.delay, self.done = src, dst, delay, done
        self.queue = collections.deque()
        self.ready = threading.Semaphore(0)

    def start(self):
        threading.Thread(target=self.read, daemon=True).start()
        threading.Thread(target=self.write, daemon=True).start()

    def read(self):
        try:
            while True:
                data = self.src.recv(262144)
                self.queue.append((time.monotonic() + self.delay, data))
                self.ready.release()
                if not data:
                    return
        except OSError:
            self.queue.append((0.0, None))
            self.ready.release()

    def write(self):
        precise_sleeps()
        try:
            while True:
                self.ready.acquire()
                due, data = self.queue.popleft()
                if data is None:        # the other side broke: break this one too
                    self.done(abort=True)
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:            # EOF: pass the half-close on, in order
                    try:
                        self.dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    self.done(abort=False)
                    return
                self.dst.sendall(data)
        except OSError:
            self.done(abort=True)


class Link:
    """One proxied connection: two directions; closed when both are done."""

    def __init__(self, client, server, delay):
        self.client, self.server = client, server
        self.lock = threading.Lock()
        self.pending = 2
        self.directions = (Direction(client, server, delay, self.finished),
                           Direction(server, client, delay, self.finished))

    def start(self):
        for d in self.directions:
            d.start()

    def finished(self, abort):
        with self.lock:
            self.pending -= 1
            last = self.pending == 0
        if abort:
            # Wake the readers blocked in recv on either socket.
            for s in (self.client, self.server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if last:
            self.client.close()
            self.server.close()


def connect(target):
    if target.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(target)
    else:
        host, port = target.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def serve(listen, target, rtt_ms):
    host, port = listen.rsplit(":", 1)
    delay = rtt_ms / 2000.0
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(128)
    while True:
        client, _ = ls.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            server = connect(target)
        except OSError as e:
            print(f"delay-proxy: cannot reach {target}: {e}", file=sys.stderr)
            client.close()
            continue
        Link(client, server, delay).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, help="host:port to listen on")
    ap.add_argument("--target", required=True, help="host:port or a unix socket path")
    ap.add_argument("--rtt-ms", type=float, required=True, help="added round-trip time")
    args = ap.parse_args()

    def stop(signum, frame):
        sys.exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    serve(args.listen, args.target, args.rtt_ms)


if __name__ == "__main__":
    main()

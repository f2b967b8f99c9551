"""What several integration test files need besides the fixtures (those
are in conftest.py): waiting for a condition, reading feedd's state
(/readyz, /metrics, its database connections, the feed statements it ran),
and raw HTTP on a socket of the test's own.

Import by name: `from helpers import poll, metric`.  A helper that only one
file uses stays in that file.
"""

import asyncio
import contextlib
import os
import re
import socket
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

# Every feed statement takes the four feed parameters; nothing else feedd
# runs does (its session setup is SET statements), so "$4" in the text of
# pg_stat_statements picks out exactly the 15 feed statements.
FEED_STATEMENTS = "%$4%"
NSOURCES = 15          # statements of one cold page, one per source
DB_POOL_SIZE = 4       # the default of db_pool_size

# --- waiting ------------------------------------------------------------------


def poll(what, cond, timeout=15.0, interval=0.05):
    """cond()'s first true value; fails the test after timeout (cond is
    tried once more at the deadline, so a slow machine gets its last look)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)


def wait_until(pred, timeout=10.0):
    """pred()'s first true value, else its last (false) one after timeout:
    for `assert wait_until(...)` where the assert says what failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    return pred()


# --- processes and the shared-memory segment ------------------------------------


def running(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def fnv1a64(data):
    """The hash in the name of an instance's cache segment (master.c)."""
    h = 14695981039346656037
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def shm_path(pid_file):
    """The cache segment of the instance owning pid_file (see master.c)."""
    return Path(f"/dev/shm/feedd-{fnv1a64(os.fsencode(str(pid_file))):016x}")


# --- feedd's readiness and its database ------------------------------------------


def readyz_everywhere(f, want=200, n=10):
    """/readyz answers `want` n times in a row: every worker, most likely,
    since each request goes to whichever worker accepts it."""
    for _ in range(n):
        if f.get("/readyz")[0] != want:
            return False
    return True


def wait_ready(f, timeout=10.0):
    """Until /readyz answers 200 six times in a row (every worker's pool
    up, most likely)."""
    deadline = time.monotonic() + timeout
    ok = 0
    while time.monotonic() < deadline:
        status, _, _ = f.get("/readyz")
        ok = ok + 1 if status == 200 else 0
        if ok >= 6:
            return
        time.sleep(0.02)
    pytest.fail(f"/readyz not 200 within {timeout}s\n{f.logs()}")


def feedd_conns(pg):
    """feedd's connections to the database, as the server counts them."""
    return pg.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'feedd'")[0][0]


@contextlib.contextmanager
def feed_tables_locked(pg):
    """Every feed table locked ACCESS EXCLUSIVE by a transaction of the
    test's own for the with block: feedd's statements wait on the lock
    (until db_query_timeout, a cancel, or the block ends)."""
    locker = pg.connect()
    try:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE " + ", ".join(f'public."{t}"' for t in pg.tables())
                       + " IN ACCESS EXCLUSIVE MODE")
        yield locker
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def lock_waiters(pg):
    """feedd's database backends waiting for a lock right now."""
    return pg.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'feedd'"
                  " AND wait_event_type = 'Lock'")[0][0]


def statements_settled(pg, at_least, timeout=5.0):
    """The feed statements' calls once at least `at_least` are counted.
    The server records a statement as its transaction ends, a moment after
    feedd has the rows: poll, then settle so that a surplus shows too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pg.count_statements(FEED_STATEMENTS) < at_least:
        time.sleep(0.05)
    time.sleep(0.3)
    return pg.count_statements(FEED_STATEMENTS)


def cold_path(i, limit=None, stream=False):
    """A page nobody asked for yet: a cursor of its own after every row."""
    endpoint = "/api/feed/stream" if stream else "/api/feed"
    return (f"{endpoint}?limit={limit or 3 + i % 10}"
            f"&cursor=2100-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}T00:00:00Z")


# --- the access log --------------------------------------------------------------


def access_log_re(repo_root):
    """The access log's line format: the regular expression doc/metrics.md documents."""
    doc = (repo_root / "doc" / "metrics.md").read_text()
    m = re.search(r"^```regex\n(.*?)\n```$", doc, re.M | re.S)
    assert m, "doc/metrics.md has no ```regex block for the access log"
    return re.compile(m.group(1))


def access_entries(f, line_re):
    """Every line of f's access log as the fields of line_re; fails on a
    line not in that format."""
    out = []
    for line in f.access_log().splitlines():
        m = line_re.match(line)
        assert m, f"access log line not in the documented format: {line!r}"
        out.append(m.groupdict())
    return out


# --- /metrics -----------------------------------------------------------------


def metric(f, name):
    """The value of the unlabelled metric `name`; fails the test if absent."""
    status, _, body = f.get("/metrics")
    assert status == 200, body
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    pytest.fail(f"{name} not in /metrics:\n{body.decode()}")


class Scrape:
    """One /metrics answer, read by prometheus_client's parser."""

    def __init__(self, text, raw_len=0):
        self.text = text
        self.raw_len = raw_len  # bytes of the whole HTTP response, when known
        self.families = {}
        self.values = {}
        for fam in text_string_to_metric_families(text):
            assert fam.name not in self.families, f"family {fam.name} twice"
            self.families[fam.name] = fam
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                assert key not in self.values, f"series {key} twice"
                self.values[key] = s.value

    def get(self, name, **labels):
        """A sample's value; a series not (yet) shown counts 0."""
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)

    def series(self, name):
        return [(dict(k[1]), v) for k, v in self.values.items() if k[0] == name]

    def cumulative(self):
        """The samples that may only grow: counters and histograms."""
        out = {}
        for fam in self.families.values():
            if fam.type in ("counter", "histogram"):
                for s in fam.samples:
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out


def scrape(f):
    status, headers, body = f.get("/metrics")
    assert status == 200, body
    assert headers["content-type"].replace(" ", "").startswith("text/plain;version=0.0.4"), \
        headers["content-type"]
    return Scrape(body.decode())


def delta(before, after, name, **labels):
    return after.get(name, **labels) - before.get(name, **labels)


def settle(f, what, cond):
    """The first scrape for which cond(scrape) holds.  A request is counted
    when its response is on the wire, and the client may read it (and ask
    another worker for /metrics) a moment before that."""
    return poll(what, lambda: cond(s := scrape(f)) and s)


def requests_delta(before, after, endpoint, code):
    return delta(before, after, "feedd_http_requests_total", endpoint=endpoint, code=code)


def pools_ready(f, workers, size):
    s = scrape(f)
    return (s.get("feedd_db_connections", state="idle")
            + s.get("feedd_db_connections", state="busy") == workers * size)


def wait_pools(f, workers=2, size=DB_POOL_SIZE):
    """Every worker's pool connected (so no page meets a pool starting up)."""
    poll("every pool connection up", lambda: pools_ready(f, workers, size))


# --- raw HTTP -------------------------------------------------------------------


def request_bytes(path, method="GET"):
    """One request with the target exactly as given, then Connection: close."""
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode("latin-1")


def read_all(sock):
    """Every byte until the server closes; a reset ends it like EOF (a
    server that closes with unread input resets)."""
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data


def split_response(data):
    """-> (status, {lower-case header: value}, body bytes) of one response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def raw_get(port, target, method="GET"):
    """The whole response, every byte, on a connection of its own; the
    target goes out as given (no client-side normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request_bytes(target, method))
        return read_all(s)


def keepalive_get(sock, path):
    """One keep-alive GET on an open connection (one a known worker holds,
    say); reads the whole response and leaves the connection open.
    -> the status."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode("latin-1"))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the body"
        body += chunk
    return int(head.split()[1])


async def get_async(port, path):
    """GET on a connection of its own, for many at once under asyncio.
    -> (status, {lower-case header: value}, body bytes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(path))
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    return split_response(data)


async def get_many(port, path, n):
    """n concurrent get_async() of path."""
    return await asyncio.gather(*(get_async(port, path) for _ in range(n)))


# --- which worker holds a connection ---------------------------------------------


def established(port):
    """{client port: socket inode} of the established TCP connections whose
    local port is port (IPv4 and IPv6)."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes[int(fields[2].rsplit(":", 1)[1], 16)] = fields[9]
    return inodes


def socket_inodes(pid):
    """The inodes of the sockets process pid holds (empty once it is gone)."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def client_conns(pid, port):
    """How many client connections of port the process pid holds."""
    return len(set(established(port).values()) & socket_inodes(pid))


def socket_owners(f, socks):
    """For each client socket, the pid of the worker holding the other end
    (None while it waits in the backlog)."""
    inode_of_port = established(f.port)
    pid_of_inode = {inode: pid for pid in f.worker_pids() for inode in socket_inodes(pid)}
    return [pid_of_inode.get(inode_of_port.get(s.getsockname()[1])) for s in socks]


def connection_to(f, pid, batch=4, tries=20):
    """A connected socket that worker pid accepted (say, while another
    worker is stalled on purpose): connections are opened a few at a time
    until the kernel's hash gives one to pid's listen socket; the others
    are closed."""
    for _ in range(tries):
        socks = [socket.create_connection(("127.0.0.1", f.port), timeout=30)
                 for _ in range(batch)]
        owners = wait_until(lambda: pid in (o := socket_owners(f, socks)) and o, timeout=0.5)
        chosen = socks[owners.index(pid)] if owners else None
        for s in socks:
            if s is not chosen:
                s.close()
        if chosen is not None:
            return chosen
    pytest.fail(f"{batch * tries} connections, none accepted by worker {pid}")


def connections_on_every_worker(f, each, workers=2, limit=200):
    """{worker pid: [each connected sockets it accepted]}: connections are
    opened until every worker holds each of them (the kernel spreads them
    over the workers' sockets by hash).  Surplus connections are closed
    again."""
    socks, owners = [], []
    while True:
        s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
        socks.append(s)
        owner = poll("a worker to accept a connection",
                     lambda: socket_owners(f, [s])[0], timeout=5, interval=0.005)
        owners.append(owner)
        by_pid = {}
        for sock, pid in zip(socks, owners):
            by_pid.setdefault(pid, []).append(sock)
        if len(by_pid) >= workers and all(len(v) >= each for v in by_pid.values()):
            break
        if len(socks) >= limit:
            for sock in socks:
                sock.close()
            pytest.fail(f"{limit} connections did not reach {workers} workers "
                        f"{each} times each: {[len(v) for v in by_pid.values()]}")
    for pid in by_pid:
        for sock in by_pid[pid][each:]:
            sock.close()
        by_pid[pid] = by_pid[pid][:each]
    return by_pid

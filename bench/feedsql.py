"""feedd's 15 statements as the benchmarks' reference runs them: the SQL
and session settings read from this tree's sources, feedd's parameters for
a page, and a psycopg connection that times each statement alone."""

import datetime as dt
import json
import re
import time
import urllib.parse

import psycopg

import benchlib as bl

NSTMT = 15


def feed_statements():
    """[(name, sql)] in feedd's source order, parsed from src/feed_sources.c."""
    src = (bl.REPO / "src" / "feed_sources.c").read_text()
    lits = {}
    for m in re.finditer(r'static const char (\w+)\[\]\s*=\s*((?:\s*"(?:[^"\\]|\\.)*")+)\s*;', src):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))
        lits[m.group(1)] = "".join(p.encode().decode("unicode_escape") for p in parts)
    defs = re.findall(r'\[FEED_SRC_\w+\]\s*=\s*\{\s*"(\w+)",\s*(\w+),', src)
    out = [(name, lits[var]) for name, var in defs if var in lits]
    if len(out) != NSTMT:
        bl.die(f"found {len(out)} statements in src/feed_sources.c, expected {NSTMT}")
    return out


def check_binary(binary, stmts):
    """Refuse a feedd that was not built from these statements."""
    image = binary.read_bytes()
    stale = [name for name, sql in stmts if sql.encode() not in image]
    if stale:
        bl.die(f"{binary} was not built from this src/feed_sources.c (statements "
               f"{', '.join(stale)} differ): rebuild it")


def session_settings():
    """The SET statements feedd sends on each connection (src/pgpool.c),
    but its application_name and the formatted statement_timeout: with
    other settings (JIT on, custom plans) the reference would measure the
    planner and the compiler, not what feedd runs."""
    src = (bl.REPO / "src" / "pgpool.c").read_text()
    sets = re.findall(r'"(SET \w+ = [^"%]+)"', src)
    return [q for q in sets if "application_name" not in q]


def pg_time(t):
    """As feedd's feed_fetch.c formats a timestamptz parameter."""
    return t.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


def cursor_params(cursor, window_days=7):
    """feedd's four statement parameters for a cursor ("" = first page)."""
    lower = pg_time(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=window_days))
    if not cursor:
        return ["infinity", "", lower, "21"]
    t, _, item = cursor.partition("~")
    when = dt.datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    return [pg_time(when), item, lower, "21"]


def deep_cursor(feedd):
    """A real next_cursor about 6 days back (inside the 7-day window)."""
    t = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, _, body = bl.get(feedd.port, "/api/feed?limit=20&cursor=" + urllib.parse.quote(t))
    doc = json.loads(body)
    if status != 200 or not doc.get("next_cursor"):
        bl.die(f"no page 6 days back: {status} {body[:300]!r}")
    return doc["next_cursor"]


class Reference:
    """The 15 statements, each alone, prepared, over one psycopg connection,
    with feedd's session settings.  calibrate: each round also times
    SELECT 1, one bare round trip, under that name."""

    def __init__(self, conninfo, stmts, calibrate=False):
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.pg = self.conn.pgconn
        self.stmts = list(stmts)
        if calibrate:
            self.stmts.append(("SELECT 1", "SELECT 1"))
        for q in session_settings() + ["SET application_name = 'feedd-bench'"]:
            self.conn.execute(q)
        for name, sql in self.stmts:
            r = self.pg.prepare(name.encode(), sql.encode())
            if r.status != psycopg.pq.ExecStatus.COMMAND_OK:
                bl.die(f"prepare {name}: {r.error_message.decode()}")

    def round(self, params, out):
        """One run of each statement; out[name] gets the times."""
        p = [x.encode() for x in params]
        for name, _ in self.stmts:
            t = time.perf_counter()
            r = self.pg.exec_prepared(name.encode(), p if name != "SELECT 1" else [])
            took = time.perf_counter() - t
            if r.status != psycopg.pq.ExecStatus.TUPLES_OK:
                bl.die(f"{name}: {r.error_message.decode()}")
            out.setdefault(name, []).append(took)

    def close(self):
        self.conn.close()

"""A private PostgreSQL 15 cluster for the integration tests.

initdb in a temp dir, unix socket only (in that dir), run as the `postgres`
user when the tests run as root (PostgreSQL refuses root).  The postmaster is
a direct child of the test process: it gets a parent-death signal, so even a
test run that is killed outright does not leave it behind.
"""

import atexit
import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import psycopg

PG_BINDIR = os.environ.get("FEEDD_PG_BINDIR", "/usr/lib/postgresql/15/bin")

# Fixed: the socket lives in a private directory, so the port only names the
# socket file (.s.PGSQL.<port>) and cannot collide with anyone.
DEFAULT_PORT = 5432

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig=signal.SIGTERM):
    """A preexec_fn: the child gets `sig` when the test process dies.

    subprocess calls preexec_fn after changing uid, which matters: a
    credential change clears the parent-death signal."""
    def preexec():
        _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    return preexec


def running_as_root():
    return os.geteuid() == 0


def _as_postgres():
    """Popen keyword arguments that run a command as `postgres` when root."""
    if not running_as_root():
        return {}
    pw = pwd.getpwnam("postgres")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


class PgError(RuntimeError):
    pass


# Every cluster still alive, for the atexit safety net.
_live = set()


class PgCluster:
    """One PostgreSQL cluster.  Use start() once; stop()/start() again for
    fault tests (same data, same socket)."""

    def __init__(self, port=DEFAULT_PORT, dbname="feedd", settings=None, base=None):
        if not os.path.exists(os.path.join(PG_BINDIR, "postgres")):
            raise PgError(f"PostgreSQL 15 not found in {PG_BINDIR}: run scripts/install-deps")
        self.port = port
        self.dbname = dbname
        self.base = tempfile.mkdtemp(prefix="feedd-pg-", dir=base)
        # The test process (whatever user) must reach the socket, and
        # postgres must own the directory when we are root.
        os.chmod(self.base, 0o755)
        if running_as_root():
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.socket_dir = self.base
        self.datadir = os.path.join(self.base, "data")
        self.logfile = os.path.join(self.base, "postgres.log")
        self.conninfo = f"host={self.socket_dir} port={self.port} dbname={self.dbname} user=postgres"
        self.settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "port": str(self.port),
            "shared_preload_libraries": "'pg_stat_statements'",
            "pg_stat_statements.track": "all",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "log_min_messages": "warning",
        }
        self.settings.update(settings or {})
        self._proc = None
        self._conn = None
        self._initdb_done = False
        self.started = False     # ever started (the fixtures restart only those)
        _live.add(self)

    # --- lifecycle -------------------------------------------------------

    def _run(self, argv, check=True, as_postgres=True, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.STDOUT)
        if as_postgres:
            kw.update(_as_postgres())
        r = subprocess.run(argv, text=True, cwd=self.base, **kw)
        if check and r.returncode != 0:
            raise PgError(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout}")
        return r

    def initdb(self):
        self._run([os.path.join(PG_BINDIR, "initdb"), "-D", self.datadir,
                   "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"])
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("\n# feedd integration tests\n")
            for k, v in self.settings.items():
                f.write(f"{k} = {v}\n")
        self._initdb_done = True

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout=60):
        if self.running:
            return
        if not self._initdb_done:
            self.initdb()
        log = open(self.logfile, "ab")
        try:
            self._proc = subprocess.Popen(
                [os.path.join(PG_BINDIR, "postgres"), "-D", self.datadir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.base,
                start_new_session=True, preexec_fn=die_with_parent(signal.SIGINT),
                **_as_postgres())
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise PgError(f"postgres exited with {self._proc.returncode}:\n{self.log_tail()}")
            r = subprocess.run([os.path.join(PG_BINDIR, "pg_isready"), "-q",
                                "-h", self.socket_dir, "-p", str(self.port)])
            if r.returncode == 0:
                self.started = True
                return
            if time.monotonic() > deadline:
                raise PgError(f"postgres not ready after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, mode="fast", timeout=60):
        """mode: "smart" (wait for clients), "fast" (disconnect them, clean
        shutdown) or "immediate" (crash-like)."""
        self._drop_conn()
        if not self.running:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT,
               "immediate": signal.SIGQUIT}[mode]
        self._proc.send_signal(sig)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._kill_leftovers()

    def _kill_leftovers(self):
        # Backends of a crashed postmaster would keep the socket dir busy.
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def destroy(self):
        try:
            self.stop("immediate", timeout=20)
        finally:
            _live.discard(self)
            shutil.rmtree(self.base, ignore_errors=True)

    # --- SQL -------------------------------------------------------------

    def connect(self, dbname=None, **kw):
        """A new psycopg connection in autocommit mode (caller closes it)."""
        info = self.conninfo if dbname is None else self.conninfo.replace(
            f"dbname={self.dbname}", f"dbname={dbname}")
        return psycopg.connect(info, autocommit=True, **kw)

    def _drop_conn(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def sql(self, text, *params):
        """Runs one statement; returns its rows (list of tuples; [] for none)."""
        for attempt in (0, 1):
            if self._conn is None or self._conn.closed:
                self._conn = self.connect()
            try:
                cur = self._conn.execute(text, params if params else None)
                return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                # The cached connection died with a restart; one retry.
                self._drop_conn()
                if attempt:
                    raise

    def psql(self, *args, variables=None, dbname=None, check=True):
        argv = [os.path.join(PG_BINDIR, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-d", self.conninfo if dbname is None else
                self.conninfo.replace(f"dbname={self.dbname}", f"dbname={dbname}")]
        for k, v in (variables or {}).items():
            argv += ["-v", f"{k}={v}"]
        return self._run(argv + list(args), check=check, as_postgres=False)

    def load_file(self, path, **variables):
        """Runs an SQL file with psql (psql variables as keyword arguments,
        e.g. scale="small").  An empty file is fine."""
        return self.psql("-f", str(path), variables=variables)

    def create_database(self):
        self.psql("-c", f'CREATE DATABASE "{self.dbname}"', dbname="postgres")
        self.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def tables(self):
        return [r[0] for r in self.sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]

    def reset_data(self):
        """Empties every table of schema public (sequences restart)."""
        tables = self.tables()
        if tables:
            self.sql("TRUNCATE " + ", ".join(f'public."{t}"' for t in tables)
                     + " RESTART IDENTITY CASCADE")

    def reset_stats(self):
        self.sql("SELECT pg_stat_statements_reset()")

    def statements(self, pattern="%"):
        """(query, calls) from pg_stat_statements for this database, whose
        text matches the LIKE pattern, the statistics queries excluded."""
        return self.sql(
            "SELECT s.query, s.calls FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = %s AND s.query LIKE %s"
            " AND s.query NOT LIKE %s ORDER BY s.calls DESC, s.query",
            self.dbname, pattern, "%pg_stat_statements%")

    def count_statements(self, pattern="%"):
        """How many statements (calls) matching the LIKE pattern ran since
        the last reset_stats()."""
        return sum(calls for _, calls in self.statements(pattern))

    def log_tail(self, n=60):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def __repr__(self):
        return f"<PgCluster {self.conninfo} {'running' if self.running else 'stopped'}>"


@atexit.register
def _cleanup_all():
    for c in list(_live):
        try:
            c.destroy()
        except Exception:
            pass

"""Shared fixtures of feedd's integration tests.

  repo_root      the source tree (env FEEDD_SRCDIR, else two levels up)
  build_dir      where feedd was built (dirname of FEEDD_BIN, else <repo>/build)
  pg             (session) a private PostgreSQL 15, sql/schema.sql loaded into
                 database "feedd", pg_stat_statements on; see pg.PgCluster:
                 .conninfo .connect() .sql(text, *params) .stop(mode) .start()
                 .restart() .load_file(path, **psql_vars) .reset_data()
                 .reset_stats() .statements(like) .count_statements(like)
  feedd_factory  (function) feedd_factory(**config_overrides) -> Feedd
  feedd          (function) feedd_factory() with the defaults
  demo           (module) pg with sql/demo-data.sql (scale tiny) loaded
                 afresh for the module (after pg.reset_data())

Helpers that are not fixtures (poll, metric, raw HTTP...) are in helpers.py.

Feedd: .port .pid (master) .url(path) .get(path, headers=None) and
.request(method, path, headers, body) -> (status, headers, body bytes),
.get_json(path) -> (status, headers, object), .connection() (an
http.client connection, for keep-alive), .worker_pids(), .signal(sig),
.stop(sig=TERM) -> exit status, .wait_exit(), .alive(), .wait_healthy(),
.error_log() .access_log() .stderr() .logs(), .config_path, .settings,
.reconfigure(**overrides) (rewrites the file; send SIGHUP yourself),
.cli("-t") / .cli("-s", "reload") (runs feedd -c <its config> ...), .dir.

Default config: listen on a free 127.0.0.1 port, workers = 2, pid file and
both logs in the instance's temp dir, log_level = info, www_root = the
repo's www/, db = pg.conninfo, shutdown_timeout = 5s (so a stuck request
does not stretch every teardown; tests of shutdown set their own).

Config overrides: a value of None removes the key; a list is written
comma-separated (listen, metrics_allow); numbers and True/False (on/off) are
written bare, strings in double quotes unless they are a plain word ("64MB",
"30s", "info").  Keyword-only extras of feedd_factory (never config keys):
env={...} (added to feedd's environment, e.g. the test hooks FEEDD_TEST_*),
wait=False (do not wait for /healthz; for tests of start-up failures; then
.wait_healthy() or .wait_exit()), args=[...] (more command-line arguments).

At teardown every feedd started is stopped (TERM, KILL after 10 s, then its
whole process group), and a test fails if feedd printed a sanitizer report.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg as pgmod  # noqa: E402

REPO_ROOT = Path(os.environ.get("FEEDD_SRCDIR") or Path(__file__).resolve().parents[2]).resolve()
FEEDD_BIN = Path(os.environ.get("FEEDD_BIN") or REPO_ROOT / "build" / "feedd").resolve()

# Same defaults as scripts/run-tests, for a plain `pytest` run.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # SIGTERM (CI time-out, kill) takes the same path as Ctrl-C: pytest
    # unwinds its fixtures, so PostgreSQL and every feedd get stopped.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def pytest_report_header(config):
    return [f"feedd: {FEEDD_BIN}", f"source: {REPO_ROOT}",
            f"postgresql: {pgmod.PG_BINDIR}"]


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def build_dir():
    return FEEDD_BIN.parent


# --- PostgreSQL ---------------------------------------------------------


@pytest.fixture(scope="session")
def pg():
    failure = None
    try:
        cluster = pgmod.PgCluster()
    except pgmod.PgError as e:
        failure = str(e)
    if failure is None:
        try:
            cluster.start()
            cluster.create_database()
            cluster.load_file(REPO_ROOT / "sql" / "schema.sql")
        except Exception as e:
            cluster.destroy()
            failure = f"cannot set up PostgreSQL: {e}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def demo(pg, repo_root):
    pg.reset_data()
    pg.load_file(repo_root / "sql" / "demo-data.sql", scale="tiny")
    yield pg


@pytest.fixture(autouse=True)
def _pg_running_after_test():
    # A fault test that stopped PostgreSQL and then failed must not take
    # the tests after it down too.
    yield
    for c in list(pgmod._live):
        if c.started and not c.running:
            c.start()


# --- feedd --------------------------------------------------------------


def free_port():
    """A port free on 127.0.0.1 right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_WORD = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def config_value(v):
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if s and set(s) <= _WORD:
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_text(settings):
    lines = ["# written by tests/integration/conftest.py"]
    for k, v in settings.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        lines.append(f"{k} = {config_value(v)}")
    return "\n".join(lines) + "\n"


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class FeeddError(AssertionError):
    pass


class Feedd:
    """One running feedd master (and its workers)."""

    def __init__(self, workdir, settings, env=None, args=()):
        self.dir = Path(workdir)
        self.settings = dict(settings)
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.config_path = self.dir / "feedd.conf"
        self.stderr_path = self.dir / "stderr.log"
        self.proc = None
        self.returncode = None
        self.port = None
        self.write_config()

    # --- config ---

    def write_config(self):
        listen = self.settings.get("listen")
        if isinstance(listen, (list, tuple)):
            listen = listen[0] if listen else None
        try:
            self.port = int(str(listen).rsplit(":", 1)[1])
        except (IndexError, ValueError):
            self.port = None
        self.config_path.write_text(config_text(self.settings))

    def reconfigure(self, **overrides):
        """Rewrites the config file (the current settings with these
        overrides; None removes a key).  Send SIGHUP to apply it."""
        self.settings.update(overrides)
        self.write_config()

    # --- process ---

    def start(self):
        env = dict(os.environ)
        for k, v in SANITIZER_ENV.items():
            env.setdefault(k, v)
        env.update(self.extra_env)
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [str(FEEDD_BIN), "-c", str(self.config_path)] + self.args,
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=self.dir, env=env,
                start_new_session=True, preexec_fn=pgmod.die_with_parent(signal.SIGTERM))
        self.returncode = None
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FeeddError(f"feedd exited with status {self.proc.returncode} before "
                                 f"answering /healthz\n{self.logs()}")
            try:
                status, _, _ = self.get("/healthz", timeout=1.0)
                if status == 200:
                    return self
                last = f"status {status}"
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.05)
        raise FeeddError(f"feedd did not answer GET /healthz with 200 within {timeout:g}s "
                         f"(last: {last})\n{self.logs()}")

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Waits for the master to exit by itself; returns its status."""
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, sig=None, timeout=STOP_TIMEOUT):
        """Stops the master (sig, default TERM; KILL after timeout) and
        anything left in its process group.  Returns the master's exit status."""
        sig = signal.SIGTERM if sig is None else sig
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.returncode = self.proc.returncode
        return self.returncode

    def worker_pids(self):
        """Live (non-zombie) children of the master, sorted."""
        if not self.alive():
            return []
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            # The command name may hold spaces and parentheses: split after it.
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                pids.append(int(entry))
        return sorted(pids)

    def cli(self, *args, timeout=30):
        """Runs `feedd -c <this config> ARGS` (e.g. "-t", or "-s", "reload");
        returns the CompletedProcess (text stdout/stderr)."""
        env = dict(os.environ)
        for k, v in SANITIZER_ENV.items():
            env.setdefault(k, v)
        env.update(self.extra_env)
        return subprocess.run([str(FEEDD_BIN), "-c", str(self.config_path)] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              cwd=self.dir, env=env, timeout=timeout)

    # --- HTTP ---

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def connection(self, timeout=10.0):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, headers=None, body=None, timeout=10.0):
        """-> (status, headers, body bytes); headers is http.client's
        message (case-insensitive: h["content-type"], h.get_all(name))."""
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def get(self, path, headers=None, timeout=10.0):
        return self.request("GET", path, headers=headers, timeout=timeout)

    def get_json(self, path, headers=None, timeout=10.0):
        """-> (status, headers, parsed JSON body); fails if it is not JSON."""
        status, hdrs, body = self.get(path, headers, timeout)
        try:
            return status, hdrs, json.loads(body)
        except ValueError:
            raise FeeddError(f"GET {path}: {status} with a body that is not JSON: "
                             f"{body[:500]!r}") from None

    # --- logs ---

    def error_log(self):
        """The error log (the file from the config, else what went to stderr)."""
        path = self.settings.get("error_log")
        if path and path != "stderr":
            return _read(path)
        return _read(self.stderr_path)

    def access_log(self):
        path = self.settings.get("access_log")
        return _read(path) if path and path not in ("stderr", "off") else ""

    def stderr(self):
        return _read(self.stderr_path)

    def logs(self, tail=80):
        parts = []
        for name, text in (("error log", self.error_log()), ("stderr", self.stderr())):
            if text and (name == "error log" or text != self.error_log()):
                lines = text.splitlines()[-tail:]
                parts.append(f"--- {name} (last {len(lines)} lines) ---\n" + "\n".join(lines))
        return "\n".join(parts) or "(feedd logged nothing)"

    def sanitizer_report(self):
        """The sanitizer reports feedd printed, or ""."""
        found = []
        for text in {self.error_log(), self.stderr()}:
            for marker in SANITIZER_MARKERS:
                i = text.find(marker)
                if i >= 0:
                    start = text.rfind("\n", 0, i) + 1
                    found.append(text[start:start + 6000])
                    break
        return "\n".join(found)

    def __repr__(self):
        return f"<Feedd pid={self.pid} port={self.port} dir={self.dir}>"


@pytest.fixture
def feedd_factory(pg, repo_root, tmp_path):
    started = []

    def factory(*, env=None, wait=True, args=(), **overrides):
        if not FEEDD_BIN.exists():
            pytest.fail(f"{FEEDD_BIN} does not exist: build feedd first "
                        f"(scripts/run-tests does), or set FEEDD_BIN", pytrace=False)
        n = len(started)
        workdir = tmp_path / f"feedd{n}"
        workdir.mkdir()
        user_listen = "listen" in overrides
        # A port picked free may be taken again before feedd binds it: on
        # "in use" try another one.
        for attempt in range(3):
            settings = {
                "listen": f"127.0.0.1:{free_port()}",
                "workers": 2,
                "pid_file": str(workdir / "feedd.pid"),
                "error_log": str(workdir / "error.log"),
                "access_log": str(workdir / "access.log"),
                "log_level": "info",
                "shutdown_timeout": "5s",
                "www_root": str(repo_root / "www"),
                "db": pg.conninfo,
            }
            settings.update(overrides)
            inst = Feedd(workdir, settings, env=env, args=args)
            inst.start()
            started.append(inst)
            if not wait:
                return inst
            try:
                return inst.wait_healthy()
            except FeeddError as e:
                failure = str(e)
            inst.stop()
            if user_listen or attempt == 2 or "in use" not in inst.logs().lower():
                pytest.fail(failure, pytrace=False)
            # Start afresh in the same directory, without the old logs.
            started.remove(inst)
            for p in workdir.iterdir():
                if p.is_file():
                    p.unlink()

    yield factory

    problems = []
    for inst in started:
        inst.stop()
        report = inst.sanitizer_report()
        if report:
            problems.append(f"feedd {inst.dir}: sanitizer report:\n{report}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def feedd(feedd_factory):
    return feedd_factory()

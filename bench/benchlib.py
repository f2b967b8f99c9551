"""Shared pieces of the benchmarks in bench/: feedd and the delay proxy as
child processes, timed HTTP requests, medians and tables."""

import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG_DIR = os.environ.get("BENCH_PG_DIR", "/tmp/bench-pg")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "30432"))
PG_CONNINFO = f"host={PG_DIR} port={PG_PORT} dbname=feedd user=postgres"


def die(msg):
    print(f"{Path(sys.argv[0]).name}: {msg}", file=sys.stderr)
    sys.exit(1)


def find_feedd(path):
    """The feedd binary to measure: --feedd, else $FEEDD_BIN, else build/feedd."""
    p = Path(path or os.environ.get("FEEDD_BIN") or REPO / "build" / "feedd")
    if not p.is_file():
        die(f"{p}: no feedd binary; build one without sanitizers, e.g.\n"
            f"  mkdir -p /tmp/b-opt && cd /tmp/b-opt && {REPO}/configure -q && make -j2\n"
            f"and pass --feedd /tmp/b-opt/feedd")
    return p.resolve()


def build_notes(binary):
    """Warnings about a binary that would measure the wrong thing."""
    notes = []
    try:
        ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    except OSError:
        ldd = ""
    if "libasan" in ldd or "libubsan" in ldd:
        notes.append("WARNING: this feedd is built with sanitizers: numbers are not representative")
    return notes


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def percentile(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def table(headers, rows, out=sys.stdout):
    """A plain text table, columns right-aligned except the first."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                         for i, c in enumerate(r))
    print(line(cells[0]), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells[1:]:
        print(line(r), file=out)
    out.flush()


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    die(f"nothing listens on 127.0.0.1:{port} after {timeout:g}s")


class DelayProxy:
    """bench/delay-proxy.py as a child process."""

    def __init__(self, port, target, rtt_ms):
        self.port, self.rtt_ms = port, rtt_ms
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "delay-proxy.py"), "--listen",
             f"127.0.0.1:{port}", "--target", target, "--rtt-ms", str(rtt_ms)],
            stdin=subprocess.DEVNULL)
        wait_port(port)

    def conninfo(self, dbname="feedd"):
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user=postgres"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Feedd:
    """One feedd master with its own config and logs in a temp dir."""

    def __init__(self, binary, port, settings, env=None):
        self.binary, self.port = binary, port
        self.dir = Path(tempfile.mkdtemp(prefix="feedd-bench-"))
        conf = {
            "listen": f"127.0.0.1:{port}",
            "workers": 1,
            "pid_file": str(self.dir / "feedd.pid"),
            "error_log": str(self.dir / "error.log"),
            "access_log": "off",
            "log_level": "warn",
            "www_root": str(REPO / "www"),
            "shutdown_timeout": "2s",
        }
        conf.update(settings)
        lines = []
        for k, v in conf.items():
            if v is None:
                continue
            s = str(v)
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", s):
                s = '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{k} = {s}")
        (self.dir / "feedd.conf").write_text("\n".join(lines) + "\n")
        self.settings = conf
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.dir / "stderr.log", "wb") as out:
            self.proc = subprocess.Popen(
                [str(binary), "-c", str(self.dir / "feedd.conf")], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
        self.wait_status("/healthz", 10.0)

    @property
    def pid(self):
        return self.proc.pid

    def worker_pids(self):
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                    out.append(int(entry))
        return sorted(out)

    def log(self):
        try:
            return (self.dir / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def wait_status(self, path, timeout, want=200, times=1):
        deadline = time.monotonic() + timeout
        ok = 0
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                die(f"feedd exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            try:
                status, _, _ = get(self.port, path)
                last = status
                ok = ok + 1 if status == want else 0
                if ok >= times:
                    return
            except OSError as e:
                last = e
                ok = 0
            time.sleep(0.05)
        die(f"GET {path} did not answer {want} within {timeout:g}s (last: {last})\n"
            f"{self.log()[-3000:]}")

    def wait_ready(self, timeout=30.0):
        # Several 200s in a row: every worker's pool, most likely.
        self.wait_status("/readyz", timeout, times=4 * int(self.settings.get("workers", 1)))

    def flush(self):
        os.kill(self.proc.pid, signal.SIGUSR2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def get(port, path, conn=None, timeout=30.0):
    """GET path -> (status, headers dict (lower-case names), body).  On a
    given keep-alive connection (http.client) or a new one."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        if own:
            conn.close()


def ms(x):
    return f"{x * 1000:.2f}" if x == x else "-"


# --- wrk against a server's worker processes -----------------------------------


def children(master_pid):
    """[(pid, fields of /proc/pid/stat after the name)] of master_pid's children."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        if int(f[1]) == master_pid:
            out.append((int(entry), f))
    return out


def cpu_ticks(master_pid):
    """utime + stime (clock ticks) of master_pid's children: the workers."""
    return sum(int(f[11]) + int(f[12]) for _, f in children(master_pid))


def pin_workers(master_pid, cpu):
    for pid, _ in children(master_pid):
        os.sched_setaffinity(pid, {cpu})


def wrk(url, conns, seconds, threads, server_pid, pace_ms=0, pin_cpu=None):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", url]
    if pace_ms:
        # wrk calls delay() before each request: a think time per connection.
        script = Path(tempfile.gettempdir()) / f"wrk-pace-{pace_ms}.lua"
        script.write_text(f"function delay()\n  return {pace_ms}\nend\n")
        cmd[1:1] = ["-s", str(script)]
    if pin_cpu is not None:
        cmd = ["taskset", "-c", str(pin_cpu)] + cmd
    before = cpu_ticks(server_pid)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    # How long wrk's threads wait for a core, and how often they sleep, per
    # second over the middle of the run: on shared cores the p99 follows
    # them (bench/README, "Cache (issue 4)").
    time.sleep(min(1.0, seconds / 4))
    w0, s0, t0 = run_queue_wait(proc.pid), sleeps(proc.pid), time.monotonic()
    time.sleep(max(0.0, seconds - 2 * min(1.0, seconds / 4)))
    w1, s1, t1 = run_queue_wait(proc.pid), sleeps(proc.pid), time.monotonic()
    out = proc.communicate()[0]
    cpu = (cpu_ticks(server_pid) - before) / os.sysconf("SC_CLK_TCK")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        die(f"wrk printed no Requests/sec:\n{out}")
    lat = {}
    for p, v, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[p] = float(v) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors:.*", out)
    total = re.search(r"(\d+) requests in", out)
    n = int(total.group(1)) if total else 0
    return {"rps": float(m.group(1)), "cpu_us": cpu / n * 1e6 if n else float("nan"),
            "p50": lat.get("50", float("nan")),
            "p99": lat.get("99", float("nan")), "non2xx": int(bad.group(1)) if bad else 0,
            "errors": errs.group(0) if errs else "", "raw": out,
            "wrk_wait": (w1 - w0) / 1e9 / (t1 - t0) if t1 > t0 else float("nan"),
            "wrk_sleeps": (s1 - s0) / (t1 - t0) if t1 > t0 else float("nan")}


def run_queue_wait(pid):
    """Nanoseconds pid's threads have waited for a CPU (schedstat, field 2)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return total


def sleeps(pid):
    """Times pid's threads went to sleep (voluntary context switches): how
    often wrk found no response waiting when it polled."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            total += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
    except (OSError, AttributeError, ValueError):
        pass
    return total

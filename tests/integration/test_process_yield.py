"""worker_yield: a worker calls sched_yield(2) after each pass over its
ready connections (on, the default) and never when it is off.  Watched
with strace attached to the worker."""

import shutil
import subprocess
import time

import pytest

from helpers import wait_ready

REQUESTS = 20


def yields_during_requests(f):
    """sched_yield calls of the worker while REQUESTS requests are served,
    one connection each."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (scripts/install-deps installs it)")
    (pid,) = f.worker_pids()
    tracer = subprocess.Popen(["strace", "-e", "trace=sched_yield", "-p", str(pid)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        first = tracer.stderr.readline()  # "strace: Process N attached", or why not
        if "attached" not in first:
            tracer.kill()
            if "Operation not permitted" in first:
                pytest.skip(f"this machine does not allow ptrace: {first.strip()}")
            pytest.fail(f"strace did not attach: {first}{tracer.stderr.read()}")
        for _ in range(REQUESTS):
            status, _, _ = f.get("/healthz")
            assert status == 200
        time.sleep(0.2)
    finally:
        tracer.terminate()
    rest = tracer.communicate(timeout=10)[1]
    return rest.count("sched_yield(")


def test_worker_yields_after_each_pass_with_work(feedd_factory):
    f = feedd_factory(workers=1)
    wait_ready(f)
    # Each request takes at least one pass (accept, read, answer); passes
    # that handled several at once yield once.
    assert yields_during_requests(f) >= REQUESTS


def test_worker_yield_off_never_yields(feedd_factory):
    f = feedd_factory(workers=1, worker_yield=False)
    wait_ready(f)
    assert yields_during_requests(f) == 0

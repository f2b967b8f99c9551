"""A worker killed (kill -9) in the middle of a cache write.

The test hook FEEDD_TEST_CACHE_STALL_WRITE=1 (src/cache.h) stops the first
cache_put of the instance for ever halfway through the body, with the
slot's seqlock odd: the worker that filled the page sits there, its client
waiting, until the test kills it.  Then: no other worker serves the
half-written entry, the master reaps what the dead worker held (the slot it
was writing, its fill lease) and says so, and the key is filled again by the
next request."""

import json
import os
import signal
import threading

from helpers import connection_to, poll, read_all, request_bytes, split_response, wait_ready

PATH = "/api/feed?limit=7"
STALL = {"FEEDD_TEST_CACHE_STALL_WRITE": "1"}
# x86-64 and arm64 syscall numbers of nanosleep / clock_nanosleep: sleep(3).
SLEEP_SYSCALLS = {"35", "230", "101", "115"}


def sleeping_in_syscall(pid):
    """True while pid sits in sleep(3) (the hook's loop), not in its event loop."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
        if wchan and wchan != "0":
            return "nanosleep" in wchan
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split()[0] in SLEEP_SYSCALLS
    except (OSError, IndexError):
        return False


def start_stalled_fill(feedd):
    """Requests PATH in a thread; returns (worker pid stuck in the write, thread)."""
    outcome = {}

    def request():
        try:
            outcome["answer"] = feedd.get(PATH, timeout=60)
        except Exception as e:     # the worker is killed under this request
            outcome["error"] = e

    t = threading.Thread(target=request, daemon=True)
    t.start()
    poll("the hook to stall the cache write",
         lambda: "stalling the write" in feedd.error_log(), timeout=15)
    stalled = poll("a worker sleeping in the hook",
                   lambda: [p for p in feedd.worker_pids() if sleeping_in_syscall(p)])
    assert len(stalled) == 1, stalled
    t.outcome = outcome
    return stalled[0], t


def page(feedd, expect_cache=None, worker=None):
    """PATH's page; from worker (a pid) when given, the others being stalled."""
    if worker is None:
        status, headers, body = feedd.get(PATH, timeout=30)
    else:
        with connection_to(feedd, worker) as s:
            s.sendall(request_bytes(PATH))
            status, headers, body = split_response(read_all(s))
    assert status == 200, (status, body[:300])
    doc = json.loads(body)      # a torn entry would not even parse
    assert list(doc) == ["items", "next_cursor"], doc
    assert len(doc["items"]) == 7
    if expect_cache is not None:
        assert headers["x-cache"] == expect_cache, (headers["x-cache"], feedd.logs())
    return headers["x-cache"], body


def test_killed_writer_is_reaped_and_the_key_refilled(demo, feedd_factory):
    feedd = feedd_factory(workers=2, env=STALL)
    wait_ready(feedd)
    stalled, t = start_stalled_fill(feedd)

    os.kill(stalled, signal.SIGKILL)
    t.join(30)
    assert "answer" not in t.outcome, "the client of the stalled fill got no page"
    # The master reaps the worker and, with it, the half-written slot and
    # the fill lease the worker held; then it starts a new worker.
    log = poll("the master to report the reaped cache write",
               lambda: "\n".join(l for l in feedd.error_log().splitlines()
                                 if str(stalled) in l and "cache" in l
                                 and "writing" in l))
    assert "dropped" in log, log
    poll("the lease to be reported freed",
         lambda: any(str(stalled) in l and "lease" in l
                     for l in feedd.error_log().splitlines()))
    poll("a new worker", lambda: len(feedd.worker_pids()) == 2
         and stalled not in feedd.worker_pids())

    # Nothing of the dead writer is left: the next request fills the key
    # (a miss now, not a wait for a dead lease and a page nobody stores),
    # and the one after it is served from the cache.
    _, filled = page(feedd, "miss")
    _, cached = page(feedd, "hit")
    assert cached == filled


def test_readers_never_see_the_half_written_entry(demo, feedd_factory):
    # A short lease: the other worker stops waiting for the stalled fill
    # after a second and fills the key itself.
    feedd = feedd_factory(workers=2, cache_lease_timeout="1s", env=STALL)
    wait_ready(feedd)
    stalled, t = start_stalled_fill(feedd)

    # The stalled worker cannot accept (connections hashed to its listen
    # socket wait there): every request below goes to the other worker,
    # reading the slot whose seqlock stays odd.
    (other,) = [p for p in feedd.worker_pids() if p != stalled]
    bodies = set()
    served = []
    for _ in range(20):
        cache, body = page(feedd, worker=other)
        served.append(cache)
        bodies.add(body)
    assert len(bodies) == 1, "every answer is the same complete page"
    assert served[0] == "miss", served
    assert served[-1] == "hit", f"the key was filled again meanwhile: {served}"
    assert sleeping_in_syscall(stalled), "the writer stayed stalled throughout"

    os.kill(stalled, signal.SIGKILL)
    t.join(30)
    poll("the master to reap the worker",
         lambda: any(str(stalled) in l for l in feedd.error_log().splitlines()
                     if "master" in l or "worker" in l))
    poll("a new worker", lambda: len(feedd.worker_pids()) == 2
         and stalled not in feedd.worker_pids())
    for _ in range(10):
        _, body = page(feedd)
        assert body in bodies
    assert "torn entry" not in feedd.error_log()

"""Smoke: feedd starts against the test database and answers the basics."""

import json
import signal


def test_starts_with_workers(feedd):
    assert feedd.alive()
    workers = feedd.worker_pids()
    assert len(workers) == 2, f"workers = 2 in the config, children: {workers}"


def test_healthz_is_json_200(feedd):
    status, headers, body = feedd.get("/healthz")
    assert status == 200, body
    assert headers["content-type"].split(";")[0].strip() == "application/json"
    assert isinstance(json.loads(body), dict)


def test_unknown_path_is_json_404(feedd):
    status, headers, body = feedd.get("/no/such/path")
    assert status == 404, body
    assert headers["content-type"].split(";")[0].strip() == "application/json"
    doc = json.loads(body)
    assert isinstance(doc, dict) and doc, f"an error body says what was wrong: {body!r}"


def test_term_stops_master_and_workers(feedd):
    workers = feedd.worker_pids()
    assert workers
    feedd.signal(signal.SIGTERM)
    status = feedd.wait_exit(timeout=15)
    assert status == 0, f"exit status {status}\n{feedd.logs()}"
    # The master waits for its workers before it exits.
    for pid in workers:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state == "Z", f"worker {pid} still running after the master exited"

"""The router: /healthz, /readyz, /metrics (and who may read it), API paths."""

import json
import time


def test_healthz(feedd):
    status, headers, body = feedd.get("/healthz")
    assert status == 200
    assert headers["content-type"].split(";")[0] == "application/json"
    assert json.loads(body) == {"status": "ok"}


def test_readyz_with_a_database(feedd):
    # The pool connects in the background: ready soon after start.
    deadline = time.monotonic() + 10
    while True:
        status, headers, body = feedd.get("/readyz")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200, body
    assert json.loads(body) == {"status": "ready"}


def test_readyz_without_a_database(feedd_factory, tmp_path):
    f = feedd_factory(db=f"host={tmp_path} port=1 dbname=nothing connect_timeout=1")
    status, headers, body = f.get("/readyz")
    assert status == 503, body
    assert headers["content-type"].split(";")[0] == "application/json"
    assert json.loads(body) == {"detail": "no database connection"}
    # Liveness does not depend on the database.
    assert f.get("/healthz")[0] == 200


def test_metrics_text_format(feedd):
    feedd.get("/healthz")
    status, headers, body = feedd.get("/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert int(headers["content-length"]) == len(body)


def test_metrics_allowed_for_a_matching_network(feedd_factory):
    f = feedd_factory(metrics_allow=["10.0.0.0/8", "127.0.0.0/8"])
    assert f.get("/metrics")[0] == 200


def test_metrics_forbidden_for_other_addresses(feedd_factory):
    f = feedd_factory(metrics_allow=["10.0.0.0/8"])
    status, headers, body = f.get("/metrics")
    assert status == 403, body
    assert headers["content-type"].split(";")[0] == "application/json"
    assert json.loads(body)["detail"]
    # Only /metrics is restricted.
    assert f.get("/healthz")[0] == 200


def test_head_on_every_builtin_endpoint(feedd):
    for path in ("/healthz", "/readyz", "/metrics"):
        status, headers, body = feedd.request("HEAD", path)
        assert body == b"", path
        assert status in (200, 503), (path, status)
        assert "content-length" in headers


def test_api_prefix_without_handler_is_404(feedd):
    for path in ("/api", "/api/", "/api/feeds", "/api/feed/", "/api/feed/stream/x"):
        status, headers, body = feedd.get(path)
        assert status == 404, path
        assert json.loads(body)["detail"]


def test_error_detail_is_valid_json_for_any_path(feedd):
    # Quotes, backslashes, control bytes and broken UTF-8 in the path are
    # escaped in the detail, never break the JSON.
    for path in ('/api/a%22b', "/api/a%5Cb", "/api/%01%1f", "/api/%ff%fe", "/api/%e2%82%ac"):
        status, headers, body = feedd.get(path)
        assert status == 404, path
        doc = json.loads(body.decode("utf-8"))
        assert doc["detail"].startswith("no such API endpoint"), doc
    doc = json.loads(feedd.get("/api/%e2%82%ac")[2])
    assert doc["detail"].endswith("\u20ac")


def test_requests_are_counted_by_endpoint(feedd_factory):
    f = feedd_factory(workers=1)
    for _ in range(3):
        f.get("/healthz")
    f.get("/api/nothing")
    f.get("/no-such-file.txt")
    text = f.get("/metrics")[2].decode()

    def count(endpoint, code):
        for line in text.splitlines():
            if line.startswith("feedd_http_requests_total{") and \
                    f'endpoint="{endpoint}"' in line and f'code="{code}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    # +1: the start-up probe of the fixture asked /healthz too.
    assert count("healthz", "200") >= 3
    assert count("other", "404") == 1
    assert count("static", "404") == 1

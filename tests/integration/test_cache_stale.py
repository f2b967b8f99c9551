"""Stale-while-revalidate under load: after cache_ttl, a burst of
concurrent requests over every worker all get the stale page at once,
while exactly one refresh (one set of 15 statements) runs behind them.
(test_feed_api.py has the sequential case.)"""

import asyncio
import time

from helpers import FEED_STATEMENTS, NSOURCES, get_many, statements_settled

PATH = "/api/feed?limit=9&cursor=2100-01-01T00:00:00Z"
BURST = 200


def test_stale_burst_waits_for_nothing_and_refreshes_once(demo, feedd_factory):
    # Every fill holds the worlds statement back 3 s before sending it.
    feedd = feedd_factory(workers=2, cache_ttl="1s", cache_stale="60s",
                          env={"FEEDD_TEST_SLOW_SOURCE": "worlds:3000"})
    status, headers, first = feedd.get(PATH, timeout=30)
    assert (status, headers["x-cache"]) == (200, "miss"), first
    statements_settled(demo, NSOURCES)
    time.sleep(1.2)                      # past cache_ttl, well inside cache_stale
    demo.reset_stats()

    answers = asyncio.run(get_many(feedd.port, PATH, BURST))
    # Checked before anything else: the refresh has not sent its worlds
    # statement yet, so every answer above came before the fill finished.
    during = demo.count_statements(FEED_STATEMENTS)
    assert during < NSOURCES, "the slow refresh finished before the burst was answered"

    assert [a[0] for a in answers] == [200] * BURST
    caches = [a[1].get("x-cache") for a in answers]
    assert caches == ["stale"] * BURST, {c: caches.count(c) for c in set(caches)}
    assert all(a[2] == first for a in answers), "the stale page is the page stored"

    # One refresh for all of them, whichever worker saw the page stale first.
    deadline = time.monotonic() + 15
    while True:
        status, headers, fresh = feedd.get(PATH, timeout=30)
        assert status == 200
        if headers["x-cache"] == "hit":
            break
        assert headers["x-cache"] == "stale"
        assert time.monotonic() < deadline, f"no refresh stored\n{feedd.logs()}"
        time.sleep(0.1)
    assert fresh == first, "same data, same page"
    assert statements_settled(demo, NSOURCES) == NSOURCES, demo.statements(FEED_STATEMENTS)

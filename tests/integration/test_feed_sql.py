"""The 15 source statements of src/feed_sources.c, run directly against
PostgreSQL: the rows each returns, keyset walking, threads and groups.

The statements are read out of the C source (the string literals named
sql_<source>), so the SQL under test is the SQL feedd sends.  They run with
text parameters and text results through libpq, as feedd runs them.  A
model of FEED-SEMANTICS in Python, computed from the raw tables, says which
items each source must produce; every test runs on a database with
sql/indexes.sql and on one without.  The last tests run the whole server on
the golden fixture: page 1 byte for byte as tests/fixtures/golden-page1.json,
and a walk over every page.
"""

import json
import re
from datetime import datetime, timezone

import pytest
from psycopg import pq

SOURCES = ["worlds", "proposals", "validations", "aspects", "actions", "dwellers", "agents",
           "stories", "revised_stories", "reviews", "story_reviews", "resolved_feedback",
           "revised_proposals", "revised_aspects", "graduated"]

T0 = "2026-02-16 12:00:00+00"


# --- the statements, from the C source ----------------------------------

def _c_literals(text):
    out = []
    for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', text):
        out.append(re.sub(r"\\(.)", lambda e: {"n": "\n", "t": "\t"}.get(e.group(1), e.group(1)),
                          m.group(1)))
    return "".join(out)


def load_statements(repo_root):
    src = (repo_root / "src" / "feed_sources.c").read_text()
    sql = {}
    for m in re.finditer(r"static const char sql_(\w+)\[\] =(.*?);\n", src, re.S):
        sql[m.group(1)] = _c_literals(m.group(2))
    defs = {}
    for m in re.finditer(r'\[FEED_SRC_\w+\]\s*=\s*\{\s*"(\w+)",\s*sql_(\w+),\s*(\d+),', src):
        defs[m.group(1)] = (sql.get(m.group(2)), int(m.group(3)))
    return defs


@pytest.fixture(scope="module")
def statements(repo_root):
    return load_statements(repo_root)


# --- databases ------------------------------------------------------------

def _make_db(pg, repo_root, name, indexes, data):
    pg.psql("-c", f'DROP DATABASE IF EXISTS "{name}"', dbname="postgres")
    # A collation that ignores punctuation, unlike byte order: ids compared
    # without COLLATE "C" would page wrongly here.
    r = pg.psql("-c", f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                "ICU_LOCALE 'en-US-u-ka-shifted' LOCALE 'C.UTF-8'", dbname="postgres", check=False)
    if r.returncode != 0:
        pg.psql("-c", f'CREATE DATABASE "{name}"', dbname="postgres")
    pg.psql("-f", str(repo_root / "sql" / "schema.sql"), dbname=name)
    if data == "golden":
        pg.psql("-f", str(repo_root / "tests" / "fixtures" / "golden.sql"), dbname=name)
    else:
        pg.psql("-v", f"scale={data}", "-f", str(repo_root / "sql" / "demo-data.sql"), dbname=name)
    if indexes:
        pg.psql("-f", str(repo_root / "sql" / "indexes.sql"), dbname=name)
    else:
        pg.psql("-c", "ANALYZE", dbname=name)
    return name


class Db:
    def __init__(self, pg, name, statements):
        self.name = name
        self.conn = pg.connect(dbname=name)
        self.statements = statements

    def run(self, source, t1="infinity", cid="", t3="-infinity", n=1000):
        """Runs one source statement as feedd does: text in, text out."""
        sql, _ = self.statements[source]
        res = self.conn.pgconn.exec_params(
            sql.encode(), [str(t1).encode(), cid.encode(), str(t3).encode(), str(n).encode()])
        if res.status != pq.ExecStatus.TUPLES_OK:
            raise AssertionError(f"{source}: {res.error_message.decode()}")
        return [[None if res.get_value(r, c) is None else res.get_value(r, c).decode()
                 for c in range(res.nfields)] for r in range(res.ntuples)]

    def rows(self, query, *params):
        return self.conn.execute(query, params or None).fetchall()

    def close(self):
        self.conn.close()


def _modelled_db(request, pg, repo_root, statements, kind, data):
    """A database of its own with `data` loaded (with or without the
    indexes, as request.param says) and its Model; dropped afterwards."""
    name = _make_db(pg, repo_root, f"feedd_sql_{kind}_{request.param}",
                    request.param == "indexes", data)
    db = Db(pg, name, statements)
    db.model = Model(db)
    yield db
    db.close()
    pg.psql("-c", f'DROP DATABASE "{name}"', dbname="postgres")


@pytest.fixture(scope="module", params=["indexes", "no_indexes"])
def golden(request, pg, repo_root, statements):
    yield from _modelled_db(request, pg, repo_root, statements, "golden", "golden")


# Not conftest's demo: a database of its own, built by _make_db.
@pytest.fixture(scope="module", params=["indexes", "no_indexes"])
def demo(request, pg, repo_root, statements):
    yield from _modelled_db(request, pg, repo_root, statements, "demo", "tiny")


# --- the model: FEED-SEMANTICS over whole tables ----------------------------

US = "(extract(epoch FROM {}) * 1000000)::int8"
GAP_US = 30 * 60 * 1000000


def chunks_of_chains(rows):
    """rows: (time_us, id) of one dweller's solo actions or one review's
    resolved items.  Returns the chunks (lists oldest first): chains with
    gaps of at most 30 minutes, cut every 50 from each chain's oldest."""
    rows = sorted(rows)
    out, chain = [], []
    for r in rows:
        if chain and r[0] - chain[-1][0] > GAP_US:
            out += [chain[i:i + 50] for i in range(0, len(chain), 50)]
            chain = []
        chain.append(r)
    if chain:
        out += [chain[i:i + 50] for i in range(0, len(chain), 50)]
    return out


class Model:
    """Every item of every source, as FEED-SEMANTICS defines them."""

    def __init__(self, db):
        self.items = {}
        q = db.rows
        self.items["worlds"] = [(t, i) for i, t in q(
            f"SELECT id::text, {US.format('created_at')} FROM platform_worlds WHERE is_active")]
        self.items["proposals"] = [(t, i) for i, t in q(
            f"SELECT id::text, {US.format('created_at')} FROM platform_proposals "
            "WHERE status <> 'DRAFT'")]
        self.items["validations"] = [(t, i) for i, t in q(
            f"SELECT id::text, {US.format('created_at')} FROM platform_validations")]
        self.items["aspects"] = [(t, i) for i, t in q(
            f"SELECT id::text, {US.format('created_at')} FROM platform_aspects "
            "WHERE status IN ('VALIDATING', 'APPROVED')")]
        self.items["dwellers"] = [(t, i) for i, t in q(
            f"SELECT id::text, {US.format('created_at')} FROM platform_dwellers WHERE is_active")]
        self.items["agents"] = [(t, i) for i, t in q(
            f"SELECT id::text, {US.format('created_at')} FROM platform_users WHERE type = 'AGENT'")]
        self.items["stories"] = [(t, i) for i, t in q(
            f"SELECT id::text, {US.format('created_at')} FROM platform_stories")]
        self.items["revised_stories"] = [(t, i + "-revision") for i, t in q(
            f"SELECT id::text, {US.format('last_revised_at')} FROM platform_stories "
            "WHERE revision_count > 0 AND last_revised_at IS NOT NULL")]
        self.items["reviews"] = [(t, i) for i, t in q(
            f"SELECT id::text, {US.format('created_at')} FROM platform_review_feedback")]
        self.items["story_reviews"] = [(t, i) for i, t in q(
            f"SELECT id::text, {US.format('created_at')} FROM platform_story_reviews")]
        self.items["revised_proposals"] = [(t, "proposal-revised-" + i) for i, t in q(
            f"SELECT id::text, {US.format('last_revised_at')} FROM platform_proposals "
            "WHERE last_revised_at IS NOT NULL")]
        self.items["revised_aspects"] = [(t, "aspect-revised-" + i) for i, t in q(
            f"SELECT id::text, {US.format('last_revised_at')} FROM platform_aspects "
            "WHERE last_revised_at IS NOT NULL")]
        self.items["graduated"] = [(t, "graduated-" + i) for i, t in q(
            f"SELECT w.id::text, {US.format('w.created_at')} FROM platform_worlds w "
            "JOIN platform_proposals p ON p.id = w.proposal_id "
            "WHERE w.is_active AND p.review_system = 'CRITICAL_REVIEW'")]
        self._actions(q)
        self._resolved(q)
        for k in self.items:
            self.items[k].sort(key=lambda it: (it[0], it[1].encode()), reverse=True)

    def _actions(self, q):
        acts = {i: (d, t, p) for i, d, t, p in q(
            f"SELECT id::text, dweller_id::text, {US.format('created_at')}, "
            "in_reply_to_action_id::text FROM platform_dweller_actions")}
        children = {}
        for i, (_, _, p) in acts.items():
            if p is not None:
                children.setdefault(p, []).append(i)

        def root(a):
            seen = [a]
            while True:
                p = acts[seen[-1]][2]
                if p is None or p not in acts:
                    return seen[-1]
                if p in seen:
                    return min(seen[seen.index(p):])
                seen.append(p)

        threads, solos = {}, {}
        for i, (d, t, p) in acts.items():
            if p is not None or i in children:
                threads.setdefault(root(i), []).append((t, i))
            else:
                solos.setdefault(d, []).append((t, i))
        self.action_items = {}
        for r, members in threads.items():
            members.sort()
            self.action_items["thread-" + r] = dict(
                kind="t", sort=members[-1][0], created=acts[r][1], count=len(members),
                members=[i for _, i in members[-50:]], all=[i for _, i in members])
        for d, rows in solos.items():
            for ch in chunks_of_chains(rows):
                iid = ch[0][1] if len(ch) == 1 else f"group-{d}-{ch[0][1]}"
                self.action_items[iid] = dict(
                    kind="a" if len(ch) == 1 else "g", sort=ch[-1][0], created=ch[0][0],
                    count=len(ch), members=[i for _, i in ch], all=[i for _, i in ch])
        self.items["actions"] = [(v["sort"], k) for k, v in self.action_items.items()]
        self.action_ids = set(acts)

    def _resolved(self, q):
        per_review = {}
        for i, r, t in q(
                f"SELECT id::text, review_feedback_id::text, {US.format('resolved_at')} "
                "FROM platform_feedback_items WHERE status = 'RESOLVED' AND resolved_at IS NOT NULL"):
            per_review.setdefault(r, []).append((t, i))
        self.resolved_items = {}
        for r, rows in per_review.items():
            for ch in chunks_of_chains(rows):
                self.resolved_items[f"feedback-resolved-{r}-{ch[0][1]}"] = dict(
                    sort=ch[-1][0], count=len(ch))
        self.items["resolved_feedback"] = [(v["sort"], k) for k, v in self.resolved_items.items()]


def item_id(source, row):
    """The item id feedd builds from a row (see the builders)."""
    prefix = {"revised_proposals": "proposal-revised-", "revised_aspects": "aspect-revised-",
              "graduated": "graduated-"}.get(source, "")
    if source == "actions":
        return row[1]
    if source == "revised_stories":
        return row[0] + "-revision"
    return prefix + row[0]


def sort_us(source, row):
    return int(row[2] if source == "actions" else row[1])


def keyed(source, rows):
    return [(sort_us(source, r), item_id(source, r)) for r in rows]


def us_to_ts(us):
    return datetime.fromtimestamp(us // 1000000, timezone.utc).replace(
        microsecond=us % 1000000).isoformat()


def walk(db, source, limit, t3="-infinity"):
    """Follows next cursors from the first page (limit + 1 rows asked, the
    first `limit` kept), as feedd does for one source alone."""
    t1, cid, seen, pages = "infinity", "", [], 0
    while True:
        rows = keyed(source, db.run(source, t1, cid, t3, limit + 1))
        assert len(rows) <= limit + 1
        seen += rows[:limit]
        pages += 1
        assert pages < 10000, "walk does not end"
        if len(rows) <= limit:
            return seen
        t1, cid = us_to_ts(rows[limit - 1][0]), rows[limit - 1][1]


# --- tests: basics --------------------------------------------------------------

def test_fifteen_statements(statements):
    assert sorted(statements) == sorted(SOURCES)
    for name, (sql, ncols) in statements.items():
        assert sql, f"{name}: no SQL found"
        for n in range(1, 5):
            assert f"${n}" in sql, f"{name}: parameter ${n} unused"
        assert "$5" not in sql


@pytest.mark.parametrize("source", SOURCES)
def test_column_count(golden, source):
    sql, ncols = golden.statements[source]
    res = golden.conn.pgconn.exec_params(sql.encode(), [b"infinity", b"", b"-infinity", b"1"])
    assert res.status == pq.ExecStatus.TUPLES_OK, res.error_message
    assert res.nfields == ncols


@pytest.mark.parametrize("source", SOURCES)
def test_all_items_in_total_order(golden, source):
    got = keyed(source, golden.run(source, n=100000))
    assert got == golden.model.items[source]
    assert got, f"the golden fixture has {source} items"


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("limit", [1, 2, 3, 7, 20])
def test_keyset_walk_visits_each_item_once(golden, source, limit):
    got = walk(golden, source, limit)
    assert got == golden.model.items[source]
    assert len(set(got)) == len(got)


@pytest.mark.parametrize("source", SOURCES)
def test_window_applies_to_every_page(golden, source):
    t3_us = 1771157400 * 1000000          # 2026-02-15 12:10:00Z, inside the fixture's span
    want = [it for it in golden.model.items[source] if it[0] >= t3_us]
    assert walk(golden, source, 2, us_to_ts(t3_us)) == want


@pytest.mark.parametrize("source", SOURCES)
def test_cursor_inside_a_tie(golden, source):
    """From every item as a cursor, the rest of the order follows exactly."""
    items = golden.model.items[source]
    for k, (t, i) in enumerate(items[:40]):
        got = keyed(source, golden.run(source, us_to_ts(t), i, n=5))
        assert got == items[k + 1:k + 6], f"after {i}"
    # A bare timestamp cursor (cid '') skips everything at that time.
    t = items[0][0]
    got = keyed(source, golden.run(source, us_to_ts(t), "", n=3))
    assert got == [it for it in items if it[0] < t][:3]


@pytest.mark.parametrize("limit", [1, 5, 20])
def test_merged_walk_exactly_once(golden, limit):
    """The whole feed as feedd pages it: the 15 statements with the same
    cursor, merged; a next page exactly when more than `limit` came back."""
    want = sorted((it for src in SOURCES for it in golden.model.items[src]),
                  key=lambda it: (it[0], it[1].encode()), reverse=True)
    t1, cid, seen = "infinity", "", []
    for _ in range(10000):
        merged = sorted((it for src in SOURCES
                         for it in keyed(src, golden.run(src, t1, cid, "-infinity", limit + 1))),
                        key=lambda it: (it[0], it[1].encode()), reverse=True)
        seen += merged[:limit]
        if len(merged) <= limit:
            break
        t1, cid = us_to_ts(merged[limit - 1][0]), merged[limit - 1][1]
    assert seen == want


def feed_time(us, zulu=False):
    """Feed timestamp text: fraction only when non-zero."""
    t = datetime.fromtimestamp(us // 1000000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if us % 1000000:
        t += ".%06d" % (us % 1000000)
    return t + ("Z" if zulu else "+00:00")


def test_golden_page1_matches_fixture(golden, repo_root):
    """tests/fixtures/golden-page1.json (written by hand) holds the first 20
    items of the fixture in the total order, with their sort dates."""
    page = json.loads((repo_root / "tests" / "fixtures" / "golden-page1.json").read_text())
    want = sorted((it for src in SOURCES for it in golden.model.items[src]),
                  key=lambda it: (it[0], it[1].encode()), reverse=True)
    assert [(it["sort_date"], it["id"]) for it in page["items"]] == [
        (feed_time(t), i) for t, i in want[:20]]
    t, i = want[19]
    assert page["next_cursor"] == feed_time(t, zulu=True) + "~" + i
    assert len({it["type"] for it in page["items"]}) == 17, "every item type on page 1"


# --- tests: threads and groups (Q5) and resolved-feedback groups (Q12) ------------

def action_rows(db):
    rows = db.run("actions", n=100000)
    out = {}
    for r in rows:
        members = json.loads(r[5])
        out[r[1]] = dict(kind=r[0], sort=int(r[2]), created=int(r[3]), count=int(r[4]),
                         members=members, row=r)
    return out


def test_every_action_in_exactly_one_item(golden):
    got = action_rows(golden)
    model = golden.model.action_items
    assert set(got) == set(model)
    shown = []
    for iid, it in got.items():
        want = model[iid]
        assert it["kind"] == want["kind"], iid
        assert it["count"] == want["count"], iid
        assert it["created"] == want["created"], iid
        assert [m["id"] for m in it["members"]] == want["members"], iid
        assert it["count"] == len(it["members"]) or (it["kind"] == "t" and it["count"] > 50)
        assert len(it["members"]) <= 50
        shown += [m["id"] for m in it["members"]]
    assert len(shown) == len(set(shown)), "an action shown in two items"
    # Only the oldest actions of threads longer than 50 stay unshown.
    hidden = golden.model.action_ids - set(shown)
    assert hidden == {i for want in model.values() for i in want["all"][:-50]}
    assert hidden, "the golden fixture has a thread longer than 50"


def test_threads_golden(golden):
    got = action_rows(golden)
    t = got["thread-61000000-0000-4000-8000-000000000001"]
    assert t["kind"] == "t" and t["count"] == 3
    assert [m["id"][-2:] for m in t["members"]] == ["01", "02", "03"]
    assert [m["in_reply_to"] for m in t["members"]] == [
        None, "61000000-0000-4000-8000-000000000001", "61000000-0000-4000-8000-000000000002"]
    # The root is older than any window; the thread sorts at its newest reply.
    assert t["sort"] == 1771242720 * 1000000 and t["created"] == 1770462000 * 1000000
    assert t["members"][1]["dweller"] == {"id": "50000000-0000-4000-8000-000000000002",
                                          "name": "Tomas Okafor", "role": "archivist"}
    assert t["members"][1]["agent"]["username"] == "quill"
    assert t["row"][9] == "20000000-0000-4000-8000-000000000001", "world of the root's dweller"
    # 52 actions: the 50 newest shown, all counted.
    t = got["thread-64000000-0000-4000-8000-000000000001"]
    assert t["count"] == 52 and len(t["members"]) == 50
    assert t["members"][0]["id"].endswith("03") and t["members"][-1]["id"].endswith("52")
    # A cycle is one thread, rooted at its smallest id.
    t = got["thread-66000000-0000-4000-8000-000000000001"]
    assert t["count"] == 2
    # A reply to a deleted action roots its own thread.
    t = got["thread-67000000-0000-4000-8000-000000000001"]
    assert t["count"] == 2 and t["members"][0]["in_reply_to"].endswith("99")
    # Two replies to one deleted action: two threads.
    for i in ("03", "04"):
        t = got["thread-67000000-0000-4000-8000-0000000000" + i]
        assert t["count"] == 1 and t["members"][0]["in_reply_to"].endswith("98")


def test_groups_golden(golden):
    got = action_rows(golden)
    g = got["group-50000000-0000-4000-8000-000000000001-62000000-0000-4000-8000-000000000001"]
    assert g["kind"] == "g" and g["count"] == 3
    assert g["row"][12] == "10000000-0000-4000-8000-000000000001", "agent of the first action"
    assert set(g["members"][0]) == {"id", "type", "content", "dialogue", "stage_direction",
                                    "target", "created_us"}
    # 55 actions a minute apart: 50 from the oldest, then 5.
    d2 = "50000000-0000-4000-8000-000000000002"
    a = got[f"group-{d2}-63000000-0000-4000-8000-000000000001"]
    b = got[f"group-{d2}-63000000-0000-4000-8000-000000000051"]
    assert a["count"] == 50 and b["count"] == 5
    # Exactly 30 minutes chains; 30 minutes and 1 us does not.
    d5 = "50000000-0000-4000-8000-000000000005"
    assert got[f"group-{d5}-62000000-0000-4000-8000-000000000005"]["count"] == 2
    single = got["62000000-0000-4000-8000-000000000007"]
    assert single["kind"] == "a" and single["count"] == 1
    # An actor that no longer exists: no agent.
    single = got["62000000-0000-4000-8000-000000000008"]
    assert single["kind"] == "a" and single["row"][12] is None


def test_resolved_feedback_golden(golden):
    rows = {r[0]: r for r in golden.run("resolved_feedback", n=1000)}
    assert set(rows) == set(golden.model.resolved_items)
    for iid, r in rows.items():
        assert int(r[5]) == golden.model.resolved_items[iid]["count"], iid
    r1 = "80000000-0000-4000-8000-000000000001"
    r = rows[f"feedback-resolved-{r1}-81000000-0000-4000-8000-000000000003"]
    assert r[2:] == ["critic_5", "proposal", None, "2", "2", "30000000-0000-4000-8000-000000000003"]
    r4 = "80000000-0000-4000-8000-000000000004"
    r = rows[f"feedback-resolved-{r4}-81000000-0000-4000-8000-000000000006"]
    assert r[4] == "Ines Moreau" and r[5:7] == ["1", "1"]
    r6 = "80000000-0000-4000-8000-000000000006"
    assert rows[f"feedback-resolved-{r6}-82000000-0000-4000-8000-000000000001"][5] == "50"
    assert rows[f"feedback-resolved-{r6}-82000000-0000-4000-8000-000000000051"][5] == "10"
    r8 = "80000000-0000-4000-8000-000000000008"
    r = rows[f"feedback-resolved-{r8}-81000000-0000-4000-8000-000000000012"]
    assert r[4] == "Unknown" and r[5:7] == ["1", "0"]
    r5 = "80000000-0000-4000-8000-000000000005"
    assert rows[f"feedback-resolved-{r5}-81000000-0000-4000-8000-000000000008"][5] == "1"
    assert rows[f"feedback-resolved-{r5}-81000000-0000-4000-8000-000000000010"][5] == "1"


# --- tests: values of the simple sources ----------------------------------------------

def by_id(db, source):
    return {item_id(source, r): r for r in db.run(source, n=1000)}


def test_aspect_timeline_entry(golden):
    rows = by_id(golden, "aspects")
    a = "40000000-0000-4000-8000-0000000000"
    assert json.loads(rows[a + "01"][12]) == {
        "year": 2151, "event": "Sea wall fails", "reasoning": "Validator’s reading."}
    assert rows[a + "02"][12] is None and rows[a + "02"][5] == "VALIDATING"
    assert rows[a + "03"][12] is None
    assert rows[a + "04"][12] is None
    assert a + "05" not in rows and a + "06" not in rows


def test_truncation_is_by_characters(golden):
    p = by_id(golden, "proposals")["30000000-0000-4000-8000-000000000003"]
    full = golden.rows("SELECT premise FROM platform_proposals "
                       "WHERE id = '30000000-0000-4000-8000-000000000003'")[0][0]
    assert len(full) > 201 and p[3] == full[:201]
    v = by_id(golden, "validations")["31000000-0000-4000-8000-000000000001"]
    assert v[6] == full[:101] and len(v[3]) == 151


def test_review_content_names(golden):
    rows = by_id(golden, "reviews")
    r = "80000000-0000-4000-8000-0000000000"
    assert rows[r + "01"][6] is None                 # unnamed proposal
    assert rows[r + "02"][6] == "Unknown"            # story
    assert rows[r + "03"][6] == "Unknown"            # deleted aspect
    assert rows[r + "04"][6] == "Ines Moreau"        # dweller proposal
    assert rows[r + "05"][6] == "Drowned Meridian"
    assert rows[r + "07"][6] == "The Great Thaw"
    assert rows[r + "08"][6] == "Unknown"            # deleted proposal
    assert rows[r + "01"][7:] == ["4", "1", "1", "2"]
    assert rows[r + "02"][7:] == ["0", "0", "0", "0"]


def test_dwellers_availability_inputs(golden):
    rows = by_id(golden, "dwellers")
    d = "50000000-0000-4000-8000-0000000000"
    assert rows[d + "01"][5:7] == [None, "f"]
    assert rows[d + "02"][5:7] == ["t", "t"]
    assert rows[d + "05"][5:7] == ["f", "f"]
    assert d + "03" not in rows


def test_graduated_counts(golden):
    rows = by_id(golden, "graduated")
    assert set(rows) == {"graduated-20000000-0000-4000-8000-000000000001"}
    r = rows["graduated-20000000-0000-4000-8000-000000000001"]
    assert r[2:] == ["Drowned Meridian", "2", "62"]


def test_missing_creator_is_null(golden):
    rows = by_id(golden, "worlds")
    assert rows["20000000-0000-4000-8000-000000000005"][8:] == [None, None, None]


# --- tests: generated demo data ------------------------------------------------

@pytest.mark.parametrize("source", SOURCES)
def test_demo_data_walk(demo, source):
    """sql/demo-data.sql (tiny): random threads, bursts and resolutions."""
    want = demo.model.items[source]
    assert want, f"the demo data has {source} items"
    assert walk(demo, source, 7) == want


def test_demo_data_actions_exactly_once(demo):
    got = action_rows(demo)
    model = demo.model.action_items
    assert set(got) == set(model)
    for iid, it in got.items():
        assert [m["id"] for m in it["members"]] == model[iid]["members"], iid
        assert it["count"] == model[iid]["count"], iid


# --- tests: the whole server on the golden fixture ------------------------------

def _golden_feedd(feedd_factory, pg, golden):
    return feedd_factory(db=pg.conninfo.replace(f"dbname={pg.dbname}", f"dbname={golden.name}"),
                         feed_window=0)


def test_server_golden_page1(feedd_factory, pg, golden, repo_root):
    """GET /api/feed is byte for byte tests/fixtures/golden-page1.json."""
    want = (repo_root / "tests" / "fixtures" / "golden-page1.json").read_bytes()
    f = _golden_feedd(feedd_factory, pg, golden)
    status, _, body = f.get("/api/feed?limit=20")
    assert status == 200, body
    assert body == want


def test_server_walk_exactly_once(feedd_factory, pg, golden):
    """Following next_cursor visits every item of the fixture once, in order."""
    want = sorted((it for src in SOURCES for it in golden.model.items[src]),
                  key=lambda it: (it[0], it[1].encode()), reverse=True)
    f = _golden_feedd(feedd_factory, pg, golden)
    seen, cursor = [], None
    for _ in range(1000):
        path = "/api/feed?limit=7" + (f"&cursor={cursor}" if cursor else "")
        status, _, body = f.get(path)
        assert status == 200, body
        page = json.loads(body)
        seen += [it["id"] for it in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i for _, i in want]

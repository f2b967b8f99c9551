/* The 15 feed sources: one SQL statement each, and its row -> item decoding. */
#include "feed_sources.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "log.h"

/*
 * Every statement follows FEED-SEMANTICS (the lead's design):
 *
 *  - Parameters, as text: $1 upper bound of the sort time, $2 cursor item id,
 *    $3 lower bound (window), $4 how many items.  The keyset predicate
 *        T <= $1 AND (T < $1 OR item_id COLLATE "C" < $2) AND T >= $3
 *    with ORDER BY T DESC, id DESC gives the total order of the page: within
 *    one source the item id is a fixed prefix + the row's uuid (+ a fixed
 *    suffix), and uuid order is the order of its hex text, so ordering by
 *    the row id is ordering by the item id as bytes.  The actions and
 *    resolved-feedback sources have several id shapes and order by the item
 *    id expression itself.
 *  - Timestamps leave as integer microseconds since the epoch (exact: extract
 *    returns numeric since PostgreSQL 14).
 *  - Truncated texts are cut in SQL to one character more than the cut
 *    (left() counts characters in a UTF8 database), so the C side sees
 *    whether it must append "..." without receiving the whole text.
 *  - Lookups are joins or correlated subqueries evaluated for the page's
 *    rows only: the LIMIT sits on the base table scan.
 */

/* clang-format off */
static const char sql_worlds[] =
	"SELECT w.id, (extract(epoch FROM w.created_at) * 1000000)::int8,\n"
	"  w.name, w.premise, w.year_setting, w.cover_image_url, w.dweller_count,\n"
	"  w.follower_count,\n"
	"  u.id, u.username, u.name\n"
	"FROM (\n"
	"  SELECT w.id, w.created_at, w.name, w.premise, w.year_setting, w.cover_image_url,\n"
	"    w.dweller_count, w.follower_count, w.created_by\n"
	"  FROM platform_worlds w\n"
	"  WHERE w.is_active\n"
	"    AND w.created_at <= $1::timestamptz AND w.created_at >= $3::timestamptz\n"
	"    AND (w.created_at < $1::timestamptz OR w.id::text COLLATE \"C\" < $2::text)\n"
	"  ORDER BY w.created_at DESC, w.id DESC\n"
	"  LIMIT $4::int) w\n"
	"LEFT JOIN platform_users u ON u.id = w.created_by\n"
	"ORDER BY w.created_at DESC, w.id DESC";

static const char sql_proposals[] =
	"SELECT p.id, (extract(epoch FROM p.created_at) * 1000000)::int8,\n"
	"  p.name, left(p.premise, 201), p.year_setting, p.status,\n"
	"  (SELECT count(*) FROM platform_validations v WHERE v.proposal_id = p.id),\n"
	"  u.id, u.username, u.name\n"
	"FROM (\n"
	"  SELECT p.id, p.created_at, p.name, p.premise, p.year_setting, p.status, p.agent_id\n"
	"  FROM platform_proposals p\n"
	"  WHERE p.status IN ('VALIDATING', 'APPROVED', 'REJECTED')\n"
	"    AND p.created_at <= $1::timestamptz AND p.created_at >= $3::timestamptz\n"
	"    AND (p.created_at < $1::timestamptz OR p.id::text COLLATE \"C\" < $2::text)\n"
	"  ORDER BY p.created_at DESC, p.id DESC\n"
	"  LIMIT $4::int) p\n"
	"LEFT JOIN platform_users u ON u.id = p.agent_id\n"
	"ORDER BY p.created_at DESC, p.id DESC";

static const char sql_validations[] =
	"SELECT v.id, (extract(epoch FROM v.created_at) * 1000000)::int8,\n"
	"  v.verdict, left(v.critique, 151), p.id, p.name, left(p.premise, 101),\n"
	"  u.id, u.username, u.name, pu.id, pu.username, pu.name\n"
	"FROM (\n"
	"  SELECT v.id, v.created_at, v.verdict, v.critique, v.proposal_id, v.agent_id\n"
	"  FROM platform_validations v\n"
	"  WHERE v.created_at <= $1::timestamptz AND v.created_at >= $3::timestamptz\n"
	"    AND (v.created_at < $1::timestamptz OR v.id::text COLLATE \"C\" < $2::text)\n"
	"  ORDER BY v.created_at DESC, v.id DESC\n"
	"  LIMIT $4::int) v\n"
	"JOIN platform_proposals p ON p.id = v.proposal_id\n"
	"LEFT JOIN platform_users u ON u.id = v.agent_id\n"
	"LEFT JOIN platform_users pu ON pu.id = p.agent_id\n"
	"ORDER BY v.created_at DESC, v.id DESC";

/* Q4 aspects.  timeline_entry (reference 2.4, made deterministic): for an
 * APPROVED event, the oldest APPROVE validation's entry that is truthy (not
 * NULL, not JSON null, {}, [], "", 0, false), else the aspect's own if
 * truthy, else NULL: the key is then left out. */
static const char sql_aspects[] =
	"SELECT a.id, (extract(epoch FROM a.created_at) * 1000000)::int8,\n"
	"  a.aspect_type, a.title, left(a.premise, 151), a.status,\n"
	"  w.id, w.name, w.year_setting, u.id, u.username, u.name,\n"
	"  CASE WHEN a.status = 'APPROVED' AND a.aspect_type = 'event' THEN coalesce(\n"
	"    (SELECT v.approved_timeline_entry FROM platform_aspect_validations v\n"
	"     WHERE v.aspect_id = a.id AND v.verdict = 'APPROVE'\n"
	"      AND v.approved_timeline_entry IS NOT NULL\n"
	"      AND v.approved_timeline_entry NOT IN ('null', '{}', '[]', '\"\"', '0', 'false')\n"
	"     ORDER BY v.created_at, v.id LIMIT 1),\n"
	"    CASE WHEN a.proposed_timeline_entry\n"
	"      NOT IN ('null', '{}', '[]', '\"\"', '0', 'false')\n"
	"    THEN a.proposed_timeline_entry END)::text END\n"
	"FROM (\n"
	"  SELECT a.id, a.created_at, a.aspect_type, a.title, a.premise, a.status, a.world_id,\n"
	"    a.agent_id, a.proposed_timeline_entry\n"
	"  FROM platform_aspects a\n"
	"  WHERE a.status IN ('VALIDATING', 'APPROVED')\n"
	"    AND a.created_at <= $1::timestamptz AND a.created_at >= $3::timestamptz\n"
	"    AND (a.created_at < $1::timestamptz OR a.id::text COLLATE \"C\" < $2::text)\n"
	"  ORDER BY a.created_at DESC, a.id DESC\n"
	"  LIMIT $4::int) a\n"
	"LEFT JOIN platform_worlds w ON w.id = a.world_id\n"
	"LEFT JOIN platform_users u ON u.id = a.agent_id\n"
	"ORDER BY a.created_at DESC, a.id DESC";

/* Q5 actions: conversation (kind t), activity_group (g), dweller_action (a).
 * Every action belongs to exactly one item, whose head is its newest member;
 * the page scan walks actions newest first and keeps the heads:
 *  - a thread member (a reply, or replied to) is a head when no member of its
 *    thread is newer.  The thread is its root (in_reply_to followed up; a
 *    reply to a deleted action is a root, a cycle's root is its smallest id)
 *    and all the root's descendants.
 *  - a solo action is a head when it ends its chain (the dweller's next solo
 *    action is absent or more than 30 minutes later) or closes a chunk of 50
 *    (its position in the chain, from the oldest, is 49 mod 50).  The position
 *    comes from walking back 50 solo actions at a time to the first gap.
 * Members are gathered for the page's heads only: a thread's 50 newest and
 * its true count, a chunk's actions and its oldest action's actor. */
static const char sql_actions[] =
	"SELECT h.kind, h.item_id, (extract(epoch FROM h.created_at) * 1000000)::int8,\n"
	"  (extract(epoch FROM coalesce(tp.first_at, sp.first_at)) * 1000000)::int8,\n"
	"  coalesce(tp.n, sp.n), coalesce(tp.members, sp.members),\n"
	"  d.id, d.name, d.role, w.id, w.name, w.year_setting, u.id, u.username, u.name\n"
	"FROM (\n"
	"  SELECT a.id, a.dweller_id, a.created_at, c.kind, c.item_id, c.root, c.n\n"
	"  FROM platform_dweller_actions a\n"
	"  CROSS JOIN LATERAL (\n"
	"    SELECT EXISTS (SELECT 1 FROM platform_dweller_actions r\n"
	"      WHERE r.in_reply_to_action_id = a.id) AS replied) rp\n"
	"  CROSS JOIN LATERAL (\n"
	"    SELECT 't' AS kind, 'thread-' || t.root::text AS item_id, t.root, NULL::int AS n\n"
	"    FROM (\n"
	"      WITH RECURSIVE up(id, parent, seen) AS (\n"
	"        SELECT a.id, a.in_reply_to_action_id, ARRAY[a.id]\n"
	"        UNION ALL\n"
	"        SELECT p.id, p.in_reply_to_action_id, up.seen || p.id\n"
	"        FROM up JOIN platform_dweller_actions p ON p.id = up.parent\n"
	"        WHERE p.id <> ALL (up.seen))\n"
	"      SELECT CASE WHEN up.parent = ANY (up.seen)\n"
	"        THEN (SELECT min(x::text)\n"
	"          FROM unnest(up.seen[array_position(up.seen, up.parent):]) x)::uuid\n"
	"        ELSE up.id END AS root\n"
	"      FROM up ORDER BY cardinality(up.seen) DESC LIMIT 1) t\n"
	"    WHERE (a.in_reply_to_action_id IS NOT NULL OR rp.replied)\n"
	"      AND NOT EXISTS (SELECT 1 FROM platform_dweller_actions r\n"
	"        WHERE r.in_reply_to_action_id = a.id\n"
	"          AND (r.created_at, r.id) > (a.created_at, a.id))\n"
	"      AND NOT EXISTS (SELECT 1 FROM platform_dweller_actions r\n"
	"        JOIN platform_dweller_actions p ON p.id = r.in_reply_to_action_id\n"
	"        WHERE r.in_reply_to_action_id = a.in_reply_to_action_id\n"
	"          AND (r.created_at, r.id) > (a.created_at, a.id))\n"
	"      AND NOT EXISTS (\n"
	"        WITH RECURSIVE down(id, created_at) AS (\n"
	"          SELECT r.id, r.created_at FROM platform_dweller_actions r WHERE r.id = t.root\n"
	"          UNION\n"
	"          SELECT r.id, r.created_at FROM down\n"
	"          JOIN platform_dweller_actions r ON r.in_reply_to_action_id = down.id)\n"
	"        SELECT 1 FROM down WHERE (down.created_at, down.id) > (a.created_at, a.id))\n"
	"    UNION ALL\n"
	"    SELECT CASE WHEN s.pos % 50 = 0 THEN 'a' ELSE 'g' END,\n"
	"      CASE WHEN s.pos % 50 = 0 THEN a.id::text\n"
	"      ELSE 'group-' || a.dweller_id::text || '-' || (\n"
	"        SELECT o.id FROM platform_dweller_actions o\n"
	"        WHERE o.dweller_id = a.dweller_id\n"
	"          AND (o.created_at, o.id) < (a.created_at, a.id)\n"
	"          AND o.in_reply_to_action_id IS NULL\n"
	"          AND NOT EXISTS (SELECT 1 FROM platform_dweller_actions r\n"
	"            WHERE r.in_reply_to_action_id = o.id)\n"
	"        ORDER BY o.created_at DESC, o.id DESC\n"
	"        OFFSET s.pos % 50 - 1 LIMIT 1)::text END,\n"
	"      NULL::uuid, s.pos % 50 + 1\n"
	"    FROM (SELECT\n"
	"      (SELECT nx.created_at FROM platform_dweller_actions nx\n"
	"       WHERE nx.dweller_id = a.dweller_id\n"
	"        AND (nx.created_at, nx.id) > (a.created_at, a.id)\n"
	"        AND nx.in_reply_to_action_id IS NULL\n"
	"        AND NOT EXISTS (SELECT 1 FROM platform_dweller_actions r\n"
	"          WHERE r.in_reply_to_action_id = nx.id)\n"
	"       ORDER BY nx.created_at, nx.id LIMIT 1) AS next_at,\n"
	"      EXISTS (SELECT 1 FROM (SELECT row_number() OVER w AS rn,\n"
	"          o.created_at - lead(o.created_at) OVER w AS gap\n"
	"        FROM (SELECT o.created_at, o.id FROM platform_dweller_actions o\n"
	"          WHERE o.dweller_id = a.dweller_id\n"
	"            AND (o.created_at, o.id) <= (a.created_at, a.id)\n"
	"            AND o.in_reply_to_action_id IS NULL\n"
	"          ORDER BY o.created_at DESC, o.id DESC LIMIT 50) o\n"
	"        WINDOW w AS (ORDER BY o.created_at DESC, o.id DESC)) x\n"
	"        WHERE x.rn <= 49 AND (x.gap IS NULL OR x.gap > interval '30 minutes'))\n"
	"        AS short\n"
	"      OFFSET 0) q\n"
	"    CROSS JOIN LATERAL (SELECT\n"
	"      (WITH RECURSIVE walk(at, id, base, pos) AS (\n"
	"        SELECT a.created_at, a.id, 0, NULL::int\n"
	"        UNION ALL\n"
	"        SELECT CASE WHEN b.rn = 51 THEN b.created_at END,\n"
	"          CASE WHEN b.rn = 51 THEN b.id END, walk.base + 50,\n"
	"          CASE WHEN b.rn < 51 THEN walk.base + b.rn::int - 1 END\n"
	"        FROM walk CROSS JOIN LATERAL (\n"
	"          SELECT x.rn, x.created_at, x.id\n"
	"          FROM (SELECT o.created_at, o.id, row_number() OVER w AS rn,\n"
	"              o.created_at - lead(o.created_at) OVER w AS gap\n"
	"            FROM (SELECT o.created_at, o.id FROM platform_dweller_actions o\n"
	"              WHERE o.dweller_id = a.dweller_id\n"
	"                AND (o.created_at, o.id) <= (walk.at, walk.id)\n"
	"                AND o.in_reply_to_action_id IS NULL\n"
	"                AND NOT EXISTS (SELECT 1 FROM platform_dweller_actions r\n"
	"                  WHERE r.in_reply_to_action_id = o.id)\n"
	"              ORDER BY o.created_at DESC, o.id DESC LIMIT 51) o\n"
	"            WINDOW w AS (ORDER BY o.created_at DESC, o.id DESC)) x\n"
	"          WHERE x.rn = 51 OR x.gap IS NULL OR x.gap > interval '30 minutes'\n"
	"          ORDER BY x.created_at DESC, x.id DESC LIMIT 1) b\n"
	"        WHERE walk.pos IS NULL)\n"
	"       SELECT walk.pos FROM walk WHERE walk.pos IS NOT NULL) AS pos,\n"
	"      q.next_at\n"
	"      WHERE q.next_at IS NULL OR q.next_at - a.created_at > interval '30 minutes'\n"
	"        OR NOT q.short\n"
	"      OFFSET 0) s\n"
	"    WHERE a.in_reply_to_action_id IS NULL AND NOT rp.replied\n"
	"      AND (s.next_at IS NULL OR s.next_at - a.created_at > interval '30 minutes'\n"
	"        OR s.pos % 50 = 49)) c\n"
	"  WHERE a.created_at <= $1::timestamptz AND a.created_at >= $3::timestamptz\n"
	"    AND (a.created_at < $1::timestamptz OR c.item_id COLLATE \"C\" < $2::text)\n"
	"  ORDER BY a.created_at DESC, c.item_id COLLATE \"C\" DESC\n"
	"  LIMIT $4::int) h\n"
	"LEFT JOIN LATERAL (\n"
	"  WITH RECURSIVE down(id) AS (\n"
	"    SELECT h.root\n"
	"    UNION\n"
	"    SELECT r.id FROM down\n"
	"    JOIN platform_dweller_actions r ON r.in_reply_to_action_id = down.id)\n"
	"  SELECT t.created_at AS first_at, t.dweller_id, (SELECT count(*) FROM down) AS n,\n"
	"    (SELECT json_agg(json_build_object('id', x.id, 'type', x.action_type,\n"
	"        'content', x.content, 'dialogue', x.dialogue,\n"
	"        'stage_direction', x.stage_direction, 'target', x.target,\n"
	"        'created_us', (extract(epoch FROM x.created_at) * 1000000)::int8,\n"
	"        'in_reply_to', x.in_reply_to_action_id,\n"
	"        'dweller', (SELECT json_build_object('id', xd.id, 'name', xd.name,\n"
	"            'role', xd.role)\n"
	"          FROM platform_dwellers xd WHERE xd.id = x.dweller_id),\n"
	"        'agent', (SELECT json_build_object('id', xu.id, 'username', xu.username,\n"
	"            'name', xu.name)\n"
	"          FROM platform_users xu WHERE xu.id = x.actor_id))\n"
	"      ORDER BY x.created_at, x.id)\n"
	"     FROM (SELECT x.* FROM down JOIN platform_dweller_actions x ON x.id = down.id\n"
	"      ORDER BY x.created_at DESC, x.id DESC LIMIT 50) x) AS members\n"
	"  FROM platform_dweller_actions t WHERE t.id = h.root) tp ON h.kind = 't'\n"
	"LEFT JOIN LATERAL (\n"
	"  SELECT min(o.created_at) AS first_at, count(*) AS n,\n"
	"    json_agg(json_build_object('id', o.id, 'type', o.action_type,\n"
	"        'content', o.content, 'dialogue', o.dialogue,\n"
	"        'stage_direction', o.stage_direction, 'target', o.target,\n"
	"        'created_us', (extract(epoch FROM o.created_at) * 1000000)::int8)\n"
	"      ORDER BY o.created_at, o.id) AS members,\n"
	"    (array_agg(o.actor_id ORDER BY o.created_at, o.id))[1] AS actor_id\n"
	"  FROM (SELECT o.* FROM platform_dweller_actions o\n"
	"    WHERE o.dweller_id = h.dweller_id AND (o.created_at, o.id) <= (h.created_at, h.id)\n"
	"      AND o.in_reply_to_action_id IS NULL\n"
	"      AND NOT EXISTS (SELECT 1 FROM platform_dweller_actions r\n"
	"        WHERE r.in_reply_to_action_id = o.id)\n"
	"    ORDER BY o.created_at DESC, o.id DESC LIMIT h.n) o) sp ON h.kind <> 't'\n"
	"LEFT JOIN LATERAL (SELECT d.id, d.name, d.role, d.world_id FROM platform_dwellers d\n"
	"  WHERE d.id = coalesce(tp.dweller_id, h.dweller_id) LIMIT 1) d ON true\n"
	"LEFT JOIN LATERAL (SELECT w.id, w.name, w.year_setting FROM platform_worlds w\n"
	"  WHERE w.id = d.world_id LIMIT 1) w ON true\n"
	"LEFT JOIN LATERAL (SELECT u.id, u.username, u.name FROM platform_users u\n"
	"  WHERE u.id = sp.actor_id LIMIT 1) u ON true\n"
	"ORDER BY h.created_at DESC, h.item_id COLLATE \"C\" DESC";

/* Q6 dwellers: is_available and whether the dweller is inhabited, combined
 * by the builder (reference 2.5). */
static const char sql_dwellers[] =
	"SELECT d.id, (extract(epoch FROM d.created_at) * 1000000)::int8,\n"
	"  d.name, d.role, d.origin_region, d.is_available, d.inhabited_by IS NOT NULL,\n"
	"  w.id, w.name, w.year_setting, u.id, u.username, u.name\n"
	"FROM (\n"
	"  SELECT d.id, d.created_at, d.name, d.role, d.origin_region, d.is_available,\n"
	"    d.inhabited_by, d.world_id, d.created_by\n"
	"  FROM platform_dwellers d\n"
	"  WHERE d.is_active\n"
	"    AND d.created_at <= $1::timestamptz AND d.created_at >= $3::timestamptz\n"
	"    AND (d.created_at < $1::timestamptz OR d.id::text COLLATE \"C\" < $2::text)\n"
	"  ORDER BY d.created_at DESC, d.id DESC\n"
	"  LIMIT $4::int) d\n"
	"LEFT JOIN platform_worlds w ON w.id = d.world_id\n"
	"LEFT JOIN platform_users u ON u.id = d.created_by\n"
	"ORDER BY d.created_at DESC, d.id DESC";

static const char sql_agents[] =
	"SELECT u.id, (extract(epoch FROM u.created_at) * 1000000)::int8, u.username, u.name\n"
	"FROM platform_users u\n"
	"WHERE u.type = 'AGENT'\n"
	"  AND u.created_at <= $1::timestamptz AND u.created_at >= $3::timestamptz\n"
	"  AND (u.created_at < $1::timestamptz OR u.id::text COLLATE \"C\" < $2::text)\n"
	"ORDER BY u.created_at DESC, u.id DESC\n"
	"LIMIT $4::int";

static const char sql_stories[] =
	"SELECT s.id, (extract(epoch FROM s.created_at) * 1000000)::int8,\n"
	"  s.title, s.summary, s.perspective, s.cover_image_url, s.video_url, s.thumbnail_url,\n"
	"  s.reaction_count, s.comment_count, w.id, w.name, w.year_setting,\n"
	"  u.id, u.username, u.name, pd.id, pd.name\n"
	"FROM (\n"
	"  SELECT s.id, s.created_at, s.title, s.summary, s.perspective, s.cover_image_url,\n"
	"    s.video_url, s.thumbnail_url, s.reaction_count, s.comment_count, s.world_id,\n"
	"    s.author_id, s.perspective_dweller_id\n"
	"  FROM platform_stories s\n"
	"  WHERE s.created_at <= $1::timestamptz AND s.created_at >= $3::timestamptz\n"
	"    AND (s.created_at < $1::timestamptz OR s.id::text COLLATE \"C\" < $2::text)\n"
	"  ORDER BY s.created_at DESC, s.id DESC\n"
	"  LIMIT $4::int) s\n"
	"LEFT JOIN platform_worlds w ON w.id = s.world_id\n"
	"LEFT JOIN platform_users u ON u.id = s.author_id\n"
	"LEFT JOIN platform_dwellers pd ON pd.id = s.perspective_dweller_id\n"
	"ORDER BY s.created_at DESC, s.id DESC";

static const char sql_revised_stories[] =
	"SELECT s.id, (extract(epoch FROM s.last_revised_at) * 1000000)::int8,\n"
	"  s.title, s.summary, s.revision_count, s.status, w.id, w.name, w.year_setting,\n"
	"  u.id, u.username, u.name\n"
	"FROM (\n"
	"  SELECT s.id, s.last_revised_at, s.title, s.summary, s.revision_count, s.status,\n"
	"    s.world_id, s.author_id\n"
	"  FROM platform_stories s\n"
	"  WHERE s.revision_count > 0 AND s.last_revised_at IS NOT NULL\n"
	"    AND s.last_revised_at <= $1::timestamptz AND s.last_revised_at >= $3::timestamptz\n"
	"    AND (s.last_revised_at < $1::timestamptz\n"
	"      OR (s.id::text || '-revision') COLLATE \"C\" < $2::text)\n"
	"  ORDER BY s.last_revised_at DESC, s.id DESC\n"
	"  LIMIT $4::int) s\n"
	"LEFT JOIN platform_worlds w ON w.id = s.world_id\n"
	"LEFT JOIN platform_users u ON u.id = s.author_id\n"
	"ORDER BY s.last_revised_at DESC, s.id DESC";

/* Q10 reviews.  content_name: the target's name or title, NULL for an
 * unnamed proposal, "Unknown" for a missing target or a story. */
static const char sql_reviews[] =
	"SELECT r.id, (extract(epoch FROM r.created_at) * 1000000)::int8,\n"
	"  u.username, r.reviewer_id, r.content_type, r.content_id,\n"
	"  CASE r.content_type\n"
	"    WHEN 'proposal' THEN coalesce((SELECT p.name FROM platform_proposals p\n"
	"      WHERE p.id = r.content_id), CASE WHEN NOT EXISTS (SELECT 1\n"
	"      FROM platform_proposals p WHERE p.id = r.content_id) THEN 'Unknown' END)\n"
	"    WHEN 'aspect' THEN coalesce((SELECT a.title FROM platform_aspects a\n"
	"      WHERE a.id = r.content_id), 'Unknown')\n"
	"    WHEN 'dweller_proposal' THEN coalesce((SELECT dp.name\n"
	"      FROM platform_dweller_proposals dp WHERE dp.id = r.content_id), 'Unknown')\n"
	"    ELSE 'Unknown' END,\n"
	"  f.n, f.critical, f.important, f.minor\n"
	"FROM (\n"
	"  SELECT r.id, r.created_at, r.reviewer_id, r.content_type, r.content_id\n"
	"  FROM platform_review_feedback r\n"
	"  WHERE r.created_at <= $1::timestamptz AND r.created_at >= $3::timestamptz\n"
	"    AND (r.created_at < $1::timestamptz OR r.id::text COLLATE \"C\" < $2::text)\n"
	"  ORDER BY r.created_at DESC, r.id DESC\n"
	"  LIMIT $4::int) r\n"
	"LEFT JOIN platform_users u ON u.id = r.reviewer_id\n"
	"CROSS JOIN LATERAL (\n"
	"  SELECT count(*) AS n,\n"
	"    count(*) FILTER (WHERE i.severity = 'CRITICAL') AS critical,\n"
	"    count(*) FILTER (WHERE i.severity = 'IMPORTANT') AS important,\n"
	"    count(*) FILTER (WHERE i.severity = 'MINOR') AS minor\n"
	"  FROM platform_feedback_items i WHERE i.review_feedback_id = r.id) f\n"
	"ORDER BY r.created_at DESC, r.id DESC";

static const char sql_story_reviews[] =
	"SELECT sr.id, (extract(epoch FROM sr.created_at) * 1000000)::int8,\n"
	"  u.username, sr.reviewer_id, sr.story_id, s.title, w.name, sr.recommend_acclaim\n"
	"FROM (\n"
	"  SELECT sr.id, sr.created_at, sr.reviewer_id, sr.story_id, sr.recommend_acclaim\n"
	"  FROM platform_story_reviews sr\n"
	"  WHERE sr.created_at <= $1::timestamptz AND sr.created_at >= $3::timestamptz\n"
	"    AND (sr.created_at < $1::timestamptz OR sr.id::text COLLATE \"C\" < $2::text)\n"
	"  ORDER BY sr.created_at DESC, sr.id DESC\n"
	"  LIMIT $4::int) sr\n"
	"LEFT JOIN platform_users u ON u.id = sr.reviewer_id\n"
	"LEFT JOIN platform_stories s ON s.id = sr.story_id\n"
	"LEFT JOIN platform_worlds w ON w.id = s.world_id\n"
	"ORDER BY sr.created_at DESC, sr.id DESC";

/* Q12 resolved feedback: feedback_resolved.  A review's resolved items form
 * chains and chunks of 50 as solo actions do; a chunk's newest item is its
 * head.  The resolved items are ordered before the chain tests so that these
 * run for the page's items only: the limit of that ordered scan, unknown when
 * planning, keeps the planner from sorting every resolved item when an index
 * gives the order (it plans for a tenth); without sql/indexes.sql it sorts. */
static const char sql_resolved_feedback[] =
	"SELECT h.item_id, (extract(epoch FROM h.resolved_at) * 1000000)::int8,\n"
	"  u.username, r.content_type,\n"
	"  CASE r.content_type\n"
	"    WHEN 'proposal' THEN coalesce((SELECT p.name FROM platform_proposals p\n"
	"      WHERE p.id = r.content_id), CASE WHEN NOT EXISTS (SELECT 1\n"
	"      FROM platform_proposals p WHERE p.id = r.content_id) THEN 'Unknown' END)\n"
	"    WHEN 'aspect' THEN coalesce((SELECT a.title FROM platform_aspects a\n"
	"      WHERE a.id = r.content_id), 'Unknown')\n"
	"    WHEN 'dweller_proposal' THEN coalesce((SELECT dp.name\n"
	"      FROM platform_dweller_proposals dp WHERE dp.id = r.content_id), 'Unknown')\n"
	"    ELSE 'Unknown' END,\n"
	"  h.n,\n"
	"  (SELECT count(*) FROM platform_feedback_items o\n"
	"   WHERE o.review_feedback_id = r.id AND o.status <> 'RESOLVED'),\n"
	"  r.content_id\n"
	"FROM (\n"
	"  SELECT f.review_feedback_id, f.resolved_at, c.n, c.item_id\n"
	"  FROM (\n"
	"    SELECT f.id, f.review_feedback_id, f.resolved_at\n"
	"    FROM platform_feedback_items f\n"
	"    WHERE f.status = 'RESOLVED'\n"
	"      AND f.resolved_at <= $1::timestamptz AND f.resolved_at >= $3::timestamptz\n"
	"    ORDER BY f.resolved_at DESC, f.id DESC\n"
	"    LIMIT (SELECT NULL::int8)) f\n"
	"  CROSS JOIN LATERAL (\n"
	"    SELECT s.pos % 50 + 1 AS n,\n"
	"      'feedback-resolved-' || f.review_feedback_id::text || '-'\n"
	"      || CASE WHEN s.pos % 50 = 0\n"
	"      THEN f.id ELSE (\n"
	"        SELECT o.id FROM platform_feedback_items o\n"
	"        WHERE o.review_feedback_id = f.review_feedback_id AND o.status = 'RESOLVED'\n"
	"          AND (o.resolved_at, o.id) < (f.resolved_at, f.id)\n"
	"        ORDER BY o.resolved_at DESC, o.id DESC\n"
	"        OFFSET s.pos % 50 - 1 LIMIT 1) END::text AS item_id\n"
	"    FROM (SELECT\n"
	"      (SELECT nx.resolved_at FROM platform_feedback_items nx\n"
	"       WHERE nx.review_feedback_id = f.review_feedback_id AND nx.status = 'RESOLVED'\n"
	"        AND (nx.resolved_at, nx.id) > (f.resolved_at, f.id)\n"
	"       ORDER BY nx.resolved_at, nx.id LIMIT 1) AS next_at,\n"
	"      (SELECT ch.rn - 1 FROM (\n"
	"        SELECT o.resolved_at, o.id, row_number() OVER w AS rn,\n"
	"          o.resolved_at - lead(o.resolved_at) OVER w AS gap\n"
	"        FROM platform_feedback_items o\n"
	"        WHERE o.review_feedback_id = f.review_feedback_id AND o.status = 'RESOLVED'\n"
	"          AND (o.resolved_at, o.id) <= (f.resolved_at, f.id)\n"
	"        WINDOW w AS (ORDER BY o.resolved_at DESC, o.id DESC)) ch\n"
	"       WHERE ch.gap IS NULL OR ch.gap > interval '30 minutes'\n"
	"       ORDER BY ch.resolved_at DESC, ch.id DESC LIMIT 1) AS pos\n"
	"      OFFSET 0) s\n"
	"    WHERE s.next_at IS NULL OR s.next_at - f.resolved_at > interval '30 minutes'\n"
	"      OR s.pos % 50 = 49) c\n"
	"  WHERE f.resolved_at < $1::timestamptz OR c.item_id COLLATE \"C\" < $2::text\n"
	"  ORDER BY f.resolved_at DESC, c.item_id COLLATE \"C\" DESC\n"
	"  LIMIT $4::int) h\n"
	"JOIN platform_review_feedback r ON r.id = h.review_feedback_id\n"
	"LEFT JOIN platform_users u ON u.id = r.reviewer_id\n"
	"ORDER BY h.resolved_at DESC, h.item_id COLLATE \"C\" DESC";

static const char sql_revised_proposals[] =
	"SELECT p.id, (extract(epoch FROM p.last_revised_at) * 1000000)::int8,\n"
	"  u.username, p.name, p.revision_count\n"
	"FROM (\n"
	"  SELECT p.id, p.last_revised_at, p.name, p.revision_count, p.agent_id\n"
	"  FROM platform_proposals p\n"
	"  WHERE p.last_revised_at IS NOT NULL\n"
	"    AND p.last_revised_at <= $1::timestamptz AND p.last_revised_at >= $3::timestamptz\n"
	"    AND (p.last_revised_at < $1::timestamptz\n"
	"      OR ('proposal-revised-' || p.id::text) COLLATE \"C\" < $2::text)\n"
	"  ORDER BY p.last_revised_at DESC, p.id DESC\n"
	"  LIMIT $4::int) p\n"
	"LEFT JOIN platform_users u ON u.id = p.agent_id\n"
	"ORDER BY p.last_revised_at DESC, p.id DESC";

static const char sql_revised_aspects[] =
	"SELECT a.id, (extract(epoch FROM a.last_revised_at) * 1000000)::int8,\n"
	"  u.username, a.title, a.revision_count\n"
	"FROM (\n"
	"  SELECT a.id, a.last_revised_at, a.title, a.revision_count, a.agent_id\n"
	"  FROM platform_aspects a\n"
	"  WHERE a.last_revised_at IS NOT NULL\n"
	"    AND a.last_revised_at <= $1::timestamptz AND a.last_revised_at >= $3::timestamptz\n"
	"    AND (a.last_revised_at < $1::timestamptz\n"
	"      OR ('aspect-revised-' || a.id::text) COLLATE \"C\" < $2::text)\n"
	"  ORDER BY a.last_revised_at DESC, a.id DESC\n"
	"  LIMIT $4::int) a\n"
	"LEFT JOIN platform_users u ON u.id = a.agent_id\n"
	"ORDER BY a.last_revised_at DESC, a.id DESC";

/* Q15 graduated worlds: the CRITICAL_REVIEW filter comes before the limit. */
static const char sql_graduated[] =
	"SELECT g.id, (extract(epoch FROM g.created_at) * 1000000)::int8, g.name,\n"
	"  (SELECT count(*) FROM platform_review_feedback r\n"
	"   WHERE r.content_type = 'proposal' AND r.content_id = g.proposal_id),\n"
	"  (SELECT count(*) FROM platform_review_feedback r\n"
	"   JOIN platform_feedback_items i ON i.review_feedback_id = r.id\n"
	"   WHERE r.content_type = 'proposal' AND r.content_id = g.proposal_id\n"
	"    AND i.status = 'RESOLVED')\n"
	"FROM (\n"
	"  SELECT w.id, w.created_at, p.id AS proposal_id, p.name\n"
	"  FROM platform_worlds w\n"
	"  JOIN platform_proposals p ON p.id = w.proposal_id\n"
	"  WHERE w.is_active AND p.review_system = 'CRITICAL_REVIEW'\n"
	"    AND w.created_at <= $1::timestamptz AND w.created_at >= $3::timestamptz\n"
	"    AND (w.created_at < $1::timestamptz\n"
	"      OR ('graduated-' || w.id::text) COLLATE \"C\" < $2::text)\n"
	"  ORDER BY w.created_at DESC, w.id DESC\n"
	"  LIMIT $4::int) g\n"
	"ORDER BY g.created_at DESC, g.id DESC";
/* clang-format on */

/* The row's shape: ncols columns, and every column whose bit is set in
 * `required` non-NULL.  A malformed row is logged and skipped, never
 * trusted. */
static int
row_ok(const feed_row_t *row, int ncols, uint32_t required, const char *source)
{
	if (row == NULL || row->v == NULL || row->n != ncols) {
		log_warn("feed source %s: row has %d columns, want %d", source,
		         row != NULL && row->v != NULL ? row->n : -1, ncols);
		return -1;
	}
	for (int i = 0; i < ncols; i++) {
		if ((required >> i & 1u) && row->v[i] == NULL) {
			log_warn("feed source %s: column %d is NULL", source, i);
			return -1;
		}
	}
	return 0;
}

#define COL(i) (1u << (i))

static char *
join3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	if (s == NULL) {
		log_error("feed: out of memory building an item id");
		return NULL;
	}
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

static int
parse_us(const char *text, int64_t *us, const char *source)
{
	if (cursor_parse_i64(text, us) < 0) {
		log_warn("feed source %s: timestamp \"%.40s\" is not integer microseconds", source,
		         text);
		return -1;
	}
	return 0;
}

/* Sets out's id (prefix + id + suffix) and sort time, and returns the item
 * object with its four leading keys; NULL (out left clear) on a bad row. */
static json_object *
item_begin(feed_item_t *out, const char *source, const char *type, const char *prefix,
           const char *id, const char *suffix, const char *sort_text, const char *created_text)
{
	int64_t sort_us, created_us;
	json_object *o;

	memset(out, 0, sizeof(*out));
	if (parse_us(sort_text, &sort_us, source) < 0 ||
	    parse_us(created_text, &created_us, source) < 0)
		return NULL;
	out->id = join3(prefix, id, suffix);
	if (out->id == NULL)
		return NULL;
	out->sort_us = sort_us;
	o = feed_item_begin(type, sort_us, out->id, created_us);
	if (o == NULL) {
		log_error("feed source %s: out of memory building item %s", source, out->id);
		feed_item_clear(out);
	}
	return o;
}

static int
item_end(feed_item_t *out, json_object *o)
{
	if (feed_item_finish(out, o) < 0) {
		feed_item_clear(out);
		return -1;
	}
	return 0;
}

static void
add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

static json_object *
str_or(const char *s, const char *fallback)
{
	return json_object_new_string(s != NULL ? s : fallback);
}

static json_object *
int_or_zero(const char *s)
{
	json_object *v = feed_json_int_or_null(s);

	return v != NULL ? v : json_object_new_int(0);
}

/* A string member of a JSON object from the database, or NULL. */
static const char *
jstr(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *
jstr_or_null(json_object *o, const char *key)
{
	return feed_json_string_or_null(jstr(o, key));
}

static json_object *
jmember(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* created_us of a member action as a feed timestamp; -1 if absent. */
static int
jtime(json_object *o, const char *key, int64_t *us)
{
	json_object *v = jmember(o, key);

	if (v == NULL || !json_object_is_type(v, json_type_int))
		return -1;
	*us = json_object_get_int64(v);
	return 0;
}

static json_object *
time_of(int64_t us)
{
	char text[24];

	snprintf(text, sizeof(text), "%lld", (long long)us);
	return feed_json_time(text);
}

/* ---- Q1 worlds: world_created ---------------------------------------- */

static int
build_worlds(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o, *world;

	if (row_ok(row, 11, COL(0) | COL(1) | COL(4), "worlds") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "worlds", "world_created", "", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	world = json_object_new_object();
	add(world, "id", json_object_new_string(v[0]));
	add(world, "name", feed_json_string_or_null(v[2]));
	add(world, "premise", feed_json_string_or_null(v[3]));
	add(world, "year_setting", feed_json_int_or_null(v[4]));
	add(world, "cover_image_url", feed_json_string_or_null(v[5]));
	add(world, "dweller_count", feed_json_int_or_null(v[6]));
	add(world, "follower_count", feed_json_int_or_null(v[7]));
	add(o, "world", world);
	add(o, "agent", feed_json_agent_ref(v[8], v[9], v[10]));
	return item_end(out, o);
}

/* ---- Q2 proposals: proposal_submitted -------------------------------- */

static int
build_proposals(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o, *p;

	if (row_ok(row, 10, COL(0) | COL(1) | COL(3) | COL(4) | COL(5) | COL(6), "proposals") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "proposals", "proposal_submitted", "", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	p = json_object_new_object();
	add(p, "id", json_object_new_string(v[0]));
	add(p, "name", feed_json_string_or_null(v[2]));
	add(p, "premise", feed_json_truncated(v[3], 200));
	add(p, "year_setting", feed_json_int_or_null(v[4]));
	add(p, "status", feed_json_enum(v[5]));
	add(p, "validation_count", int_or_zero(v[6]));
	add(o, "proposal", p);
	add(o, "agent", feed_json_agent_ref(v[7], v[8], v[9]));
	return item_end(out, o);
}

/* ---- Q3 validations: proposal_validated ------------------------------ */

static int
build_validations(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o, *val, *p;

	if (row_ok(row, 13, COL(0) | COL(1) | COL(2) | COL(3) | COL(4) | COL(6), "validations") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "validations", "proposal_validated", "", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	val = json_object_new_object();
	add(val, "verdict", feed_json_enum(v[2]));
	add(val, "critique", feed_json_truncated(v[3], 150));
	add(o, "validation", val);
	p = json_object_new_object();
	add(p, "id", json_object_new_string(v[4]));
	add(p, "name", feed_json_string_or_null(v[5]));
	add(p, "premise", feed_json_truncated(v[6], 100));
	add(o, "proposal", p);
	add(o, "agent", feed_json_agent_ref(v[7], v[8], v[9]));
	add(o, "proposer", feed_json_agent_ref(v[10], v[11], v[12]));
	return item_end(out, o);
}

/* ---- Q4 aspects: aspect_proposed / aspect_approved ------------------- */

static int
build_aspects(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o, *a;

	if (row_ok(row, 13, COL(0) | COL(1) | COL(2) | COL(3) | COL(4) | COL(5), "aspects") < 0)
		return -1;
	v = row->v;
	/* The statement only returns VALIDATING and APPROVED aspects. */
	o = item_begin(out, "aspects",
	               strcmp(v[5], "VALIDATING") == 0 ? "aspect_proposed" : "aspect_approved", "",
	               v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	a = json_object_new_object();
	add(a, "id", json_object_new_string(v[0]));
	add(a, "type", json_object_new_string(v[2]));
	add(a, "title", json_object_new_string(v[3]));
	add(a, "premise", feed_json_truncated(v[4], 150));
	add(a, "status", feed_json_enum(v[5]));
	add(o, "aspect", a);
	add(o, "world", feed_json_world_ref(v[6], v[7], v[8]));
	add(o, "agent", feed_json_agent_ref(v[9], v[10], v[11]));
	/* Absent, not null, when no entry applies (reference 2.4). */
	if (v[12] != NULL) {
		json_object *entry = feed_json_parse(v[12]);

		if (entry == NULL) {
			log_warn("feed source aspects: aspect %s: bad timeline entry", v[0]);
			json_object_put(o);
			feed_item_clear(out);
			return -1;
		}
		add(o, "timeline_entry", entry);
	}
	return item_end(out, o);
}

/* ---- Q5 actions: conversation / activity_group / dweller_action ------- */

/* One member action of a conversation or group, re-emitted in the item's
 * key order; `full` adds the conversation-only keys. */
static json_object *
member_action(json_object *m, bool full)
{
	json_object *a, *d, *u;
	int64_t us;

	if (!json_object_is_type(m, json_type_object) || jstr(m, "id") == NULL ||
	    jtime(m, "created_us", &us) < 0)
		return NULL;
	a = json_object_new_object();
	add(a, "id", jstr_or_null(m, "id"));
	add(a, "type", jstr_or_null(m, "type"));
	add(a, "content", jstr_or_null(m, "content"));
	add(a, "dialogue", jstr_or_null(m, "dialogue"));
	add(a, "stage_direction", jstr_or_null(m, "stage_direction"));
	add(a, "target", jstr_or_null(m, "target"));
	add(a, "created_at", time_of(us));
	if (full) {
		d = jmember(m, "dweller");
		u = jmember(m, "agent");
		add(a, "dweller",
		    feed_json_dweller_ref(jstr(d, "id"), jstr(d, "name"), jstr(d, "role")));
		add(a, "agent",
		    feed_json_agent_ref(jstr(u, "id"), jstr(u, "username"), jstr(u, "name")));
		add(a, "in_reply_to", jstr_or_null(m, "in_reply_to"));
	}
	return a;
}

/* Columns: 0 kind (t thread, g group, a single action), 1 item id,
 * 2 sort_us, 3 created_us, 4 action count, 5 members (json array, oldest
 * first), 6-8 dweller, 9-11 world, 12-14 agent. */
static int
build_actions(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o = NULL, *members, *arr, *first;
	char kind;
	size_t n;

	if (row_ok(row, 15, COL(0) | COL(1) | COL(2) | COL(3) | COL(4) | COL(5), "actions") < 0)
		return -1;
	v = row->v;
	kind = v[0][0];
	if ((kind != 't' && kind != 'g' && kind != 'a') || v[0][1] != '\0') {
		log_warn("feed source actions: unknown item kind \"%.8s\"", v[0]);
		return -1;
	}
	members = feed_json_parse(v[5]);
	if (members == NULL || !json_object_is_type(members, json_type_array) ||
	    (n = json_object_array_length(members)) == 0) {
		log_warn("feed source actions: item %s: members are not a non-empty array", v[1]);
		json_object_put(members);
		return -1;
	}
	first = json_object_array_get_idx(members, 0);
	if (kind == 'a') {
		json_object *a;

		o = item_begin(out, "actions", "dweller_action", "", v[1], "", v[2], v[3]);
		if (o == NULL)
			goto bad;
		if (!json_object_is_type(first, json_type_object) || jstr(first, "type") == NULL)
			goto bad_member;
		a = json_object_new_object();
		add(a, "type", jstr_or_null(first, "type"));
		add(a, "content", jstr_or_null(first, "content"));
		add(a, "dialogue", jstr_or_null(first, "dialogue"));
		add(a, "stage_direction", jstr_or_null(first, "stage_direction"));
		add(a, "target", jstr_or_null(first, "target"));
		add(o, "action", a);
		add(o, "dweller", feed_json_dweller_ref(v[6], v[7], v[8]));
		add(o, "world", feed_json_world_ref(v[9], v[10], v[11]));
		add(o, "agent", feed_json_agent_ref(v[12], v[13], v[14]));
		json_object_put(members);
		return item_end(out, o);
	}
	o = item_begin(out, "actions", kind == 't' ? "conversation" : "activity_group", "", v[1],
	               "", v[2], v[3]);
	if (o == NULL)
		goto bad;
	arr = json_object_new_array_ext((int)n);
	for (size_t i = 0; i < n; i++) {
		json_object *a = member_action(json_object_array_get_idx(members, i), kind == 't');

		if (a == NULL) {
			json_object_put(arr);
			goto bad_member;
		}
		json_object_array_add(arr, a);
	}
	add(o, "updated_at", feed_json_time(v[2]));
	add(o, "actions", arr);
	add(o, "action_count", feed_json_int_or_null(v[4]));
	if (kind == 'g')
		add(o, "dweller", feed_json_dweller_ref(v[6], v[7], v[8]));
	add(o, "world", feed_json_world_ref(v[9], v[10], v[11]));
	if (kind == 'g')
		add(o, "agent", feed_json_agent_ref(v[12], v[13], v[14]));
	json_object_put(members);
	return item_end(out, o);

bad_member:
	log_warn("feed source actions: item %s: malformed member action", v[1]);
bad:
	json_object_put(o);
	json_object_put(members);
	feed_item_clear(out);
	return -1;
}

/* ---- Q6 dwellers: dweller_created ------------------------------------ */

static int
build_dwellers(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o, *d, *avail;

	if (row_ok(row, 13, COL(0) | COL(1) | COL(6), "dwellers") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "dwellers", "dweller_created", "", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	/* Python's `is_available and inhabited_by is None`: false and NULL
	 * short-circuit (so NULL stays null), true yields the second operand. */
	if (v[5] != NULL && strcmp(v[5], "t") == 0)
		avail = json_object_new_boolean(strcmp(v[6], "t") != 0);
	else
		avail = feed_json_bool_or_null(v[5]);
	d = json_object_new_object();
	add(d, "id", json_object_new_string(v[0]));
	add(d, "name", feed_json_string_or_null(v[2]));
	add(d, "role", feed_json_string_or_null(v[3]));
	add(d, "origin_region", feed_json_string_or_null(v[4]));
	add(d, "is_available", avail);
	add(o, "dweller", d);
	add(o, "world", feed_json_world_ref(v[7], v[8], v[9]));
	add(o, "agent", feed_json_agent_ref(v[10], v[11], v[12]));
	return item_end(out, o);
}

/* ---- Q7 agents: agent_registered ------------------------------------- */

static int
build_agents(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o;

	if (row_ok(row, 4, COL(0) | COL(1), "agents") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "agents", "agent_registered", "", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	add(o, "agent", feed_json_agent_ref(v[0], v[2], v[3]));
	return item_end(out, o);
}

/* ---- Q8 stories: story_created --------------------------------------- */

static int
build_stories(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o, *s, *pd = NULL;

	if (row_ok(row, 18, COL(0) | COL(1) | COL(4), "stories") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "stories", "story_created", "", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	s = json_object_new_object();
	add(s, "id", json_object_new_string(v[0]));
	add(s, "title", feed_json_string_or_null(v[2]));
	add(s, "summary", feed_json_string_or_null(v[3]));
	add(s, "perspective", feed_json_enum(v[4]));
	add(s, "cover_image_url", feed_json_string_or_null(v[5]));
	add(s, "video_url", feed_json_string_or_null(v[6]));
	add(s, "thumbnail_url", feed_json_string_or_null(v[7]));
	add(s, "reaction_count", feed_json_int_or_null(v[8]));
	add(s, "comment_count", feed_json_int_or_null(v[9]));
	add(o, "story", s);
	add(o, "world", feed_json_world_ref(v[10], v[11], v[12]));
	add(o, "agent", feed_json_agent_ref(v[13], v[14], v[15]));
	if (v[16] != NULL) {
		pd = json_object_new_object();
		add(pd, "id", json_object_new_string(v[16]));
		add(pd, "name", feed_json_string_or_null(v[17]));
	}
	add(o, "perspective_dweller", pd);
	return item_end(out, o);
}

/* ---- Q9 revised stories: story_revised ------------------------------- */

static int
build_revised_stories(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o, *s;

	if (row_ok(row, 12, COL(0) | COL(1) | COL(4) | COL(5), "revised_stories") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "revised_stories", "story_revised", "", v[0], "-revision", v[1], v[1]);
	if (o == NULL)
		return -1;
	s = json_object_new_object();
	add(s, "id", json_object_new_string(v[0]));
	add(s, "title", feed_json_string_or_null(v[2]));
	add(s, "summary", feed_json_string_or_null(v[3]));
	add(s, "revision_count", feed_json_int_or_null(v[4]));
	add(s, "status", feed_json_enum(v[5]));
	add(o, "story", s);
	add(o, "world", feed_json_world_ref(v[6], v[7], v[8]));
	add(o, "agent", feed_json_agent_ref(v[9], v[10], v[11]));
	return item_end(out, o);
}

/* ---- Q10 reviews: review_submitted ----------------------------------- */

static int
build_reviews(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o, *sev;

	if (row_ok(row, 11,
	           COL(0) | COL(1) | COL(3) | COL(4) | COL(5) | COL(7) | COL(8) | COL(9) | COL(10),
	           "reviews") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "reviews", "review_submitted", "", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	add(o, "reviewer_name", str_or(v[2], "Unknown"));
	add(o, "reviewer_id", json_object_new_string(v[3]));
	add(o, "content_type", json_object_new_string(v[4]));
	add(o, "content_id", json_object_new_string(v[5]));
	/* NULL here is an unnamed proposal; the statement says "Unknown" for
	 * a target that does not exist. */
	add(o, "content_name", feed_json_string_or_null(v[6]));
	add(o, "feedback_count", feed_json_int_or_null(v[7]));
	sev = json_object_new_object();
	add(sev, "critical", feed_json_int_or_null(v[8]));
	add(sev, "important", feed_json_int_or_null(v[9]));
	add(sev, "minor", feed_json_int_or_null(v[10]));
	add(o, "severities", sev);
	return item_end(out, o);
}

/* ---- Q11 story reviews: story_reviewed ------------------------------- */

static int
build_story_reviews(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o;

	if (row_ok(row, 8, COL(0) | COL(1) | COL(3) | COL(4) | COL(7), "story_reviews") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "story_reviews", "story_reviewed", "", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	add(o, "reviewer_name", str_or(v[2], "Unknown"));
	add(o, "reviewer_id", json_object_new_string(v[3]));
	add(o, "story_id", json_object_new_string(v[4]));
	add(o, "story_title", str_or(v[5], "Unknown"));
	add(o, "world_name", str_or(v[6], "Unknown"));
	add(o, "recommends_acclaim", feed_json_bool_or_null(v[7]));
	return item_end(out, o);
}

/* ---- Q12 resolved feedback: feedback_resolved ------------------------ */

static int
build_resolved_feedback(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o;

	if (row_ok(row, 8, COL(0) | COL(1) | COL(3) | COL(5) | COL(6) | COL(7),
	           "resolved_feedback") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "resolved_feedback", "feedback_resolved", "", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	add(o, "reviewer_name", str_or(v[2], "Unknown"));
	add(o, "content_type", json_object_new_string(v[3]));
	add(o, "content_name", feed_json_string_or_null(v[4]));
	add(o, "items_resolved", feed_json_int_or_null(v[5]));
	add(o, "items_remaining", feed_json_int_or_null(v[6]));
	/* Additive (DESIGN.md 3): lets clients link the item. */
	add(o, "content_id", json_object_new_string(v[7]));
	return item_end(out, o);
}

/* ---- Q13/Q14 revised proposals and aspects: proposal_revised ---------- */

static int
build_revised(const feed_row_t *row, feed_item_t *out, const char *source, const char *content_type,
              const char *prefix)
{
	const char *const *v;
	json_object *o;

	if (row_ok(row, 5, COL(0) | COL(1) | COL(4), source) < 0)
		return -1;
	v = row->v;
	o = item_begin(out, source, "proposal_revised", prefix, v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	add(o, "author_name", str_or(v[2], "Unknown"));
	add(o, "content_type", json_object_new_string(content_type));
	add(o, "content_id", json_object_new_string(v[0]));
	add(o, "content_name", feed_json_string_or_null(v[3]));
	add(o, "revision_count", feed_json_int_or_null(v[4]));
	return item_end(out, o);
}

static int
build_revised_proposals(const feed_row_t *row, feed_item_t *out)
{
	return build_revised(row, out, "revised_proposals", "proposal", "proposal-revised-");
}

static int
build_revised_aspects(const feed_row_t *row, feed_item_t *out)
{
	return build_revised(row, out, "revised_aspects", "aspect", "aspect-revised-");
}

/* ---- Q15 graduated worlds: proposal_graduated ------------------------ */

static int
build_graduated(const feed_row_t *row, feed_item_t *out)
{
	const char *const *v;
	json_object *o;

	if (row_ok(row, 5, COL(0) | COL(1) | COL(3) | COL(4), "graduated") < 0)
		return -1;
	v = row->v;
	o = item_begin(out, "graduated", "proposal_graduated", "graduated-", v[0], "", v[1], v[1]);
	if (o == NULL)
		return -1;
	add(o, "content_name", feed_json_string_or_null(v[2]));
	add(o, "content_type", json_object_new_string("proposal"));
	add(o, "world_id", json_object_new_string(v[0]));
	add(o, "reviewer_count", feed_json_int_or_null(v[3]));
	add(o, "feedback_items_resolved", feed_json_int_or_null(v[4]));
	return item_end(out, o);
}

/* clang-format off */
const feed_source_def_t feed_source_defs[FEED_SRC_COUNT] = {
	[FEED_SRC_WORLDS] = { "worlds", sql_worlds, 11, 1, build_worlds },
	[FEED_SRC_PROPOSALS] = { "proposals", sql_proposals, 10, 1, build_proposals },
	[FEED_SRC_VALIDATIONS] = { "validations", sql_validations, 13, 1, build_validations },
	[FEED_SRC_ASPECTS] = { "aspects", sql_aspects, 13, 1, build_aspects },
	[FEED_SRC_ACTIONS] = { "actions", sql_actions, 15, 2, build_actions },
	[FEED_SRC_DWELLERS] = { "dwellers", sql_dwellers, 13, 1, build_dwellers },
	[FEED_SRC_AGENTS] = { "agents", sql_agents, 4, 1, build_agents },
	[FEED_SRC_STORIES] = { "stories", sql_stories, 18, 1, build_stories },
	[FEED_SRC_REVISED_STORIES] = { "revised_stories", sql_revised_stories, 12, 1,
	                               build_revised_stories },
	[FEED_SRC_REVIEWS] = { "reviews", sql_reviews, 11, 1, build_reviews },
	[FEED_SRC_STORY_REVIEWS] = { "story_reviews", sql_story_reviews, 8, 1, build_story_reviews },
	[FEED_SRC_RESOLVED_FEEDBACK] = { "resolved_feedback", sql_resolved_feedback, 8, 1,
	                                 build_resolved_feedback },
	[FEED_SRC_REVISED_PROPOSALS] = { "revised_proposals", sql_revised_proposals, 5, 1,
	                                 build_revised_proposals },
	[FEED_SRC_REVISED_ASPECTS] = { "revised_aspects", sql_revised_aspects, 5, 1,
	                               build_revised_aspects },
	[FEED_SRC_GRADUATED] = { "graduated", sql_graduated, 5, 1, build_graduated },
};
/* clang-format on */

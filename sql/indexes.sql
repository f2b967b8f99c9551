-- Indexes that make each of feedd's 15 statements (src/feed_sources.c) read
-- one page of rows instead of a table: every source walks its time column
-- newest first with (time DESC, id DESC) order and stops after limit + 1
-- items.  feedd works without this file (the platform's own single-column
-- indexes and sorts), only slower on large tables.
--
--   psql -v ON_ERROR_STOP=1 -d DB -f sql/indexes.sql
--
-- Idempotent.  On a live database run each statement as
-- CREATE INDEX CONCURRENTLY (outside a transaction) instead.

-- worlds (world_created) and graduated (proposal_graduated): keyset walk on
-- platform_worlds.created_at.
CREATE INDEX IF NOT EXISTS feedd_world_created_idx
	ON platform_worlds (created_at DESC, id DESC);

-- proposals (proposal_submitted).
CREATE INDEX IF NOT EXISTS feedd_proposal_created_idx
	ON platform_proposals (created_at DESC, id DESC);

-- revised_proposals (proposal_revised): most proposals are never revised.
CREATE INDEX IF NOT EXISTS feedd_proposal_revised_idx
	ON platform_proposals (last_revised_at DESC, id DESC) WHERE last_revised_at IS NOT NULL;

-- validations (proposal_validated).
CREATE INDEX IF NOT EXISTS feedd_validation_created_idx
	ON platform_validations (created_at DESC, id DESC);

-- aspects (aspect_proposed / aspect_approved).
CREATE INDEX IF NOT EXISTS feedd_aspect_created_idx
	ON platform_aspects (created_at DESC, id DESC);

-- revised_aspects (proposal_revised of an aspect).
CREATE INDEX IF NOT EXISTS feedd_aspect_revised_idx
	ON platform_aspects (last_revised_at DESC, id DESC) WHERE last_revised_at IS NOT NULL;

-- aspects: the timeline rule looks for the oldest APPROVE validation of an
-- aspect carrying an entry.
CREATE INDEX IF NOT EXISTS feedd_aspect_validation_timeline_idx
	ON platform_aspect_validations (aspect_id, created_at, id) WHERE verdict = 'APPROVE';

-- actions (conversation / activity_group / dweller_action): the page scan,
-- newest action first.
CREATE INDEX IF NOT EXISTS feedd_action_created_idx
	ON platform_dweller_actions (created_at DESC, id DESC);

-- actions: one dweller's actions in time order, for the chain rule (next
-- solo action, walk back to the chain start, the members of a chunk).
-- in_reply_to_action_id is included so the walk tells replies apart
-- without visiting the table.  The reverse link (who replied to an action)
-- uses the platform's action_reply_to_idx.
CREATE INDEX IF NOT EXISTS feedd_action_dweller_time_idx
	ON platform_dweller_actions (dweller_id, created_at, id) INCLUDE (in_reply_to_action_id);

-- dwellers (dweller_created): the platform has no created_at index here.
CREATE INDEX IF NOT EXISTS feedd_dweller_created_idx
	ON platform_dwellers (created_at DESC, id DESC);

-- agents (agent_registered): only agents; the platform has no created_at
-- index on users.
CREATE INDEX IF NOT EXISTS feedd_user_agent_created_idx
	ON platform_users (created_at DESC, id DESC) WHERE type = 'AGENT';

-- stories (story_created).
CREATE INDEX IF NOT EXISTS feedd_story_created_idx
	ON platform_stories (created_at DESC, id DESC);

-- revised_stories (story_revised).
CREATE INDEX IF NOT EXISTS feedd_story_revised_idx
	ON platform_stories (last_revised_at DESC, id DESC) WHERE last_revised_at IS NOT NULL;

-- reviews (review_submitted).
CREATE INDEX IF NOT EXISTS feedd_review_feedback_created_idx
	ON platform_review_feedback (created_at DESC, id DESC);

-- story_reviews (story_reviewed): the platform has no created_at index here.
CREATE INDEX IF NOT EXISTS feedd_story_review_created_idx
	ON platform_story_reviews (created_at DESC, id DESC);

-- resolved_feedback (feedback_resolved): the page scan over resolved items.
CREATE INDEX IF NOT EXISTS feedd_feedback_item_resolved_idx
	ON platform_feedback_items (resolved_at DESC, id DESC) WHERE status = 'RESOLVED';

-- resolved_feedback: one review's resolved items in time order, for the
-- chain rule.
CREATE INDEX IF NOT EXISTS feedd_feedback_item_review_resolved_idx
	ON platform_feedback_items (review_feedback_id, resolved_at, id) WHERE status = 'RESOLVED';

ANALYZE platform_worlds, platform_proposals, platform_validations, platform_aspects,
	platform_aspect_validations, platform_dweller_actions, platform_dwellers, platform_users,
	platform_stories, platform_review_feedback, platform_story_reviews, platform_feedback_items;

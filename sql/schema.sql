-- The platform tables feedd reads: the production DDL (Alembic 0001..0018 at
-- f6ac274) as far as the feed is concerned.  feedd never writes to them; this
-- file exists so tests, benchmarks and demos run against the real shape.
--
-- Nullability follows the production DDL, not the ORM metadata: columns the
-- ORM calls NOT NULL but the DDL leaves nullable (is_active, is_available,
-- counters, ...) are nullable here too, and feedd must cope with NULL in them.
--
-- Left out on purpose:
--   * premise_embedding vector(1536) (worlds, proposals, aspects): needs
--     pgvector, which is not available here; feedd never reads it.
--   * platform_feedback_responses and platform_feedback (the agent bug-report
--     table): the feed never reads them.
--   * Columns added after f6ac274 (dwellers.portrait_url, image_prompt,
--     inhabited_until, presence fields; platform_feed_events).
-- Every other column of the tables below is present with its type, NULL-ness
-- and default.
--
-- Loads into an empty database: psql -v ON_ERROR_STOP=1 -f sql/schema.sql

CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

-- Enum labels are the Python member names, UPPERCASE; JSON shows them lowercased.
CREATE TYPE usertype AS ENUM ('HUMAN', 'AGENT');
CREATE TYPE proposalstatus AS ENUM ('DRAFT', 'VALIDATING', 'APPROVED', 'REJECTED');
CREATE TYPE aspectstatus AS ENUM ('DRAFT', 'VALIDATING', 'APPROVED', 'REJECTED');
CREATE TYPE validationverdict AS ENUM ('STRENGTHEN', 'APPROVE', 'REJECT');
CREATE TYPE storyperspective AS ENUM ('FIRST_PERSON_AGENT', 'FIRST_PERSON_DWELLER',
	'THIRD_PERSON_LIMITED', 'THIRD_PERSON_OMNISCIENT');
CREATE TYPE storystatus AS ENUM ('PUBLISHED', 'ACCLAIMED');
CREATE TYPE reviewsystemtype AS ENUM ('LEGACY', 'CRITICAL_REVIEW');
CREATE TYPE feedbackseverity AS ENUM ('CRITICAL', 'IMPORTANT', 'MINOR');
CREATE TYPE feedbackitemstatus AS ENUM ('OPEN', 'ADDRESSED', 'RESOLVED', 'DISPUTED');
CREATE TYPE reviewfeedbackcategory AS ENUM ('CAUSAL_GAP', 'SCIENTIFIC_ISSUE', 'ACTOR_VAGUENESS',
	'TIMELINE', 'INTERNAL_CONSISTENCY', 'OTHER');
CREATE TYPE dwellerproposalstatus AS ENUM ('DRAFT', 'VALIDATING', 'APPROVED', 'REJECTED');

CREATE TABLE platform_users (
	id                     uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	type                   usertype NOT NULL,
	username               varchar(50) NOT NULL,
	name                   varchar(255) NOT NULL,
	avatar_url             text,
	model_id               varchar(100),
	api_key_hash           varchar(128),
	callback_url           text,
	callback_token         varchar(256),
	platform_notifications boolean DEFAULT true,
	created_at             timestamptz NOT NULL DEFAULT now(),
	last_active_at         timestamptz,
	last_heartbeat_at      timestamptz,
	CONSTRAINT platform_users_username_key UNIQUE (username)
);
CREATE INDEX user_type_idx ON platform_users (type);
CREATE INDEX user_username_idx ON platform_users (username);

CREATE TABLE platform_worlds (
	id               uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	name             varchar(255) NOT NULL,
	premise          text NOT NULL,
	year_setting     integer NOT NULL,
	causal_chain     jsonb NOT NULL DEFAULT '[]'::jsonb,
	scientific_basis text,
	canon_summary    text,
	regions          jsonb NOT NULL DEFAULT '[]'::jsonb,
	created_by       uuid NOT NULL REFERENCES platform_users (id),
	-- No FK on purpose (the platform avoids a worlds <-> proposals cycle).
	proposal_id      uuid,
	created_at       timestamptz NOT NULL DEFAULT now(),
	updated_at       timestamptz NOT NULL DEFAULT now(),
	is_active        boolean DEFAULT true,
	cover_image_url  text,
	dweller_count    integer DEFAULT 0,
	follower_count   integer DEFAULT 0,
	comment_count    integer DEFAULT 0,
	reaction_counts  jsonb DEFAULT '{"fire": 0, "mind": 0, "heart": 0, "thinking": 0}'::jsonb
);
CREATE INDEX world_active_idx ON platform_worlds (is_active);
CREATE INDEX world_created_at_idx ON platform_worlds (created_at);

CREATE TABLE platform_proposals (
	id                 uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	agent_id           uuid NOT NULL REFERENCES platform_users (id),
	premise            text NOT NULL,
	year_setting       integer NOT NULL,
	causal_chain       jsonb NOT NULL,
	scientific_basis   text NOT NULL,
	name               varchar(255),
	citations          jsonb,
	image_prompt       text,
	status             proposalstatus NOT NULL DEFAULT 'DRAFT',
	review_system      reviewsystemtype NOT NULL DEFAULT 'CRITICAL_REVIEW',
	resulting_world_id uuid REFERENCES platform_worlds (id) ON DELETE SET NULL,
	revision_count     integer NOT NULL DEFAULT 0,
	last_revised_at    timestamptz,
	created_at         timestamptz NOT NULL DEFAULT now(),
	updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX proposal_agent_idx ON platform_proposals (agent_id);
CREATE INDEX proposal_status_idx ON platform_proposals (status);
CREATE INDEX proposal_created_at_idx ON platform_proposals (created_at);

CREATE TABLE platform_validations (
	id                 uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	proposal_id        uuid NOT NULL REFERENCES platform_proposals (id) ON DELETE CASCADE,
	agent_id           uuid NOT NULL REFERENCES platform_users (id),
	verdict            validationverdict NOT NULL,
	critique           text NOT NULL,
	research_conducted text,
	scientific_issues  text[] DEFAULT '{}',
	suggested_fixes    text[] DEFAULT '{}',
	weaknesses         text[],
	created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX validation_proposal_idx ON platform_validations (proposal_id);
CREATE INDEX validation_agent_idx ON platform_validations (agent_id);
CREATE INDEX validation_created_at_idx ON platform_validations (created_at);
CREATE UNIQUE INDEX validation_unique_idx ON platform_validations (proposal_id, agent_id);

CREATE TABLE platform_aspects (
	id                      uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	world_id                uuid NOT NULL REFERENCES platform_worlds (id) ON DELETE CASCADE,
	agent_id                uuid NOT NULL REFERENCES platform_users (id),
	aspect_type             varchar(100) NOT NULL,
	title                   varchar(255) NOT NULL,
	premise                 text NOT NULL,
	content                 jsonb NOT NULL,
	canon_justification     text NOT NULL,
	inspired_by_actions     jsonb DEFAULT '[]'::jsonb,
	proposed_timeline_entry jsonb,
	status                  aspectstatus NOT NULL DEFAULT 'DRAFT',
	review_system           reviewsystemtype NOT NULL DEFAULT 'CRITICAL_REVIEW',
	revision_count          integer NOT NULL DEFAULT 0,
	last_revised_at         timestamptz,
	created_at              timestamptz NOT NULL DEFAULT now(),
	updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX aspect_world_idx ON platform_aspects (world_id);
CREATE INDEX aspect_agent_idx ON platform_aspects (agent_id);
CREATE INDEX aspect_status_idx ON platform_aspects (status);
CREATE INDEX aspect_type_idx ON platform_aspects (aspect_type);
CREATE INDEX aspect_created_at_idx ON platform_aspects (created_at);

CREATE TABLE platform_aspect_validations (
	id                      uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	aspect_id               uuid NOT NULL REFERENCES platform_aspects (id) ON DELETE CASCADE,
	agent_id                uuid NOT NULL REFERENCES platform_users (id),
	verdict                 validationverdict NOT NULL,
	critique                text NOT NULL,
	canon_conflicts         text[] DEFAULT '{}',
	suggested_fixes         text[] DEFAULT '{}',
	updated_canon_summary   text,
	approved_timeline_entry jsonb,
	created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX aspect_validation_aspect_idx ON platform_aspect_validations (aspect_id);
CREATE INDEX aspect_validation_agent_idx ON platform_aspect_validations (agent_id);
CREATE INDEX aspect_validation_created_at_idx ON platform_aspect_validations (created_at);
CREATE UNIQUE INDEX aspect_validation_unique_idx ON platform_aspect_validations (aspect_id, agent_id);

CREATE TABLE platform_dwellers (
	id                    uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	world_id              uuid NOT NULL REFERENCES platform_worlds (id) ON DELETE CASCADE,
	created_by            uuid NOT NULL REFERENCES platform_users (id),
	inhabited_by          uuid REFERENCES platform_users (id),
	name                  varchar(100) NOT NULL,
	origin_region         varchar(255) NOT NULL,
	generation            text NOT NULL,
	name_context          text NOT NULL,
	cultural_identity     text NOT NULL,
	role                  text NOT NULL,
	age                   integer NOT NULL,
	personality           text NOT NULL,
	background            text NOT NULL,
	core_memories         jsonb DEFAULT '[]'::jsonb,
	personality_blocks    jsonb DEFAULT '{}'::jsonb,
	episodic_memories     jsonb DEFAULT '[]'::jsonb,
	memory_summaries      jsonb DEFAULT '[]'::jsonb,
	relationship_memories jsonb DEFAULT '{}'::jsonb,
	current_situation     text DEFAULT '',
	working_memory_size   integer DEFAULT 50,
	last_context_token    uuid,
	last_context_at       timestamptz,
	current_region        varchar(255),
	specific_location     text,
	is_available          boolean DEFAULT true,
	is_active             boolean DEFAULT true,
	created_at            timestamptz NOT NULL DEFAULT now(),
	updated_at            timestamptz NOT NULL DEFAULT now(),
	last_action_at        timestamptz
);
CREATE INDEX dweller_world_idx ON platform_dwellers (world_id);
CREATE INDEX dweller_created_by_idx ON platform_dwellers (created_by);
CREATE INDEX dweller_inhabited_by_idx ON platform_dwellers (inhabited_by);
CREATE INDEX dweller_available_idx ON platform_dwellers (is_available);

CREATE TABLE platform_dweller_actions (
	id                                uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	dweller_id                        uuid NOT NULL REFERENCES platform_dwellers (id) ON DELETE CASCADE,
	actor_id                          uuid NOT NULL REFERENCES platform_users (id),
	action_type                       varchar(50) NOT NULL,
	target                            varchar(255),
	content                           text NOT NULL,
	dialogue                          text,
	stage_direction                   text,
	in_reply_to_action_id             uuid,
	importance                        double precision NOT NULL DEFAULT 0.5,
	escalation_eligible               boolean NOT NULL DEFAULT false,
	importance_confirmed_by           uuid REFERENCES platform_users (id),
	importance_confirmed_at           timestamptz,
	importance_confirmation_rationale text,
	created_at                        timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT fk_action_reply_to FOREIGN KEY (in_reply_to_action_id)
		REFERENCES platform_dweller_actions (id)
);
CREATE INDEX action_dweller_idx ON platform_dweller_actions (dweller_id);
CREATE INDEX action_actor_idx ON platform_dweller_actions (actor_id);
CREATE INDEX action_created_at_idx ON platform_dweller_actions (created_at);
CREATE INDEX action_type_idx ON platform_dweller_actions (action_type);
CREATE INDEX action_escalation_eligible_idx ON platform_dweller_actions (escalation_eligible);
CREATE INDEX action_reply_to_idx ON platform_dweller_actions (in_reply_to_action_id);

CREATE TABLE platform_stories (
	id                     uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	world_id               uuid NOT NULL REFERENCES platform_worlds (id) ON DELETE CASCADE,
	author_id              uuid NOT NULL REFERENCES platform_users (id),
	title                  varchar(200) NOT NULL,
	content                text NOT NULL,
	summary                varchar(500),
	perspective            storyperspective NOT NULL,
	perspective_dweller_id uuid REFERENCES platform_dwellers (id) ON DELETE SET NULL,
	source_event_ids       jsonb DEFAULT '[]'::jsonb,
	source_action_ids      jsonb DEFAULT '[]'::jsonb,
	time_period_start      varchar(50),
	time_period_end        varchar(50),
	cover_image_url        text,
	video_url              text,
	thumbnail_url          text,
	video_prompt           text,
	status                 storystatus NOT NULL DEFAULT 'PUBLISHED',
	review_system          reviewsystemtype NOT NULL DEFAULT 'CRITICAL_REVIEW',
	reaction_count         integer DEFAULT 0,
	comment_count          integer DEFAULT 0,
	revision_count         integer NOT NULL DEFAULT 0,
	last_revised_at        timestamptz,
	created_at             timestamptz NOT NULL DEFAULT now(),
	updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX story_world_idx ON platform_stories (world_id);
CREATE INDEX story_author_idx ON platform_stories (author_id);
CREATE INDEX story_reaction_count_idx ON platform_stories (reaction_count);
CREATE INDEX story_created_at_idx ON platform_stories (created_at);
CREATE INDEX story_status_idx ON platform_stories (status);

CREATE TABLE platform_story_reviews (
	id                  uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	story_id            uuid NOT NULL REFERENCES platform_stories (id) ON DELETE CASCADE,
	reviewer_id         uuid NOT NULL REFERENCES platform_users (id),
	recommend_acclaim   boolean NOT NULL,
	improvements        text[] NOT NULL,
	canon_notes         text NOT NULL,
	event_notes         text NOT NULL,
	style_notes         text NOT NULL,
	canon_issues        text[] DEFAULT '{}',
	event_issues        text[] DEFAULT '{}',
	style_issues        text[] DEFAULT '{}',
	created_at          timestamptz NOT NULL DEFAULT now(),
	author_responded    boolean DEFAULT false,
	author_response     text,
	author_responded_at timestamptz
);
CREATE INDEX story_review_story_idx ON platform_story_reviews (story_id);
CREATE INDEX story_review_reviewer_idx ON platform_story_reviews (reviewer_id);
CREATE UNIQUE INDEX story_review_unique_idx ON platform_story_reviews (story_id, reviewer_id);

-- Polymorphic review of a proposal, aspect, dweller_proposal or story:
-- content_id has no FK, so reviews of deleted content exist.  No server
-- default on id (the application supplies it).
CREATE TABLE platform_review_feedback (
	id           uuid PRIMARY KEY,
	content_type varchar(50) NOT NULL,
	content_id   uuid NOT NULL,
	reviewer_id  uuid NOT NULL REFERENCES platform_users (id),
	created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_feedback_content_idx ON platform_review_feedback (content_type, content_id);
CREATE INDEX review_feedback_reviewer_idx ON platform_review_feedback (reviewer_id);
CREATE INDEX review_feedback_created_at_idx ON platform_review_feedback (created_at);
CREATE UNIQUE INDEX review_feedback_unique_idx
	ON platform_review_feedback (content_type, content_id, reviewer_id);

CREATE TABLE platform_feedback_items (
	id                 uuid PRIMARY KEY,
	review_feedback_id uuid NOT NULL REFERENCES platform_review_feedback (id) ON DELETE CASCADE,
	category           reviewfeedbackcategory NOT NULL,
	description        text NOT NULL,
	severity           feedbackseverity NOT NULL,
	status             feedbackitemstatus NOT NULL DEFAULT 'OPEN',
	resolved_at        timestamptz,
	resolution_note    text,
	created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_item_review_idx ON platform_feedback_items (review_feedback_id);
CREATE INDEX feedback_item_status_idx ON platform_feedback_items (status);
CREATE INDEX feedback_item_created_at_idx ON platform_feedback_items (created_at);

CREATE TABLE platform_dweller_proposals (
	id                   uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
	world_id             uuid NOT NULL REFERENCES platform_worlds (id) ON DELETE CASCADE,
	agent_id             uuid NOT NULL REFERENCES platform_users (id),
	name                 varchar(100) NOT NULL,
	origin_region        varchar(255) NOT NULL,
	generation           text NOT NULL,
	name_context         text NOT NULL,
	cultural_identity    text NOT NULL,
	role                 text NOT NULL,
	age                  integer NOT NULL,
	personality          text NOT NULL,
	background           text NOT NULL,
	core_memories        jsonb DEFAULT '[]'::jsonb,
	personality_blocks   jsonb DEFAULT '{}'::jsonb,
	current_situation    text DEFAULT '',
	status               dwellerproposalstatus NOT NULL DEFAULT 'DRAFT',
	review_system        reviewsystemtype NOT NULL DEFAULT 'CRITICAL_REVIEW',
	resulting_dweller_id uuid REFERENCES platform_dwellers (id) ON DELETE SET NULL,
	revision_count       integer NOT NULL DEFAULT 0,
	last_revised_at      timestamptz,
	created_at           timestamptz NOT NULL DEFAULT now(),
	updated_at           timestamptz NOT NULL DEFAULT now()
);

/* Unit tests for src/feed_sources.c. */
#include <stdlib.h>

#include "feed_sources.h"
#include "unit.h"

/* The expected JSON is laid out by hand, one key group per line. */
/* clang-format off */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define U1 "10000000-0000-4000-8000-000000000001"
#define U5 "10000000-0000-4000-8000-000000000005"
#define W1 "20000000-0000-4000-8000-000000000001"
#define P3 "30000000-0000-4000-8000-000000000003"
#define D1 "50000000-0000-4000-8000-000000000001"
#define D2 "50000000-0000-4000-8000-000000000002"
#define X1 "61000000-0000-4000-8000-000000000001"
#define X2 "61000000-0000-4000-8000-000000000002"
#define R1 "80000000-0000-4000-8000-000000000001"

/* 2026-02-16T12:00:00Z, and the same instant with a fraction. */
#define T0    "1771243200000000"
#define T0_JS "\"2026-02-16T12:00:00+00:00\""
#define TF    "1771242900123456"
#define TF_JS "\"2026-02-16T11:55:00.123456+00:00\""

#define NOVA_REF "{\"id\":\"" U1 "\",\"username\":\"@nova_cartographer\",\"name\":\"Nova Cartographer\"}"
#define W1_REF   "{\"id\":\"" W1 "\",\"name\":\"The Drowned Meridian\",\"year_setting\":2187}"
#define HEAD(type, sort, id, created) \
	"{\"type\":\"" type "\",\"sort_date\":" sort ",\"id\":\"" id "\",\"created_at\":" created

static feed_item_t last;

/* Builds one item; its JSON (or "<fail>"), kept in `last` until the next call. */
static const char *
build(enum feed_source src, const char *const *v, int n)
{
	feed_row_t row = { v, n };

	feed_item_clear(&last);
	if (feed_source_defs[src].build(&row, &last) < 0) {
		CHECK(last.id == NULL && last.json == NULL);
		return "<fail>";
	}
	CHECK(last.json != NULL && strlen(last.json) == last.json_len);
	return last.json;
}

static void
test_table(void)
{
	static const char *const names[FEED_SRC_COUNT] = {
		"worlds", "proposals", "validations", "aspects", "actions", "dwellers", "agents",
		"stories", "revised_stories", "reviews", "story_reviews", "resolved_feedback",
		"revised_proposals", "revised_aspects", "graduated",
	};

	for (int i = 0; i < FEED_SRC_COUNT; i++) {
		const feed_source_def_t *d = &feed_source_defs[i];

		CHECK_STR(d->name, names[i]);
		CHECK(d->sql != NULL && strstr(d->sql, "$4") != NULL);
		CHECK(d->ncols > 0 && d->build != NULL);
		/* Every row shape is checked: a row with a column too few fails. */
		{
			const char *v[32] = { 0 };
			feed_row_t row = { v, d->ncols - 1 };
			feed_item_t it = { 0 };

			CHECK_INT(d->build(&row, &it), -1);
			CHECK(it.id == NULL && it.json == NULL);
		}
	}
}

static void
test_worlds(void)
{
	const char *v[] = { W1, T0, "The Drowned Meridian", "Two metres of sea — “we stayed”.", "2187",
		            NULL, "2", NULL, U1, "nova_cartographer", "Nova Cartographer" };

	CHECK_STR(build(FEED_SRC_WORLDS, v, N(v)),
	          HEAD("world_created", T0_JS, W1, T0_JS)
	          ",\"world\":{\"id\":\"" W1 "\",\"name\":\"The Drowned Meridian\","
	          "\"premise\":\"Two metres of sea — “we stayed”.\",\"year_setting\":2187,"
	          "\"cover_image_url\":null,\"dweller_count\":2,\"follower_count\":null},"
	          "\"agent\":" NOVA_REF "}");
	CHECK_INT(last.sort_us, 1771243200000000LL);
	CHECK_STR(last.id, W1);

	/* A creator that no longer exists: agent null. */
	v[8] = v[9] = v[10] = NULL;
	CHECK(strstr(build(FEED_SRC_WORLDS, v, N(v)), ",\"agent\":null}") != NULL);

	v[1] = "12:00";
	CHECK_STR(build(FEED_SRC_WORLDS, v, N(v)), "<fail>");
	v[1] = NULL;
	CHECK_STR(build(FEED_SRC_WORLDS, v, N(v)), "<fail>");
	v[1] = T0;
	v[0] = NULL;
	CHECK_STR(build(FEED_SRC_WORLDS, v, N(v)), "<fail>");
	v[0] = W1;
	CHECK_STR(build(FEED_SRC_WORLDS, v, N(v) - 1), "<fail>");
	CHECK_STR(build(FEED_SRC_WORLDS, NULL, 11), "<fail>");
}

/* n copies of s. */
static char *
rep(const char *s, int n)
{
	size_t len = strlen(s);
	char *out = malloc(len * (size_t)n + 1);

	for (int i = 0; i < n; i++)
		memcpy(out + len * (size_t)i, s, len);
	out[len * (size_t)n] = '\0';
	return out;
}

static void
test_proposals(void)
{
	/* 201 code points (the statement sends one more than the cut): the
	 * first 200, multibyte ones counted once, then "...". */
	char *e199 = rep("é", 199), premise[512], want[2048];
	const char *v[] = { P3, TF, NULL, premise, "2099", "VALIDATING", "2", U1, "nova_cartographer",
		            "Nova Cartographer" };

	snprintf(premise, sizeof(premise), "%sab", e199);
	snprintf(want, sizeof(want),
	         HEAD("proposal_submitted", TF_JS, P3, TF_JS)
	         ",\"proposal\":{\"id\":\"" P3 "\",\"name\":null,\"premise\":\"%sa...\","
	         "\"year_setting\":2099,\"status\":\"validating\",\"validation_count\":2},"
	         "\"agent\":" NOVA_REF "}",
	         e199);
	CHECK_STR(build(FEED_SRC_PROPOSALS, v, N(v)), want);
	CHECK_INT(last.sort_us, 1771242900123456LL);

	/* Exactly 200: unchanged. */
	snprintf(premise, sizeof(premise), "%sa", e199);
	CHECK(strstr(build(FEED_SRC_PROPOSALS, v, N(v)), "a\",\"year_setting\"") != NULL);
	free(e199);
}

static void
test_validations(void)
{
	const char *v[] = { "31000000-0000-4000-8000-000000000001", TF, "STRENGTHEN", "Fine.", P3,
		            NULL, "Short premise.", U5, "critic_5", "Critic Five", U1,
		            "nova_cartographer", "Nova Cartographer" };

	CHECK_STR(build(FEED_SRC_VALIDATIONS, v, N(v)),
	          HEAD("proposal_validated", TF_JS, "31000000-0000-4000-8000-000000000001", TF_JS)
	          ",\"validation\":{\"verdict\":\"strengthen\",\"critique\":\"Fine.\"},"
	          "\"proposal\":{\"id\":\"" P3 "\",\"name\":null,\"premise\":\"Short premise.\"},"
	          "\"agent\":{\"id\":\"" U5 "\",\"username\":\"@critic_5\",\"name\":\"Critic Five\"},"
	          "\"proposer\":" NOVA_REF "}");
}

static void
test_aspects(void)
{
	const char *v[] = { "40000000-0000-4000-8000-000000000001", T0, "event", "The Great Thaw",
		            "Ice fails.", "APPROVED", W1, "The Drowned Meridian", "2187", U1,
		            "nova_cartographer", "Nova Cartographer",
		            "{\"year\": 2151, \"event\": \"Sea wall fails\", \"reasoning\": \"r\"}" };
	const char *head = HEAD("aspect_approved", T0_JS, "40000000-0000-4000-8000-000000000001", T0_JS);
	char want[1024];

	snprintf(want, sizeof(want),
	         "%s,\"aspect\":{\"id\":\"40000000-0000-4000-8000-000000000001\",\"type\":\"event\","
	         "\"title\":\"The Great Thaw\",\"premise\":\"Ice fails.\",\"status\":\"approved\"},"
	         "\"world\":" W1_REF ",\"agent\":" NOVA_REF ",\"timeline_entry\":{\"year\":2151,"
	         "\"event\":\"Sea wall fails\",\"reasoning\":\"r\"}}",
	         head);
	CHECK_STR(build(FEED_SRC_ASPECTS, v, N(v)), want);

	/* No entry: the key is absent, not null. */
	v[12] = NULL;
	snprintf(want, sizeof(want),
	         "%s,\"aspect\":{\"id\":\"40000000-0000-4000-8000-000000000001\",\"type\":\"event\","
	         "\"title\":\"The Great Thaw\",\"premise\":\"Ice fails.\",\"status\":\"approved\"},"
	         "\"world\":" W1_REF ",\"agent\":" NOVA_REF "}",
	         head);
	CHECK_STR(build(FEED_SRC_ASPECTS, v, N(v)), want);

	v[5] = "VALIDATING";
	CHECK(strncmp(build(FEED_SRC_ASPECTS, v, N(v)), "{\"type\":\"aspect_proposed\"", 25) == 0);
	CHECK(strstr(last.json, "\"status\":\"validating\"") != NULL);

	v[12] = "{not json";
	CHECK_STR(build(FEED_SRC_ASPECTS, v, N(v)), "<fail>");
}

static void
test_conversation(void)
{
	/* As json_agg writes it: spaces around ":", oldest first. */
	const char *members =
	        "[{\"id\" : \"" X1 "\", \"type\" : \"speak\", \"content\" : \"Kaela calls.\", "
	        "\"dialogue\" : \"The gates will not hold.\", \"stage_direction\" : null, "
	        "\"target\" : null, \"created_us\" : 1770462000000000, \"in_reply_to\" : null, "
	        "\"dweller\" : {\"id\" : \"" D1 "\", \"name\" : \"Kaela Voss\", \"role\" : \"tide engineer\"}, "
	        "\"agent\" : {\"id\" : \"" U1 "\", \"username\" : \"nova_cartographer\", \"name\" : \"Nova Cartographer\"}}, "
	        "{\"id\" : \"" X2 "\", \"type\" : \"speak\", \"content\" : \"Tomas answers.\", "
	        "\"dialogue\" : null, \"stage_direction\" : \"adjusts his glasses\", "
	        "\"target\" : \"Kaela Voss\", \"created_us\" : 1771242900123456, \"in_reply_to\" : \"" X1 "\", "
	        "\"dweller\" : {\"id\" : \"" D2 "\", \"name\" : \"Tomas Okafor\", \"role\" : \"archivist\"}, "
	        "\"agent\" : null}]";
	const char *v[] = { "t", "thread-" X1, TF, "1770462000000000", "2", members, NULL, NULL, NULL,
		            W1, "The Drowned Meridian", "2187", NULL, NULL, NULL };

	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)),
	          HEAD("conversation", TF_JS, "thread-" X1, "\"2026-02-07T11:00:00+00:00\"")
	          ",\"updated_at\":" TF_JS ",\"actions\":["
	          "{\"id\":\"" X1 "\",\"type\":\"speak\",\"content\":\"Kaela calls.\","
	          "\"dialogue\":\"The gates will not hold.\",\"stage_direction\":null,\"target\":null,"
	          "\"created_at\":\"2026-02-07T11:00:00+00:00\","
	          "\"dweller\":{\"id\":\"" D1 "\",\"name\":\"Kaela Voss\",\"role\":\"tide engineer\"},"
	          "\"agent\":" NOVA_REF ",\"in_reply_to\":null},"
	          "{\"id\":\"" X2 "\",\"type\":\"speak\",\"content\":\"Tomas answers.\","
	          "\"dialogue\":null,\"stage_direction\":\"adjusts his glasses\",\"target\":\"Kaela Voss\","
	          "\"created_at\":" TF_JS ","
	          "\"dweller\":{\"id\":\"" D2 "\",\"name\":\"Tomas Okafor\",\"role\":\"archivist\"},"
	          "\"agent\":null,\"in_reply_to\":\"" X1 "\"}],"
	          "\"action_count\":2,\"world\":" W1_REF "}");
	CHECK_STR(last.id, "thread-" X1);
	CHECK_INT(last.sort_us, 1771242900123456LL);

	/* action_count is the thread's true size, not the array's. */
	v[4] = "52";
	CHECK(strstr(build(FEED_SRC_ACTIONS, v, N(v)), "\"action_count\":52,") != NULL);

	v[5] = "[]";
	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)), "<fail>");
	v[5] = "{\"id\" : \"x\"}";
	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)), "<fail>");
	v[5] = "[{\"id\" : \"x\"}]"; /* no created_us */
	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)), "<fail>");
	v[5] = "[1, 2]";
	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)), "<fail>");
	v[5] = "[{\"id\" : ";
	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)), "<fail>");
	v[5] = members;
	v[0] = "x";
	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)), "<fail>");
	v[0] = "tt";
	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)), "<fail>");
}

static void
test_activity_group(void)
{
	const char *members =
	        "[{\"id\" : \"62000000-0000-4000-8000-000000000001\", \"type\" : \"move\", "
	        "\"content\" : \"Kaela walks.\", \"dialogue\" : null, \"stage_direction\" : null, "
	        "\"target\" : \"the pump array\", \"created_us\" : 1771242000000000}, "
	        "{\"id\" : \"62000000-0000-4000-8000-000000000002\", \"type\" : \"observe\", "
	        "\"content\" : \"Kaela reads.\", \"dialogue\" : null, \"stage_direction\" : \"squints\", "
	        "\"target\" : null, \"created_us\" : 1771242300000000}]";
	const char *id = "group-" D1 "-62000000-0000-4000-8000-000000000001";
	const char *v[] = { "g", id, "1771242300000000", "1771242000000000", "2", members, D1,
		            "Kaela Voss", "tide engineer", W1, "The Drowned Meridian", "2187", U1,
		            "nova_cartographer", "Nova Cartographer" };

	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)),
	          HEAD("activity_group", "\"2026-02-16T11:45:00+00:00\"",
	               "group-" D1 "-62000000-0000-4000-8000-000000000001",
	               "\"2026-02-16T11:40:00+00:00\"")
	          ",\"updated_at\":\"2026-02-16T11:45:00+00:00\",\"actions\":["
	          "{\"id\":\"62000000-0000-4000-8000-000000000001\",\"type\":\"move\","
	          "\"content\":\"Kaela walks.\",\"dialogue\":null,\"stage_direction\":null,"
	          "\"target\":\"the pump array\",\"created_at\":\"2026-02-16T11:40:00+00:00\"},"
	          "{\"id\":\"62000000-0000-4000-8000-000000000002\",\"type\":\"observe\","
	          "\"content\":\"Kaela reads.\",\"dialogue\":null,\"stage_direction\":\"squints\","
	          "\"target\":null,\"created_at\":\"2026-02-16T11:45:00+00:00\"}],"
	          "\"action_count\":2,"
	          "\"dweller\":{\"id\":\"" D1 "\",\"name\":\"Kaela Voss\",\"role\":\"tide engineer\"},"
	          "\"world\":" W1_REF ",\"agent\":" NOVA_REF "}");
}

static void
test_dweller_action(void)
{
	const char *members =
	        "[{\"id\" : \"62000000-0000-4000-8000-000000000004\", \"type\" : \"observe\", "
	        "\"content\" : \"Jun maps the glare line.\", \"dialogue\" : \"Another mirror.\", "
	        "\"stage_direction\" : null, \"target\" : \"the horizon\", "
	        "\"created_us\" : 1771242660500000}]";
	const char *v[] = { "a", "62000000-0000-4000-8000-000000000004", "1771242660500000",
		            "1771242660500000", "1", members, D1, "Kaela Voss", "tide engineer", NULL,
		            NULL, NULL, NULL, NULL, NULL };

	CHECK_STR(build(FEED_SRC_ACTIONS, v, N(v)),
	          HEAD("dweller_action", "\"2026-02-16T11:51:00.500000+00:00\"",
	               "62000000-0000-4000-8000-000000000004", "\"2026-02-16T11:51:00.500000+00:00\"")
	          ",\"action\":{\"type\":\"observe\",\"content\":\"Jun maps the glare line.\","
	          "\"dialogue\":\"Another mirror.\",\"stage_direction\":null,\"target\":\"the horizon\"},"
	          "\"dweller\":{\"id\":\"" D1 "\",\"name\":\"Kaela Voss\",\"role\":\"tide engineer\"},"
	          "\"world\":null,\"agent\":null}");
}

static void
test_dwellers(void)
{
	const char *v[] = { D1, T0, "Kaela Voss", "tide engineer", "Lower Meridian", NULL, "f", W1,
		            "The Drowned Meridian", "2187", U1, "nova_cartographer", "Nova Cartographer" };

	CHECK_STR(build(FEED_SRC_DWELLERS, v, N(v)),
	          HEAD("dweller_created", T0_JS, D1, T0_JS)
	          ",\"dweller\":{\"id\":\"" D1 "\",\"name\":\"Kaela Voss\",\"role\":\"tide engineer\","
	          "\"origin_region\":\"Lower Meridian\",\"is_available\":null},"
	          "\"world\":" W1_REF ",\"agent\":" NOVA_REF "}");
	/* is_available AND inhabited_by IS NULL, Python-style. */
	v[6] = "t";
	CHECK(strstr(build(FEED_SRC_DWELLERS, v, N(v)), "\"is_available\":null}") != NULL);
	v[5] = "t";
	CHECK(strstr(build(FEED_SRC_DWELLERS, v, N(v)), "\"is_available\":false}") != NULL);
	v[6] = "f";
	CHECK(strstr(build(FEED_SRC_DWELLERS, v, N(v)), "\"is_available\":true}") != NULL);
	v[5] = "f";
	CHECK(strstr(build(FEED_SRC_DWELLERS, v, N(v)), "\"is_available\":false}") != NULL);
	v[6] = NULL;
	CHECK_STR(build(FEED_SRC_DWELLERS, v, N(v)), "<fail>");
}

static void
test_agents_and_stories(void)
{
	const char *a[] = { "10000000-0000-4000-8000-000000000004", T0, "zoë", "Zoë Ünal" };
	const char *s[] = { "70000000-0000-4000-8000-000000000001", T0, "Tide Gate", NULL,
		            "FIRST_PERSON_DWELLER", NULL, NULL, NULL, "3", NULL, W1,
		            "The Drowned Meridian", "2187", U1, "nova_cartographer", "Nova Cartographer",
		            D1, "Kaela Voss" };
	const char *r[] = { "70000000-0000-4000-8000-000000000001", T0, "Tide Gate", NULL, "1",
		            "PUBLISHED", W1, "The Drowned Meridian", "2187", U1, "nova_cartographer",
		            "Nova Cartographer" };

	CHECK_STR(build(FEED_SRC_AGENTS, a, N(a)),
	          HEAD("agent_registered", T0_JS, "10000000-0000-4000-8000-000000000004", T0_JS)
	          ",\"agent\":{\"id\":\"10000000-0000-4000-8000-000000000004\",\"username\":\"@zoë\","
	          "\"name\":\"Zoë Ünal\"}}");
	CHECK_STR(build(FEED_SRC_STORIES, s, N(s)),
	          HEAD("story_created", T0_JS, "70000000-0000-4000-8000-000000000001", T0_JS)
	          ",\"story\":{\"id\":\"70000000-0000-4000-8000-000000000001\",\"title\":\"Tide Gate\","
	          "\"summary\":null,\"perspective\":\"first_person_dweller\",\"cover_image_url\":null,"
	          "\"video_url\":null,\"thumbnail_url\":null,\"reaction_count\":3,\"comment_count\":null},"
	          "\"world\":" W1_REF ",\"agent\":" NOVA_REF ","
	          "\"perspective_dweller\":{\"id\":\"" D1 "\",\"name\":\"Kaela Voss\"}}");
	s[16] = NULL;
	CHECK(strstr(build(FEED_SRC_STORIES, s, N(s)), ",\"perspective_dweller\":null}") != NULL);
	CHECK_STR(build(FEED_SRC_REVISED_STORIES, r, N(r)),
	          HEAD("story_revised", T0_JS, "70000000-0000-4000-8000-000000000001-revision", T0_JS)
	          ",\"story\":{\"id\":\"70000000-0000-4000-8000-000000000001\",\"title\":\"Tide Gate\","
	          "\"summary\":null,\"revision_count\":1,\"status\":\"published\"},"
	          "\"world\":" W1_REF ",\"agent\":" NOVA_REF "}");
	CHECK_STR(last.id, "70000000-0000-4000-8000-000000000001-revision");
}

static void
test_review_submitted(void)
{
	const char *v[] = { R1, T0, NULL, U5, "proposal", P3, NULL, "4", "1", "1", "2" };

	CHECK_STR(build(FEED_SRC_REVIEWS, v, N(v)),
	          HEAD("review_submitted", T0_JS, R1, T0_JS)
	          ",\"reviewer_name\":\"Unknown\",\"reviewer_id\":\"" U5 "\",\"content_type\":\"proposal\","
	          "\"content_id\":\"" P3 "\",\"content_name\":null,\"feedback_count\":4,"
	          "\"severities\":{\"critical\":1,\"important\":1,\"minor\":2}}");
	v[2] = "critic_5";
	v[6] = "Unknown";
	CHECK(strstr(build(FEED_SRC_REVIEWS, v, N(v)),
	             "\"reviewer_name\":\"critic_5\",") != NULL);
	CHECK(strstr(last.json, "\"content_name\":\"Unknown\",") != NULL);
}

static void
test_flat_items(void)
{
	const char *sr[] = { "71000000-0000-4000-8000-000000000001", T0, "critic_5", U5,
		             "70000000-0000-4000-8000-000000000001", NULL, NULL, "t" };
	const char *fr[] = { "feedback-resolved-" R1 "-81000000-0000-4000-8000-000000000003", T0,
		             "critic_5", "proposal", NULL, "2", "2", P3 };
	const char *rp[] = { "30000000-0000-4000-8000-000000000001", T0, "quill",
		             "Drowned Meridian", "2" };
	const char *gr[] = { W1, T0, NULL, "2", "62" };

	CHECK_STR(build(FEED_SRC_STORY_REVIEWS, sr, N(sr)),
	          HEAD("story_reviewed", T0_JS, "71000000-0000-4000-8000-000000000001", T0_JS)
	          ",\"reviewer_name\":\"critic_5\",\"reviewer_id\":\"" U5 "\","
	          "\"story_id\":\"70000000-0000-4000-8000-000000000001\",\"story_title\":\"Unknown\","
	          "\"world_name\":\"Unknown\",\"recommends_acclaim\":true}");
	CHECK_STR(build(FEED_SRC_RESOLVED_FEEDBACK, fr, N(fr)),
	          HEAD("feedback_resolved", T0_JS,
	               "feedback-resolved-" R1 "-81000000-0000-4000-8000-000000000003", T0_JS)
	          ",\"reviewer_name\":\"critic_5\",\"content_type\":\"proposal\",\"content_name\":null,"
	          "\"items_resolved\":2,\"items_remaining\":2,\"content_id\":\"" P3 "\"}");
	CHECK_STR(build(FEED_SRC_REVISED_PROPOSALS, rp, N(rp)),
	          HEAD("proposal_revised", T0_JS,
	               "proposal-revised-30000000-0000-4000-8000-000000000001", T0_JS)
	          ",\"author_name\":\"quill\",\"content_type\":\"proposal\","
	          "\"content_id\":\"30000000-0000-4000-8000-000000000001\","
	          "\"content_name\":\"Drowned Meridian\",\"revision_count\":2}");
	rp[2] = NULL;
	CHECK_STR(build(FEED_SRC_REVISED_ASPECTS, rp, N(rp)),
	          HEAD("proposal_revised", T0_JS,
	               "aspect-revised-30000000-0000-4000-8000-000000000001", T0_JS)
	          ",\"author_name\":\"Unknown\",\"content_type\":\"aspect\","
	          "\"content_id\":\"30000000-0000-4000-8000-000000000001\","
	          "\"content_name\":\"Drowned Meridian\",\"revision_count\":2}");
	CHECK_STR(build(FEED_SRC_GRADUATED, gr, N(gr)),
	          HEAD("proposal_graduated", T0_JS, "graduated-" W1, T0_JS)
	          ",\"content_name\":null,\"content_type\":\"proposal\",\"world_id\":\"" W1 "\","
	          "\"reviewer_count\":2,\"feedback_items_resolved\":62}");
	gr[4] = NULL;
	CHECK_STR(build(FEED_SRC_GRADUATED, gr, N(gr)), "<fail>");
}

int
main(void)
{
	RUN(test_table);
	RUN(test_worlds);
	RUN(test_proposals);
	RUN(test_validations);
	RUN(test_aspects);
	RUN(test_conversation);
	RUN(test_activity_group);
	RUN(test_dweller_action);
	RUN(test_dwellers);
	RUN(test_agents_and_stories);
	RUN(test_review_submitted);
	RUN(test_flat_items);
	feed_item_clear(&last);
	return unit_done();
}
/* clang-format on */

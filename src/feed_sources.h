/* The 15 feed sources: one SQL statement each, and its row -> item decoding. */
#ifndef FEEDD_FEED_SOURCES_H
#define FEEDD_FEED_SOURCES_H

#include "feed_items.h"

enum feed_source {
	FEED_SRC_WORLDS,              /* world_created */
	FEED_SRC_PROPOSALS,           /* proposal_submitted */
	FEED_SRC_VALIDATIONS,         /* proposal_validated */
	FEED_SRC_ASPECTS,             /* aspect_proposed / aspect_approved */
	FEED_SRC_ACTIONS,             /* conversation, activity_group, dweller_action */
	FEED_SRC_DWELLERS,            /* dweller_created */
	FEED_SRC_AGENTS,              /* agent_registered */
	FEED_SRC_STORIES,             /* story_created */
	FEED_SRC_REVISED_STORIES,     /* story_revised */
	FEED_SRC_REVIEWS,             /* review_submitted */
	FEED_SRC_STORY_REVIEWS,       /* story_reviewed */
	FEED_SRC_RESOLVED_FEEDBACK,   /* feedback_resolved */
	FEED_SRC_REVISED_PROPOSALS,   /* proposal_revised (proposal) */
	FEED_SRC_REVISED_ASPECTS,     /* proposal_revised (aspect) */
	FEED_SRC_GRADUATED,           /* proposal_graduated */
	FEED_SRC_COUNT
};

/* Every statement takes the same four parameters, as text:
 *   $1 timestamptz  upper bound of sort time (cursor time, or 'infinity')
 *   $2 text         cursor item id ('' = everything at $1 is excluded)
 *   $3 timestamptz  lower bound of sort time (window start, or '-infinity')
 *   $4 int          how many items at most (limit + 1, to know if more exist)
 * and returns items newest first in the total order: an item qualifies when
 * sort > $3 - 1us and (sort, id) < ($1, $2) with ids compared as bytes. */
#define FEED_SOURCE_NPARAMS 4

typedef struct feed_source_def {
	const char *name;   /* metric label and prepared-statement name */
	const char *sql;
	int         ncols;  /* columns the statement returns */
	int         sort_col; /* the column of the sort time, integer microseconds */
	/* Builds one item from one row.  Returns 0, or -1 (malformed row). */
	int       (*build)(const feed_row_t *row, feed_item_t *out);
} feed_source_def_t;

extern const feed_source_def_t feed_source_defs[FEED_SRC_COUNT];

#endif

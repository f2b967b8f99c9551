/* Feed items: the item record and the JSON primitives every item shape uses (json-c). */
#ifndef FEEDD_FEED_ITEMS_H
#define FEEDD_FEED_ITEMS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One feed item, ready to serve: its place in the total order and its JSON. */
typedef struct feed_item {
	int64_t sort_us;     /* sort_date, UTC microseconds */
	char   *id;          /* item id; ties on sort_us order by id, descending, as bytes */
	char   *json;        /* the item object, compact JSON */
	size_t  json_len;
} feed_item_t;

/* A database row as text, as libpq returns it; v[i] == NULL is SQL NULL. */
typedef struct feed_row {
	const char *const *v;
	int                n;
} feed_row_t;

/* Serialises obj (compact, "/" not escaped), fills item->json, and drops obj.
 * Returns 0 or -1. */
int  feed_item_finish(feed_item_t *item, json_object *obj);
void feed_item_clear(feed_item_t *item);
/* Total order: < 0 when a comes first (newer, or same time and larger id). */
int  feed_item_cmp(const feed_item_t *a, const feed_item_t *b);

/* Builders; each returns a new json_object, or NULL, which json-c writes
 * as JSON null (json_object_object_add(o, "k", NULL) adds "k":null). */
json_object *feed_json_string_or_null(const char *s);
json_object *feed_json_int_or_null(const char *s);     /* integer text */
json_object *feed_json_bool_or_null(const char *s);    /* "t" / "f" */
/* Timestamp from microsecond text, "+00:00" form; NULL -> json null. */
json_object *feed_json_time(const char *us_text);
/* First n code points + "..." when longer (UTF-8 aware). */
json_object *feed_json_truncated(const char *s, size_t n);
/* Uppercase enum label -> lowercase value. */
json_object *feed_json_enum(const char *label);
/* {id, username: "@"+username, name}, or null when id is NULL. */
json_object *feed_json_agent_ref(const char *id, const char *username, const char *name);
/* {id, name, year_setting}, or null when id is NULL. */
json_object *feed_json_world_ref(const char *id, const char *name, const char *year);
/* {id, name, role}, or null when id is NULL. */
json_object *feed_json_dweller_ref(const char *id, const char *name, const char *role);
/* Parses JSON text from the database (jsonb columns, json_agg). NULL -> json null. */
json_object *feed_json_parse(const char *text);

/* Adds the four leading keys every item has, in order: type, sort_date, id,
 * created_at.  Returns the new object. */
json_object *feed_item_begin(const char *type, int64_t sort_us, const char *id, int64_t created_us);

#endif

/* Feed items: the item record and the JSON primitives every item shape uses (json-c). */
#include "feed_items.h"

#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "log.h"

/* Compact like the original's JSONResponse; "/" stays "/" (URLs are common). */
#define FEED_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

int
feed_item_finish(feed_item_t *item, json_object *obj)
{
	const char *s;
	size_t len;

	if (obj == NULL) {
		log_error("feed item %s: no JSON object to serialise", item->id ? item->id : "?");
		return -1;
	}
	s = json_object_to_json_string_length(obj, FEED_JSON_FLAGS, &len);
	if (s == NULL) {
		log_error("feed item %s: serialising JSON: out of memory",
		          item->id ? item->id : "?");
		json_object_put(obj);
		return -1;
	}
	item->json = malloc(len + 1);
	if (item->json == NULL) {
		log_error("feed item %s: out of memory (%zu bytes)", item->id ? item->id : "?",
		          len);
		json_object_put(obj);
		return -1;
	}
	memcpy(item->json, s, len + 1);
	item->json_len = len;
	json_object_put(obj);
	return 0;
}

void
feed_item_clear(feed_item_t *item)
{
	free(item->id);
	free(item->json);
	item->id = NULL;
	item->json = NULL;
	item->json_len = 0;
	item->sort_us = 0;
}

int
feed_item_cmp(const feed_item_t *a, const feed_item_t *b)
{
	int c;

	if (a->sort_us != b->sort_us)
		return a->sort_us > b->sort_us ? -1 : 1;
	/* strcmp compares as unsigned char: the same byte order as COLLATE "C". */
	c = strcmp(a->id ? a->id : "", b->id ? b->id : "");
	return c > 0 ? -1 : c < 0 ? 1 : 0;
}

json_object *
feed_json_string_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

json_object *
feed_json_int_or_null(const char *s)
{
	int64_t v;

	if (s == NULL)
		return NULL;
	if (cursor_parse_i64(s, &v) < 0) {
		log_warn("feed: integer column has non-integer text \"%.40s\", emitting null", s);
		return NULL;
	}
	return json_object_new_int64(v);
}

json_object *
feed_json_bool_or_null(const char *s)
{
	if (s == NULL)
		return NULL;
	if (strcmp(s, "t") == 0 || strcmp(s, "true") == 0)
		return json_object_new_boolean(1);
	if (strcmp(s, "f") == 0 || strcmp(s, "false") == 0)
		return json_object_new_boolean(0);
	log_warn("feed: boolean column has text \"%.40s\", emitting null", s);
	return NULL;
}

static json_object *
time_json(int64_t us)
{
	char text[CURSOR_TIME_MAX];

	if (cursor_format_time(us, false, text, sizeof(text)) < 0) {
		log_warn("feed: timestamp %lld us is outside years 0000-9999, emitting null",
		         (long long)us);
		return NULL;
	}
	return json_object_new_string(text);
}

json_object *
feed_json_time(const char *us_text)
{
	int64_t us;

	if (us_text == NULL)
		return NULL;
	if (cursor_parse_i64(us_text, &us) < 0) {
		log_warn("feed: timestamp column has non-integer text \"%.40s\", emitting null",
		         us_text);
		return NULL;
	}
	return time_json(us);
}

/* Length of the UTF-8 sequence at s, or 1 for an invalid byte, so that a
 * cut never splits a valid code point and bad bytes count one each. */
static size_t
utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 1;
	if (c >= 0xe0 && c <= 0xef) {
		/* Exclude overlongs (E0 80..9F) and surrogates (ED A0..BF). */
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 1;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80
		               ? 4
		               : 1;
	}
	return 1;
}

json_object *
feed_json_truncated(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t off = 0, count = 0;
	json_object *o;
	char *cut;

	if (s == NULL)
		return NULL;
	/* The NUL terminator is never a continuation byte, so utf8_seq_len
	 * stops at it without reading past the string. */
	while (p[off] != '\0' && count < n) {
		off += utf8_seq_len(p + off);
		count++;
	}
	if (p[off] == '\0')
		return json_object_new_string(s);
	cut = malloc(off + 4);
	if (cut == NULL) {
		log_error("feed: out of memory truncating text (%zu bytes)", off);
		return NULL;
	}
	memcpy(cut, s, off);
	memcpy(cut + off, "...", 4);
	o = json_object_new_string_len(cut, (int)(off + 3));
	free(cut);
	return o;
}

json_object *
feed_json_enum(const char *label)
{
	json_object *o;
	size_t len;
	char *low;

	if (label == NULL)
		return NULL;
	len = strlen(label);
	low = malloc(len + 1);
	if (low == NULL) {
		log_error("feed: out of memory lowercasing an enum label");
		return NULL;
	}
	for (size_t i = 0; i <= len; i++)
		low[i] = label[i] >= 'A' && label[i] <= 'Z' ? (char)(label[i] - 'A' + 'a')
		                                            : label[i];
	o = json_object_new_string_len(low, (int)len);
	free(low);
	return o;
}

json_object *
feed_json_agent_ref(const char *id, const char *username, const char *name)
{
	json_object *o, *u = NULL;

	if (id == NULL)
		return NULL;
	o = json_object_new_object();
	if (o == NULL)
		return NULL;
	if (username != NULL) {
		size_t len = strlen(username);
		char *at = malloc(len + 2);

		if (at == NULL) {
			log_error("feed: out of memory building an agent reference");
			json_object_put(o);
			return NULL;
		}
		at[0] = '@';
		memcpy(at + 1, username, len + 1);
		u = json_object_new_string_len(at, (int)(len + 1));
		free(at);
	}
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "username", u);
	json_object_object_add(o, "name", feed_json_string_or_null(name));
	return o;
}

json_object *
feed_json_world_ref(const char *id, const char *name, const char *year)
{
	json_object *o;

	if (id == NULL)
		return NULL;
	o = json_object_new_object();
	if (o == NULL)
		return NULL;
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "name", feed_json_string_or_null(name));
	json_object_object_add(o, "year_setting", feed_json_int_or_null(year));
	return o;
}

json_object *
feed_json_dweller_ref(const char *id, const char *name, const char *role)
{
	json_object *o;

	if (id == NULL)
		return NULL;
	o = json_object_new_object();
	if (o == NULL)
		return NULL;
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "name", feed_json_string_or_null(name));
	json_object_object_add(o, "role", feed_json_string_or_null(role));
	return o;
}

json_object *
feed_json_parse(const char *text)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error err;
	size_t len, end;

	if (text == NULL)
		return NULL;
	len = strlen(text);
	tok = json_tokener_new();
	if (tok == NULL) {
		log_error("feed: out of memory parsing JSON from the database");
		return NULL;
	}
	/* The NUL is passed too: a bare number is complete only when the
	 * tokener sees what ends it. */
	o = json_tokener_parse_ex(tok, text, (int)len + 1);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (err != json_tokener_success) {
		log_warn("feed: invalid JSON from the database (%s), emitting null",
		         json_tokener_error_desc(err));
		json_object_put(o);
		return NULL;
	}
	while (end < len && strchr(" \t\r\n", text[end]) != NULL)
		end++;
	if (end != len) {
		log_warn("feed: trailing text after JSON from the database, emitting null");
		json_object_put(o);
		return NULL;
	}
	return o;
}

json_object *
feed_item_begin(const char *type, int64_t sort_us, const char *id, int64_t created_us)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "sort_date", time_json(sort_us));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "created_at", time_json(created_us));
	return o;
}

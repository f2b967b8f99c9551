/* The query parameters of the feed endpoints: validation, 422 bodies, cache key. */
#include "feed_request.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"

/* One validation failure, in FastAPI's words (pydantic v2 messages). */
typedef struct req_error {
	const char *param;
	const char *msg;
	const char *type;
} req_error_t;

static const char int_parsing_msg[] =
        "Input should be a valid integer, unable to parse string as an integer";

/* Digits with an optional '-', like pydantic's lax int, but without the
 * whitespace and '+' it tolerates: a limit is written by our own client. */
static int
parse_limit(const char *s, int *limit, req_error_t *e)
{
	const char *p = s;
	bool neg = false;
	long v = 0;

	e->param = "limit";
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (*p == '\0')
		goto not_int;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			goto not_int;
		/* Saturate: any value this large is out of range anyway. */
		if (v <= FEED_LIMIT_MAX)
			v = v * 10 + (*p - '0');
	}
	if (neg || v < 1) {
		e->msg = "Input should be greater than or equal to 1";
		e->type = "greater_than_equal";
		return -1;
	}
	if (v > FEED_LIMIT_MAX) {
		e->msg = "Input should be less than or equal to 50";
		e->type = "less_than_equal";
		return -1;
	}
	*limit = (int)v;
	return 0;
not_int:
	e->msg = int_parsing_msg;
	e->type = "int_parsing";
	return -1;
}

static int
write_errors(buf_t *err, const req_error_t *e, int n)
{
	json_object *root, *detail;
	const char *s;
	size_t len;
	int rc;

	root = json_object_new_object();
	detail = json_object_new_array();
	if (root == NULL || detail == NULL)
		goto oom;
	json_object_object_add(root, "detail", detail);
	for (int i = 0; i < n; i++) {
		json_object *d = json_object_new_object(), *loc = json_object_new_array();

		if (d == NULL || loc == NULL) {
			json_object_put(d);
			json_object_put(loc);
			detail = NULL;
			goto oom;
		}
		json_object_array_add(loc, json_object_new_string("query"));
		json_object_array_add(loc, json_object_new_string(e[i].param));
		json_object_object_add(d, "loc", loc);
		json_object_object_add(d, "msg", json_object_new_string(e[i].msg));
		json_object_object_add(d, "type", json_object_new_string(e[i].type));
		json_object_array_add(detail, d);
	}
	s = json_object_to_json_string_length(
	        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	rc = s != NULL ? buf_append(err, s, len) : -1;
	json_object_put(root);
	if (rc < 0)
		log_error("feed request: out of memory writing a 422 body");
	return rc;
oom:
	log_error("feed request: out of memory building a 422 body");
	if (root != NULL)
		json_object_put(root);
	else if (detail != NULL)
		json_object_put(detail);
	return -1;
}

int
feed_request_parse(const char *query, size_t len, feed_request_t *out, buf_t *err)
{
	req_error_t errs[2];
	int nerr = 0, rc;
	char *v = NULL;

	memset(out, 0, sizeof(*out));
	out->limit = FEED_LIMIT_DEFAULT;

	/* cursor before limit: the order of the original's parameters, which
	 * is the order FastAPI lists their errors in. */
	rc = http_query_param(query, len, "cursor", &v, NULL);
	if (rc < 0) {
		errs[nerr++] = (req_error_t){"cursor", "cursor is not valid percent-encoding",
		                             "value_error"};
	} else if (rc == 1 && v[0] != '\0') {
		const char *why = NULL;

		if (cursor_parse(v, strlen(v), &out->cursor, &why) == 0)
			out->has_cursor = true;
		else
			errs[nerr++] = (req_error_t){"cursor", why ? why : "cursor is invalid",
			                             "value_error"};
	}
	free(v);
	v = NULL;

	rc = http_query_param(query, len, "limit", &v, NULL);
	if (rc < 0)
		errs[nerr++] = (req_error_t){"limit", int_parsing_msg, "int_parsing"};
	else if (rc == 1 && parse_limit(v, &out->limit, &errs[nerr]) < 0)
		nerr++;
	free(v);

	if (nerr > 0) {
		/* A rejected request has no meaningful key or cursor. */
		out->has_cursor = false;
		out->key[0] = '\0';
		if (err != NULL)
			write_errors(err, errs, nerr);
		return -1;
	}
	if (out->has_cursor)
		snprintf(out->key, sizeof(out->key), "%d|%lld~%s", out->limit,
		         (long long)out->cursor.time_us, out->cursor.id);
	else
		snprintf(out->key, sizeof(out->key), "%d|-", out->limit);
	return 0;
}

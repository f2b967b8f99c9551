/* Unit tests for src/metrics.c. */
#include "unit.h"

#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "metrics.h"

/* ---- a strict checker of the text exposition format 0.0.4 ---- */

typedef struct checker {
	char fam[128], type[16];
	char seen[1024][160]; /* every series once */
	int nseen;
	char declared[256][128];
	int ndeclared;
	/* the histogram series being read */
	char hseries[160];
	double last_le, last_bucket, inf_bucket;
	bool hstarted, have_inf;
	char err[256];
} checker_t;

static bool
valid_metric_name(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return false;
	return true;
}

static bool
valid_label_name(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_') ||
	    (n >= 2 && !strncmp(s, "__", 2)))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

static bool
parse_value(const char *s, double *v)
{
	char *end;

	if (!strcmp(s, "+Inf")) {
		*v = INFINITY;
		return true;
	}
	if (!strcmp(s, "-Inf")) {
		*v = -INFINITY;
		return true;
	}
	if (!strcmp(s, "NaN")) {
		*v = NAN;
		return true;
	}
	if (*s == '\0' || isspace((unsigned char)*s))
		return false;
	*v = strtod(s, &end);
	return *end == '\0';
}

static bool
declared(checker_t *k, const char *name)
{
	for (int i = 0; i < k->ndeclared; i++)
		if (!strcmp(k->declared[i], name))
			return true;
	return false;
}

/* Parses {a="b",c="d"} at *p; fills `rest` with the labels other than le
 * (normalised) and *le with le's value (or NULL). */
static bool
parse_labels(const char **p, char *rest, size_t restlen, char *le, size_t lelen, bool *has_le)
{
	const char *s = *p;
	char names[16][64];
	int nnames = 0;

	rest[0] = '\0';
	*has_le = false;
	if (*s != '{')
		return true;
	s++;
	if (*s == '}') {
		*p = s + 1;
		return true;
	}
	for (;;) {
		const char *n0 = s;
		char val[256];
		size_t vl = 0, nl;

		while (isalnum((unsigned char)*s) || *s == '_')
			s++;
		nl = (size_t)(s - n0);
		if (!valid_label_name(n0, nl) || nl >= 64 || *s != '=' || s[1] != '"')
			return false;
		for (int i = 0; i < nnames; i++)
			if (strlen(names[i]) == nl && !strncmp(names[i], n0, nl))
				return false; /* duplicate label */
		if (nnames == 16)
			return false;
		memcpy(names[nnames], n0, nl);
		names[nnames++][nl] = '\0';
		s += 2;
		while (*s != '"') {
			if (*s == '\0' || *s == '\n' || vl + 2 >= sizeof(val))
				return false;
			if (*s == '\\') {
				if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
					return false;
				val[vl++] = *s++;
			}
			val[vl++] = *s++;
		}
		val[vl] = '\0';
		s++;
		if (nl == 2 && !strncmp(n0, "le", 2)) {
			*has_le = true;
			if (snprintf(le, lelen, "%s", val) >= (int)lelen)
				return false;
		} else {
			size_t rl = strlen(rest);

			if (snprintf(rest + rl, restlen - rl, "%.*s=\"%s\",", (int)nl, n0, val) >=
			    (int)(restlen - rl))
				return false;
		}
		if (*s == ',' && s[1] != '}') {
			s++;
			continue;
		}
		if (*s != '}')
			return false;
		*p = s + 1;
		return true;
	}
}

static bool
fail(checker_t *k, int line, const char *why)
{
	snprintf(k->err, sizeof(k->err), "line %d: %s", line, why);
	return false;
}

static bool
check_sample(checker_t *k, int ln, const char *line)
{
	const char *p = line, *n0 = line;
	char name[128], rest[160], le[64], series[160], suffix[16] = "";
	bool has_le;
	double v, lev;
	size_t nl, fl = strlen(k->fam);

	while (*p != '\0' && *p != '{' && *p != ' ')
		p++;
	nl = (size_t)(p - n0);
	if (nl >= sizeof(name) || !valid_metric_name(n0, nl))
		return fail(k, ln, "bad metric name");
	memcpy(name, n0, nl);
	name[nl] = '\0';
	if (k->fam[0] == '\0')
		return fail(k, ln, "sample before any # TYPE");
	if (!strcmp(k->type, "histogram")) {
		if (strncmp(name, k->fam, fl) != 0 ||
		    (strcmp(name + fl, "_bucket") && strcmp(name + fl, "_sum") &&
		     strcmp(name + fl, "_count")))
			return fail(k, ln,
			            "sample does not belong to the histogram declared above");
		snprintf(suffix, sizeof(suffix), "%s", name + fl);
	} else if (strcmp(name, k->fam) != 0) {
		return fail(k, ln, "sample does not belong to the family declared above");
	}
	if (!parse_labels(&p, rest, sizeof(rest), le, sizeof(le), &has_le))
		return fail(k, ln, "bad labels");
	if (*p != ' ')
		return fail(k, ln, "no space before the value");
	if (!parse_value(p + 1, &v))
		return fail(k, ln, "bad value");
	if (!strcmp(k->type, "counter") && (v < 0 || fl < 6 || strcmp(k->fam + fl - 6, "_total")))
		return fail(k, ln, "counter not named *_total or negative");

	if (snprintf(series, sizeof(series), "%s{%s%s%s}", name, rest, has_le ? "le=" : "",
	             has_le ? le : "") >= (int)sizeof(series))
		return fail(k, ln, "series too long for this checker");
	for (int i = 0; i < k->nseen; i++)
		if (!strcmp(k->seen[i], series))
			return fail(k, ln, "duplicate series");
	if (k->nseen < 1024)
		snprintf(k->seen[k->nseen++], sizeof(k->seen[0]), "%s", series);

	if (!strcmp(suffix, "_bucket")) {
		if (!has_le || !parse_value(le, &lev) || isnan(lev))
			return fail(k, ln, "bucket without a valid le");
		if (!k->hstarted || strcmp(rest, k->hseries) != 0) {
			if (k->hstarted && !k->have_inf)
				return fail(k, ln, "previous histogram series has no +Inf bucket");
			snprintf(k->hseries, sizeof(k->hseries), "%s", rest);
			k->last_le = -INFINITY;
			k->last_bucket = 0;
			k->have_inf = false;
			k->hstarted = true;
		}
		if (k->have_inf || lev <= k->last_le)
			return fail(k, ln, "le not increasing");
		if (v < k->last_bucket)
			return fail(k, ln, "buckets not cumulative");
		k->last_le = lev;
		k->last_bucket = v;
		if (isinf(lev)) {
			k->have_inf = true;
			k->inf_bucket = v;
		}
	} else if (has_le) {
		return fail(k, ln, "le label outside a bucket");
	} else if (suffix[0] != '\0') {
		if (!k->hstarted || strcmp(rest, k->hseries) != 0 || !k->have_inf)
			return fail(k, ln, "_sum/_count without its buckets");
		if (!strcmp(suffix, "_count") && v != k->inf_bucket)
			return fail(k, ln, "_count differs from the +Inf bucket");
	}
	return true;
}

/* NULL when text is valid, else why (static). */
static const char *
check_exposition(const char *text)
{
	static checker_t k;
	char help_for[128] = "";
	int ln = 0;

	memset(&k, 0, sizeof(k));
	if (text[0] == '\0' || text[strlen(text) - 1] != '\n')
		return "does not end with a newline";
	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		char line[1024], name[128], type[32];
		size_t len = (size_t)(nl - p);

		ln++;
		if (len >= sizeof(line)) {
			fail(&k, ln, "line too long");
			return k.err;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl + 1;
		if (len == 0) {
			fail(&k, ln, "empty line");
			return k.err;
		}
		if (!strncmp(line, "# HELP ", 7)) {
			const char *n0 = line + 7, *e = strchr(n0, ' ');

			if (e == NULL || !valid_metric_name(n0, (size_t)(e - n0)) || e[1] == '\0') {
				fail(&k, ln, "bad # HELP");
				return k.err;
			}
			for (const char *q = e; *q; q++)
				if (*q == '\\' && q[1] != '\\' && q[1] != 'n') {
					fail(&k, ln, "bad escape in # HELP");
					return k.err;
				} else if (*q == '\\') {
					q++;
				}
			snprintf(help_for, sizeof(help_for), "%.*s", (int)(e - n0), n0);
			if (declared(&k, help_for)) {
				fail(&k, ln, "# HELP after its family");
				return k.err;
			}
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			if (sscanf(line + 7, "%127s %31s", name, type) != 2 ||
			    !valid_metric_name(name, strlen(name)) ||
			    strlen(line) != 7 + strlen(name) + 1 + strlen(type) ||
			    (strcmp(type, "counter") && strcmp(type, "gauge") &&
			     strcmp(type, "histogram") && strcmp(type, "summary") &&
			     strcmp(type, "untyped"))) {
				fail(&k, ln, "bad # TYPE");
				return k.err;
			}
			if (declared(&k, name)) {
				fail(&k, ln, "family declared twice");
				return k.err;
			}
			if (strcmp(help_for, name) != 0) {
				fail(&k, ln, "# TYPE without its # HELP just before");
				return k.err;
			}
			if (k.fam[0] && !strcmp(k.type, "histogram") && k.hstarted && !k.have_inf) {
				fail(&k, ln, "histogram ended without +Inf");
				return k.err;
			}
			snprintf(k.declared[k.ndeclared++], sizeof(k.declared[0]), "%s", name);
			snprintf(k.fam, sizeof(k.fam), "%s", name);
			snprintf(k.type, sizeof(k.type), "%s", type);
			k.hseries[0] = '\0';
			k.hstarted = false;
			k.have_inf = false;
			continue;
		}
		if (line[0] == '#') {
			fail(&k, ln, "unexpected comment");
			return k.err;
		}
		if (!check_sample(&k, ln, line))
			return k.err;
	}
	if (!strcmp(k.type, "histogram") && k.hstarted && !k.have_inf) {
		fail(&k, ln, "histogram ended without +Inf");
		return k.err;
	}
	return NULL;
}

/* The value of one exact series ("name" or "name{labels}"), or -1. */
static double
value_of(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

/* ---- tests ---- */

static void
test_checker_rejects(void)
{
	static const char *const bad[] = {
	        "x_total 1\n",                                           /* no TYPE */
	        "# HELP x_total h\n# TYPE x_total counter\nx_total 1",   /* no newline */
	        "# HELP x_total h\n# TYPE x_total counter\ny_total 1\n", /* other family */
	        "# HELP x h\n# TYPE x counter\nx 1\n",                   /* counter not _total */
	        "# HELP x h\n# TYPE x gauge\nx{a=\"b} 1\n",              /* unterminated */
	        "# HELP x h\n# TYPE x gauge\nx{1a=\"b\"} 1\n",           /* label name */
	        "# HELP x h\n# TYPE x gauge\nx{a=\"\\q\"} 1\n",          /* escape */
	        "# HELP x h\n# TYPE x gauge\nx{a=\"b\",a=\"c\"} 1\n",    /* duplicate label */
	        "# HELP x h\n# TYPE x gauge\nx one\n",                   /* value */
	        "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",                /* duplicate series */
	        "# HELP 0x h\n# TYPE 0x gauge\n",                        /* metric name */
	        "# HELP h_s h\n# TYPE h_s histogram\nh_s_bucket{le=\"1\"} 2\n"
	        "h_s_bucket{le=\"+Inf\"} 1\nh_s_sum 1\nh_s_count 1\n", /* not cumulative */
	        "# HELP h_s h\n# TYPE h_s histogram\nh_s_bucket{le=\"1\"} 1\n"
	        "h_s_bucket{le=\"+Inf\"} 2\nh_s_sum 1\nh_s_count 3\n", /* count != +Inf */
	        "# HELP h_s h\n# TYPE h_s histogram\nh_s_bucket{le=\"1\"} 1\nh_s_sum 1\n", /* no
	                                                                                      +Inf
	                                                                                    */
	        "# HELP h_s h\n# TYPE h_s histogram\nh_s_bucket{le=\"1\"} 1\n", /* ends early */
	        "# TYPE x gauge\nx 1\n",                                        /* no HELP */
	};
	const char *good = "# HELP h_s a \\\\ help\n# TYPE h_s histogram\n"
	                   "h_s_bucket{src=\"a\\\"b\",le=\"0.5\"} "
	                   "1\nh_s_bucket{src=\"a\\\"b\",le=\"+Inf\"} 2\n"
	                   "h_s_sum{src=\"a\\\"b\"} 1.5\nh_s_count{src=\"a\\\"b\"} 2\n"
	                   "# HELP g h\n# TYPE g gauge\ng -3\n";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = check_exposition(bad[i]);

		CHECK(why != NULL);
		if (why == NULL)
			fprintf(stderr, "checker accepted bad text #%zu\n", i);
	}
	CHECK_STR(check_exposition(good), NULL);
	CHECK(value_of(good, "g") == -3);
	CHECK(value_of(good, "h_s_count{src=\"a\\\"b\"}") == 2);
}

static void
render_checked(buf_t *out)
{
	const char *why;

	buf_reset(out);
	CHECK_INT(metrics_render(out), 0);
	why = check_exposition(out->data ? out->data : "");
	CHECK_STR(why, NULL);
	if (why != NULL)
		fprintf(stderr, "%.4000s\n", out->data);
}

static void
test_without_segment(void)
{
	buf_t out = BUF_INIT;

	/* Before metrics_create (other modules' unit tests): harmless. */
	metrics_add(METRICS_CACHE_HITS, 5);
	metrics_observe(METRICS_H_JSON_COMPLETE, 0, 0.1);
	render_checked(&out);
	CHECK(value_of(out.data, "feedd_cache_hits_total") == 0);
	CHECK(value_of(out.data, "feedd_build_info{version=\"" PACKAGE_VERSION "\"}") == 1);
	buf_free(&out);
}

static void
test_forked_sums(void)
{
	int n = 4;
	pid_t pids[4];
	buf_t out = BUF_INIT;

	CHECK_INT(metrics_create(n), 0);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			metrics_set_slot(i);
			for (int j = 0; j < 1000 * (i + 1); j++)
				metrics_add(METRICS_CACHE_HITS, 1);
			metrics_add(METRICS_BYTES_SENT, 100);
			for (int j = 0; j < 10; j++)
				metrics_request(METRICS_EP_FEED, 200);
			metrics_request(METRICS_EP_STREAM, 504);
			metrics_request(METRICS_EP_FEED, 299); /* not listed: "other" */
			metrics_request((enum metrics_endpoint)99, 200);
			metrics_gauge_add(METRICS_OPEN_CONNECTIONS, 3);
			metrics_gauge_add(METRICS_OPEN_CONNECTIONS, -1);
			metrics_gauge_set(METRICS_DB_CONN_IDLE, 4);
			metrics_observe(METRICS_H_PAGE_ITEMS, 0, 20);
			_exit(0);
		}
	}
	for (int i = 0; i < n; i++) {
		int status = -1;

		waitpid(pids[i], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	metrics_set_slot(-1);
	metrics_add(METRICS_WORKER_RESTARTS, 2);
	render_checked(&out);
	CHECK(value_of(out.data, "feedd_cache_hits_total") == 10000);
	CHECK(value_of(out.data, "feedd_http_response_bytes_total") == 400);
	CHECK(value_of(out.data, "feedd_worker_restarts_total") == 2);
	CHECK(value_of(out.data, "feedd_cache_misses_total") == 0);
	CHECK(value_of(out.data, "feedd_http_requests_total{endpoint=\"feed\",code=\"200\"}") ==
	      40);
	CHECK(value_of(out.data, "feedd_http_requests_total{endpoint=\"stream\",code=\"504\"}") ==
	      4);
	CHECK(value_of(out.data, "feedd_http_requests_total{endpoint=\"feed\",code=\"other\"}") ==
	      4);
	CHECK(value_of(out.data, "feedd_http_requests_total{endpoint=\"other\",code=\"200\"}") ==
	      4);
	CHECK(value_of(out.data, "feedd_http_requests_total{endpoint=\"healthz\",code=\"200\"}") ==
	      -1);
	CHECK(value_of(out.data, "feedd_open_connections") == 8);
	CHECK(value_of(out.data, "feedd_db_connections{state=\"idle\"}") == 16);
	CHECK(value_of(out.data, "feedd_page_items_count") == 4);
	CHECK(value_of(out.data, "feedd_page_items_bucket{le=\"10\"}") == 0);
	CHECK(value_of(out.data, "feedd_page_items_bucket{le=\"20\"}") == 4);
	CHECK(value_of(out.data, "feedd_page_items_sum") == 80);

	/* Worker 1 dies: its gauges go, its counters stay; its successor
	 * adds to them. */
	metrics_clear_gauges(1);
	pids[0] = fork();
	if (pids[0] == 0) {
		metrics_set_slot(1);
		metrics_add(METRICS_CACHE_HITS, 5);
		metrics_gauge_add(METRICS_OPEN_CONNECTIONS, 1);
		_exit(0);
	}
	waitpid(pids[0], NULL, 0);
	render_checked(&out);
	CHECK(value_of(out.data, "feedd_cache_hits_total") == 10005);
	CHECK(value_of(out.data, "feedd_open_connections") == 7);
	CHECK(value_of(out.data, "feedd_db_connections{state=\"idle\"}") == 12);

	/* A bad slot is refused: nothing lands anywhere rendered. */
	metrics_set_slot(n);
	metrics_add(METRICS_CACHE_HITS, 1000);
	metrics_set_slot(-1);
	render_checked(&out);
	CHECK(value_of(out.data, "feedd_cache_hits_total") == 10005);
	buf_free(&out);
	metrics_destroy();
}

static void
test_histograms(void)
{
	static const char *const names[] = {"posts", "comments", "we\"ird\\name"};
	buf_t out = BUF_INIT;

	CHECK_INT(metrics_create(1), 0);
	metrics_set_slot(0);
	metrics_observe(METRICS_H_JSON_COMPLETE, 0, 0.0005);
	metrics_observe(METRICS_H_JSON_COMPLETE, 0, 0.001); /* le is inclusive */
	metrics_observe(METRICS_H_JSON_COMPLETE, 0, 0.003);
	metrics_observe(METRICS_H_JSON_COMPLETE, 0, 0.7);
	metrics_observe(METRICS_H_JSON_COMPLETE, 0, 20);
	metrics_observe(METRICS_H_JSON_COMPLETE, 0, NAN); /* ignored */
	metrics_observe(METRICS_H_PAGE_ITEMS, 0, 0);
	metrics_observe(METRICS_H_PAGE_ITEMS, 0, 1);
	metrics_observe(METRICS_H_PAGE_ITEMS, 0, 50);
	metrics_observe(METRICS_H_PAGE_ITEMS, 0, 51);
	metrics_set_source_names(names, 3);
	metrics_observe(METRICS_H_SOURCE_LATENCY, 1, 0.02);
	metrics_observe(METRICS_H_SOURCE_LATENCY, 1, 0.03);
	metrics_observe(METRICS_H_SOURCE_LATENCY, 2, 3);
	metrics_observe(METRICS_H_SOURCE_LATENCY, 14, 0.002); /* unnamed: by index */
	metrics_observe(METRICS_H_SOURCE_LATENCY, 99, 1);     /* out of range: ignored */
	render_checked(&out);

#define JC "feedd_feed_complete_seconds"
	CHECK(value_of(out.data, JC "_bucket{le=\"0.001\"}") == 2);
	CHECK(value_of(out.data, JC "_bucket{le=\"0.0025\"}") == 2);
	CHECK(value_of(out.data, JC "_bucket{le=\"0.005\"}") == 3);
	CHECK(value_of(out.data, JC "_bucket{le=\"0.5\"}") == 3);
	CHECK(value_of(out.data, JC "_bucket{le=\"1\"}") == 4);
	CHECK(value_of(out.data, JC "_bucket{le=\"10\"}") == 4);
	CHECK(value_of(out.data, JC "_bucket{le=\"+Inf\"}") == 5);
	CHECK(value_of(out.data, JC "_count") == 5);
	CHECK(strstr(out.data, JC "_sum 20.704500\n") != NULL);
	CHECK(value_of(out.data, "feedd_stream_complete_seconds_count") == 0);
#define PI "feedd_page_items"
	CHECK(value_of(out.data, PI "_bucket{le=\"0\"}") == 1);
	CHECK(value_of(out.data, PI "_bucket{le=\"1\"}") == 2);
	CHECK(value_of(out.data, PI "_bucket{le=\"50\"}") == 3);
	CHECK(value_of(out.data, PI "_bucket{le=\"+Inf\"}") == 4);
	CHECK(value_of(out.data, PI "_sum") == 102);
#define SQ "feedd_source_query_seconds"
	CHECK(value_of(out.data, SQ "_count{source=\"posts\"}") == 0);
	CHECK(value_of(out.data, SQ "_count{source=\"comments\"}") == 2);
	CHECK(value_of(out.data, SQ "_bucket{source=\"comments\",le=\"0.025\"}") == 1);
	CHECK(value_of(out.data, SQ "_bucket{source=\"comments\",le=\"0.05\"}") == 2);
	CHECK(strstr(out.data, SQ "_sum{source=\"comments\"} 0.050000\n") != NULL);
	CHECK(value_of(out.data, SQ "_count{source=\"we\\\"ird\\\\name\"}") == 1);
	CHECK(value_of(out.data, SQ "_count{source=\"14\"}") == 1);
	CHECK(value_of(out.data, SQ "_count{source=\"3\"}") == -1);
	buf_free(&out);
	metrics_set_source_names(NULL, 0);
	metrics_destroy();
}

static void
test_cache_gauges(void)
{
	char name[64];
	cache_t *c;
	buf_t out = BUF_INIT;
	cache_meta_t m = {0, 0};

	snprintf(name, sizeof(name), "/feedd-unit-metrics-%d", (int)getpid());
	c = cache_create(name, 256 * 1024, 1024, 60000, 0);
	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_INT(metrics_create(1), 0);
	metrics_set_cache(c);
	CHECK_INT(cache_put(c, "a", "12345", 5, &m, clock_mono_ms()), 0);
	CHECK_INT(cache_put(c, "b", "123", 3, &m, clock_mono_ms()), 0);
	render_checked(&out);
	CHECK(value_of(out.data, "feedd_cache_entries") == 2);
	CHECK(value_of(out.data, "feedd_cache_bytes") == 8);
	CHECK(value_of(out.data, "feedd_cache_capacity_entries") >= 32);
	CHECK(value_of(out.data, "feedd_cache_writer_takeovers_total") == 0);
	metrics_set_cache(NULL);
	buf_reset(&out);
	render_checked(&out);
	CHECK(value_of(out.data, "feedd_cache_entries") == -1);
	buf_free(&out);
	metrics_destroy();
	cache_destroy(c, 1);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	RUN(test_checker_rejects);
	RUN(test_without_segment);
	RUN(test_forked_sums);
	RUN(test_histograms);
	RUN(test_cache_gauges);
	return unit_done();
}

/* Unit tests for src/config.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif
#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/feedd"
#endif

static char err[512];

static int
cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

/* Parses text; on success returns 0 and leaves *cfg for the caller to free. */
static int
parse(const char *text, config_t *cfg)
{
	return config_parse("t.conf", text, cfg, err, sizeof(err));
}

/* Parses "key = value" alone and expects failure; err holds the message. */
static int
rejects(const char *text)
{
	config_t cfg;
	int rc = parse(text, &cfg);

	if (rc == 0)
		config_free(&cfg);
	return rc == -1;
}

static int
err_has(const char *needle)
{
	if (strstr(err, needle) != NULL)
		return 1;
	fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", err, needle);
	return 0;
}

static void
test_defaults(void)
{
	config_t cfg, d;

	CHECK_INT(parse("", &cfg), 0);
	CHECK_STR(cfg.path, "t.conf");
	CHECK_INT(cfg.nlisten, 1);
	CHECK_STR(cfg.listen[0], "127.0.0.1:8080");
	CHECK_INT(cfg.workers, cores());
	CHECK_STR(cfg.pid_file, RUNSTATEDIR "/feedd/feedd.pid");
	CHECK(cfg.user == NULL);
	CHECK(cfg.group == NULL);
	CHECK_INT(cfg.shutdown_timeout, 10000);
	CHECK_INT(cfg.worker_watchdog, 30000);
	CHECK(cfg.worker_yield);
	CHECK_STR(cfg.error_log, "stderr");
	CHECK_STR(cfg.access_log, "stderr");
	CHECK_INT(cfg.log_level, LOG_LEVEL_INFO);
	CHECK_STR(cfg.www_root, PKGDATADIR "/www");
	CHECK_INT(cfg.max_request_line, 8192);
	CHECK_INT(cfg.max_header_size, 16384);
	CHECK_INT(cfg.header_timeout, 10000);
	CHECK_INT(cfg.keepalive_timeout, 75000);
	CHECK_INT(cfg.send_timeout, 30000);
	CHECK_INT(cfg.max_connections, 10000);
	CHECK_INT(cfg.output_buffer_limit, 1024 * 1024);
	CHECK_STR(cfg.db, "dbname=feedd");
	CHECK_INT(cfg.db_pool_size, 4);
	CHECK_INT(cfg.db_queue_size, 1000);
	CHECK_INT(cfg.db_query_timeout, 5000);
	CHECK_INT(cfg.db_connect_timeout, 5000);
	CHECK_INT(cfg.db_reconnect_max, 30000);
	CHECK_INT(cfg.feed_window, 7LL * 86400 * 1000);
	CHECK_INT(cfg.cache_size, 64LL * 1024 * 1024);
	CHECK_INT(cfg.cache_entry_max, 512 * 1024);
	CHECK_INT(cfg.cache_ttl, 30000);
	CHECK_INT(cfg.cache_stale, 300000);
	CHECK_INT(cfg.cache_lease_timeout, 10000);
	CHECK_INT(cfg.sse_keepalive, 15000);
	CHECK_INT(cfg.sse_timeout, 30000);
	CHECK_INT(cfg.sse_retry, 10000);
	CHECK_INT(cfg.nmetrics_allow, 0);

	config_defaults(&d);
	CHECK_INT(d.workers, cfg.workers);
	CHECK_STR(d.db, cfg.db);
	CHECK(d.path == NULL);
	config_free(&d);
	config_free(&cfg);
	/* config_free leaves nothing dangling and may run twice */
	CHECK(cfg.db == NULL && cfg.listen[0] == NULL && cfg.nlisten == 0 && cfg.path == NULL);
	config_free(&cfg);
}

static void
test_sizes(void)
{
	/* clang-format off */
	static const struct {
		const char *text;
		long long   want;
	} ok[] = {
		{ "65536", 65536 },
		{ "70000B", 70000 },
		{ "64kB", 64 * 1024 },
		{ "64KB", 64 * 1024 },
		{ "64k", 64 * 1024 },
		{ "3MB", 3 * 1024 * 1024 },
		{ "3M", 3 * 1024 * 1024 },
		{ "2 MB", 2 * 1024 * 1024 },
		{ "2GB", 2LL * 1024 * 1024 * 1024 },
		{ "2G", 2LL * 1024 * 1024 * 1024 },
		{ "'128MB'", 128 * 1024 * 1024 },
		{ "\"1GB\"", 1024 * 1024 * 1024 },
	};
	/* clang-format on */
	/* clang-format off */
	static const char *const bad[] = {
		"1TB", "1mb", "1Kb", "-1MB", "1.5MB", "MB", "abc", "", "1 MB x", "0x10000",
	};
	/* clang-format on */
	char text[128];
	config_t cfg;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		/* a small entry limit so small caches pass the consistency check */
		snprintf(text, sizeof(text), "cache_entry_max = 1kB\ncache_size = %s\n",
		         ok[i].text);
		CHECK_INT(parse(text, &cfg), 0);
		CHECK_INT(cfg.cache_size, ok[i].want);
		config_free(&cfg);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "cache_size = %s\n", bad[i]);
		CHECK(rejects(text));
		CHECK(err_has("t.conf:1: cache_size: "));
		CHECK(err_has("512kB"));
	}
	/* out of range, also where the number itself overflows */
	CHECK(rejects("cache_size = 1kB"));
	CHECK(err_has("t.conf:1: cache_size: 1kB is out of range: expected 64kB to 64GB"));
	CHECK(rejects("cache_size = 99999999999999999999"));
	CHECK(err_has("out of range"));
	CHECK(rejects("cache_size = 9999999999999999G"));
	CHECK(err_has("out of range"));
	CHECK(rejects("max_request_line = 100"));
	CHECK(err_has("expected 256B to 1MB"));
}

static void
test_durations(void)
{
	/* clang-format off */
	static const struct {
		const char *text;
		long long   want;
	} ok[] = {
		{ "0", 0 },
		{ "90", 90000 },
		{ "1500ms", 1500 },
		{ "45s", 45000 },
		{ "2m", 120000 },
		{ "2min", 120000 },
		{ "3h", 3LL * 3600 * 1000 },
		{ "7d", 7LL * 86400 * 1000 },
		{ "10 s", 10000 },
	};
	/* clang-format on */
	/* clang-format off */
	static const char *const bad[] = {
		"1w", "1.5s", "s", "-5", "5 sec", "5S", "",
	};
	/* clang-format on */
	char text[128];
	config_t cfg;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "feed_window = %s\n", ok[i].text);
		CHECK_INT(parse(text, &cfg), 0);
		CHECK_INT(cfg.feed_window, ok[i].want);
		config_free(&cfg);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "feed_window = %s\n", bad[i]);
		CHECK(rejects(text));
		CHECK(err_has("t.conf:1: feed_window: "));
		CHECK(err_has("duration"));
	}
	CHECK(rejects("header_timeout = 2h"));
	CHECK(err_has("header_timeout: 2h is out of range: expected 10ms to 1h"));
	CHECK(rejects("sse_timeout = 5ms"));
	CHECK(err_has("out of range"));

	CHECK_INT(parse("sse_keepalive = 200ms\nsse_timeout = 1s\n", &cfg), 0);
	CHECK_INT(cfg.sse_keepalive, 200);
	CHECK_INT(cfg.sse_timeout, 1000);
	config_free(&cfg);
}

static void
test_integers(void)
{
	config_t cfg;

	CHECK_INT(parse("workers = 3\ndb_pool_size = 1\nmax_connections = 50", &cfg), 0);
	CHECK_INT(cfg.workers, 3);
	CHECK_INT(cfg.db_pool_size, 1);
	CHECK_INT(cfg.max_connections, 50);
	config_free(&cfg);

	CHECK_INT(parse("workers = 0", &cfg), 0);
	CHECK_INT(cfg.workers, cores());
	config_free(&cfg);
	CHECK_INT(parse("workers = auto", &cfg), 0);
	CHECK_INT(cfg.workers, cores());
	config_free(&cfg);

	CHECK(rejects("workers = four"));
	CHECK(err_has("t.conf:1: workers: bad value 'four': expected an integer or \"auto\""));
	CHECK(rejects("workers = 4x"));
	CHECK(err_has("workers"));
	CHECK(rejects("workers = -1"));
	CHECK(err_has("workers"));
	CHECK(rejects("workers = 1025"));
	CHECK(err_has("workers: 1025 is out of range: expected 0 to 1024"));
	CHECK(rejects("db_pool_size = 0"));
	CHECK(err_has("db_pool_size: 0 is out of range: expected 1 to 100"));
	CHECK(rejects("max_connections = 99999999999999999999999"));
	CHECK(err_has("out of range"));
}

static void
test_strings(void)
{
	config_t cfg;

	CHECK_INT(parse("db = 'host=db1 password=\\'a b\\''\n"
	                "www_root = \"/srv/with \\\"quotes\\\" and \\\\\"\n"
	                "user = feedd   # trailing comment\n"
	                "group = 'a#b'  # the # inside quotes is data\n"
	                "pid_file=/tmp/x.pid#no blanks needed\n"
	                "  \terror_log\t=\t/var/log/feedd/error.log \t\n"
	                "access_log = off\n",
	                &cfg),
	          0);
	CHECK_STR(cfg.db, "host=db1 password='a b'");
	CHECK_STR(cfg.www_root, "/srv/with \"quotes\" and \\");
	CHECK_STR(cfg.user, "feedd");
	CHECK_STR(cfg.group, "a#b");
	CHECK_STR(cfg.pid_file, "/tmp/x.pid");
	CHECK_STR(cfg.error_log, "/var/log/feedd/error.log");
	CHECK_STR(cfg.access_log, "off");
	config_free(&cfg);

	/* a bare value runs to the comment; unset optional strings */
	CHECK_INT(parse("db = host=a dbname=b\nuser = ''\ngroup =\n", &cfg), 0);
	CHECK_STR(cfg.db, "host=a dbname=b");
	CHECK(cfg.user == NULL);
	CHECK(cfg.group == NULL);
	config_free(&cfg);

	CHECK(rejects("db = 'unterminated"));
	CHECK(err_has("t.conf:1: db: missing closing ' quote"));
	CHECK(rejects("db = \"x\" y"));
	CHECK(err_has("t.conf:1: db: unexpected text after the closing quote"));
	CHECK(rejects("db = 'a\\nb'"));
	CHECK(err_has("t.conf:1: db: bad escape"));
	CHECK(rejects("www_root = ''"));
	CHECK(err_has("t.conf:1: www_root: must not be empty"));
}

static void
test_log_level(void)
{
	/* clang-format off */
	static const struct {
		const char    *text;
		enum log_level want;
	} ok[] = {
		{ "log_level = error", LOG_LEVEL_ERROR },
		{ "log_level = warn", LOG_LEVEL_WARN },
		{ "log_level = 'info'", LOG_LEVEL_INFO },
		{ "log_level = debug", LOG_LEVEL_DEBUG },
	};
	/* clang-format on */
	config_t cfg;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CHECK_INT(parse(ok[i].text, &cfg), 0);
		CHECK_INT(cfg.log_level, ok[i].want);
		config_free(&cfg);
	}
	CHECK(rejects("log_level = loud"));
	CHECK(err_has(
	        "t.conf:1: log_level: bad value 'loud': expected error, warn, info or debug"));
}

static void
test_on_off(void)
{
	config_t cfg;

	CHECK_INT(parse("worker_yield = off", &cfg), 0);
	CHECK(!cfg.worker_yield);
	config_free(&cfg);
	CHECK_INT(parse("worker_yield = 'on'", &cfg), 0);
	CHECK(cfg.worker_yield);
	config_free(&cfg);
	CHECK(rejects("worker_yield = yes"));
	CHECK(err_has("t.conf:1: worker_yield: bad value 'yes': expected on or off"));
	CHECK(rejects("worker_yield = "));
}

static void
test_listen(void)
{
	char text[1024];
	config_t cfg;
	int i;

	CHECK_INT(parse("listen = 127.0.0.1:80, [::1]:8080,*:9000 ,localhost:81", &cfg), 0);
	CHECK_INT(cfg.nlisten, 4);
	CHECK_STR(cfg.listen[0], "127.0.0.1:80");
	CHECK_STR(cfg.listen[1], "[::1]:8080");
	CHECK_STR(cfg.listen[2], "*:9000");
	CHECK_STR(cfg.listen[3], "localhost:81");
	config_free(&cfg);
	CHECK_INT(parse("listen = '[::]:65535'", &cfg), 0);
	CHECK_INT(cfg.nlisten, 1);
	CHECK_STR(cfg.listen[0], "[::]:65535");
	config_free(&cfg);

	CHECK(rejects("listen = ::1:80"));
	CHECK(err_has("t.conf:1: listen: bad address '::1:80'"));
	CHECK(rejects("listen = 1.2.3.4"));
	CHECK(err_has("host:port"));
	CHECK(rejects("listen = 1.2.3.4:0"));
	CHECK(rejects("listen = 1.2.3.4:65536"));
	CHECK(rejects("listen = 300.1.1.1:80"));
	CHECK(rejects("listen = [::1]80"));
	CHECK(rejects("listen = [nothex]:80"));
	CHECK(rejects("listen = host_name:80"));
	CHECK(rejects("listen = "));
	CHECK(rejects("listen = a:1,,b:2"));
	CHECK(err_has("empty address"));
	CHECK(rejects("listen = a:1,"));
	CHECK(rejects("listen = a:1, a:1"));
	CHECK(err_has("'a:1' is listed twice"));

	strcpy(text, "listen = ");
	for (i = 0; i < CONFIG_MAX_LISTEN + 1; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%sh:%d", i ? "," : "",
		         1000 + i);
	CHECK(rejects(text));
	CHECK(err_has("too many addresses"));
	/* exactly the maximum is fine */
	*strrchr(text, ',') = '\0';
	CHECK_INT(parse(text, &cfg), 0);
	CHECK_INT(cfg.nlisten, CONFIG_MAX_LISTEN);
	config_free(&cfg);
}

static struct sockaddr_storage sa_buf;

static const struct sockaddr *
sa(const char *addr)
{
	memset(&sa_buf, 0, sizeof(sa_buf));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa_buf;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			fprintf(stderr, "bad test address %s\n", addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&sa_buf;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			fprintf(stderr, "bad test address %s\n", addr);
	}
	return (const struct sockaddr *)&sa_buf;
}

static void
test_cidr(void)
{
	/* clang-format off */
	static const struct {
		const char *addr;
		int         want;
	} cases[] = {
		{ "127.0.0.1", 1 },
		{ "127.0.0.2", 0 },
		{ "10.0.0.0", 1 },
		{ "10.255.1.1", 1 },
		{ "11.0.0.1", 0 },
		{ "9.255.255.255", 0 },
		{ "172.16.5.4", 1 },   /* 172.16.0.0/12 */
		{ "172.31.255.255", 1 },
		{ "172.32.0.1", 0 },
		{ "::1", 1 },
		{ "::2", 0 },
		{ "fd12:3456::1", 1 },
		{ "fe80::1", 0 },
		{ "::ffff:10.1.2.3", 1 }, /* v4-mapped client, v4 rule */
		{ "::ffff:127.0.0.1", 1 },
		{ "::ffff:127.0.0.9", 0 },
		{ "192.168.1.77", 1 },    /* v4 client, v4-mapped rule */
		{ "192.168.2.1", 0 },
		{ "::ffff:192.168.1.200", 1 },
	};
	/* clang-format on */
	struct sockaddr_un sun;
	config_t cfg;
	size_t i;

	CHECK_INT(parse("metrics_allow = 127.0.0.1, 10.0.0.0/8, 172.16.0.0/12, ::1,"
	                "fd00::/8, ::ffff:192.168.1.0/120",
	                &cfg),
	          0);
	CHECK_INT(cfg.nmetrics_allow, 6);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = config_cidr_match(&cfg, sa(cases[i].addr));

		if (got != cases[i].want)
			fprintf(stderr, "    %s: got %d\n", cases[i].addr, got);
		CHECK_INT(got, cases[i].want);
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	CHECK_INT(config_cidr_match(&cfg, (const struct sockaddr *)&sun), 0);
	config_free(&cfg);

	/* host bits under the prefix do not matter; /0 is everything of its family */
	CHECK_INT(parse("metrics_allow = 10.1.2.3/16, ::/0", &cfg), 0);
	CHECK_INT(config_cidr_match(&cfg, sa("10.1.200.1")), 1);
	CHECK_INT(config_cidr_match(&cfg, sa("10.2.0.1")), 0);
	CHECK_INT(config_cidr_match(&cfg, sa("2001:db8::1")), 1);
	config_free(&cfg);
	CHECK_INT(parse("metrics_allow = 0.0.0.0/0", &cfg), 0);
	CHECK_INT(config_cidr_match(&cfg, sa("203.0.113.9")), 1);
	CHECK_INT(config_cidr_match(&cfg, sa("::ffff:203.0.113.9")), 1);
	CHECK_INT(config_cidr_match(&cfg, sa("2001:db8::1")), 0);
	config_free(&cfg);

	/* empty list: anyone */
	CHECK_INT(parse("metrics_allow = ''", &cfg), 0);
	CHECK_INT(cfg.nmetrics_allow, 0);
	CHECK_INT(config_cidr_match(&cfg, sa("203.0.113.9")), 1);
	CHECK_INT(config_cidr_match(&cfg, (const struct sockaddr *)&sun), 1);
	config_free(&cfg);

	CHECK(rejects("metrics_allow = 10.0.0.0/33"));
	CHECK(err_has("t.conf:1: metrics_allow: bad entry '10.0.0.0/33'"));
	CHECK(rejects("metrics_allow = ::1/129"));
	CHECK(rejects("metrics_allow = 1.2.3"));
	CHECK(rejects("metrics_allow = 10.0.0.0/"));
	CHECK(rejects("metrics_allow = 10.0.0.0/8x"));
	CHECK(rejects("metrics_allow = 10.0.0.1,"));
	CHECK(rejects("metrics_allow = example.com"));
}

static void
test_errors(void)
{
	config_t cfg;

	CHECK(rejects("# comment\n\nfoo = 1\n"));
	CHECK_STR(err, "t.conf:3: unknown setting foo");
	CHECK(rejects("workers = 2\n\n\nworkers = 3\n"));
	CHECK_STR(err, "t.conf:4: duplicate setting workers: already set on line 1");
	CHECK(rejects("\nworkers 4\n"));
	CHECK_STR(err, "t.conf:2: missing '=' after workers: expected workers = value");
	CHECK(rejects("workers\n"));
	CHECK(err_has("t.conf:1: missing '='"));
	CHECK(rejects("log_level = info\n= 4\n"));
	CHECK(err_has("t.conf:2: expected a setting name"));
	CHECK(rejects("\n\n# c\n\nworkers = 2\ncache_ttl = soon\n"));
	CHECK(err_has("t.conf:6: cache_ttl: bad value 'soon'"));
	/* only the first error is reported, parsing stops there */
	CHECK(rejects("workers = x\nbogus = 1\n"));
	CHECK(err_has("t.conf:1: workers"));
	/* a name that looks close to a key is still unknown */
	CHECK(rejects("Workers = 1"));
	CHECK(err_has("unknown setting Workers"));

	/* settings valid alone but not together: reported on the later line */
	CHECK(rejects("log_level = info\ncache_size = 256kB\n"));
	CHECK_STR(err, "t.conf:2: cache_entry_max (512kB) must be smaller than cache_size (256kB)");
	CHECK(rejects("cache_entry_max = 2MB\n# x\ncache_size = 2MB\n"));
	CHECK(err_has("t.conf:3: cache_entry_max (2MB)"));
	CHECK(rejects("log_level = info\nworker_watchdog = 500ms\n"));
	CHECK_STR(err, "t.conf:2: worker_watchdog must be 0 (off) or at least 1s: a shorter one "
	               "kills workers that are only slow to be scheduled");
	CHECK_INT(parse("worker_watchdog = 0\n", &cfg), 0);
	CHECK_INT(cfg.worker_watchdog, 0);
	config_free(&cfg);
	CHECK_INT(parse("worker_watchdog = 1s\n", &cfg), 0);
	CHECK_INT(cfg.worker_watchdog, 1000);
	config_free(&cfg);
	CHECK(rejects("max_request_line = 32kB\n"));
	CHECK(err_has("t.conf:1: max_request_line (32kB) must not exceed max_header_size (16kB)"));
	CHECK_INT(parse("cache_size = 1MB\ncache_entry_max = 1023kB", &cfg), 0);
	config_free(&cfg);

	/* the error buffer is optional and truncation is safe */
	CHECK_INT(config_parse("t.conf", "x = 1", &cfg, NULL, 0), -1);
	CHECK_INT(config_parse("t.conf", "x = 1", &cfg, err, 5), -1);
	CHECK_STR(err, "t.co");

	/* on failure everything is freed: nothing left for the caller */
	CHECK(rejects("db = 'x'\nuser = feedd\nlisten = *:1\nworkers = z"));
}

static void
test_syntax(void)
{
	config_t cfg;

	/* CRLF files, blank and comment-only lines, no final newline */
	CHECK_INT(parse("# feedd\r\n\r\n   # indented comment\r\nworkers = 2\r\n"
	                "db = 'dbname=x'\r\n\t\nuser = u",
	                &cfg),
	          0);
	CHECK_INT(cfg.workers, 2);
	CHECK_STR(cfg.db, "dbname=x");
	CHECK_STR(cfg.user, "u");
	config_free(&cfg);
}

static void
test_load(void)
{
	char path[] = "/tmp/feedd-test-config-XXXXXX";
	config_t cfg;
	FILE *f;
	int fd;

	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	f = fdopen(fd, "w");
	fputs("# test\nworkers = 2\ncache_ttl = 1min\n", f);
	fclose(f);
	CHECK_INT(config_load(path, &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.path, path);
	CHECK_INT(cfg.workers, 2);
	CHECK_INT(cfg.cache_ttl, 60000);
	config_free(&cfg);

	f = fopen(path, "w");
	fputs("workers = 2\nnope = 1\n", f);
	fclose(f);
	CHECK_INT(config_load(path, &cfg, err, sizeof(err)), -1);
	CHECK(strncmp(err, path, strlen(path)) == 0 && err_has(":2: unknown setting nope"));

	f = fopen(path, "w");
	fwrite("workers = 2\n\0", 1, 13, f);
	fclose(f);
	CHECK_INT(config_load(path, &cfg, err, sizeof(err)), -1);
	CHECK(err_has("NUL byte"));

	unlink(path);
	CHECK_INT(config_load(path, &cfg, err, sizeof(err)), -1);
	CHECK(err_has("cannot open"));
	CHECK(err_has("No such file"));
}

static int
key_index(const char *name, size_t len)
{
	const char *const *k = config_keys();
	int i;

	for (i = 0; k[i] != NULL; i++) {
		if (strlen(k[i]) == len && memcmp(k[i], name, len) == 0)
			return i;
	}
	return -1;
}

static void
test_keys(void)
{
	const char *const *k = config_keys();
	char text[256];
	config_t cfg;
	int i, j, n;

	for (n = 0; k[n] != NULL; n++) {
		for (j = 0; j < n; j++)
			CHECK(strcmp(k[j], k[n]) != 0);
		/* the parser knows every key it lists (an empty value may or
		 * may not be valid, but never "unknown") */
		snprintf(text, sizeof(text), "%s = \"\"\n", k[n]);
		if (parse(text, &cfg) == 0)
			config_free(&cfg);
		else
			CHECK(strstr(err, "unknown") == NULL);
	}
	CHECK(n >= 33);
	for (i = 0; i < n; i++)
		CHECK_INT(key_index(k[i], strlen(k[i])), i);
}

/* The documentation tests: automake's harness exports srcdir; run by
 * hand, the source tree is found from this file's own path. */
static const char *
source_dir(void)
{
	static char dir[4096];
	const char *env = getenv("srcdir");
	const char *suffix = "tests/unit/test_config.c";
	size_t len = strlen(__FILE__), slen = strlen(suffix);

	if (env != NULL && *env != '\0')
		return env;
	if (len >= slen && strcmp(__FILE__ + len - slen, suffix) == 0) {
		len -= slen;
		if (len == 0)
			return ".";
		snprintf(dir, sizeof(dir), "%.*s", (int)len, __FILE__);
		return dir;
	}
	return ".";
}

static char *
read_doc(const char *rel)
{
	char path[4200];
	char *text;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", source_dir(), rel);
	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "    cannot open %s\n", path);
		return NULL;
	}
	text = malloc(1024 * 1024);
	if (text == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(text, 1, 1024 * 1024 - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* Collects the keys a document names: *found[i] counts key i, and every
 * name that is not a key fails the test.  One line at a time; name()
 * returns the length of the setting name a line documents, or 0. */
typedef size_t (*doc_name_fn)(const char *line, const char *end, const char **name, int *state);

static void
check_doc(const char *rel, doc_name_fn name_of, const char *form)
{
	const char *const *k = config_keys();
	int found[64] = {0}, state = 0, n, i, missing, twice;
	char *text = read_doc(rel);
	const char *s, *nl, *name;

	CHECK(text != NULL);
	if (text == NULL)
		return;
	for (n = 0; k[n] != NULL; n++)
		;
	CHECK(n <= 64);
	if (n > 64)
		n = 64;
	for (s = text; *s != '\0'; s = *nl ? nl + 1 : nl) {
		size_t len;

		nl = strchr(s, '\n');
		if (nl == NULL)
			nl = s + strlen(s);
		len = name_of(s, nl, &name, &state);
		if (len == 0)
			continue;
		i = key_index(name, len);
		if (i < 0) {
			fprintf(stderr, "    %s documents '%.*s', which is not a setting\n", rel,
			        (int)len, name);
			CHECK(i >= 0);
		} else {
			found[i]++;
		}
	}
	missing = twice = 0;
	for (i = 0; i < n; i++) {
		if (found[i] == 0) {
			fprintf(stderr, "    %s does not document %s (as %s)\n", rel, k[i], form);
			missing++;
		} else if (found[i] > 1) {
			fprintf(stderr, "    %s documents %s %d times\n", rel, k[i], found[i]);
			twice++;
		}
	}
	CHECK_INT(missing, 0);
	CHECK_INT(twice, 0);
	free(text);
}

static size_t
word_len(const char *s, const char *end)
{
	const char *p = s;

	while (p < end && ((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= '0' && *p <= '9')))
		p++;
	return (size_t)(p - s);
}

/* Man page: in section SETTINGS each entry is ".TP" then ".B key". */
static size_t
man_name(const char *line, const char *end, const char **name, int *state)
{
	size_t len = (size_t)(end - line);
	enum { OUTSIDE, IN, AFTER_TP };

	if (len >= 3 && strncmp(line, ".SH", 3) == 0) {
		*state = strstr(line, "SETTINGS") != NULL && strstr(line, "SETTINGS") < end
		                 ? IN
		                 : OUTSIDE;
		return 0;
	}
	if (*state == OUTSIDE)
		return 0;
	if (len == 3 && strncmp(line, ".TP", 3) == 0) {
		*state = AFTER_TP;
		return 0;
	}
	if (*state == AFTER_TP) {
		*state = IN;
		if (len > 3 && strncmp(line, ".B ", 3) == 0) {
			*name = line + 3;
			len = word_len(*name, end);
			/* the whole tag is the name, nothing else */
			return *name + len == end ? len : 0;
		}
	}
	return 0;
}

/* Example config: "key = default" or "#key = default" at the start of a line. */
static size_t
conf_name(const char *line, const char *end, const char **name, int *state)
{
	const char *p;
	size_t len;

	if (line < end && *line == '#')
		line++;
	len = word_len(line, end);
	if (len == 0)
		return 0;
	p = line + len;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p != '=')
		return 0;
	*name = line;
	return len;
}

static void
test_documentation(void)
{
	check_doc("man/feedd.conf.5", man_name, "\".TP\" then \".B key\" under .SH SETTINGS");
	check_doc("etc/feedd.conf", conf_name, "\"#key = default\"");
}

/* The example config, uncommented, is valid and says the true defaults
 * (except the two paths that depend on configure's directories). */
static void
test_example_defaults(void)
{
	char *text = read_doc("etc/feedd.conf"), *out, *o;
	const char *s, *nl;
	config_t ex, d;

	CHECK(text != NULL);
	if (text == NULL)
		return;
	out = malloc(strlen(text) + 1);
	CHECK(out != NULL);
	if (out == NULL) {
		free(text);
		return;
	}
	o = out;
	for (s = text; *s != '\0'; s = *nl ? nl + 1 : nl) {
		const char *name;
		int state = 0;

		nl = strchr(s, '\n');
		if (nl == NULL)
			nl = s + strlen(s);
		if (*s == '#' && conf_name(s, nl, &name, &state) > 0)
			s++;
		memcpy(o, s, (size_t)(nl - s));
		o += nl - s;
		*o++ = '\n';
	}
	*o = '\0';
	free(text);

	if (config_parse("etc/feedd.conf", out, &ex, err, sizeof(err)) < 0) {
		fprintf(stderr, "    uncommented example config: %s\n", err);
		CHECK(0);
		free(out);
		return;
	}
	free(out);
	config_defaults(&d);
#define SAME_STR(f) CHECK_STR(ex.f, d.f)
#define SAME_INT(f) CHECK_INT(ex.f, d.f)
	SAME_INT(nlisten);
	SAME_STR(listen[0]);
	SAME_INT(workers);
	SAME_STR(user);
	SAME_STR(group);
	SAME_INT(shutdown_timeout);
	SAME_INT(worker_watchdog);
	SAME_STR(error_log);
	SAME_STR(access_log);
	SAME_INT(log_level);
	SAME_INT(max_request_line);
	SAME_INT(max_header_size);
	SAME_INT(header_timeout);
	SAME_INT(keepalive_timeout);
	SAME_INT(send_timeout);
	SAME_INT(max_connections);
	SAME_INT(output_buffer_limit);
	SAME_STR(db);
	SAME_INT(db_pool_size);
	SAME_INT(db_queue_size);
	SAME_INT(db_query_timeout);
	SAME_INT(db_connect_timeout);
	SAME_INT(db_reconnect_max);
	SAME_INT(feed_window);
	SAME_INT(cache_size);
	SAME_INT(cache_entry_max);
	SAME_INT(cache_ttl);
	SAME_INT(cache_stale);
	SAME_INT(cache_lease_timeout);
	SAME_INT(sse_keepalive);
	SAME_INT(sse_timeout);
	SAME_INT(sse_retry);
	SAME_INT(nmetrics_allow);
#undef SAME_STR
#undef SAME_INT
	CHECK(ex.pid_file != NULL && strstr(ex.pid_file, "/feedd.pid") != NULL);
	CHECK(ex.www_root != NULL && strstr(ex.www_root, "/www") != NULL);
	config_free(&ex);
	config_free(&d);
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_sizes);
	RUN(test_durations);
	RUN(test_integers);
	RUN(test_strings);
	RUN(test_log_level);
	RUN(test_on_off);
	RUN(test_listen);
	RUN(test_cidr);
	RUN(test_errors);
	RUN(test_syntax);
	RUN(test_load);
	RUN(test_keys);
	RUN(test_documentation);
	RUN(test_example_defaults);
	return unit_done();
}

/* Unit tests for src/pgresolve.c: which host= entries are names, and the
 * lists libpq gets (host names from /etc/hosts only: no DNS needed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "pgresolve.h"
#include "unit.h"

static void
test_is_name(void)
{
	CHECK(pgresolve_is_name("localhost"));
	CHECK(pgresolve_is_name("db.example.com"));
	CHECK(!pgresolve_is_name(""));
	CHECK(!pgresolve_is_name("/var/run/postgresql"));
	CHECK(!pgresolve_is_name("@abstract"));
	CHECK(!pgresolve_is_name("127.0.0.1"));
	CHECK(!pgresolve_is_name("::1"));
	CHECK(!pgresolve_is_name("fe80::1"));
}

static void
test_nothing_to_resolve(void)
{
	loop_t *loop = loop_create();

	CHECK(loop != NULL);
	CHECK(pgresolve_create(loop, "dbname=feedd", NULL, NULL) == NULL);
	CHECK(pgresolve_create(loop, "host=/tmp port=5432", NULL, NULL) == NULL);
	CHECK(pgresolve_create(loop, "host=127.0.0.1,::1", NULL, NULL) == NULL);
	/* hostaddr given: libpq looks nothing up. */
	CHECK(pgresolve_create(loop, "host=localhost hostaddr=127.0.0.1", NULL, NULL) == NULL);
	/* Ports that do not match the hosts: libpq's error to give. */
	CHECK(pgresolve_create(loop, "host=localhost,/tmp port=1,2,3", NULL, NULL) == NULL);
	CHECK(pgresolve_create(loop, "host='unterminated", NULL, NULL) == NULL);
	loop_destroy(loop);
}

static void
stop_loop(void *arg)
{
	loop_stop(arg);
}

/* Splits a comma list in place, keeping empty items. */
static int
split(char *s, char **out, int max)
{
	int n = 0;

	for (;;) {
		char *comma = strchr(s, ',');

		if (n < max)
			out[n] = s;
		n++;
		if (comma == NULL)
			return n;
		*comma = '\0';
		s = comma + 1;
	}
}

static void
test_lists(void)
{
	loop_t *loop = loop_create();
	pgresolve_t *r;
	pgresolve_addrs_t a;
	const char *err = NULL;
	char hosts[512], addrs[512], ports[512], *h[16], *ad[16], *p[16];
	int n, na, np;

	CHECK(loop != NULL);
	r = pgresolve_create(loop, "host=/tmp,localhost,10.1.2.3 port=1,2,3 dbname=x", stop_loop,
	                     loop);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK_INT(pgresolve_get(r, &a, &err), 0); /* started */
	CHECK_INT(pgresolve_get(r, &a, &err), 0); /* still running */
	CHECK_INT(loop_run(loop), 0);             /* until done */
	CHECK_INT(pgresolve_get(r, &a, &err), 1);
	CHECK(a.port != NULL);
	snprintf(hosts, sizeof(hosts), "%s", a.host);
	snprintf(addrs, sizeof(addrs), "%s", a.hostaddr);
	snprintf(ports, sizeof(ports), "%s", a.port != NULL ? a.port : "");
	/* One entry per address of localhost, the others as written, with
	 * an empty hostaddr item (libpq then uses host). */
	n = split(hosts, h, 16);
	na = split(addrs, ad, 16);
	np = split(ports, p, 16);
	CHECK(n >= 3 && n <= 16);
	CHECK_INT(na, n);
	CHECK_INT(np, n);
	if (n < 3 || n > 16 || na != n || np != n) {
		pgresolve_destroy(r);
		loop_destroy(loop);
		return;
	}
	CHECK_STR(h[0], "/tmp");
	CHECK_STR(ad[0], "");
	CHECK_STR(p[0], "1");
	for (int i = 1; i < n - 1; i++) {
		CHECK_STR(h[i], "localhost");
		CHECK(strcmp(ad[i], "127.0.0.1") == 0 || strcmp(ad[i], "::1") == 0);
		CHECK_STR(p[i], "2");
	}
	CHECK_STR(h[n - 1], "10.1.2.3");
	CHECK_STR(ad[n - 1], "");
	CHECK_STR(p[n - 1], "3");
	pgresolve_destroy(r);
	loop_destroy(loop);
}

static void
test_single_port_left_alone(void)
{
	loop_t *loop = loop_create();
	pgresolve_t *r = pgresolve_create(loop, "host=localhost port=5433", stop_loop, loop);
	pgresolve_addrs_t a;
	const char *err = NULL;

	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK_INT(pgresolve_get(r, &a, &err), 0);
	CHECK_INT(loop_run(loop), 0);
	CHECK_INT(pgresolve_get(r, &a, &err), 1);
	CHECK(a.port == NULL); /* libpq applies the one port to every entry */
	CHECK(strncmp(a.host, "localhost", 9) == 0);
	pgresolve_destroy(r);
	loop_destroy(loop);
}

/* Where the string says nothing, libpq uses PGHOST (unless a service
 * file may say something): so does pgresolve. */
static void
test_environment(void)
{
	loop_t *loop = loop_create();
	pgresolve_t *r;

	CHECK(loop != NULL);
	setenv("PGHOST", "localhost", 1);
	r = pgresolve_create(loop, "dbname=x", NULL, NULL);
	CHECK(r != NULL);
	pgresolve_destroy(r);
	/* The string wins over the environment. */
	CHECK(pgresolve_create(loop, "host=/tmp dbname=x", NULL, NULL) == NULL);
	setenv("PGHOSTADDR", "127.0.0.1", 1);
	CHECK(pgresolve_create(loop, "dbname=x", NULL, NULL) == NULL);
	unsetenv("PGHOSTADDR");
	CHECK(pgresolve_create(loop, "service=feedd", NULL, NULL) == NULL);
	setenv("PGSERVICE", "feedd", 1);
	CHECK(pgresolve_create(loop, "dbname=x", NULL, NULL) == NULL);
	unsetenv("PGSERVICE");
	unsetenv("PGHOST");
	CHECK(pgresolve_create(loop, "dbname=x", NULL, NULL) == NULL);
	loop_destroy(loop);
}

int
main(void)
{
	RUN(test_is_name);
	RUN(test_nothing_to_resolve);
	RUN(test_lists);
	RUN(test_single_port_left_alone);
	RUN(test_environment);
	return unit_done();
}

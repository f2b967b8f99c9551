/* A minimal unit-test harness: TAP-style lines, a failure count, exit status. */
#ifndef FEEDD_UNIT_H
#define FEEDD_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failures;
static int unit_checks;

#define CHECK(cond) do { \
	unit_checks++; \
	if (!(cond)) { \
		unit_failures++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
	} \
} while (0)

#define CHECK_STR(got, want) do { \
	const char *g_ = (got), *w_ = (want); \
	unit_checks++; \
	if (g_ == NULL || w_ == NULL ? g_ != w_ : strcmp(g_, w_) != 0) { \
		unit_failures++; \
		fprintf(stderr, "%s:%d: got  %s\n%*s want %s\n", __FILE__, __LINE__, \
		        g_ ? g_ : "(null)", (int)strlen(__FILE__) + 8, "", w_ ? w_ : "(null)"); \
	} \
} while (0)

#define CHECK_INT(got, want) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	unit_checks++; \
	if (g_ != w_) { \
		unit_failures++; \
		fprintf(stderr, "%s:%d: %s = %lld, want %lld\n", __FILE__, __LINE__, #got, g_, w_); \
	} \
} while (0)

/* Runs one test function and prints "ok"/"not ok" with its name. */
#define RUN(fn) do { \
	int before_ = unit_failures; \
	fn(); \
	printf("%s - %s\n", unit_failures == before_ ? "ok" : "not ok", #fn); \
} while (0)

static inline int
unit_done(void)
{
	printf("# %d checks, %d failed\n", unit_checks, unit_failures);
	return unit_failures ? 1 : 0;
}

#endif

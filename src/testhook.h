/* Fault-injection points for the test suite; compiled only with --enable-test-hooks. */
#ifndef FEEDD_TESTHOOK_H
#define FEEDD_TESTHOOK_H

#include <stdlib.h>

/* FEEDD_TEST_HOOKS comes from auto-config.h, included by the build. */

/* A hook is an environment variable read at the point it matters, so a
 * test can arm it per feedd instance: FEEDD_TEST_<NAME>. */
#ifdef FEEDD_TEST_HOOKS
#define TESTHOOK(name) getenv("FEEDD_TEST_" name)
#else
#define TESTHOOK(name) ((const char *)NULL)
#endif

#endif

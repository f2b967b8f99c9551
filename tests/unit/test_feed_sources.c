/* Unit tests for src/feed_sources.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

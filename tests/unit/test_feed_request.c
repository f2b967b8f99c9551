/* Unit tests for src/feed_request.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

/* Unit tests for src/feed_page.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

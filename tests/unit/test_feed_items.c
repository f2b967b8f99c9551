/* Unit tests for src/feed_items.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

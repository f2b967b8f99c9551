/* Unit tests for src/cache.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

/* Unit tests for src/loop.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

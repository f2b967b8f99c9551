/* Unit tests for src/metrics.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

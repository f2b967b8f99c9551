/* Unit tests for src/config.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

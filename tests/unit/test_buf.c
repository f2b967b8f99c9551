/* Unit tests for src/buf.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

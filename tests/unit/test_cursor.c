/* Unit tests for src/cursor.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

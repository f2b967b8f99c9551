/* Unit tests for src/http.c. */
#include "unit.h"

int
main(void)
{
	return unit_done();
}

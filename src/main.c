/* Command line: -c, -t, -s, -v; load the configuration, hand over to the master. */
#include <stdio.h>

int
main(void)
{
	puts("feedd: not yet");
	return 1;
}

/* Error log with levels (stderr or a file, journald-aware) and the access log. */
#include "log.h"

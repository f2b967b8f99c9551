/* Files under www_root, with no way out of it. */
#include "static.h"

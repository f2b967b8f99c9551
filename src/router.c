/* Maps a request to its handler; every error answer is JSON. */
#include "router.h"

/* sd_notify when built with libsystemd; nothing otherwise. */
#include "notify.h"

/* The configuration file: postgresql.conf-style "key = value" lines. */
#include "config.h"

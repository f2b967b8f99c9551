/* The 15 feed sources: one SQL statement each, and its row -> item decoding. */
#include "feed_sources.h"

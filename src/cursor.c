/* Feed cursors and feed timestamps: parse and format. */
#include "cursor.h"

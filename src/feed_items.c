/* Feed items: the item record and the JSON primitives every item shape uses (json-c). */
#include "feed_items.h"

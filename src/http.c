/* HTTP vocabulary: status texts, percent-decoding, query strings, MIME types. */
#include "http.h"

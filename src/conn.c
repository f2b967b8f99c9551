/* One client connection: buffers, llhttp callbacks, keep-alive, pipelining, output bound. */
#include "conn.h"

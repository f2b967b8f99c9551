/* Growable byte buffers: the one way feedd accumulates bytes. */
#include "buf.h"

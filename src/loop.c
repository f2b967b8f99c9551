/* One worker's event loop: epoll for file descriptors, a min-heap of timers. */
#include "loop.h"

/* Growable byte buffers: the one way feedd accumulates bytes. */
#ifndef FEEDD_BUF_H
#define FEEDD_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
	char   *data;  /* always NUL-terminated when cap > 0 */
	size_t  len;
	size_t  cap;
} buf_t;

#define BUF_INIT { NULL, 0, 0 }

/* All return 0, or -1 when memory runs out (the buffer is left as it was). */
int  buf_reserve(buf_t *b, size_t extra);
int  buf_append(buf_t *b, const void *data, size_t len);
int  buf_append_str(buf_t *b, const char *s);
int  buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int  buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Drops the first n bytes (output already written to a socket). */
void buf_consume(buf_t *b, size_t n);
void buf_reset(buf_t *b);
void buf_free(buf_t *b);

#endif

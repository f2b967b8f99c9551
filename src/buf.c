/* Growable byte buffers: the one way feedd accumulates bytes. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for extra more bytes plus the NUL that always follows data.  No
 * object may exceed PTRDIFF_MAX bytes (malloc refuses them anyway), which
 * also keeps every sum below from overflowing. */
int
buf_reserve(buf_t *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > (size_t)PTRDIFF_MAX - 1 - b->len)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > (size_t)PTRDIFF_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -1;
	if (b->data == NULL)
		p[0] = '\0';
	b->data = p;
	b->cap = cap;
	return 0;
}

int
buf_append(buf_t *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_append_str(buf_t *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	/* Most lines fit in what is already there: one vsnprintf, no measuring pass. */
	if (buf_reserve(b, 0) < 0)
		return -1;
	va_copy(ap2, ap);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->data[b->len] = '\0';
		return -1;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (buf_reserve(b, (size_t)n) < 0) {
			b->data[b->len] = '\0';
			return -1;
		}
		va_copy(ap2, ap);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
		va_end(ap2);
		if (n < 0) {
			b->data[b->len] = '\0';
			return -1;
		}
	}
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(buf_t *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void
buf_consume(buf_t *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void
buf_reset(buf_t *b)
{
	b->len = 0;
	if (b->cap > 0)
		b->data[0] = '\0';
}

void
buf_free(buf_t *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* This worker's copies of hot cached pages as sealed in-memory files, sent with sendfile(2). */
#ifndef FEEDD_PAGE_FILES_H
#define FEEDD_PAGE_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"

typedef struct page_files page_files_t;

/* One copy of a page: a memfd of len bytes, sealed against every write, so
 * the kernel may send its pages by reference and nothing can change them
 * while they are in flight.  Held by the table and by each response that
 * sends it; closed when the last one lets go. */
typedef struct page_file {
	int fd;
	size_t len;
	cache_ref_t ref; /* the cache's copy it was made from */
	unsigned refs;
} page_file_t;

/* Files of up to max_bytes in all, held by the table (one still being sent
 * after its eviction lives on until sent); NULL when out of memory. */
page_files_t *page_files_create(size_t max_bytes);
/* Drops the table's references; files still being sent close on release. */
void page_files_destroy(page_files_t *t);

/* The file made for key (keyhash: cache_key_hash), NULL if none.  It may
 * be out of date: ask cache_check(&f->ref) before sending it. */
page_file_t *page_files_find(page_files_t *t, uint64_t keyhash, const char *key);

/* key's page was just served by copy, read from the cache as ref (whose
 * keyhash is key's).  A key seen for the first time is only remembered:
 * a flood of keys read once costs no file.  Seen again under the same
 * copy, or holding a file of an older one, it gets a file of body.  The
 * least recently used files go to stay within max_bytes.  A failure
 * (memfd, memory) is logged; the page is then served by copy as before. */
void page_files_note(page_files_t *t, const char *key, const cache_ref_t *ref, const char *body,
                     size_t len);

void page_file_hold(page_file_t *f);
void page_file_release(page_file_t *f);

#endif

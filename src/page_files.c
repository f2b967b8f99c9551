/* This worker's copies of hot cached pages as sealed in-memory files, sent with sendfile(2). */
#include "page_files.h"

/*
 * Why: a hit copied the page out of shared memory (with the checksum that
 * proves the copy whole) into the connection's output, and the kernel
 * copied it again into the socket.  sendfile(2) from a file hands the
 * socket references to the file's pages instead: no copy at all on the
 * sending side.  The shared slot cannot be sent that way, because a writer
 * may rewrite it while the kernel still holds its pages, and the bytes on
 * the wire would then be torn.  A copy nobody can write can be: a memfd
 * sealed with F_SEAL_WRITE, made once per page and worker.  Whether it is
 * still the page the cache holds is a question for cache_check (the
 * slot's seqlock value), asked on every request.
 *
 * Two lists, least recently used first out: keys seen once (the copy they
 * were served from, no file) and keys with a file.  A key gets a file when
 * it is served twice from one cache copy, so a flood of cursors read once
 * only churns the first list.  The files are bounded by max_bytes, and in
 * number by a share of the descriptor limit (each is an open memfd).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

/* Keys remembered per byte of files: enough that a hot key seen once is
 * still remembered when it comes back among many cold ones. */
#define SEEN_PER_BYTES ((size_t)4096)
#define SEEN_MIN       64
#define SEEN_MAX       65536
/* Files, each an open descriptor, at most this share of RLIMIT_NOFILE:
 * client connections need the rest. */
#define FILES_FD_SHARE 4

typedef struct pf_list pf_list_t;

typedef struct pf_entry {
	struct pf_entry *hnext;         /* bucket chain */
	struct pf_entry *newer, *older; /* its list */
	pf_list_t *list;
	cache_ref_t seen;  /* the copy it was last served from */
	page_file_t *file; /* NULL on the seen-once list */
	char key[];
} pf_entry_t;

struct pf_list {
	pf_entry_t *newest, *oldest;
	size_t n;
};

struct page_files {
	size_t max_bytes, bytes; /* bytes: files the table holds */
	size_t max_seen, max_files;
	size_t nbuckets; /* a power of two */
	pf_entry_t **buckets;
	pf_list_t seen, files;
	bool failing; /* logged; quiet until a file is made again */
};

static void
list_unlink(pf_entry_t *e)
{
	pf_list_t *l = e->list;

	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		l->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		l->oldest = e->newer;
	e->newer = e->older = NULL;
	l->n--;
}

static void
list_push(pf_list_t *l, pf_entry_t *e)
{
	e->list = l;
	e->newer = NULL;
	e->older = l->newest;
	if (l->newest != NULL)
		l->newest->newer = e;
	else
		l->oldest = e;
	l->newest = e;
	l->n++;
}

static pf_entry_t **
bucket_of(page_files_t *t, uint64_t keyhash)
{
	return &t->buckets[keyhash & (t->nbuckets - 1)];
}

static pf_entry_t *
lookup(page_files_t *t, uint64_t keyhash, const char *key)
{
	for (pf_entry_t *e = *bucket_of(t, keyhash); e != NULL; e = e->hnext)
		if (e->seen.keyhash == keyhash && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

void
page_file_hold(page_file_t *f)
{
	f->refs++;
}

void
page_file_release(page_file_t *f)
{
	if (--f->refs > 0)
		return;
	if (close(f->fd) < 0)
		log_warn("page files: close: %s", strerror(errno));
	metrics_gauge_add(METRICS_CACHE_SENDFILE_BYTES, -(int64_t)f->len);
	free(f);
}

static void
entry_drop_file(page_files_t *t, pf_entry_t *e)
{
	if (e->file == NULL)
		return;
	t->bytes -= e->file->len;
	page_file_release(e->file);
	e->file = NULL;
}

static void
entry_free(page_files_t *t, pf_entry_t *e)
{
	pf_entry_t **p = bucket_of(t, e->seen.keyhash);

	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	list_unlink(e);
	entry_drop_file(t, e);
	free(e);
}

static void
fail(page_files_t *t, const char *what)
{
	if (!t->failing)
		log_error("page files: %s: %s; cached pages are sent by copy until this works "
		          "again",
		          what, strerror(errno));
	t->failing = true;
}

/* A sealed memfd holding body; NULL on failure (logged). */
static page_file_t *
file_make(page_files_t *t, const char *body, size_t len, const cache_ref_t *ref)
{
	page_file_t *f = malloc(sizeof(*f));
	size_t done = 0;
	int fd;

	if (f == NULL) {
		fail(t, "out of memory");
		return NULL;
	}
	fd = memfd_create("feedd-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		fail(t, "memfd_create");
		free(f);
		return NULL;
	}
	while (done < len) {
		ssize_t n = write(fd, body + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			fail(t, "writing a page file");
			goto err;
		}
		done += (size_t)n;
	}
	/* Nothing can change the bytes now, not even a bug of ours: what the
	 * kernel sends by reference is what was written. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		fail(t, "sealing a page file");
		goto err;
	}
	if (t->failing)
		log_info("page files: cached pages are sent from files again");
	t->failing = false;
	f->fd = fd;
	f->len = len;
	f->ref = *ref;
	f->refs = 1;
	metrics_gauge_add(METRICS_CACHE_SENDFILE_BYTES, (int64_t)len);
	return f;
err:
	close(fd);
	free(f);
	return NULL;
}

page_files_t *
page_files_create(size_t max_bytes)
{
	page_files_t *t = calloc(1, sizeof(*t));
	size_t max_seen = max_bytes / SEEN_PER_BYTES;
	struct rlimit rl;

	if (t == NULL)
		return NULL;
	if (max_seen < SEEN_MIN)
		max_seen = SEEN_MIN;
	if (max_seen > SEEN_MAX)
		max_seen = SEEN_MAX;
	t->max_bytes = max_bytes;
	t->max_seen = max_seen;
	t->max_files = max_seen;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / FILES_FD_SHARE < t->max_files)
		t->max_files = rl.rlim_cur / FILES_FD_SHARE;
	/* Both lists together, at most about two entries per bucket. */
	t->nbuckets = 1;
	while (t->nbuckets < max_seen)
		t->nbuckets <<= 1;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void
page_files_destroy(page_files_t *t)
{
	if (t == NULL)
		return;
	while (t->seen.oldest != NULL)
		entry_free(t, t->seen.oldest);
	while (t->files.oldest != NULL)
		entry_free(t, t->files.oldest);
	free(t->buckets);
	free(t);
}

page_file_t *
page_files_find(page_files_t *t, uint64_t keyhash, const char *key)
{
	pf_entry_t *e = lookup(t, keyhash, key);

	if (e == NULL || e->file == NULL)
		return NULL;
	list_unlink(e);
	list_push(&t->files, e);
	return e->file;
}

static bool
same_copy(const cache_ref_t *a, const cache_ref_t *b)
{
	return a->slot == b->slot && a->seq == b->seq;
}

void
page_files_note(page_files_t *t, const char *key, const cache_ref_t *ref, const char *body,
                size_t len)
{
	pf_entry_t *e = lookup(t, ref->keyhash, key);
	page_file_t *f;

	if (e == NULL) {
		size_t klen = strlen(key);

		e = calloc(1, sizeof(*e) + klen + 1);
		if (e == NULL) {
			fail(t, "out of memory");
			return;
		}
		memcpy(e->key, key, klen + 1);
		e->seen = *ref;
		e->hnext = *bucket_of(t, ref->keyhash);
		*bucket_of(t, ref->keyhash) = e;
		list_push(&t->seen, e);
		if (t->seen.n > t->max_seen)
			entry_free(t, t->seen.oldest);
		return;
	}
	list_unlink(e);
	list_push(e->file != NULL ? &t->files : &t->seen, e);
	if (e->file == NULL && !same_copy(&e->seen, ref)) {
		e->seen = *ref; /* seen once under this copy */
		return;
	}
	if (e->file != NULL && same_copy(&e->file->ref, ref))
		return;
	if (len == 0 || len > t->max_bytes || t->max_files == 0)
		return;
	f = file_make(t, body, len, ref);
	if (f == NULL)
		return;
	entry_drop_file(t, e);
	e->file = f;
	e->seen = *ref;
	t->bytes += len;
	if (e->list != &t->files) {
		list_unlink(e);
		list_push(&t->files, e);
	}
	while ((t->bytes > t->max_bytes || t->files.n > t->max_files) && t->files.oldest != e)
		entry_free(t, t->files.oldest);
}

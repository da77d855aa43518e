/* lib/spill.c: the SPILL policy's disk queue (see internal/spill.h).
 * Plain code under the owner's lock; `count` is also read lock-free by
 * chan_overflow.c, so it is stored with release (the owner's Dekker pairs
 * are described there). File calls are cancellation points made under
 * that lock: cancellation is off around each (internal/death.h). */
#include "internal/spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal/atomic.h"
#include "internal/death.h"
#include "internal/sys.h"

#define DEFAULT_BLOCK ((size_t)256 << 10)

static int open_unlinked_(const char *dir)
{
	if (!dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
#ifdef O_TMPFILE
	int fd = weft__sys_open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* file systems without O_TMPFILE say so in several ways */
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
#endif
	char path[4096];
	if (snprintf(path, sizeof path, "%s/weft-spill-XXXXXX", dir) >= (int)sizeof path)
		return -ENAMETOOLONG;
	int fd2 = weft__sys_mkostemp(path, O_CLOEXEC);
	if (fd2 < 0)
		return -errno;
	unlink(path); /* at once: never visible while in use */
	return fd2;
}

static int open_unlinked(const char *dir)
{
	int old = weft__nocancel_begin();
	int fd = open_unlinked_(dir);
	weft__nocancel_end(old);
	return fd;
}

int weft__spill_open(struct weft__spill *sp, size_t esize, const char *dir, size_t block_bytes)
{
	memset(sp, 0, sizeof *sp);
	sp->fd = -1;
	if (esize == 0)
		return -EINVAL;
	if (block_bytes == 0)
		block_bytes = DEFAULT_BLOCK;
	sp->esize = esize;
	sp->per_block = block_bytes / esize ? block_bytes / esize : 1;
	sp->bbytes = sp->per_block * esize;
	sp->wbuf = weft__sys_malloc(sp->bbytes);
	sp->rbuf = weft__sys_malloc(sp->bbytes);
	if (!sp->wbuf || !sp->rbuf) {
		weft__spill_fini(sp);
		return -ENOMEM;
	}
	int fd = open_unlinked(dir);
	if (fd < 0) {
		weft__spill_fini(sp);
		return fd;
	}
	sp->fd = fd;
	return 0;
}

void weft__spill_fini(struct weft__spill *sp)
{
	if (sp->fd >= 0) {
		int old = weft__nocancel_begin();
		close(sp->fd);
		weft__nocancel_end(old);
	}
	sp->fd = -1;
	free(sp->wbuf);
	free(sp->rbuf);
	sp->wbuf = sp->rbuf = NULL;
}

/* One block between buf and the file at off, whole (short transfers
 * continued, EINTR retried): 0 or -errno (a short read at the end: -EIO). */
static int block_io_(int fd, unsigned char *buf, size_t len, uint64_t off, int write)
{
	size_t done = 0;
	while (done < len) {
		ssize_t k = write ? weft__sys_pwrite(fd, buf + done, len - done, (off_t)(off + done))
				  : weft__sys_pread(fd, buf + done, len - done, (off_t)(off + done));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		done += (size_t)k;
	}
	return 0;
}

static int block_io(int fd, unsigned char *buf, size_t len, uint64_t off, int write)
{
	int old = weft__nocancel_begin();
	int rc = block_io_(fd, buf, len, off, write);
	weft__nocancel_end(old);
	return rc;
}

/* Write the full write block at woff: 0 or -errno (nothing changed). */
static int write_block(struct weft__spill *sp)
{
	int rc = block_io(sp->fd, sp->wbuf, sp->bbytes, sp->woff, 1);
	if (rc)
		return rc;
	sp->woff += sp->bbytes;
	if (sp->woff > sp->hiwater)
		sp->hiwater = sp->woff;
	sp->file_written += sp->bbytes;
	sp->wn = 0;
	return 0;
}

int weft__spill_push(struct weft__spill *sp, const void *elem)
{
	if (sp->wn == sp->per_block) {
		if (sp->wr > 0) {
			/* part of the block was read straight from memory:
			 * close the gap instead of writing */
			memmove(sp->wbuf, sp->wbuf + sp->wr * sp->esize, (sp->wn - sp->wr) * sp->esize);
			sp->wn -= sp->wr;
			sp->wr = 0;
		} else {
			int rc = write_block(sp);
			if (rc)
				return rc;
		}
	}
	memcpy(sp->wbuf + sp->wn * sp->esize, elem, sp->esize);
	sp->wn++;
	sp->pushed++;
	/* release: written under the owner's lock only; read lock-free with
	 * acquire (chan_overflow.c), whose Dekker pairs get their store-load
	 * fence from the lock's release (an xchg) */
	weft__st64_rel(&sp->count, weft__ld64_rlx(&sp->count) + 1);
	return 0;
}

int weft__spill_pop(struct weft__spill *sp, void *elem)
{
	if (sp->rr == sp->rn) {
		if (sp->roff < sp->woff) {
			int rc = block_io(sp->fd, sp->rbuf, sp->bbytes, sp->roff, 0);
			if (rc)
				return rc;
			sp->file_read += sp->bbytes;
			sp->roff += sp->bbytes;
			sp->rn = sp->per_block;
			sp->rr = 0;
			if (sp->roff == sp->woff) {
				/* all on disk is read back: start over at 0 */
				sp->roff = sp->woff = 0;
				if (sp->hiwater > 8 * (uint64_t)sp->bbytes) {
					if (weft__sys_ftruncate(sp->fd, 0) == 0)
						sp->hiwater = 0;
				}
			}
		} else if (sp->wr < sp->wn) {
			if (elem)
				memcpy(elem, sp->wbuf + sp->wr * sp->esize, sp->esize);
			if (++sp->wr == sp->wn)
				sp->wr = sp->wn = 0;
			goto taken;
		} else {
			return -EAGAIN;
		}
	}
	/* elem NULL: taken and dropped (a select RECV case may have no
	 * element; fuzz_select: that case on a spilled element crashed in
	 * memcpy), as the ring's pop does */
	if (elem)
		memcpy(elem, sp->rbuf + sp->rr * sp->esize, sp->esize);
	sp->rr++;
taken:
	sp->popped++;
	/* release: as in push */
	weft__st64_rel(&sp->count, weft__ld64_rlx(&sp->count) - 1);
	return 0;
}

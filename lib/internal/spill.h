/* lib/internal/spill.h: the disk queue behind the SPILL overflow policy.
 *
 * A FIFO of fixed-size elements in an unlinked file: elements are appended
 * to a write block in memory; a full write block is written with one pwrite
 * at the file's end; a receiver reads the oldest block back with one pread
 * into a read block. Queue order: the read block's rest, the file's blocks
 * [roff, woff), then the write block's rest. While no block is on disk the
 * write block alone serves both sides (a short overflow never touches the
 * disk). When everything written has been read back, the offsets return to
 * 0 (and a file that grew past 8 blocks is truncated).
 *
 * Not thread-safe: the owner (chan_overflow.c) holds its lock around every
 * call except weft__spill_count's relaxed reads.
 */
#ifndef WEFT_INTERNAL_SPILL_H
#define WEFT_INTERNAL_SPILL_H

#include <stddef.h>
#include <stdint.h>

struct weft__spill {
	int fd;
	size_t esize;
	size_t per_block; /* elements per block */
	size_t bbytes;    /* per_block * esize */
	unsigned char *wbuf, *rbuf;
	size_t wn, wr;    /* write block: elements in it, next to read */
	size_t rn, rr;    /* read block: elements in it, next to read */
	uint64_t woff, roff; /* file: blocks on disk are [roff, woff) */
	uint64_t hiwater;    /* the file's size, for truncation */
	uint64_t count;      /* elements queued (stored with release under
			      * the lock, read lock-free: see chan_overflow.c) */
	uint64_t pushed, popped;          /* ever (under the lock) */
	uint64_t file_written, file_read; /* bytes, ever (under the lock) */
};

/* Open the file in dir (NULL: $TMPDIR, else /tmp): O_TMPFILE, else
 * mkostemp + unlink at once. 0 or a negative errno. */
int weft__spill_open(struct weft__spill *sp, size_t esize, const char *dir, size_t block_bytes);
void weft__spill_fini(struct weft__spill *sp);
/* Append one element: 0, or the negative errno of writing the full write
 * block out (then nothing changed; the element is the caller's). */
int weft__spill_push(struct weft__spill *sp, const void *elem);
/* Take the oldest into elem (NULL: drop it): 0, -EAGAIN (empty), or the
 * negative errno of reading a block back (nothing taken). */
int weft__spill_pop(struct weft__spill *sp, void *elem);

#endif

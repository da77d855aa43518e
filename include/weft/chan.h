/* weft/chan.h: Go channels and select for C.
 *
 * A channel carries fixed-size elements, copied in on send and out on
 * receive. Buffered channels (capacity >= 1, any value, not only powers of
 * two) are a lock-free MPMC ring: send and receive take no lock and
 * allocate nothing; a thread blocks only when the ring is full (senders) or
 * empty (receivers), spinning a few microseconds and then sleeping on a
 * futex (see weft_set_spin_ns). Unbuffered channels (capacity 0) are a
 * rendezvous: a send returns only once a receiver has taken the element.
 *
 * Concurrency: every call may be made by any number of threads at once on
 * the same channel, except weft_chan_destroy, which must be the last call
 * on it (no thread may be inside any other call on the channel).
 *
 * Order: elements from one sender are received in the order sent (FIFO per
 * producer); a buffered channel is FIFO overall in the order sends
 * completed their claim on a slot.
 *
 * Close (Go's semantics, errors instead of panics): after weft_chan_close,
 * sends return -EPIPE and deliver nothing (including sends blocked at the
 * moment of close); receivers first drain what is buffered, then get
 * -EPIPE. Nothing accepted is lost, nothing is delivered twice.
 *
 * Bad input: a NULL channel is -EINVAL in every call (it never blocks, unlike
 * a nil channel in Go); len and cap of NULL are 0. A NULL element pointer
 * with a nonzero elem_size is -EINVAL. With elem_size 0 (signal-only
 * channels) element pointers may be NULL and are never touched.
 *
 * Deadlines: an _until call whose deadline has already passed behaves like
 * the _try call but returns -ETIMEDOUT instead of -EAGAIN: a ready operation
 * still completes and a closed channel still gives -EPIPE.
 *
 * Try calls never sleep; on a buffered channel they may wait, briefly and
 * bounded by that thread running again, for another thread that is in the
 * middle of filling or emptying the very slot they need, so that a send
 * that has returned is always visible to a later try_recv.
 */
#ifndef WEFT_CHAN_H
#define WEFT_CHAN_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_chan weft_chan_t;

/* Largest capacity accepted: larger ones are -ENOMEM. */
#define WEFT_CHAN_MAX_CAPACITY ((size_t)1 << 30)

/* Create a channel of elements of elem_size bytes holding up to capacity
 * of them (0: unbuffered). *out is set only on success. Returns 0,
 * -EINVAL (out NULL), or -ENOMEM (no memory, or elem_size x capacity too
 * large to allocate). The caller owns the channel: weft_chan_destroy. */
WEFT_API int weft_chan_create(weft_chan_t **out, size_t elem_size, size_t capacity);

/* Free the channel and any element still buffered (elements are plain
 * bytes: whatever they point to stays the caller's). NULL is a no-op. */
WEFT_API void weft_chan_destroy(weft_chan_t *ch);

/* Blocking send: 0 once the element is buffered (or, unbuffered, taken by
 * a receiver); -EPIPE if the channel is or becomes closed first (the element
 * was not sent). */
WEFT_API int weft_chan_send(weft_chan_t *ch, const void *elem);

/* Blocking receive into *elem: 0, or -EPIPE once the channel is closed and
 * drained. (To drop elements, receive into a scratch buffer or use a select
 * RECV case with a NULL elem.) */
WEFT_API int weft_chan_recv(weft_chan_t *ch, void *elem);

/* Never sleep: 0, -EAGAIN (full / empty / no partner waiting), -EPIPE. */
WEFT_API int weft_chan_try_send(weft_chan_t *ch, const void *elem);
WEFT_API int weft_chan_try_recv(weft_chan_t *ch, void *elem);

/* Block until the absolute CLOCK_MONOTONIC deadline (ns): as send/recv, or
 * -ETIMEDOUT, in which case nothing was sent or received. */
WEFT_API int weft_chan_send_until(weft_chan_t *ch, const void *elem, int64_t deadline);
WEFT_API int weft_chan_recv_until(weft_chan_t *ch, void *elem, int64_t deadline);

/* As send/recv, but also return the context's error (-ECANCELED, or
 * -ETIMEDOUT for an expired context deadline) promptly once ctx is done,
 * in which case nothing was sent or received: the channel is exactly as if
 * the call had not been made. A context that is already done fails the call
 * even if the channel is ready. ctx NULL: -EINVAL. */
WEFT_API int weft_chan_send_ctx(weft_chan_t *ch, const void *elem, weft_ctx_t *ctx);
WEFT_API int weft_chan_recv_ctx(weft_chan_t *ch, void *elem, weft_ctx_t *ctx);

/* Bulk: send elems[0..n) in order; blocks until at least one is sent, then
 * sends as many more as fit without blocking again. Returns how many were
 * sent (always a prefix, >= 1), or -EPIPE / -EINVAL (n == 0 is -EINVAL).
 * One claim and one wake-up check per batch, so it is much cheaper per
 * element than n sends. */
WEFT_API long weft_chan_send_many(weft_chan_t *ch, const void *elems, size_t n);

/* Bulk receive into elems[0..max): blocks until at least one is there, then
 * takes as many more as are there (up to max). Returns how many, -EPIPE when
 * closed and drained, or -EINVAL (max == 0, or elems NULL with elem_size). */
WEFT_API long weft_chan_recv_many(weft_chan_t *ch, void *elems, size_t max);

/* Close: 0, or -EPIPE if already closed. Wakes every blocked sender (they
 * get -EPIPE) and receiver (they drain, then get -EPIPE). Never blocks. */
WEFT_API int weft_chan_close(weft_chan_t *ch);

/* Elements buffered now (a snapshot; 0 for unbuffered channels, even while
 * senders wait; never more than cap, except under SPILL, where it
 * counts the disk too). NULL: 0. */
WEFT_API size_t weft_chan_len(const weft_chan_t *ch);
/* Capacity given at create. NULL: 0. */
WEFT_API size_t weft_chan_cap(const weft_chan_t *ch);
/* Element size given at create. NULL: 0. */
WEFT_API size_t weft_chan_elem_size(const weft_chan_t *ch);
/* Nonzero once closed (buffered elements may remain). NULL: 0. */
WEFT_API int weft_chan_is_closed(const weft_chan_t *ch);

/* ---- overflow policies ------------------------------------------------- *
 *
 * What a send does when a buffered channel is full. BLOCK is the plain
 * channel above (it waits for room). The others never wait for room:
 * - DROP_NEWEST: the element is not queued (it stays the caller's), is
 *   counted in `dropped`, and the send returns -ENOBUFS: every send
 *   variant (try, a passed deadline, a select SEND case, which is then
 *   ready and reports err = -ENOBUFS).
 * - DROP_OLDEST: the oldest buffered element is evicted (handed to
 *   on_drop(elem, user) once, on the evicting sender's thread before its
 *   send returns; on_drop must not call this channel), counted in
 *   `dropped`, and the send returns 0. Elements still buffered at destroy
 *   are not passed to on_drop.
 * - SPILL: what does not fit in memory goes to a file and comes back in
 *   FIFO order, exactly once, with any number of senders and receivers:
 *   FIFO per sender, and across senders for sends ordered by
 *   happens-before (one returned before the other began). The file is
 *   created at weft_chan_create_opts in spill_dir (NULL: $TMPDIR, else
 *   /tmp) with O_TMPFILE, or, where the file system lacks it, created
 *   and unlinked at once: it never has a name while in use, a crash leaves
 *   nothing, and destroy closes it. Spilled elements are buffered in two
 *   blocks of spill_block_bytes (default 256 KiB) and written and read a
 *   block at a time (one pwrite/pread per block, not per element); a short
 *   overflow that fits in the write block never touches the disk. At
 *   spill_max_bytes (elements spilled and not yet received x elem_size; 0:
 *   no limit) a send waits for room as under BLOCK (try_send: -EAGAIN). A
 *   disk error (ENOSPC, EIO, EFBIG from RLIMIT_FSIZE, which also sends
 *   SIGXFSZ: ignore that signal to get the error) fails the send that
 *   needed the write with that negative errno: its element was not
 *   queued, and every element accepted before stays queued and is
 *   delivered (the write is retried by the next send that needs it). A
 *   read error fails the receive with its errno (nothing taken).
 *   elem_size 0 is -EINVAL with SPILL.
 * len counts the elements in memory and on disk (it may exceed cap under
 * SPILL); cap is the memory capacity. Close, drain and -EPIPE are as for
 * BLOCK, spilled elements included. */
enum {
	WEFT_OVERFLOW_BLOCK = 0,
	WEFT_OVERFLOW_DROP_NEWEST = 1,
	WEFT_OVERFLOW_DROP_OLDEST = 2,
	WEFT_OVERFLOW_SPILL = 3
};

typedef struct weft_chan_opts { /* zeroed fields take defaults */
	size_t elem_size;
	size_t capacity;   /* in memory; must be > 0 for every policy but BLOCK */
	int overflow;      /* WEFT_OVERFLOW_* */
	void (*on_drop)(void *elem, void *user); /* DROP_OLDEST: each evicted element, once */
	void *user;
	const char *spill_dir;      /* SPILL: directory of the file; NULL: $TMPDIR or /tmp */
	uint64_t spill_max_bytes;   /* SPILL: 0: no limit; at the limit sends block as BLOCK */
	size_t spill_block_bytes;   /* SPILL: write/read unit; 0: 256 KiB (at least one element) */
} weft_chan_opts_t;

/* Create a channel as weft_chan_create, with a policy. Returns 0, -EINVAL
 * (out or opts NULL; an unknown policy; a policy other than BLOCK with
 * capacity 0; SPILL with elem_size 0), -ENOMEM, or the negative errno of
 * creating the spill file (-ENOENT: no such spill_dir, -EACCES, ...).
 * *out is set only on success. */
WEFT_API int weft_chan_create_opts(weft_chan_t **out, const weft_chan_opts_t *opts);

typedef struct weft_chan_stats {
	uint64_t sent;      /* elements accepted (a DROP_NEWEST refusal is not sent) */
	uint64_t received;  /* elements received (evictions are not received) */
	uint64_t dropped;   /* DROP_NEWEST refusals, DROP_OLDEST evictions */
	uint64_t spilled;   /* SPILL: elements that went past the memory ring */
	size_t len;         /* in memory and on disk */
	uint64_t spill_bytes;         /* spilled, not yet received, x elem_size */
	uint64_t spill_file_written;  /* bytes written to the file, ever */
	uint64_t spill_file_read;     /* bytes read back from it, ever */
	int overflow;                 /* the policy */
} weft_chan_stats_t;

/* Fill *out with a snapshot (each counter read once, relaxed: they need
 * not add up at one instant while others send and receive). sent and
 * received are counted for buffered channels (unbuffered ones report 0;
 * len as weft_chan_len). Never blocks (SPILL: takes the spill lock
 * briefly). 0, or -EINVAL (NULL). */
WEFT_API int weft_chan_stats(const weft_chan_t *ch, weft_chan_stats_t *out);

/* ---- select ------------------------------------------------------------ */

enum { WEFT_SEND = 1, WEFT_RECV = 2 };

typedef struct weft_case {
	weft_chan_t *chan; /* NULL: the case is disabled, like a nil channel in Go */
	int op;            /* WEFT_SEND or WEFT_RECV */
	void *elem;        /* SEND: the value to send; RECV: where to store (may be NULL) */
	int err;           /* out, for the chosen case: 0, or -EPIPE (closed) */
} weft_case_t;

/* Wait until one case can proceed and do exactly that one; return its
 * index. Among cases ready at the same time the choice is uniformly random.
 * A receive on a closed (drained) channel is ready and completes with
 * err = -EPIPE; a send on a closed channel completes with err = -EPIPE and
 * delivers nothing. The same channel may appear in several cases; a select
 * never meets itself (a send and a receive on the same unbuffered channel in
 * one select do not pair with each other).
 * Errors: -EINVAL for cases == NULL with n > 0, a bad op, a NULL elem for an
 * enabled SEND with elem_size > 0, more than WEFT_SELECT_MAX_CASES cases, or
 * (plain weft_select only) no enabled case at all, which in Go would block
 * forever; -ENOMEM if a select of more than 32 cases cannot allocate its
 * wait nodes. Thread-safe; cases must not be shared with another select
 * running at the same time. */
WEFT_API int weft_select(weft_case_t *cases, size_t n);
/* Never sleeps: index, or -EAGAIN when no case is ready. -EAGAIN is
 * linearizable: there was an instant during the call at which no case was
 * ready (Go's "default only if no case was ready"); a case that stayed
 * ready throughout is never missed. Lock-free: it looks again only when an
 * operation on one of its channels completed meanwhile. Costs about 1.3x a
 * single pass when nothing is ready (8 empty cases: 54 -> 78 ns). */
WEFT_API int weft_select_try(weft_case_t *cases, size_t n);
/* As weft_select, or -ETIMEDOUT at the deadline (no case done; as for
 * select_try, no case was ready at the instant it gave up). With no
 * enabled case it simply waits for the deadline. */
WEFT_API int weft_select_until(weft_case_t *cases, size_t n, int64_t deadline);

/* As weft_select, or the context's error once ctx is done (no case done).
 * A context already done fails at once. ctx NULL: -EINVAL. */
WEFT_API int weft_select_ctx(weft_case_t *cases, size_t n, weft_ctx_t *ctx);

#define WEFT_SELECT_MAX_CASES ((size_t)1 << 20)

#ifdef __cplusplus
}
#endif

#endif /* WEFT_CHAN_H */

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
 * senders wait; never more than cap). NULL: 0. */
WEFT_API size_t weft_chan_len(const weft_chan_t *ch);
/* Capacity given at create. NULL: 0. */
WEFT_API size_t weft_chan_cap(const weft_chan_t *ch);
/* Element size given at create. NULL: 0. */
WEFT_API size_t weft_chan_elem_size(const weft_chan_t *ch);
/* Nonzero once closed (buffered elements may remain). NULL: 0. */
WEFT_API int weft_chan_is_closed(const weft_chan_t *ch);

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

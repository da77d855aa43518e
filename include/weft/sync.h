/* weft/sync.h: semaphore, WaitGroup and Once.
 *
 * The types here are embeddable: declared with their size and alignment so
 * they can live on the stack or inside user structs, contents private.
 * Everything that blocks parks on a futex (weft's parking: a short bounded
 * spin, then sleep); nothing uses condition variables or sem_t.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== weighted semaphore ================================================
 *
 * A counting semaphore of `capacity` tokens, acquired and released n at a
 * time, strictly FIFO (Go's golang.org/x/sync/semaphore semantics): once a
 * caller is queued, later acquires queue behind it even if they are small
 * enough to fit, so a large request is never starved; try_acquire fails
 * while anyone is queued; releases hand tokens to the queue's head, in
 * order, as far as they fit.
 *
 * When an acquire cannot proceed at once and nobody is queued, it first
 * spins for the tokens (a few microseconds, only when cores are free);
 * then it queues, and from then on its place is fixed. While queued it
 * stays runnable for up to 20 us, yielding the core between looks, and
 * then sleeps: with more threads than cores cycling the tokens, strict
 * FIFO hands every acquire to a thread that is not running, and a grant
 * that finds its waiter runnable costs a context switch instead of a
 * futex wake-up (measured with 8 threads on 2 cores cycling one token:
 * 2.4-4.8 us per acquire; the mutex + condvar baseline, whose waiters all
 * sleep, 12 us).
 *
 * Cost: an uncontended acquire or release is one CAS on one word (the free
 * count, with a "someone is queued" flag folded in). Queued waiters sit
 * under an internal lock; a release hands the head its tokens.
 *
 * Concurrency: every call may be made by any number of threads at once,
 * except init and destroy, which must not overlap any other call on the
 * same semaphore. Tokens are not owned by threads: any thread may release.
 *
 * Arguments: a NULL semaphore, n < 0 and n > capacity are -EINVAL in every
 * call (nothing changes). n == 0 succeeds at once in every call without
 * queueing, even while others wait (acquire_ctx first checks the context).
 * A failed acquire (timeout, cancellation) takes no token and, if it was
 * at the head of the queue, lets the waiters behind it proceed if they fit.
 */

typedef union weft_sem {
	unsigned char weft_opaque_[48];
	uint64_t weft_align_;
} weft_sem_t;

/* Largest capacity (2^62 - 1; the count word keeps a bit to spare). */
#define WEFT_SEM_MAX_CAPACITY ((int64_t)(((uint64_t)1 << 62) - 1))

/* Make s a semaphore with capacity free tokens. 0, or -EINVAL (s NULL,
 * capacity <= 0 or > WEFT_SEM_MAX_CAPACITY). Never blocks. */
WEFT_API int weft_sem_init(weft_sem_t *s, int64_t capacity);

/* End of life; no thread may be waiting on s. Frees nothing (s is the
 * caller's memory). NULL: nothing. */
WEFT_API void weft_sem_destroy(weft_sem_t *s);

/* Block until n tokens are taken: 0, or -EINVAL. */
WEFT_API int weft_sem_acquire(weft_sem_t *s, int64_t n);

/* Never blocks: 0, or -EAGAIN if fewer than n are free or anyone waits. */
WEFT_API int weft_sem_try_acquire(weft_sem_t *s, int64_t n);

/* As acquire, or -ETIMEDOUT once the absolute CLOCK_MONOTONIC deadline
 * (ns) passes (a passed deadline behaves like try_acquire, except for the
 * error). On -ETIMEDOUT no token was taken. */
WEFT_API int weft_sem_acquire_until(weft_sem_t *s, int64_t n, int64_t deadline);

/* As acquire, or ctx's error (-ECANCELED / -ETIMEDOUT) once ctx is done;
 * an already-done ctx fails even when tokens are free. On failure no token
 * was taken. ctx NULL: -EINVAL. */
WEFT_API int weft_sem_acquire_ctx(weft_sem_t *s, int64_t n, weft_ctx_t *ctx);

/* Return n tokens and hand them to the waiters at the head of the queue,
 * in order, as far as they fit. 0, or -EINVAL if that would make more than
 * capacity free (over-release: nothing changes). Never blocks for long
 * (it may take the internal lock briefly when someone waits). */
WEFT_API int weft_sem_release(weft_sem_t *s, int64_t n);

/* ==== end of weighted semaphore ========================================= */

/* ==== WaitGroup and Once ================================================
 * Go's sync.WaitGroup, sync.Once and sync.OnceValue. Both types are
 * embeddable: declared here with their size and alignment, contents
 * private, so they live on the stack, in static storage or inside user
 * structs. An all-zero object is a valid initial state of either
 * (WEFT_WG_INIT, WEFT_ONCE_INIT, or memset 0); neither needs a destroy.
 * Both wait the weft way (a bounded spin, then a futex sleep; see
 * weft_set_spin_ns); a wake-up is made only when someone sleeps. */

/* ---- WaitGroup --------------------------------------------------------- */

/* A counter of outstanding work; wait blocks until it is zero. */
typedef struct weft_wg {
	uint64_t weft__opaque[5];
} weft_wg_t;

/* Static initializer (the same as weft_wg_init). */
#define WEFT_WG_INIT {{0}}

/* Initialize (to a zero counter). Not concurrently with other calls on wg.
 * Returns 0, or -EINVAL for NULL. */
WEFT_API int weft_wg_init(weft_wg_t *wg);

/* Add delta (positive or negative) to the counter. Any thread, any time.
 * Returns 0; -EINVAL (and the counter is unchanged) for NULL or when the
 * counter would become negative or exceed INT32_MAX. When the counter
 * reaches zero every waiter is released (one futex wake for all of them).
 * Never sleeps or waits: an add that starts a new round (from zero) while
 * the previous round's waiters are still waking up is safe (Go calls this
 * "reuse before Wait has returned" and panics): those waiters belong to
 * the round that ended and return. */
WEFT_API int weft_wg_add(weft_wg_t *wg, int64_t delta);

/* weft_wg_add(wg, -1). */
WEFT_API int weft_wg_done(weft_wg_t *wg);

/* Block until the counter is zero; returns 0 (-EINVAL for NULL). Any number
 * of threads may wait at once. Once wait has returned, the memory of wg may
 * be freed or reused by the caller even though the thread that made the
 * last done may still be inside weft_wg_done: that thread touches wg no
 * more after the change that lets waiters return. A WaitGroup is reusable:
 * after wait returns, add starts a new round. */
WEFT_API int weft_wg_wait(weft_wg_t *wg);

/* As weft_wg_wait, or -ETIMEDOUT once the absolute CLOCK_MONOTONIC deadline
 * (ns) has passed with the counter still nonzero. A waiter whose deadline
 * passes just as the counter reaches zero returns 0. */
WEFT_API int weft_wg_wait_until(weft_wg_t *wg, int64_t deadline);

/* ---- Once -------------------------------------------------------------- */

/* Runs a function exactly once, however many threads call. */
typedef struct weft_once {
	uint64_t weft__opaque[2];
} weft_once_t;

/* Static initializer: weft_once_t o = WEFT_ONCE_INIT; (or all zero) */
#define WEFT_ONCE_INIT {{0}}

/* Run fn(arg) if no call on o has run its function yet. Every caller
 * returns only once fn has returned (concurrent callers sleep until then).
 * Returns 0; -EINVAL for NULL o or fn (nothing is used up); -EDEADLK when
 * called from inside the function running on the same once (by the same
 * thread: recursion, which would otherwise never return). A deadlock
 * through two onces whose functions call each other on two threads is not
 * detected (it hangs, as in Go). After completion a call costs one load.
 * The function must return normally (no longjmp out of it). */
WEFT_API int weft_once(weft_once_t *o, void (*fn)(void *arg), void *arg);

/* As weft_once, for a function with a result (Go's sync.OnceValue): fn
 * runs once and every caller, now and later, gets the int it returned,
 * whatever its sign (errors and positive values are kept too; there is no
 * retry). -EINVAL and -EDEADLK as weft_once. A once may mix both calls;
 * weft_once's functions count as returning 0. */
WEFT_API int weft_once_try(weft_once_t *o, int (*fn)(void *arg), void *arg);

/* ==== end of WaitGroup and Once ========================================= */

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_H */

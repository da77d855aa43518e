/* weft/sync_wg.h: WaitGroup and Once (Go's sync.WaitGroup, sync.Once and
 * sync.OnceValue). Part of weft/sync.h; include that.
 *
 * Both types are embeddable: declared here with their size and alignment,
 * contents private, so they live on the stack, in static storage or inside
 * user structs. An all-zero object is a valid initial state of either
 * (WEFT_WG_INIT, WEFT_ONCE_INIT, or memset 0); neither needs a destroy.
 *
 * Blocking: both wait the weft way (a bounded spin, then a futex sleep;
 * see weft_set_spin_ns); a wake-up is made only when someone sleeps.
 */
#ifndef WEFT_SYNC_WG_H
#define WEFT_SYNC_WG_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

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
 * reaches zero every waiter is released. Never sleeps, with one exception:
 * an add that starts a new round (from zero) while the previous round's
 * waiters are still being released waits the few instructions that takes
 * (Go calls this "reuse before Wait has returned" and panics; weft makes it
 * safe instead). */
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

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_WG_H */

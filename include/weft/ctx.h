/* weft/ctx.h: Go's context cancellation for C.
 *
 * A context carries a done state: cancelled explicitly, by its deadline, or
 * through its parent. Cancelling a context cancels every descendant;
 * blocking weft calls with a _ctx variant return its error promptly once it
 * is done. Contexts form a tree rooted at weft_ctx_background().
 *
 * Errors: weft_ctx_err() is 0 while not done, then -ECANCELED (cancelled,
 * or released) or -ETIMEDOUT (its deadline, or an ancestor's, passed).
 * weft_ctx_cause() is 0 while not done, then the cause: -ECANCELED after a
 * plain cancel, -ETIMEDOUT after a deadline, or the value given to
 * weft_ctx_cancel_cause(). The first cancellation wins; a context cancelled
 * through its parent takes the parent's error and cause.
 *
 * Deadlines (no thread per context): a child's deadline is min(its own,
 * its parent's). Expiry is noticed lazily: weft_ctx_err(), weft_ctx_cause()
 * and weft_ctx_wait() compare the deadline with the clock and, once it has
 * passed, cancel the context (err and cause -ETIMEDOUT; an ancestor whose
 * own deadline passed is expired first, so the cause flows down the tree as
 * in Go). Every weft call that blocks on a context sleeps with its futex
 * timeout set to the context's deadline and checks on waking, so waiters see
 * a deadline on time without help. The one thing that must happen on time
 * with nobody looking is an after_func: a context with a pending after_func
 * and a finite deadline is put in one process-wide deadline heap, served by
 * one timer thread started lazily (and parked on a futex when idle). After
 * funcs run on one shared runner thread, also started lazily.
 *
 * Memory: contexts are reference counted. The creator owns one reference
 * and drops it with weft_ctx_release(), which also cancels the context and
 * detaches it from its parent. A child holds a reference to its parent, so
 * a parent may be released before its children; memory is freed when the
 * last reference goes. Every context created must be released exactly
 * once; no call may use it after that (the caller's own calls on it must
 * have returned).
 *
 * Concurrency: every function may be called by any number of threads at
 * once, on the same or related contexts. Only weft_ctx_wait() blocks.
 *
 * NULL: functions returning int give -EINVAL for a NULL context or out
 * pointer; cancel, cancel_cause and release of NULL do nothing.
 */
#ifndef WEFT_CTX_H
#define WEFT_CTX_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The root: never done, no deadline, never freed. The same pointer every
 * time; cancel and release of it do nothing. */
WEFT_API weft_ctx_t *weft_ctx_background(void);

/* A child of parent, done when cancelled or when parent is done (at once if
 * parent is done already). *out is set only on success. Returns 0, -EINVAL
 * (out or parent NULL) or -ENOMEM. The caller owns *out: weft_ctx_release. */
WEFT_API int weft_ctx_with_cancel(weft_ctx_t **out, weft_ctx_t *parent);

/* As with_cancel, also done at the absolute CLOCK_MONOTONIC deadline (ns)
 * with -ETIMEDOUT; the effective deadline is min(deadline, parent's). A
 * deadline already passed gives a context that is done at once. */
WEFT_API int weft_ctx_with_deadline(weft_ctx_t **out, weft_ctx_t *parent, int64_t deadline);

/* with_deadline(out, parent, weft_deadline(timeout_ns)); timeout <= 0: done
 * at once with -ETIMEDOUT. */
WEFT_API int weft_ctx_with_timeout(weft_ctx_t **out, weft_ctx_t *parent, int64_t timeout_ns);

/* Cancel ctx and all its descendants: err becomes -ECANCELED (cause
 * -ECANCELED) unless it was done already. Wakes everything waiting on them;
 * never blocks on them (after funcs are handed to the runner thread). */
WEFT_API void weft_ctx_cancel(weft_ctx_t *ctx);

/* As cancel, with cause kept as the cause (0 means -ECANCELED). The first
 * cancellation wins: a later cause is ignored. */
WEFT_API void weft_ctx_cancel_cause(weft_ctx_t *ctx, int cause);

/* 0 while not done, then -ECANCELED or -ETIMEDOUT (see above). Notices an
 * expired deadline. NULL: -EINVAL. */
WEFT_API int weft_ctx_err(weft_ctx_t *ctx);

/* 0 while not done, then the cause (see above). NULL: -EINVAL. */
WEFT_API int weft_ctx_cause(weft_ctx_t *ctx);

/* Block until ctx is done (returns its error) or the absolute deadline
 * passes (-ETIMEDOUT; ctx's error wins if both hold). NULL: -EINVAL.
 * Waiting on the background context only ever times out. */
WEFT_API int weft_ctx_wait(weft_ctx_t *ctx, int64_t deadline);

/* The effective deadline: min of ctx's and its ancestors' (WEFT_FOREVER if
 * none, or for NULL). */
WEFT_API int64_t weft_ctx_deadline(weft_ctx_t *ctx);

/* Cancel ctx (as weft_ctx_cancel), detach it from its parent and drop the
 * caller's reference. NULL and background: nothing. */
WEFT_API void weft_ctx_release(weft_ctx_t *ctx);

/* ---- after_func (Go's context.AfterFunc) ---- */

typedef struct weft_ctx_stop weft_ctx_stop_t;

/* Arrange for fn(arg) to run once ctx is done (soon, if it is done
 * already). fn runs on a shared runner thread, one after-func at a time in
 * the order the contexts became done: it should not block for long, and
 * must not wait for another after_func to run.
 *
 * stop: if not NULL, *stop receives a handle owned by the caller, who must
 * free it with weft_ctx_stop_release() (after or instead of
 * weft_ctx_stop()); the handle keeps ctx's memory alive until then. With a
 * NULL stop the registration cannot be stopped and frees itself.
 * Returns 0, -EINVAL (ctx or fn NULL) or -ENOMEM. Registering on the
 * background context is accepted and fn never runs. */
WEFT_API int weft_ctx_after_func(weft_ctx_t *ctx, void (*fn)(void *), void *arg,
				 weft_ctx_stop_t **stop);

/* Prevent fn from running: 1 if this call stopped it, 0 if fn has already
 * started (or run) or was stopped before. Never waits for fn. Does not free
 * the handle. NULL: 0. */
WEFT_API int weft_ctx_stop(weft_ctx_stop_t *stop);

/* Free the handle. Does not stop fn (call weft_ctx_stop first for that):
 * a pending fn still runs when ctx is done. NULL: nothing. */
WEFT_API void weft_ctx_stop_release(weft_ctx_stop_t *stop);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_CTX_H */

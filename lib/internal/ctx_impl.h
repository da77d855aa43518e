/* lib/internal/ctx_impl.h: how blocking weft calls honour a context.
 *
 * A blocking call with a context (a channel op, select, a semaphore
 * acquire) owns one weft__waiter_t. Besides registering a node on whatever
 * it waits for, it registers a second node (same waiter) on the context with
 * weft__ctx_watch. Whoever ends the wait first wins the CAS on the waiter's
 * state: a peer (NOTIFY / DONE) or the context's canceller (WEFT__W_CANCEL
 * | n->index). The caller sleeps with deadline min(its own, the context's:
 * weft__ctx_deadline) and, when that passes, calls weft_ctx_err(ctx), which
 * notices an expired context deadline and cancels it. Afterwards (whatever
 * ended the wait) the caller calls weft__ctx_unwatch.
 */
#ifndef WEFT_INTERNAL_CTX_IMPL_H
#define WEFT_INTERNAL_CTX_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "internal/park.h"
#include <weft/ctx.h>

/* Register node n (n->w is a weft__waiter_t, n->index a case index) to be
 * notified when ctx is done: the canceller CASes n->w->state from live
 * (WAITING or SLEEPING) to WEFT__W_CANCEL | n->index and futex-wakes it if
 * it slept (same protocol as weft__waitq_notify_one). Returns 0 if registered,
 * or ctx's error (nonzero, not registered) if ctx is already done.
 * The background context: returns 0 and registers nothing (never done).
 * A notified node has been unlinked by the canceller. */
int weft__ctx_watch(weft_ctx_t *ctx, weft__wnode_t *n);

/* Remove n if still registered (safe after a notification). */
void weft__ctx_unwatch(weft_ctx_t *ctx, weft__wnode_t *n);

/* The earliest deadline among ctx and its ancestors (WEFT_FOREVER if none):
 * a waiter passes min(its own deadline, this) to weft__waiter_wait and, when
 * that passes, calls weft_ctx_err(ctx), which notices the expiry. */
int64_t weft__ctx_deadline(weft_ctx_t *ctx);

/* For tests: children attached to ctx now (a snapshot), and the number of
 * contexts allocated and not yet freed in the process. */
size_t weft__ctx_nchildren(weft_ctx_t *ctx);
uint64_t weft__ctx_live(void);

#endif

/* bench/baseline/chan_mutex.h: the mutex + condition variable channel, the
 * yardstick every channel strategy is measured against.
 *
 * Same contract as weft/chan.h under the prefix mchan_ (see that header for
 * the full semantics): any capacity (0 is a true rendezvous), elements of
 * any fixed size copied in and out, Go's close semantics with -EPIPE,
 * absolute CLOCK_MONOTONIC deadlines in ns (MCHAN_FOREVER never passes),
 * and select over struct chan_case (bench/strategy.h).
 *
 * Design, as a competent engineer would write it with locks:
 * - one pthread mutex per channel guards a ring buffer (any capacity) and
 *   two wait queues of handoff records (Go's sudog);
 * - blocked plain senders/receivers of a buffered channel sleep on the
 *   condition variables not_full / not_empty, which are signalled only when
 *   someone waits (waiter counts), one signal per freed slot / new element;
 * - unbuffered channels and every select park a handoff record on the
 *   channel's queue and sleep on their own thread's condition variable; the
 *   partner copies the element directly and completes the record, so a send
 *   on an unbuffered channel returns only once a receiver took the element;
 * - a select locks its channels in address order, polls its enabled cases
 *   in a random permutation, and otherwise parks one record per case; the
 *   first partner to claim the thread's waiter (under the waiter's mutex)
 *   completes exactly one case, later ones see it taken and skip it;
 * - bulk operations lock once per batch.
 *
 * Every call may be made by any number of threads at once on the same
 * channel, except mchan_destroy, which must be the last call on it.
 */
#ifndef WEFT_BENCH_CHAN_MUTEX_H
#define WEFT_BENCH_CHAN_MUTEX_H

#include <stddef.h>
#include <stdint.h>

#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mchan mchan_t;

/* A deadline that never passes. */
#define MCHAN_FOREVER INT64_MAX
/* Largest capacity accepted: larger ones are -ENOMEM (as weft). */
#define MCHAN_MAX_CAPACITY ((size_t)1 << 30)
/* Most cases a select accepts: more are -EINVAL (as weft). */
#define MCHAN_SELECT_MAX_CASES ((size_t)1 << 20)

/* 0, -EINVAL (out NULL) or -ENOMEM; *out is set only on success. */
int mchan_create(mchan_t **out, size_t elem_size, size_t cap);
/* NULL is a no-op; must be the last call on the channel. */
void mchan_destroy(mchan_t *ch);

/* 0 | -EPIPE (closed, nothing sent) | -EINVAL (NULL ch, or NULL elem with
 * elem_size > 0). */
int mchan_send(mchan_t *ch, const void *elem);
/* 0 | -EPIPE (closed and drained) | -EINVAL. elem may be NULL to drop. */
int mchan_recv(mchan_t *ch, void *elem);
/* never sleep: as above, or -EAGAIN */
int mchan_try_send(mchan_t *ch, const void *elem);
int mchan_try_recv(mchan_t *ch, void *elem);
/* as send/recv, or -ETIMEDOUT at the absolute CLOCK_MONOTONIC deadline (ns);
 * a past deadline behaves like try but returns -ETIMEDOUT */
int mchan_send_until(mchan_t *ch, const void *elem, int64_t deadline);
int mchan_recv_until(mchan_t *ch, void *elem, int64_t deadline);
/* bulk: block for the first element, then move as many more as fit / are
 * there without blocking again; the count moved (a prefix), -EPIPE or
 * -EINVAL (n == 0, NULL elems with elem_size > 0) */
long mchan_send_many(mchan_t *ch, const void *elems, size_t n);
long mchan_recv_many(mchan_t *ch, void *elems, size_t max);
/* 0 | -EPIPE if already closed; wakes every waiter */
int mchan_close(mchan_t *ch);

/* snapshots; NULL gives 0 */
size_t mchan_len(const mchan_t *ch);
size_t mchan_cap(const mchan_t *ch);
size_t mchan_elem_size(const mchan_t *ch);
int mchan_is_closed(const mchan_t *ch);

/* select over channels of this implementation (case.chan is an mchan_t *,
 * NULL disables the case; op 1 send, 2 recv). Returns the index of the one
 * case done (its err set to 0 or -EPIPE), or -EINVAL (bad cases, too many,
 * or, for mchan_select, no enabled case), -ENOMEM, -EAGAIN (try) or
 * -ETIMEDOUT (until; with no enabled case it waits for the deadline). */
int mchan_select(struct chan_case *cases, size_t n);
int mchan_select_try(struct chan_case *cases, size_t n);
int mchan_select_until(struct chan_case *cases, size_t n, int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_CHAN_MUTEX_H */

/* lib/wg.c: WaitGroup.
 *
 * One 64-bit state word: the counter in the high 32 bits, the number of
 * registered waiters in bits 0..30, and RSLEEP (bit 31): someone sleeps on
 * the low half until a pending release ends (below). Registered waiters
 * are park.h waiters in a list under wg->lock.
 *
 * Ordering:
 * - Every change of the counter is a CAS on state (full barrier). Work a
 *   thread did before its done is released by that CAS; the CASes form one
 *   release sequence, so a waiter that reads counter 0 with an acquire load
 *   sees the work of every done before it.
 * - A waiter registers by a CAS that raises the waiter count only while the
 *   counter is nonzero, and pushes its node under the lock it holds during
 *   that CAS. The final done's CAS (counter 1 -> 0) reads the waiter count
 *   in the same word: it either counts the waiter (and then notifies it,
 *   taking the lock after the waiter pushed) or the waiter's CAS fails and
 *   it sees the counter at zero. No Dekker fence is needed: both sides
 *   change the same word.
 * - Release: counter 0 with waiters > 0 is "pending": the final done still
 *   touches wg (the lock, the list). It notifies every node under the lock,
 *   unlocks, and then ends the pending state with one exchange of the state
 *   to 0: its last access to wg memory (a futex wake of the low half may
 *   follow, harmless even if wg is freed). Every thread that meets the
 *   pending state (a notified waiter, a late waiter, an add starting a new
 *   round) waits for that exchange before it returns or goes on, so wait
 *   returns only once the final done is finished with wg, and a new round
 *   never sees the old round's waiters.
 * - While pending, the word is frozen except for the RSLEEP bit: adds that
 *   would start a round wait, registrations need a nonzero counter, and a
 *   timed-out waiter does not deregister (it waits for its notification).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "internal/park.h"
#include <weft/sync.h>

struct wg_impl {
	uint64_t state;
	weft__mutex_t lock; /* guards q */
	weft__waitq_t q;    /* registered waiters */
};

_Static_assert(sizeof(struct wg_impl) <= sizeof(weft_wg_t), "weft_wg_t too small");
_Static_assert(_Alignof(struct wg_impl) <= _Alignof(weft_wg_t), "weft_wg_t alignment");

#define CNT_SHIFT 32
#define RSLEEP ((uint64_t)1 << 31)
#define WMASK ((uint64_t)0x7fffffff)

static inline uint32_t cnt(uint64_t s)
{
	return (uint32_t)(s >> CNT_SHIFT);
}

static inline uint32_t waiters(uint64_t s)
{
	return (uint32_t)(s & WMASK);
}

static inline bool pending(uint64_t s)
{
	return cnt(s) == 0 && waiters(s) != 0;
}

static inline struct wg_impl *impl(weft_wg_t *wg)
{
	return (struct wg_impl *)(void *)wg;
}

/* The low half of state, where RSLEEP sleepers wait (kernel reads only). */
static inline uint32_t *low_half(uint64_t *p)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (uint32_t *)(void *)p + 1;
#else
	return (uint32_t *)(void *)p;
#endif
}

int weft_wg_init(weft_wg_t *wg)
{
	if (!wg)
		return -EINVAL;
	memset(wg, 0, sizeof *wg);
	return 0;
}

/* Wait until the state is not pending (the final done of the round has
 * finished with wg). Returns the state seen last. */
static uint64_t wait_release(struct wg_impl *g)
{
	weft__spin_t sp;
	/* acquire: pairs with the final done's exchange (and every CAS) */
	uint64_t s = weft__ld64_acq(&g->state);

	if (!pending(s))
		return s;
	if (weft__spin_start(&sp)) {
		do {
			s = weft__ld64_acq(&g->state);
			if (!pending(s)) {
				weft__spin_end(&sp);
				return s;
			}
		} while (weft__spin_again(&sp));
	}
	for (;;) {
		s = weft__ld64_acq(&g->state);
		if (!pending(s))
			return s;
		if (!(s & RSLEEP)) {
			uint64_t e = s;
			/* full RMW: RSLEEP before we sleep; the final done's
			 * exchange returns it and then wakes the low half */
			if (!weft__cas64(&g->state, &e, s | RSLEEP))
				continue;
			s |= RSLEEP;
		}
		weft__park_word(low_half(&g->state), (uint32_t)s, WEFT_FOREVER);
	}
}

/* The final done of a round with waiters: notify them, then end pending. */
static void release_all(struct wg_impl *g)
{
	weft__mutex_lock(&g->lock);
	weft__waitq_notify_all(&g->q);
	weft__mutex_unlock(&g->lock);
	/* release (full RMW): everything above before the state says "not
	 * pending"; pairs with the acquire loads in wait_release. The last
	 * access to wg memory. */
	uint64_t old = weft__fas64(&g->state, 0);
	if (old & RSLEEP)
		weft__unpark_word(low_half(&g->state)); /* address only */
}

int weft_wg_add(weft_wg_t *wg, int64_t delta)
{
	if (!wg)
		return -EINVAL;
	if (delta == 0)
		return 0;
	if (delta > INT32_MAX || delta < -(int64_t)INT32_MAX)
		return -EINVAL;

	struct wg_impl *g = impl(wg);
	uint64_t s = weft__ld64_rlx(&g->state), ns;
	int64_t n;
	for (;;) {
		n = (int64_t)cnt(s) + delta;
		if (n < 0 || n > INT32_MAX)
			return -EINVAL; /* nothing changed */
		if (pending(s)) {
			/* a new round while the last one's waiters are being
			 * released: let that finish first */
			s = wait_release(g);
			continue;
		}
		ns = ((uint64_t)n << CNT_SHIFT) | (s & (WMASK | RSLEEP));
		/* release+acquire (full RMW): this thread's work before the
		 * count change; pairs with the acquire loads of waiters (the
		 * CASes on state are one release sequence) */
		if (weft__cas64(&g->state, &s, ns))
			break;
	}
	if (n == 0 && waiters(s) != 0)
		release_all(g);
	return 0;
}

int weft_wg_done(weft_wg_t *wg)
{
	return weft_wg_add(wg, -1);
}

int weft_wg_wait(weft_wg_t *wg)
{
	return weft_wg_wait_until(wg, WEFT_FOREVER);
}

/* Register as a waiter: raise the waiter count while the counter is
 * nonzero, and link the node under the lock held across the CAS. Returns
 * false if the counter was zero (nothing registered). */
static bool wg_register(struct wg_impl *g, weft__wnode_t *node)
{
	bool ok = false;
	weft__mutex_lock(&g->lock);
	uint64_t s = weft__ld64_rlx(&g->state);
	while (cnt(s) != 0) {
		/* full RMW: pairs with the final done's CAS, which reads the
		 * waiter count we add (see Ordering) */
		if (weft__cas64(&g->state, &s, s + 1)) {
			weft__waitq_push(&g->q, node);
			ok = true;
			break;
		}
	}
	weft__mutex_unlock(&g->lock);
	return ok;
}

int weft_wg_wait_until(weft_wg_t *wg, int64_t deadline)
{
	if (!wg)
		return -EINVAL;
	struct wg_impl *g = impl(wg);
	weft__spin_t sp;

	/* acquire: pairs with the done CASes (see Ordering) */
	uint64_t s = weft__ld64_acq(&g->state);
	if (cnt(s) == 0) {
		if (waiters(s) != 0)
			wait_release(g);
		return 0;
	}
	if (deadline != WEFT_FOREVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	if (weft__spin_start(&sp)) {
		do {
			s = weft__ld64_acq(&g->state);
			if (cnt(s) == 0) {
				weft__spin_end(&sp);
				if (waiters(s) != 0)
					wait_release(g);
				return 0;
			}
		} while (weft__spin_again(&sp));
	}

	weft__waiter_t w = {WEFT__W_WAITING};
	weft__wnode_t node = {.w = &w};
	if (!wg_register(g, &node)) {
		wait_release(g);
		return 0;
	}
	uint32_t st = weft__waiter_wait(&w, deadline, false);
	if (st == WEFT__W_TIMEOUT) {
		st = weft__waiter_abort(&w);
		if (st == WEFT__W_ABORT) {
			bool timed_out = false, rearmed = false;
			weft__mutex_lock(&g->lock);
			if (node.linked) {
				s = weft__ld64_rlx(&g->state);
				while (cnt(s) != 0) {
					/* full RMW: deregister while the round
					 * is still open */
					if (weft__cas64(&g->state, &s, s - 1)) {
						weft__waitq_unlink(&g->q, &node);
						timed_out = true;
						break;
					}
				}
				if (!timed_out) {
					/* the round ended just now: the final
					 * done counted us and will notify us
					 * (under this lock, after we drop it);
					 * nobody else touches w while we hold it */
					weft__st32_rel(&w.state, WEFT__W_WAITING);
					rearmed = true;
				}
			}
			/* not linked: notify_all already met our dead node */
			weft__mutex_unlock(&g->lock);
			if (timed_out)
				return -ETIMEDOUT;
			if (rearmed)
				weft__waiter_wait(&w, WEFT_FOREVER, false);
		}
	}
	/* notified: the round is over; wait until its final done is finished
	 * with wg before we return (our caller may free it) */
	wait_release(g);
	return 0;
}

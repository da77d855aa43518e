/* lib/wg.c: WaitGroup.
 *
 * One 64-bit state word, nothing else:
 *   bits 32..62  the counter (0 .. INT32_MAX)
 *   bit  63      WAITERS: someone may sleep on this round
 *   bits  0..31  the generation: +1 each time the counter reaches zero
 * Waiters sleep on the low half (the generation: a futex word of its own,
 * which counter changes do not touch) until it changes; the final done of
 * a round wakes them all with one futex wake, and only when WAITERS says
 * someone may sleep. No lock, no list, no per-waiter wake.
 *
 * Ordering:
 * - Every change of state is an RMW (CAS; full barrier): the work a
 *   thread did before its add/done is released by it, and since every
 *   later change is an RMW too, it heads a release sequence that every
 *   later value belongs to. A waiter that reads, with an acquire load, a
 *   counter of zero or a generation other than the one it started in sees
 *   the work of every done of its round.
 * - The final done's CAS (counter to zero) clears WAITERS and advances the
 *   generation in one step, and returns the old WAITERS. A waiter sets
 *   WAITERS with a CAS that expects its generation and a nonzero counter.
 *   Both RMW the same word, so one is first: either the final done sees
 *   WAITERS and wakes after its CAS, or the waiter's CAS fails and it sees
 *   the round over. A waiter that set WAITERS sleeps only while the low
 *   half still holds its generation (the kernel compares it under the
 *   futex lock): the wake cannot fall between its check and its sleep.
 *   No Dekker fence is needed: both sides change the same word.
 * - Lifetime: the final done's CAS is its last access to wg memory; the
 *   futex wake after it takes the address only (on memory freed or reused
 *   since, at worst a spurious wake-up, which every sleeper re-checks).
 *   So wait may return, and its caller free wg, as soon as it sees the
 *   round over, and an add may start a new round at once: the old round's
 *   waiters wait for a generation that has already passed.
 * - A timed-out waiter leaves WAITERS set (other waiters may share it):
 *   at worst one futex wake that finds nobody at the end of the round.
 * - The generation wraps after 2^32 rounds: a waiter delayed between its
 *   load and its sleep for exactly 2^32 rounds would miss its round (the
 *   ABA bound Go's WaitGroup has as well).
 */
#include <errno.h>
#include <string.h>

#include "internal/park.h"
#include <weft/sync.h>

struct wg_impl {
	uint64_t state;
};

_Static_assert(sizeof(struct wg_impl) <= sizeof(weft_wg_t), "weft_wg_t too small");
_Static_assert(_Alignof(struct wg_impl) <= _Alignof(weft_wg_t), "weft_wg_t alignment");

#define CNT_SHIFT 32
#define CNT_MASK ((uint64_t)0x7fffffff << CNT_SHIFT)
#define WAITERS ((uint64_t)1 << 63)
#define GEN_MASK ((uint64_t)0xffffffff)

static inline uint32_t cnt(uint64_t s)
{
	return (uint32_t)((s & CNT_MASK) >> CNT_SHIFT);
}

static inline uint32_t gen(uint64_t s)
{
	return (uint32_t)(s & GEN_MASK);
}

/* The round a waiter started in (generation g) is over. */
static inline bool over(uint64_t s, uint32_t g)
{
	return cnt(s) == 0 || gen(s) != g;
}

static inline struct wg_impl *impl(weft_wg_t *wg)
{
	return (struct wg_impl *)(void *)wg;
}

/* The low half of state, the generation, where waiters sleep. */
static inline uint32_t *gen_word(uint64_t *p)
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
	do {
		n = (int64_t)cnt(s) + delta;
		if (n < 0 || n > INT32_MAX)
			return -EINVAL; /* nothing changed */
		if (n == 0)
			/* the round ends: counter 0, WAITERS cleared, next
			 * generation */
			ns = (uint64_t)(uint32_t)(gen(s) + 1);
		else
			ns = ((uint64_t)n << CNT_SHIFT) | (s & (WAITERS | GEN_MASK));
		/* release+acquire (full RMW): this thread's work before the
		 * count change; pairs with the acquire loads of waiters (see
		 * Ordering). On failure s is reloaded. */
	} while (!weft__cas64(&g->state, &s, ns));
	if (n == 0 && (s & WAITERS))
		weft__unpark_word(gen_word(&g->state)); /* address only */
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

int weft_wg_wait_until(weft_wg_t *wg, int64_t deadline)
{
	if (!wg)
		return -EINVAL;
	struct wg_impl *g = impl(wg);
	weft__spin_t sp;

	/* acquire: pairs with the done CASes (see Ordering) */
	uint64_t s = weft__ld64_acq(&g->state);
	if (cnt(s) == 0)
		return 0;
	if (deadline != WEFT_FOREVER && weft_now() >= deadline)
		return -ETIMEDOUT;
	const uint32_t g0 = gen(s);
	if (weft__spin_start(&sp)) {
		do {
			s = weft__ld64_acq(&g->state); /* as above */
			if (over(s, g0)) {
				weft__spin_end(&sp);
				return 0;
			}
		} while (weft__spin_again(&sp));
	}

	bool slept = false;
	for (;;) {
		s = weft__ld64_acq(&g->state); /* as above */
		if (over(s, g0))
			break;
		if (!(s & WAITERS)) {
			uint64_t e = s;
			/* full RMW on the word the final done changes: either
			 * it sees WAITERS, or this fails and we re-check */
			if (!weft__cas64(&g->state, &e, s | WAITERS))
				continue;
		}
		/* sleeps only while the generation is still g0 */
		if (weft__park_word(gen_word(&g->state), g0, deadline) == -ETIMEDOUT) {
			s = weft__ld64_acq(&g->state); /* as above */
			if (over(s, g0))
				break; /* the round ended just as we timed out */
			return -ETIMEDOUT;
		}
		slept = true;
	}
	if (slept)
		weft__spin_slept();
	return 0;
}

/* lib/once.c: Once and OnceValue.
 *
 * A 32-bit state word: NEW (0), RUNNING, RUNNING|WAITERS, DONE. The first
 * caller wins NEW -> RUNNING with a CAS and runs the function; the others
 * spin briefly, then set WAITERS and sleep on the word with a futex until
 * it reads DONE. The owner of a running once is recorded (a per-thread
 * address) so that a recursive call from the function returns -EDEADLK.
 *
 * Ordering:
 * - The runner stores the result (a plain store) and then exchanges the
 *   state to DONE (release, full RMW); every reader loads the state with
 *   acquire before it reads the result: the pair publishes the result and
 *   everything the function did. After completion that acquire load is the
 *   whole cost of a call.
 * - Sleepers set WAITERS with a CAS before futex_wait(state, RUNNING|WAITERS);
 *   the runner's exchange returns the old word, so it wakes only when some
 *   sleeper set WAITERS, and a sleeper whose CAS lost to DONE sees DONE. No
 *   wake-up is lost, none is made when nobody sleeps.
 * - The exchange to DONE is the runner's last access to the once (the
 *   futex wake after it takes the address only), so a caller that has seen
 *   DONE may free the memory.
 */
#include <errno.h>
#include <limits.h>

#include "internal/park.h"
#include "internal/sched.h"
#include <weft/sync.h>

struct once_impl {
	uint32_t state;
	int32_t result; /* written by the runner before DONE */
	uint64_t owner; /* id of the running thread, 0 when none */
};

_Static_assert(sizeof(struct once_impl) <= sizeof(weft_once_t), "weft_once_t too small");
_Static_assert(_Alignof(struct once_impl) <= _Alignof(weft_once_t), "weft_once_t alignment");

#define O_NEW 0u
#define O_RUNNING 1u
#define O_WAITERS 2u
#define O_DONE 4u

/* The caller's identity: its task (a task moves between carrier threads,
 * and many tasks share one), else a per-thread address; unique among live
 * tasks and threads. */
static _Thread_local char tl_self;

static inline uint64_t self_id(void)
{
	weft__task_t *t = weft__task_self();
	return t ? (uint64_t)(uintptr_t)t : (uint64_t)(uintptr_t)&tl_self;
}

static inline struct once_impl *impl(weft_once_t *o)
{
	return (struct once_impl *)(void *)o;
}

static int once_slow(struct once_impl *im, void (*vfn)(void *), int (*ifn)(void *), void *arg)
{
	uint32_t s = weft__ld32_acq(&im->state);
	if (s == O_NEW) {
		/* full RMW: we are the runner; the losers' acquire loads of
		 * DONE pair with our exchange below, not with this CAS */
		if (weft__cas32(&im->state, &s, O_RUNNING)) {
			int r = 0;
			/* relaxed: only ever compared with the reader's own id */
			weft__st64_rlx(&im->owner, self_id());
			if (ifn)
				r = ifn(arg);
			else
				vfn(arg);
			weft__st64_rlx(&im->owner, 0);
			im->result = r;
			/* release (full RMW): result and fn's effects before
			 * DONE; pairs with the acquire loads of every caller.
			 * Our last access to the once. */
			uint32_t old = weft__fas32(&im->state, O_DONE);
			if (old & O_WAITERS)
				weft__unpark_word(&im->state);
			return r;
		}
		if (s == O_DONE)
			return im->result;
	}
	/* s is RUNNING (maybe with WAITERS): someone runs fn */
	if (weft__ld64_rlx(&im->owner) == self_id())
		return -EDEADLK; /* recursion from fn on this thread */

	weft__spin_t sp;
	if (weft__spin_start(&sp)) {
		do {
			/* acquire: pairs with the runner's exchange to DONE */
			if (weft__ld32_acq(&im->state) == O_DONE) {
				weft__spin_end(&sp);
				return im->result;
			}
		} while (weft__spin_again(&sp));
	}
	for (;;) {
		/* acquire: pairs with the runner's exchange to DONE */
		s = weft__ld32_acq(&im->state);
		if (s == O_DONE)
			return im->result;
		if (!(s & O_WAITERS)) {
			uint32_t e = s;
			/* full RMW: WAITERS before we sleep; the runner's
			 * exchange returns it and then wakes us */
			if (!weft__cas32(&im->state, &e, s | O_WAITERS))
				continue;
			s |= O_WAITERS;
		}
		weft__park_word(&im->state, s, WEFT_FOREVER);
	}
}

int weft_once(weft_once_t *o, void (*fn)(void *arg), void *arg)
{
	if (!o || !fn)
		return -EINVAL;
	struct once_impl *im = impl(o);
	/* acquire: pairs with the runner's exchange to DONE */
	if (__builtin_expect(weft__ld32_acq(&im->state) == O_DONE, 1))
		return 0;
	int r = once_slow(im, fn, NULL, arg);
	return r == -EDEADLK && weft__ld32_acq(&im->state) != O_DONE ? r : 0;
}

int weft_once_try(weft_once_t *o, int (*fn)(void *arg), void *arg)
{
	if (!o || !fn)
		return -EINVAL;
	struct once_impl *im = impl(o);
	/* acquire: pairs with the runner's exchange to DONE */
	if (__builtin_expect(weft__ld32_acq(&im->state) == O_DONE, 1))
		return im->result;
	return once_slow(im, NULL, fn, arg);
}

/* lib/sem.c: the weighted, strictly FIFO semaphore.
 *
 * Ordering:
 * - One word, `word`, holds the free token count (low 63 bits) and QUEUED
 *   (bit 63), set exactly while the waiter queue is non-empty. The fast
 *   paths (acquire, try_acquire, release) are one CAS on it and only run
 *   while QUEUED is clear; seeing QUEUED they fail (try) or go to the slow
 *   path under the lock. QUEUED changes only under the lock.
 * - The Dekker pair of a parking primitive ("I register, then re-check" /
 *   "I publish, then look for waiters") collapses here onto this one word:
 *   a waiter registers by setting QUEUED with a CAS whose expected value
 *   carries the count it then re-checks, and a releaser publishes with a
 *   CAS that fails if QUEUED was set meanwhile. Both are RMWs on the same
 *   location, so they are totally ordered: either the waiter's CAS sees the
 *   released tokens (and grants itself), or the releaser's CAS sees QUEUED
 *   (and takes the lock, where it hands the tokens over). No fence needed.
 * - While QUEUED is set, the count changes only under the lock, so grants
 *   (which read the count and then subtract) cannot be raced.
 * - Strict FIFO costs a hand-off per acquire once more threads than cores
 *   cycle the tokens: every releaser re-queues behind the others, so the
 *   tokens always go to a thread that is not running. A queued waiter
 *   therefore stays runnable (sched_yield between looks) for
 *   QUEUED_RUNNABLE_NS before it sleeps: a grant then needs no futex
 *   wake-up and the hand-off costs a context switch on the grantee's core
 *   (measured with 8 threads on 2 cores cycling one token: 2.4-4.8 us per
 *   acquire, against 12 us when every grant wakes a sleeper).
 * - A waiter is granted under the lock: the granter unlinks it, wins its
 *   waiter state with a CAS (live -> CLAIMED) against a timeout (ABORT) or
 *   its context (CANCEL), and subtracts the tokens; only after unlocking
 *   (and after its last other access to the semaphore) does it set DONE,
 *   waking it if it slept. So a granted waiter cannot return, and its
 *   caller free the semaphore, while the granter still touches it. (A
 *   batch of grants finishes all but its newest early: the semaphore
 *   cannot be freed while that one is still inside an acquire.) A waiter
 *   that loses (CLAIMED, then DONE) owns the tokens and returns without
 *   the lock; one that wins (ABORT / CANCEL) takes the lock, unlinks
 *   itself and re-runs the grant, since the waiters behind it may fit
 *   now.
 * - Tokens carry no data, so the CASes need no acquire/release pairing
 *   beyond their own atomicity; the user's data guarded by the semaphore
 *   is ordered by them anyway (every CAS is a full barrier).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal/ctx_impl.h"
#include "internal/park.h"
#include <weft/ctx.h>
#include <weft/sync.h>

#define QUEUED ((uint64_t)1 << 63)
#define COUNT(w) ((int64_t)((w) & ~QUEUED))

/* How long a queued waiter stays runnable before it sleeps (see
 * acquire_slow). */
#define QUEUED_RUNNABLE_NS 20000

/* Most pauses between two looks at the word while spinning for tokens. */
#define SPIN_BACKOFF_MAX 64

struct sem {
	uint64_t word;     /* free count | QUEUED */
	int64_t cap;
	weft__mutex_t lock; /* guards q */
	weft__waitq_t q;    /* FIFO of struct sem_waiter nodes */
};

_Static_assert(sizeof(struct sem) <= sizeof(weft_sem_t), "weft_sem_t too small");
_Static_assert(_Alignof(struct sem) <= _Alignof(weft_sem_t), "weft_sem_t misaligned");

struct sem_waiter {
	weft__wnode_t node; /* first: the node is the waiter */
	int64_t need;
};

/* wakes collected under the lock, made after it (a stale address is a
 * harmless spurious wake-up, see weft__waiter_wake) */
#define WAKE_BATCH 16
struct wakes {
	weft__waiter_t *w[WAKE_BATCH];
	int n;
};

static inline struct sem *S(weft_sem_t *s)
{
	return (struct sem *)(void *)s;
}

int weft_sem_init(weft_sem_t *s, int64_t capacity)
{
	if (!s || capacity <= 0 || capacity > WEFT_SEM_MAX_CAPACITY)
		return -EINVAL;
	struct sem *m = S(s);
	memset(s, 0, sizeof *s);
	m->cap = capacity;
	m->word = (uint64_t)capacity;
	return 0;
}

void weft_sem_destroy(weft_sem_t *s)
{
	(void)s; /* nothing allocated; waiters must be gone */
}

/* Fast path: one CAS while nobody queues. 0, or -EAGAIN. */
static inline int take(struct sem *m, int64_t n)
{
	uint64_t w = weft__ld64_rlx(&m->word);
	for (;;) {
		if ((w & QUEUED) || COUNT(w) < n)
			return -EAGAIN;
		/* full RMW: the caller's critical section stays after it;
		 * fails if QUEUED was set meanwhile (pairs with the CAS that
		 * sets it in acquire_slow) */
		if (weft__cas64(&m->word, &w, w - (uint64_t)n))
			return 0;
	}
}

/* Before queueing: while nobody is queued, the tokens may come back within
 * a spin (a short critical section on another core). Taking them then is
 * no overtaking: FIFO is owed to queued waiters only, and we stop as soon
 * as one queues. Without this, two threads sharing one token fall into a
 * convoy where every release must wake a sleeper. */
static int spin_take(struct sem *m, int64_t n)
{
	weft__spin_t sp;
	if (!weft__spin_start(&sp))
		return -EAGAIN;
	uint32_t backoff = 1;
	do {
		uint64_t w = weft__ld64_rlx(&m->word);
		if (w & QUEUED)
			break;
		if (COUNT(w) >= n && take(m, n) == 0) {
			weft__spin_end(&sp);
			return 0;
		}
		/* back off: every read of ours pulls the word away from the
		 * core that cycles the tokens, and costs it a miss (~240 ns
		 * here) on its next CAS */
		for (uint32_t i = 1; i < backoff; i++)
			weft__cpu_relax();
		if (backoff < SPIN_BACKOFF_MAX)
			backoff <<= 1;
	} while (weft__spin_again(&sp));
	weft__spin_end(&sp);
	return -EAGAIN;
}

/* Hand tokens to the head waiters, in order, while they fit; clear QUEUED
 * when the queue empties. Lock held. */
static void grant_locked(struct sem *m, struct wakes *wk)
{
	for (;;) {
		weft__wnode_t *n = m->q.head;
		uint64_t w = weft__ld64_rlx(&m->word);
		if (!n) {
			/* full RMW: fast paths may run again from here on */
			while ((w & QUEUED) && !weft__cas64(&m->word, &w, w & ~QUEUED))
				;
			return;
		}
		weft__waiter_t *ww = n->w;
		int64_t need = ((struct sem_waiter *)(void *)n)->need;
		/* acquire: pairs with the owner's abort / the ctx's cancel CAS */
		uint32_t s = weft__ld32_acq(&ww->state);
		if (!weft__waiter_live(s)) {
			/* left (timed out or cancelled) and not yet unlinked
			 * itself: it must not hold up those behind it */
			weft__waitq_unlink(&m->q, n);
			continue;
		}
		if (COUNT(w) < need)
			return; /* strictly FIFO: nobody overtakes the head */
		weft__waitq_unlink(&m->q, n);
		bool won = false;
		while (weft__waiter_live(s)) {
			/* exactly once: against the owner's abort and its ctx;
			 * CLAIMED until wake_all sets DONE (see the top) */
			if (weft__cas32(&ww->state, &s, WEFT__W_CLAIMED | (s & WEFT__W_ASLEEP))) {
				won = true;
				break;
			}
		}
		if (!won)
			continue;
		/* QUEUED is set, so only lock holders change the word: this
		 * CAS does not fail for want of tokens */
		while (!weft__cas64(&m->word, &w, w - (uint64_t)need))
			;
		if (wk->n == WAKE_BATCH) {
			/* finish all but the newest now, lock held: the
			 * newest keeps the semaphore alive (see the top) */
			for (int i = 0; i < wk->n - 1; i++)
				weft__waiter_finish(wk->w[i], WEFT__W_DONE);
			wk->w[0] = wk->w[wk->n - 1];
			wk->n = 1;
		}
		wk->w[wk->n++] = ww;
	}
}

/* After the lock is dropped: the granted waiters' DONE (release, full RMW:
 * pairs with their acquire in waiter_wait), the last touch of the
 * semaphore's memory by this call. */
static void wake_all(struct wakes *wk)
{
	for (int i = 0; i < wk->n; i++)
		weft__waiter_finish(wk->w[i], WEFT__W_DONE);
	wk->n = 0;
}

static int acquire_slow(struct sem *m, int64_t n, int64_t deadline, weft_ctx_t *ctx)
{
	weft__waiter_t w = {WEFT__W_WAITING};
	struct sem_waiter sw = {.node = {.w = &w, .index = 0}, .need = n};
	weft__wnode_t cn = {.w = &w, .index = 0};
	struct wakes wk = {.n = 0};
	int rc;

	if (ctx) {
		rc = weft__ctx_watch(ctx, &cn);
		if (rc)
			return rc;
		int64_t cdl = weft__ctx_deadline(ctx);
		if (cdl < deadline)
			deadline = cdl;
	}

	weft__mutex_lock(&m->lock);
	uint64_t word = weft__ld64_rlx(&m->word);
	for (;;) {
		if (!m->q.head && COUNT(word) >= n) {
			/* free again by now and nobody queued: take directly */
			if (weft__cas64(&m->word, &word, word - (uint64_t)n)) {
				weft__mutex_unlock(&m->lock);
				rc = 0;
				goto out;
			}
			continue;
		}
		if (deadline != WEFT_FOREVER && weft_now() >= deadline) {
			weft__mutex_unlock(&m->lock);
			rc = -ETIMEDOUT;
			goto out;
		}
		break;
	}
	weft__waitq_push(&m->q, &sw.node);
	/* register: set QUEUED with a CAS (the Dekker RMW, see the top); a
	 * release racing us either lands in the count we grant from below or
	 * sees QUEUED and comes to the lock */
	while (!(word & QUEUED) && !weft__cas64(&m->word, &word, word | QUEUED))
		;
	/* re-check: we may be the head and fit already */
	grant_locked(m, &wk);
	weft__mutex_unlock(&m->lock);
	wake_all(&wk);

	uint32_t st = weft__waiter_wait_runnable(&w, deadline, QUEUED_RUNNABLE_NS);
	if (st == WEFT__W_TIMEOUT)
		st = weft__waiter_abort(&w);
	if (WEFT__W_KIND(st) == WEFT__W_DONE) {
		rc = 0; /* granted (perhaps just as we timed out: keep it) */
		goto out;
	}
	/* ABORT (timeout) or CANCEL (ctx): leave, and let those behind us
	 * proceed if they fit now */
	weft__mutex_lock(&m->lock);
	weft__waitq_unlink(&m->q, &sw.node);
	grant_locked(m, &wk);
	weft__mutex_unlock(&m->lock);
	wake_all(&wk);
	rc = -ETIMEDOUT;
out:
	if (ctx) {
		weft__ctx_unwatch(ctx, &cn);
		if (rc == -ETIMEDOUT) {
			/* CANCEL, or the deadline that passed was the ctx's:
			 * err() notices it */
			int e = weft_ctx_err(ctx);
			if (e)
				rc = e;
		}
	}
	return rc;
}

static inline int check_n(weft_sem_t *s, int64_t n)
{
	if (!s || n < 0 || n > S(s)->cap)
		return -EINVAL;
	return 0;
}

int weft_sem_acquire(weft_sem_t *s, int64_t n)
{
	int rc = check_n(s, n);
	if (rc || n == 0)
		return rc;
	if (take(S(s), n) == 0 || spin_take(S(s), n) == 0)
		return 0;
	return acquire_slow(S(s), n, WEFT_FOREVER, NULL);
}

int weft_sem_try_acquire(weft_sem_t *s, int64_t n)
{
	int rc = check_n(s, n);
	if (rc || n == 0)
		return rc;
	return take(S(s), n);
}

int weft_sem_acquire_until(weft_sem_t *s, int64_t n, int64_t deadline)
{
	int rc = check_n(s, n);
	if (rc || n == 0)
		return rc;
	if (take(S(s), n) == 0)
		return 0;
	if (deadline > weft_now() && spin_take(S(s), n) == 0)
		return 0;
	return acquire_slow(S(s), n, deadline, NULL);
}

int weft_sem_acquire_ctx(weft_sem_t *s, int64_t n, weft_ctx_t *ctx)
{
	int rc = check_n(s, n);
	if (rc)
		return rc;
	if (!ctx)
		return -EINVAL;
	rc = weft_ctx_err(ctx);
	if (rc || n == 0)
		return rc;
	if (take(S(s), n) == 0 || spin_take(S(s), n) == 0)
		return 0;
	return acquire_slow(S(s), n, WEFT_FOREVER, ctx);
}

/* Release with QUEUED set (or seen set): under the lock. Out of line so
 * the fast path below needs no stack frame. */
static __attribute__((noinline)) int release_slow(struct sem *m, int64_t n)
{
	struct wakes wk = {.n = 0};
	weft__mutex_lock(&m->lock);
	uint64_t w = weft__ld64_rlx(&m->word);
	for (;;) {
		if (n > m->cap - COUNT(w)) {
			weft__mutex_unlock(&m->lock);
			return -EINVAL;
		}
		/* a CAS, not an add: the queue may have emptied and a fast
		 * acquirer may be changing the count */
		if (weft__cas64(&m->word, &w, w + (uint64_t)n))
			break;
	}
	grant_locked(m, &wk);
	weft__mutex_unlock(&m->lock);
	wake_all(&wk);
	return 0;
}

int weft_sem_release(weft_sem_t *s, int64_t n)
{
	int rc = check_n(s, n);
	if (rc || n == 0)
		return rc;
	struct sem *m = S(s);
	uint64_t w = weft__ld64_rlx(&m->word);
	while (!(w & QUEUED)) {
		if (n > m->cap - COUNT(w))
			return -EINVAL; /* over-release */
		/* full RMW: the caller's critical section before it; fails if
		 * a waiter set QUEUED meanwhile (then we go to the lock) */
		if (weft__cas64(&m->word, &w, w + (uint64_t)n))
			return 0;
	}
	return release_slow(m, n);
}

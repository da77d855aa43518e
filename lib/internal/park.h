/* lib/internal/park.h: the single way anything in weft blocks.
 *
 * 1. Spin, bounded by time (weft_set_spin_ns), polling the caller's own
 *    condition; no spinning when runnable threads outnumber cores or when
 *    enough threads already spin (a spinner must never steal the core of
 *    the thread it waits for).
 * 2. Register, re-check, sleep on a futex. Wake exactly once: each blocked
 *    call owns a weft__waiter_t state word, and a waker must win a CAS on it
 *    (WAITING -> a final value); losers skip that waiter. The futex syscall
 *    is made only when the waiter really sleeps (SLEEPING bit), so a wake
 *    that reaches a spinning waiter costs no syscall.
 *
 * Dekker: registration (waitq push: an RMW on the queue's count) is followed
 * by weft__fence_rmw_load() and a re-check of the condition; the publisher
 * makes its change with an RMW (or xchg) and then loads the count. One of
 * the two always sees the other, so no wake-up is lost.
 *
 * weft__mutex_t: a three-state futex lock (Drepper) for slow paths only
 * (waiter lists); the hot paths of weft never take it.
 */
#ifndef WEFT_INTERNAL_PARK_H
#define WEFT_INTERNAL_PARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal/atomic.h"

/* ---- bounded spinning ---- */

typedef struct weft__spin {
	int64_t start;
	int64_t until; /* 0: no spinning allowed; INT64_MAX: the free rounds */
	uint32_t iter;
	bool counted; /* holds a slot in the global spinner budget */
} weft__spin_t;

/* Start a spin phase; returns whether spinning is allowed at all. */
bool weft__spin_start(weft__spin_t *s);
/* One more round: a pause; false once the time is up (then it has ended
 * the phase). Call weft__spin_end if leaving early. */
bool weft__spin_again(weft__spin_t *s);
void weft__spin_end(weft__spin_t *s);
/* Tell the adaptive spin that this thread's last spin ran out and it then
 * slept until now (called by waiter_wait after a futex sleep). */
void weft__spin_slept(void);
/* Every futex sleep in weft (waiters, flagged words, the slow mutex)
 * refreshes the oversubscription sample first (a /proc read, microseconds,
 * kept off the spinning path), and, if the thread has pointed
 * weft__tl_sleep_note at a note of its own, keeps it: asleep is 1 for the
 * length of each sleep, slept_ns adds up their lengths (relaxed stores by
 * the owner; two clock reads per sleep). A pool worker keeps one: the
 * pool's monitor tells a job asleep inside weft (a channel, a lock, a
 * WaitGroup: weft will wake it) from one blocked outside (I/O, a sleep). */
typedef struct weft__sleep_note {
	uint32_t asleep;
	uint64_t slept_ns;
} weft__sleep_note_t;
extern _Thread_local weft__sleep_note_t *weft__tl_sleep_note;

/* ---- asymmetric fences ----
 *
 * A Dekker pair whose one side runs on every operation (a ring publishing
 * a slot, then loading the count of slot sleepers) and whose other side is
 * rare (a thread about to sleep on a slot) need not pay a full barrier on
 * the hot side: the rare side issues membarrier(2) PRIVATE_EXPEDITED, which
 * runs a full barrier on every CPU currently running a thread of this
 * process, and the hot side keeps only program order (store, compiler
 * barrier, load). The scheme of folly's asymmetricThreadFenceHeavy/Light.
 *
 * weft__asym_fences is set once, by a constructor, before any thread of
 * the program can publish: 1 when the kernel registered us for expedited
 * membarrier; 0 otherwise (old kernel, seccomp) and always under
 * ThreadSanitizer (which models neither membarrier nor standalone
 * fences), and then the hot side keeps its full barrier (an xchg). */
extern uint32_t weft__asym_fences;

static inline bool weft__asym(void)
{
	/* relaxed: written once before main (see above) */
	return weft__ld32_rlx(&weft__asym_fences) != 0;
}
/* The rare side, after its registration RMW and before its re-check:
 * a store-load fence against every light side. */
void weft__fence_heavy(void);

/* ---- sleeping on a flagged word ----
 *
 * For primitives whose own state word says "someone sleeps" (a flag the
 * sleeper sets with an RMW before sleeping, and the waker clears or reads
 * with an RMW before waking): sleep while *word == expected (a 32-bit
 * futex word, or half of a 64-bit one), until the absolute deadline;
 * returns 0 (woken, or the word had changed: re-check) or -ETIMEDOUT.
 * unpark_word wakes every sleeper on word; on an address nobody sleeps on
 * (or that is no longer in use) it is at worst a spurious wake-up. */
int weft__park_word(uint32_t *word, uint32_t expected, int64_t deadline);
void weft__unpark_word(uint32_t *word);

/* ---- futex mutex (slow paths only) ---- */

typedef struct weft__mutex {
	uint32_t v; /* 0 free, 1 locked, 2 locked with sleepers */
} weft__mutex_t;

void weft__mutex_lock_slow(weft__mutex_t *m);
void weft__mutex_unlock_slow(weft__mutex_t *m);

static inline void weft__mutex_lock(weft__mutex_t *m)
{
	uint32_t free_ = 0;
	/* acquire (full RMW): the protected data after the lock */
	if (!weft__cas32(&m->v, &free_, 1))
		weft__mutex_lock_slow(m);
}

/* Take m only if it is free now: true if taken. */
static inline bool weft__mutex_trylock(weft__mutex_t *m)
{
	uint32_t free_ = 0;
	/* acquire (full RMW): as weft__mutex_lock's fast path */
	return weft__cas32(&m->v, &free_, 1);
}

static inline void weft__mutex_unlock(weft__mutex_t *m)
{
	/* release (full RMW): the protected data before the unlock; also the
	 * store-load fence before reading whether anyone sleeps */
	if (weft__fas32(&m->v, 0) == 2)
		weft__mutex_unlock_slow(m);
}

/* ---- waiters ---- */

/* weft__waiter_t.state: 0 while waiting; the final value says who ended
 * the wait and why. SLEEPING is a flag the owner sets before futex_wait;
 * CLAIMED means a peer won the waiter and is copying an element into or out
 * of the owner's buffer (an unbuffered handoff) and will set DONE. */
#define WEFT__W_WAITING 0u
#define WEFT__W_SLEEPING (1u << 31)
#define WEFT__W_CLAIMED (1u << 30)
/* The owner is a task, parked (its context saved) until whoever clears
 * this bit with a CAS (a waker's final value, or its deadline's timer)
 * readies it, exactly once; until then the waiter stays valid. */
#define WEFT__W_PARKED (1u << 29)
/* either way of sleeping: a waker that replaces one must wake the owner */
#define WEFT__W_ASLEEP (WEFT__W_SLEEPING | WEFT__W_PARKED)
#define WEFT__W_NOTIFY (1u << 24)  /* retry: the queue may be ready now */
#define WEFT__W_DONE (2u << 24)    /* a peer completed the operation */
#define WEFT__W_ABORT (3u << 24)   /* the owner left (timeout, or done alone) */
#define WEFT__W_TIMEOUT (4u << 24) /* (returned by wait only) */
#define WEFT__W_CANCEL (5u << 24)  /* a context the waiter watches is done */
#define WEFT__W_KIND(s) ((s) & (0xfu << 24))
#define WEFT__W_INDEX(s) ((s) & 0xffffffu)
#define WEFT__W_MAX_INDEX 0xffffffu

struct weft__task;

typedef struct weft__waiter {
	uint32_t state;
	/* the owner, when it is a task (set before PARKED; read by the waker
	 * that clears PARKED) */
	struct weft__task *task;
} weft__waiter_t;

/* Still waiting (nobody has ended the wait), asleep or not? */
static inline bool weft__waiter_live(uint32_t s)
{
	return (s & ~WEFT__W_ASLEEP) == 0;
}

/* Ended, and not mid-handoff: the owner may act on the value. */
static inline bool weft__waiter_final(uint32_t s)
{
	return WEFT__W_KIND(s & ~WEFT__W_ASLEEP) != 0 && !(s & WEFT__W_CLAIMED);
}

/* A waiter's entry in one queue (a select has one per case). */
typedef struct weft__wnode {
	struct weft__wnode *next, *prev;
	weft__waiter_t *w;
	void *elem; /* unbuffered handoff: source (sender) or destination */
	uint32_t index;
	bool linked; /* guarded by the queue's lock */
} weft__wnode_t;

/* FIFO of waiter nodes. The list is guarded by a lock the owner supplies;
 * count is also read without it by publishers (the Dekker partner). */
typedef struct weft__waitq {
	weft__wnode_t *head, *tail;
	uint32_t count;
	/* registrations ever made (only grows, wraps at 2^32): a version a
	 * reader compares before and after looking, to know that no waiter
	 * arrived meanwhile (select_try's linearizable "none ready") */
	uint32_t regs;
} weft__waitq_t;

static inline uint32_t weft__waitq_count(weft__waitq_t *q)
{
	/* relaxed: the caller has already made its change and fenced */
	return weft__ld32_rlx(&q->count);
}

static inline uint32_t weft__waitq_regs(weft__waitq_t *q)
{
	/* acquire: the reader's later loads stay after it */
	return weft__ld32_acq(&q->regs);
}

/* All of these need the queue's lock held. */
void weft__waitq_push(weft__waitq_t *q, weft__wnode_t *n);
/* As push, without the RMW on count, for a queue that nobody reads
 * lock-free as half of a Dekker pair (an unbuffered channel's: matching
 * happens under the lock; count is only a hint there). */
void weft__waitq_push_locked(weft__waitq_t *q, weft__wnode_t *n);
void weft__waitq_unlink(weft__waitq_t *q, weft__wnode_t *n);
/* Count a waiter that is on its way into q before it is linked (or take
 * that back), for a queue whose waiters can be in transit from elsewhere
 * (an unbuffered channel's lone waiter, see chan.c rv_queue): a lock-free
 * reader of count never sees 0 while one waits. Then link it with
 * weft__waitq_push_counted, which does not count it again. */
void weft__waitq_count_add(weft__waitq_t *q, int32_t d);
void weft__waitq_push_counted(weft__waitq_t *q, weft__wnode_t *n);
/* Notify the first live waiter (CAS its state to NOTIFY|index). Dead nodes
 * met on the way are unlinked. *notified: 1 if a waiter was notified.
 * Returns the waiter to wake with weft__waiter_wake(w, *old) after the lock
 * is dropped, or NULL when none sleeps (no syscall, no task to ready). */
weft__waiter_t *weft__waitq_notify_one(weft__waitq_t *q, uint32_t *notified, uint32_t *old);
/* Notify every live waiter; each is woken at once (lock held: close only). */
void weft__waitq_notify_all(weft__waitq_t *q);
/* Claim the first live waiter that is not `self` for a handoff (CAS to
 * CLAIMED); unlinks and returns its node, or NULL. The caller copies, then
 * calls weft__waiter_finish(node->w, WEFT__W_DONE | node->index). */
weft__wnode_t *weft__waitq_claim(weft__waitq_t *q, const weft__waiter_t *self);
/* Is there a live waiter? (a readiness hint) */
bool weft__waitq_has_peer(weft__waitq_t *q);

/* End a live wait with the final value val: a CAS, so exactly one of
 * the parties that try wins. Returns false if the wait was already ended
 * (or the owner left); on true, *old is the state replaced: pass it to
 * weft__waiter_wake (after dropping any lock). */
static inline bool weft__waiter_end(weft__waiter_t *w, uint32_t val, uint32_t *old)
{
	/* acquire: the owner's registration (and w->task) before our CAS */
	uint32_t s = weft__ld32_acq(&w->state);
	while (weft__waiter_live(s)) {
		/* release (full RMW): what the waker wrote before the final
		 * value; pairs with the owner's acquire in waiter_wait */
		if (weft__cas32(&w->state, &s, val)) {
			*old = s;
			return true;
		}
	}
	return false;
}

/* Wake the owner of w after a CAS that replaced the state old (with
 * ASLEEP bits) by a final value: futex-wake a sleeping thread, ready a
 * parked task. A no-op when old had neither bit. */
void weft__waiter_wake(weft__waiter_t *w, uint32_t old);
/* As weft__waiter_wake, for a waker that will most likely wait next for
 * the very thread it wakes (a pool submitter that woke a worker, then
 * waits for its job). The kernel often queues the wakee on the waker's own
 * core, and a pause spin (grown up to SPIN_GROW_MAX x the base) keeps it
 * from running. So until this thread next sleeps, its spins sched_yield()
 * between looks, and such a spin does not grow the adaptive spin. Not for
 * channels: with more threads than cores a yield there hands the core to
 * another producer, not the wakee (mpsc 4x1 cap 1: 0.2 -> 9 us/item). */
void weft__waiter_wake_yielding(weft__waiter_t *w, uint32_t old);
/* From CLAIMED to the final value, waking the owner if it sleeps. */
void weft__waiter_finish(weft__waiter_t *w, uint32_t val);
/* End a wait that the caller alone could end: it won w by taking it out
 * of a word (a CAS that nobody else can repeat), and w was published
 * without deadline or context, so no timer, canceller or other queue can
 * touch its state. A parked task (published by weft__task_park_publish)
 * changes nothing until readied, so its final state is a plain release
 * store and no RMW; a thread may be setting SLEEPING, so it gets the RMW
 * of weft__waiter_finish. */
void weft__waiter_finish_alone(weft__waiter_t *w, uint32_t val);
/* The owner: wait until the state is final (spin, then sleep) or the
 * deadline passes. Returns the final state, or WEFT__W_TIMEOUT. */
uint32_t weft__waiter_wait(weft__waiter_t *w, int64_t deadline, bool spin);
/* As weft__waiter_wait without the spin, but first stays runnable for up
 * to ns (and not past deadline): looks at the state, then sched_yield()s,
 * so the core goes to any other runnable thread and comes back. For a
 * waiter whose turn comes by a chain of hand-offs between more threads
 * than cores (a strict FIFO queue): a final state that reaches a runnable
 * thread costs no futex wake-up, and a wake-to-run is the whole cost of a
 * hand-off there (5-10 us on a virtual machine whose idle vCPU halts). */
uint32_t weft__waiter_wait_runnable(weft__waiter_t *w, int64_t deadline, int64_t ns);
/* The owner gives up: CAS WAITING -> ABORT. Returns WEFT__W_ABORT if it won,
 * else the peer's final value (waiting out a CLAIMED handoff). */
uint32_t weft__waiter_abort(weft__waiter_t *w);

#endif

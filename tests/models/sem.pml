/* tests/models/sem.pml: the semaphore's one word (free count | QUEUED) and
 * its strictly FIFO waiter queue.
 *
 * Stands for (line numbers at the commit that added this file):
 *   lib/sem.c  take 108-120, grant_locked 155-204, wake_all 209-214,
 *              acquire_slow 216-290, weft_sem_acquire 299-307 /
 *              weft_sem_acquire_until 317-327, release_slow 346-365,
 *              weft_sem_release 367-383
 *   lib/internal/park.c  weft__waitq_push / _unlink (340-373: the list,
 *              under the lock), weft__waiter_finish 457-464,
 *              weft__waiter_wake 444-455, weft__waiter_wait 466-504
 *              (reached through weft__waiter_wait_runnable 506-522, whose
 *              yielding phase only polls the same word), weft__waiter_abort
 *              524-537
 *   lib/internal/futex.c (common.pml)
 *
 * What is abstracted: spin_take (127-151) is more takes of the same kind
 * and is left out; m->lock is a lock word taken with a CAS; the deadline
 * check under the lock (245-249) returns before queueing and is left out.
 * Memory is sequentially consistent: every change of the word is a CAS,
 * and the waiter states change by CAS or xchg (full barriers).
 *
 * Processes: NT threads; thread i acquires need[i] tokens of CAP, holds
 * them, and releases them (CAP 2, needs 2, 1, 1). Thread 0's wait may
 * time out (once; the caller then calls acquire again): a head that
 * leaves lets those behind it through, a grant may meet a waiter that has
 * just timed out.
 *
 * Checked: safety (tokens are conserved: held + free == CAP in every state;
 * holders never hold more than CAP; no fast-path take while a live waiter
 * is queued, i.e. nobody overtakes the queue; the grant's subtraction never
 * races (sem.c lines 190-193); each wait ended by one party; a sleeping
 * waiter is woken by whoever ends its wait) and end states (nobody asleep
 * at the end); liveness (LTL, weak fairness): every thread gets its tokens
 * and finishes.
 *
 * BROKEN: the re-check after setting QUEUED (grant_locked at line 259) is
 * left out: a release that landed between the failed take and the CAS
 * setting QUEUED left the tokens in the count, and the waiter sleeps on
 * with them free.
 */

#define NT 3
#define CAP 2
#define NPROC NT
#define NMEM (1 + NT)
#include "common.pml"

#define QUEUED 128
#define COUNT(w) ((w) & 127)

/* weft__waiter_t.state */
#define SLEEPING 128
#define CLAIMED 64
#define DONE 2
#define ABORT 3
#define TIMEOUT 4
#define KIND(s) ((s) & 63)
#define LIVE(s) (((s) & 127) == 0)
#define FINAL(s) (KIND(s) != 0 && !((s) & CLAIMED))
#define WS(i) (1 + (i))

byte word = CAP;  /* m->word */
bit lock;         /* m->lock */
byte q[NT];       /* m->q: thread id + 1, FIFO, under the lock */
byte qlen;
bool linked[NT];
byte need[NT];
bool registered[NT]; /* ghost: queued and QUEUED set by it (or before) */
byte held;        /* ghost: tokens taken from the word and not released */
byte incs;        /* ghost: tokens of the threads in their critical section */
byte wins[NT];
byte nfin;

/* tokens are conserved; holders hold no more than was taken (asserted in
 * every step that changes the word, the only place they can break) */
#define INV assert(held + COUNT(word) == CAP && held <= CAP && incs <= held)

inline lock_acquire()
{
	atomic { lock == 0 -> lock = 1 }
}

inline lock_release()
{
	lock = 0
}

/* no live waiter that has registered is queued (FIFO: a take now would
 * overtake it) */
#define NONE_QUEUED \
	(!(registered[0] && LIVE(mem[WS(0)])) && !(registered[1] && LIVE(mem[WS(1)])) && \
	 !(registered[2] && LIVE(mem[WS(2)])))

inline waitq_unlink(i)
{
	d_step {
		if
		:: linked[i] ->
			fscan = 0;
			do
			:: q[fscan] == i + 1 -> break
			:: else -> fscan++
			od;
			do
			:: fscan + 1 < qlen -> q[fscan] = q[fscan + 1]; fscan++
			:: else -> break
			od;
			q[fscan] = 0;
			fscan = 0;
			qlen--;
			linked[i] = 0;
			registered[i] = 0
		:: else
		fi
	}
}

/* grant_locked(m, &wk): wk is a bit set of granted waiters */
inline grant_locked(wk, n, gw, s, won)
{
	do
	:: qlen == 0 ->
		/* clear QUEUED: fast paths run again from here on */
		gw = word;
		do
		:: (gw & QUEUED) ->
			atomic {
				if
				:: word == gw -> word = gw & ~QUEUED; gw = word; INV
				:: else -> gw = word
				fi
			}
		:: else -> break
		od;
		break
	:: else ->
		n = q[0] - 1;
		gw = word;
		s = mem[WS(n)];
		if
		:: !LIVE(s) ->
			/* left (timed out) and not yet unlinked itself */
			waitq_unlink(n)
		:: else ->
			if
			:: COUNT(gw) < need[n] -> break /* nobody overtakes the head */
			:: else
			fi;
			waitq_unlink(n);
			/* exactly once: against the owner's abort */
			atomic {
				if
				:: LIVE(mem[WS(n)]) ->
					mem[WS(n)] = CLAIMED | (mem[WS(n)] & SLEEPING);
					won = 1;
					wins[n]++;
					assert(wins[n] == 1)
				:: else -> won = 0
				fi
			}
			if
			:: won ->
				atomic {
					/* QUEUED is set: only lock holders change the
					 * word, so this CAS does not fail */
					assert(word == gw && (gw & QUEUED));
					word = word - need[n];
					held = held + need[n];
					INV
				}
				wk = wk | (1 << n)
			:: else
			fi
		fi
	od;
	n = 0; gw = 0; s = 0; won = 0
}

/* wake_all: weft__waiter_finish(w, DONE) for each granted waiter */
inline wake_all(wk, n, old)
{
	n = 0;
	do
	:: n < NT ->
		if
		:: wk & (1 << n) ->
			atomic {
				old = mem[WS(n)];
				assert(old & CLAIMED);
				mem[WS(n)] = DONE
			}
			if
			:: old & SLEEPING -> futex_wake(0, WS(n))
			:: else
			fi
		:: else
		fi;
		n++
	:: else -> break
	od;
	wk = 0; n = 0; old = 0
}

/* weft__waiter_wait(w, deadline, false): returns the final state in st,
 * or TIMEOUT (a CLAIMED handoff is waited out without a deadline) */
inline waiter_wait(me, timed, st, s, cas, tmo)
{
	do
	:: s = mem[WS(me)];
		if
		:: FINAL(s) -> st = s & ~SLEEPING; break
		:: else
		fi;
		cas = 1;
		if
		:: !(s & SLEEPING) ->
			atomic {
				if
				:: mem[WS(me)] == s -> mem[WS(me)] = s | SLEEPING; s = s | SLEEPING
				:: else -> cas = 0
				fi
			}
		:: else
		fi;
		if
		:: cas ->
			futex_wait_timed(me, WS(me), s, timed && !(s & CLAIMED), tmo);
			if
			:: tmo -> st = TIMEOUT; break
			:: else
			fi
		:: else
		fi
	od;
	s = 0; cas = 0; tmo = 0
}

proctype Thread(byte me)
{
	byte w, st, s, n, gw, old, wk;
	bit ok, won, cas, tmo, timed;
	/* thread 0 (the one needing both tokens, which holds up those
	 * behind it) may time out once; the others wait without a deadline */
	bit tmo_left = (me == 0);

acquire:
	/* take: one CAS while nobody queues */
	w = word;
	do
	:: (w & QUEUED) || COUNT(w) < need[me] -> ok = 0; break
	:: else ->
		atomic {
			if
			:: word == w ->
				assert(NONE_QUEUED);
				word = w - need[me];
				held = held + need[me];
				INV;
				ok = 1
			:: else -> w = word; ok = 0
			fi
		}
		if
		:: ok -> break
		:: else
		fi
	od;
	if
	:: ok -> goto cs
	:: else
	fi;
	/* acquire_slow; weft_sem_acquire_until while a time-out is left */
	timed = tmo_left > 0;
	mem[WS(me)] = 0; /* weft__waiter_t w = {WAITING} (the same address) */
	wins[me] = 0;
	lock_acquire();
	w = word;
	do
	:: qlen == 0 && COUNT(w) >= need[me] ->
		/* free again by now and nobody queued: take directly */
		atomic {
			if
			:: word == w ->
				assert(NONE_QUEUED);
				word = w - need[me];
				held = held + need[me];
				INV;
				ok = 1
			:: else -> w = word
			fi
		}
		if
		:: ok ->
			lock_release();
			goto cs
		:: else
		fi
	:: else -> break
	od;
	atomic { q[qlen] = me + 1; qlen++; linked[me] = 1 }
	/* register: set QUEUED with a CAS expecting the count it re-checks */
	do
	:: !(w & QUEUED) ->
		atomic {
			if
			:: word == w -> word = w | QUEUED; w = word; registered[me] = 1; INV
			:: else -> w = word
			fi
		}
	:: else -> registered[me] = 1; break
	od;
#ifndef BROKEN
	/* re-check: we may be the head and fit already */
	grant_locked(wk, n, gw, s, won);
#endif
	lock_release();
	wake_all(wk, n, old);
	waiter_wait(me, timed, st, s, cas, tmo);
	if
	:: st == TIMEOUT ->
		tmo_left = 0;
		/* weft__waiter_abort */
		do
		:: atomic {
			s = mem[WS(me)];
			if
			:: LIVE(s) -> mem[WS(me)] = ABORT; st = ABORT; wins[me]++; assert(wins[me] == 1)
			:: else -> st = s & ~SLEEPING
			fi
		   }
			if
			:: st & CLAIMED ->
				/* wait out the handoff */
				waiter_wait(me, 0, st, s, cas, tmo)
			:: else
			fi;
			break
		od
	:: else
	fi;
	if
	:: KIND(st) == DONE -> goto cs /* granted (perhaps as we timed out) */
	:: else
	fi;
	assert(KIND(st) == ABORT);
	/* leave, and let those behind us proceed if they fit now */
	lock_acquire();
	waitq_unlink(me);
	grant_locked(wk, n, gw, s, won);
	lock_release();
	wake_all(wk, n, old);
	st = 0;
	goto acquire; /* -ETIMEDOUT: the caller tries again */

cs: skip;
	d_step { incs = incs + need[me]; INV; ok = 0; st = 0; w = 0 }
	d_step { incs = incs - need[me] }
	/* weft_sem_release: one CAS while nobody queues */
	w = word;
	do
	:: !(w & QUEUED) ->
		atomic {
			if
			:: word == w ->
				assert(COUNT(w) + need[me] <= CAP);
				word = w + need[me];
				held = held - need[me];
				INV;
				ok = 1
			:: else -> w = word
			fi
		}
		if
		:: ok -> break
		:: else
		fi
	:: else -> break
	od;
	if
	:: ok -> goto fin
	:: else
	fi;
	/* release_slow */
	lock_acquire();
	w = word;
	do
	:: atomic {
		if
		:: word == w -> word = w + need[me]; held = held - need[me]; INV; ok = 1
		:: else -> w = word
		fi
	   }
		if
		:: ok -> break
		:: else
		fi
	od;
	grant_locked(wk, n, gw, s, won);
	lock_release();
	wake_all(wk, n, old);
fin: skip;
	d_step { nfin++; w = 0; ok = 0 }
}

init
{
	atomic {
		need[0] = 2;
		need[1] = 1;
		need[2] = 1;
		run Thread(0);
		run Thread(1);
		run Thread(2)
	}
}

ltl live { <> (nfin == NT) }

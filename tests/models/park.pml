/* tests/models/park.pml: the waiter word and parking: register, re-check,
 * sleep; the waker's CAS; exactly one wake.
 *
 * Stands for (line numbers at the commit that added this file):
 *   lib/internal/park.h  weft__waiter_end lines 280-293
 *   lib/internal/park.c  weft__waitq_push 340-346, weft__waitq_unlink 355-373,
 *                        weft__waitq_notify_one 375-394, weft__waiter_wake
 *                        444-455, weft__waiter_wait 466-504 (the loop from
 *                        484; the spin before it only polls the same word),
 *                        weft__waiter_abort 524-537
 *   lib/internal/futex.c weft__futex_wait 18-37, weft__futex_wake 39-43
 *                        (common.pml)
 *   lib/chan.c           weft__chan_register 116-121, weft__chan_notify
 *                        130-142, notify_other 145-152, leave_registered
 *                        289-300, chan_block 308-417 (the buffered path:
 *                        attempt 331, register 373, fence 379, re-check
 *                        380-386, wait 391-393, the switch 396-415)
 *
 * What is abstracted: the ring is an atomic count of elements (`items`):
 * an attempt is one CAS taking an element, a send one RMW adding one (the
 * ring's claim CAS; the ring itself is ring.pml). ch->lock is a lock word
 * taken with a CAS (weft__mutex_t's sleeping is its own protocol). Memory
 * is sequentially consistent here: every access the Dekker pair rests on
 * is an RMW (the registration's faa on count, the ring's claim CAS, the
 * CASes on the waiter state, the mutex's cmpxchg/xchg), a full barrier on
 * x86; the only plain stores are count's decrements under the lock
 * (waitq_unlink), whose stale reading makes a publisher take the lock for
 * nothing. The recv side is modelled; send is its mirror image.
 *
 * Processes: NPROD producers send one element each; NCONS consumers each
 * receive one (weft_chan_recv_until). Consumer 0's wait may time out, once
 * (the caller then calls again): the time-out races the notification, and
 * a waiter that got a notification along with its time-out, or on its
 * way out after a successful re-check, must not strand an element.
 *
 * Checked: safety (assertions: each wait ended by exactly one party; a
 * waiter that sleeps is woken by whoever ends its wait; an owner that sees
 * NOTIFY has been unlinked; no element received twice) and end states (no
 * consumer asleep at the end: every element reaches a receiver); liveness
 * (LTL, weak fairness): every consumer eventually returns with an element.
 *
 * BROKEN: the re-check after registering (chan.c lines 378-386) is left
 * out: a send between the failed attempt and the registration sees no
 * waiter and the consumer sleeps on with an element in the ring.
 */

#define NPROD 2
#define NCONS 2
#define NPROC NCONS /* only consumers sleep */
#define NMEM (1 + NCONS)
#include "common.pml"

/* weft__waiter_t.state (park.h): WAITING 0, the SLEEPING flag, kinds */
#define SLEEPING 128
#define NOTIFY 1
#define ABORT 3
#define TIMEOUT 4
#define KIND(s) ((s) & 127)
#define LIVE(s) (KIND(s) == 0)
#define WS(i) (1 + (i)) /* consumer i's waiter state, in mem[] */

byte items;         /* elements in the ring */
bit lock;           /* ch->lock */
byte qcount;        /* recvq.count: read lock-free by publishers */
byte q[NCONS];      /* recvq's FIFO (consumer id + 1), under the lock */
byte qlen;
bool linked[NCONS]; /* wnode.linked */
byte got;           /* elements received */
byte wins[NCONS];   /* parties that ended consumer i's current wait */
byte nfin;          /* consumers returned with their element */

inline lock_acquire()
{
	atomic { lock == 0 -> lock = 1 }
}

inline lock_release()
{
	lock = 0
}

/* one attempt (weft__chan_try -> ring pop): take an element if any */
inline attempt(ok)
{
	atomic {
		if
		:: items > 0 -> items--; ok = 1
		:: else -> ok = 0
		fi
	}
}

/* weft__waitq_push: link (lock-protected), then the faa on count */
inline waitq_push(i)
{
	d_step {
		q[qlen] = i + 1;
		qlen++;
		linked[i] = 1;
		qcount++
	}
}

/* weft__waitq_unlink: no-op when not linked; count-- (under the lock) */
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
			qcount--
		:: else
		fi
	}
}

/* weft__waiter_end(w_i, val, &old): one CAS from a live state; won says
 * whether it was ours. The waker must wake the owner if it slept: the
 * owner sets SLEEPING before it sleeps, so a sleeping owner's state has
 * it. */
inline waiter_end(i, val, old, won)
{
	atomic {
		if
		:: LIVE(mem[WS(i)]) ->
			old = mem[WS(i)];
			mem[WS(i)] = val;
			won = 1;
			wins[i]++;
			assert(wins[i] == 1);
			assert(fw[i] != WS(i) || (old & SLEEPING))
		:: else -> won = 0
		fi
	}
}

/* weft__waiter_wake(w_i, old) */
inline waiter_wake(i, old)
{
	if
	:: old & SLEEPING -> futex_wake(0, WS(i))
	:: else
	fi
}

/* weft__chan_notify(ch, &recvq, 1): notify_one under the lock, wake after */
inline chan_notify(n, old, won, w)
{
	lock_acquire();
	w = 0;
	do
	:: qlen == 0 -> break
	:: else ->
		n = q[0] - 1;
		/* unlink first, live or dead */
		waitq_unlink(n);
		waiter_end(n, NOTIFY, old, won);
		if
		:: won ->
			if
			:: old & SLEEPING -> w = n + 1
			:: else
			fi;
			break
		:: else /* a dead entry: the next */
		fi
	od;
	lock_release();
	if
	:: w != 0 -> waiter_wake(w - 1, old)
	:: else
	fi;
	n = 0; old = 0; won = 0; w = 0
}

proctype Producer()
{
	byte n, old, w;
	bit won;
	/* weft__ring_push: the claim CAS and the publish */
	atomic { items++ }
	/* notify_other: the count, lock-free, after the RMW */
	if
	:: qcount != 0 -> chan_notify(n, old, won, w)
	:: else
	fi
}

proctype Consumer(byte me)
{
	byte s, st, old, n, w;
	bit ok, won, cas, tmo, expired;
	/* consumer 0 may time out once (the other waits without a deadline) */
	bit tmo_left = (me == 0);

call: /* weft_chan_recv_until */
	expired = 0;
try:
	attempt(ok);
	if
	:: ok -> goto received
	:: else
	fi;
	if
	:: expired -> goto call /* the deadline has passed: -ETIMEDOUT */
	:: else
	fi;
	/* weft__waiter_t w = {WAITING}: the same address every round */
	d_step { mem[WS(me)] = 0; wins[me] = 0 }
	/* weft__chan_register */
	lock_acquire();
	waitq_push(me);
	lock_release();
	/* weft__fence_rmw_load: the faa above is already a full barrier */
#ifndef BROKEN
	/* re-check */
	attempt(ok);
	if
	:: ok ->
		/* leave_registered */
		atomic {
			s = mem[WS(me)];
			if
			:: LIVE(s) -> mem[WS(me)] = ABORT; st = ABORT; wins[me]++; assert(wins[me] == 1)
			:: else -> st = s & ~SLEEPING
			fi
		}
		if
		:: st == ABORT ->
			lock_acquire();
			waitq_unlink(me);
			lock_release()
		:: else ->
			/* a notification we will not use: pass it on */
			assert(KIND(st) == NOTIFY);
			chan_notify(n, old, won, w)
		fi;
		goto received
	:: else
	fi;
#endif
	/* weft__waiter_wait(&w, deadline, false) */
wloop:
	s = mem[WS(me)];
	if
	:: !LIVE(s) -> st = s & ~SLEEPING; goto wdone
	:: else
	fi;
	if
	:: !(s & SLEEPING) ->
		atomic {
			if
			:: mem[WS(me)] == s -> mem[WS(me)] = s | SLEEPING; s = s | SLEEPING; cas = 1
			:: else -> cas = 0
			fi
		}
		if
		:: !cas -> goto wloop
		:: else
		fi
	:: else
	fi;
	futex_wait_timed(me, WS(me), s, tmo_left > 0, tmo);
	if
	:: tmo -> tmo_left--; st = TIMEOUT; goto wdone
	:: else -> goto wloop
	fi;
wdone:
	if
	:: st == TIMEOUT ->
		expired = 1;
		/* weft__waiter_abort */
		atomic {
			s = mem[WS(me)];
			if
			:: LIVE(s) -> mem[WS(me)] = ABORT; st = ABORT; wins[me]++; assert(wins[me] == 1)
			:: else -> st = s & ~SLEEPING
			fi
		}
	:: else
	fi;
	if
	:: KIND(st) == NOTIFY ->
		/* the notifier unlinked us before its CAS */
		assert(!linked[me]);
		goto try
	:: KIND(st) == ABORT ->
		lock_acquire();
		waitq_unlink(me);
		lock_release();
		/* timed out: a passed deadline behaves like try */
		attempt(ok);
		if
		:: ok -> goto received
		:: else -> goto call
		fi
	fi;
received:
	skip;
	d_step {
		got++;
		assert(got <= NPROD);
		nfin++;
		s = 0; st = 0; old = 0; n = 0; w = 0; ok = 0; won = 0; cas = 0; tmo = 0; expired = 0
	}
}

init
{
	atomic {
		run Producer();
		run Producer();
		run Consumer(0);
		run Consumer(1)
	}
}

ltl live { <> (nfin == NCONS) }

/* tests/models/rv.pml: the unbuffered channel's rendezvous word ch->rv:
 * a lone waiter published and taken with one CAS each, the lock path that
 * moves it into its queue (QUEUED) and back (EMPTY), and close.
 *
 * Stands for (line numbers at 18f09e9, the commit that added the word;
 * weft__chan_rv_queue and rv_take as changed since: the count before the CAS, CLOSED
 * answered -EPIPE):
 *   lib/chan.c  weft__chan_rv_queue 164-177, weft__chan_rv_unqueue 180-188, rv_close 192-201,
 *       weft__chan_lock/unlock 203-215, weft__chan_unregister 226-231,
 *       weft__chan_handoff 273-277, rv_take 282-301, rv_publish 309-315,
 *       rv_wait_alone 323-348, weft__chan_match_locked 350-357,
 *       try_unbuffered 359-376, chan_block 512-628 (the attempt 535-537,
 *       the cap == 0 parts 555-582 and 600-626), weft_chan_close 794-808
 *   lib/internal/park.c  weft__waitq_push_locked 359-364, _unlink
 *       366-384, _notify_all 407-417, _claim 419-438, weft__waiter_wake
 *       455-466, _finish 468-475, _finish_alone 477-491, _wait 493-531
 *       (the futex loop from 511; the spin before it only polls the same
 *       word), _abort 551-564; park.h weft__waiter_end 227-240
 *   lib/internal/sched.c  weft__task_ready 884-895, task_park 950-954
 *       (switch_out saves the context, after_switch runs the commit),
 *       commit_wait 962-1001, task_wait 1003-1022,
 *       weft__task_park_publish 1037-1056; futex.c (common.pml)
 *
 * What is abstracted: rv is EMPTY, QUEUED, CLOSED or NODE + the lone
 * waiter's id (its side is its own); rvseq is the count in bits 63..48,
 * which every CAS compares, as the C compares the whole word. A queue is a
 * FIFO of ids and its count (a hint try_unbuffered reads lock-free) its
 * length; ch->lock is a lock word taken with a CAS; the ring is only its
 * closed mark. A CAS loop whose failure only re-reads is one step. What
 * nobody else can see is folded into the owner's next step (a new
 * waiter's initialisation; a task's switch_out before its publish), and
 * the copy of the element into the step that wins the lone node, or into
 * the DONE xchg after a claim (the owner reads it only once DONE). The
 * deadline passes only while the waiter waits (chan_block 538-544 is left
 * out). A readied task runs again (sched.pml models the carriers).
 *
 * Memory is sequentially consistent: what the protocol rests on is an RMW
 * (the CASes on the word, the CASes and xchgs on waiter states, the lock)
 * or made under the lock (the queues). Plain stores: weft__chan_rv_unqueue's EMPTY is
 * made under the lock while the word is QUEUED, which only lock holders
 * change, and the unlock's xchg drains it (a party that still reads QUEUED
 * takes the lock for nothing); a task's PARKED before its publish, and
 * WAITING after a failed one, go to a waiter nobody can see; finish_alone's
 * DONE (or NOTIFY) to a parked task is made by the one party that won the
 * node from the word: nobody else can reach the waiter, the owner does not
 * run until the ready that follows, and x86 keeps the store before the
 * ready's stores to the run queue. Relaxed loads (the word in
 * rv_wait_alone, the state in finish_alone, a count) only pick a path.
 *
 * Processes: S, a task, sends elements 1 and 2 (weft_chan_send: alone in
 * the word through weft__task_park_publish when it is EMPTY, else under
 * the lock through task_wait); R, a thread, receives once (weft_chan_recv:
 * alone in the word or under the lock, sleeping on the futex); Q, a
 * thread, receives once with weft_chan_recv_until, always on the lock
 * path: its deadline may pass once (abort, unregister, one more attempt,
 * -ETIMEDOUT) and it calls again with one that does not; C closes once Q
 * has returned, racing R and S (rv_close on a lone one, notify_all on a
 * queued one, a publish failing on CLOSED, an attempt seeing the mark).
 * Q's lock (its match, its unregister) moves a lone S or R into a queue.
 *
 * Checked: safety (assertions: each element is copied once, from S's
 * current send into a receiver's pending call, never into a call twice; a
 * send returns success iff its element was copied, a receive iff it got
 * one, -EPIPE only once closed; each wait is ended by exactly one party:
 * the word's take or close CAS, a claim, a notification, the owner's
 * abort; a sleeping thread is woken by whoever ends its wait; the task is
 * readied exactly once per park and only once parked (its context saved);
 * the word is EMPTY or a lone node only while both queues are empty,
 * asserted at every change of the word or a queue; an attempt of S that
 * says -EAGAIN never does so while R waited, unclosed, from before it to
 * after it) and end states (nobody waits at the end); liveness (LTL, weak
 * fairness): everyone returns.
 *
 * NO_CONVERT: weft__chan_lock without weft__chan_rv_queue: the word never says
 * QUEUED, so a waiter queued under the lock and a lone one of the other
 * side miss each other. The invariant breaks at Q's push into recvq (with
 * -DNO_INV: Q waits in recvq, R takes element 1 from S, S's second send
 * parks alone in the EMPTY word, C waits for Q: an invalid end state).
 * UNQUEUE_EARLY: weft__chan_unlock turns QUEUED into EMPTY without looking
 * at the queues: Q waits in recvq under an EMPTY word, S parks alone (the
 * invariant breaks at Q's unlock; with -DNO_INV the same end state).
 * EARLY_PUBLISH: the task publishes before its context is saved (not as
 * the park's commit): whoever wins the node (R's take, C's rv_close)
 * readies S while it still runs, resuming a context not yet saved.
 *
 * COUNT_LATE: weft__chan_rv_queue counts the lone waiter in its queue only when it
 * links it, after the CAS (as 18f09e9 did; this model found it): R sleeps
 * alone in the word; Q takes the lock and the CAS turns node(R) into
 * QUEUED; S's attempt (weft_chan_try_send: rv_take reads QUEUED, then
 * try_unbuffered reads recvq's count, still 0) says -EAGAIN; then Q links
 * R. R waited, unclosed, from before the attempt to after it, so the
 * answer held at no instant (the assertion after the count's read), and
 * weft_select_try (weft__chan_ready_at on QUEUED with a count of 0) missed
 * R the same way, against chan.h's "a case that stayed ready throughout
 * is never missed". Blocking calls went on to the lock and were not hurt.
 */

#define NP 3
#define S 0 /* the sender: a task */
#define R 1 /* a receiver: a thread, plain recv */
#define Q 2 /* a receiver: a thread, recv_until */
#define NSEND 2
#define NPROC NP
#define NMEM (1 + NP)
#include "common.pml"

#define EPIPE 32
#define INUSE 1 /* rv_take: the queues are in use, decide under the lock */

/* ch->rv */
#define EMPTY 0
#define QUEUED 1
#define CLOSED 2
#define NODE 4
#define ISNODE(v) ((v) >= NODE)
#define WHO(v) ((v) - NODE)

/* sides: a queue's index */
#define RECV 0
#define SEND 1
#define SIDE(p) ((p) == S)

/* weft__waiter_t.state */
#define SLEEPING 128
#define CLAIMED 64
#define PARKED 32
#define ASLEEP (SLEEPING | PARKED)
#define NOTIFY 1
#define DONE 2
#define ABORT 3
#define TIMEOUT 4
#define KIND(s) ((s) & 15)
#define LIVE(s) (((s) & ~ASLEEP) == 0)
#define FINAL(s) (KIND(s) != 0 && !((s) & CLAIMED))
#define WS(p) (1 + (p))

/* ghost: where the task S is */
#define T_RUNNING 0
#define T_SAVED 1  /* switched out, the park not committed yet */
#define T_PARKED 2 /* parked: whoever ends its wait readies it */
#define T_QUEUED 3 /* readied (runs again) */

byte rv = EMPTY; /* ch->rv */
byte rvseq;      /* its count of publishes */
bit lock;        /* ch->lock */
bit closed;      /* the ring's closed mark */
byte qs[4];      /* queue side: qs[2 * side ..], ids + 1, FIFO */
byte qlen[2];
byte qcnt[2];    /* the queues' counts: hints read lock-free */
bool linked[NP];
byte tstate = T_RUNNING;

byte cur;       /* ghost: the element S is sending */
bit spend;      /* ghost: S's send is in progress */
byte given;     /* ghost: bit e: element e was copied to a receiver */
byte dest[NP];  /* ghost: what a receiver's current call got (0: nothing) */
bool rpend[NP]; /* ghost: a receiver's call is in progress */
byte wins[NP];  /* ghost: parties that ended p's current wait */
bit qret;       /* ghost: Q has returned */
byte nfin;
bit rpub; /* ghost: R's wait is in the word or registered (by R) */
bit e0;   /* ghost: R waited when S's attempt began */
#define RWAITS (rpub && LIVE(mem[WS(R)]))

#ifndef NO_INV
/* the word says EMPTY or shows a lone waiter only while no queue holds
 * anyone */
#define INV assert((rv != EMPTY && !ISNODE(rv)) || qlen[RECV] + qlen[SEND] == 0)
#else
#define INV skip
#endif

inline lock_acquire()
{
	atomic { lock == 0 -> lock = 1 }
}

inline lock_release()
{
	lock = 0
}

/* weft__waitq_push_counted: linked, counted already (under the lock;
 * inside a step) */
inline qpush_counted(p)
{
	qs[2 * SIDE(p) + qlen[SIDE(p)]] = p + 1;
	qlen[SIDE(p)]++;
	linked[p] = 1;
	INV
}

/* weft__waitq_push_locked: linked and counted (under the lock) */
inline qpush(p)
{
	qcnt[SIDE(p)]++;
	qpush_counted(p)
}

/* weft__waitq_unlink: a no-op when not linked (under the lock) */
inline qunlink(p)
{
	d_step {
		if
		:: linked[p] ->
			fscan = 0;
			do
			:: qs[2 * SIDE(p) + fscan] == p + 1 -> break
			:: else -> fscan++
			od;
			do
			:: fscan + 1 < qlen[SIDE(p)] ->
				qs[2 * SIDE(p) + fscan] = qs[2 * SIDE(p) + fscan + 1];
				fscan++
			:: else -> break
			od;
			qs[2 * SIDE(p) + fscan] = 0;
			fscan = 0;
			qlen[SIDE(p)]--;
			qcnt[SIDE(p)]--;
			linked[p] = 0
		:: else
		fi
	}
}

/* weft__chan_lock: the lock, then weft__chan_rv_queue: a lone waiter is counted in
 * its queue, the CAS takes it out of the word, then it is linked (three
 * steps, as in the C; the count is taken back if the CAS fails). The CAS
 * compares the state only: a node that went and came back between the
 * look and the CAS is the same waiter again, and its count stands. */
inline chan_lock(v)
{
	lock_acquire();
#ifndef NO_CONVERT
	do
	:: atomic {
		v = rv;
#ifndef COUNT_LATE
		if
		:: ISNODE(v) -> qcnt[SIDE(WHO(v))]++
		:: else
		fi
#endif
	   }
	   atomic {
		if
		:: v == QUEUED || v == CLOSED -> v = 0; break
		:: v != QUEUED && v != CLOSED && rv == v ->
			rv = QUEUED;
			INV;
			v = (ISNODE(v) -> v : 0);
			break
		:: v != QUEUED && v != CLOSED && rv != v ->
#ifndef COUNT_LATE
			if
			:: ISNODE(v) -> qcnt[SIDE(WHO(v))]--
			:: else
			fi
#endif
			; v = 0
		fi
	   }
	od;
	if
#ifndef COUNT_LATE
	:: v -> d_step { qpush_counted(WHO(v)); v = 0 } /* weft__waitq_push_counted */
#else
	:: v -> d_step { qpush(WHO(v)); v = 0 } /* counted only now */
#endif
	:: else
	fi
#endif
}

/* weft__chan_unlock: weft__chan_rv_unqueue, then the unlock */
inline chan_unlock()
{
	d_step {
#ifndef UNQUEUE_EARLY
		if
		:: rv == QUEUED && qlen[RECV] == 0 && qlen[SEND] == 0 -> rv = EMPTY
		:: else
		fi;
#else
		if
		:: rv == QUEUED -> rv = EMPTY
		:: else
		fi;
#endif
		INV
	}
	lock_release()
}

/* weft__task_ready(S) */
inline task_ready(p)
{
	d_step { assert(p == S && tstate == T_PARKED); tstate = T_QUEUED }
}

/* weft__waiter_wake(w_p, old) */
inline waiter_wake(p, old)
{
	if
	:: old & PARKED -> task_ready(p)
	:: !(old & PARKED) && (old & SLEEPING) -> futex_wake(0, WS(p))
	:: else
	fi
}

/* weft__waiter_finish_alone, by the party that won p's node from the
 * word; s is its relaxed look at the state, taken in the winning step (it
 * can differ from the owner's latest only by a thread's SLEEPING) */
inline finish_alone(p, val, s, old)
{
	if
	:: s != PARKED ->
		/* a thread: weft__waiter_finish, the xchg, then the wake */
		atomic {
			old = mem[WS(p)];
			assert(LIVE(old));
			mem[WS(p)] = val;
			assert(fw[p] != WS(p) || (old & SLEEPING))
		}
		waiter_wake(p, old)
	:: else ->
		/* a parked task: a plain store, then the ready */
		mem[WS(p)] = val;
		task_ready(p)
	fi;
	s = 0; old = 0
}

/* weft__waiter_end(w_p, NOTIFY, &old): the CAS from a live state */
inline waiter_end(p, val, old, won)
{
	atomic {
		if
		:: LIVE(mem[WS(p)]) ->
			old = mem[WS(p)];
			mem[WS(p)] = val;
			won = 1;
			wins[p]++;
			assert(wins[p] == 1);
			assert(fw[p] != WS(p) || (old & SLEEPING))
		:: else -> won = 0
		fi
	}
}

/* handoff_copy by me with its peer p: the element of S's current send
 * into the receiver's pending call (inside an atomic step) */
inline copy(me, p)
{
	if
	:: me == S -> assert(rpend[p] && dest[p] == 0); dest[p] = cur
	:: else -> assert(rpend[me] && dest[me] == 0); dest[me] = cur
	fi;
	assert(spend && !(given & (1 << cur)));
	given = given | (1 << cur)
}

/* weft__chan_handoff(ch, me's op, peer p), p claimed: the copy, then
 * weft__waiter_finish(DONE) (the copy is the owner's buffer, which the
 * owner reads only once it sees DONE: one step with the xchg) */
inline handoff(me, p, old)
{
	atomic {
		copy(me, p);
		old = mem[WS(p)];
		assert(old & CLAIMED);
		mem[WS(p)] = DONE;
		assert(fw[p] != WS(p) || (old & SLEEPING))
	}
	waiter_wake(p, old);
	old = 0
}

/* weft__chan_match_locked, through weft__waitq_claim on the other side's
 * queue: peer is the claimed party + 1, or 0 */
inline match_locked(me, m, peer, n, s)
{
	peer = 0;
	if
	:: closed -> m = EPIPE
	:: else ->
		do
		:: qlen[1 - SIDE(me)] == 0 -> break
		:: else ->
			n = qs[2 * (1 - SIDE(me))] - 1;
			qunlink(n); /* unlink first, live or dead */
			atomic {
				s = mem[WS(n)];
				if
				:: LIVE(s) ->
					/* keep the ASLEEP bits: finish wakes the owner */
					mem[WS(n)] = CLAIMED | (s & ASLEEP);
					wins[n]++;
					assert(wins[n] == 1);
					peer = n + 1
				:: else /* a dead entry: the next */
				fi
			}
			if
			:: peer -> break
			:: else
			fi
		od;
		m = (peer -> 0 : EAGAIN)
	fi;
	n = 0; s = 0
}

/* chan_block's locked part (555-569): match, or register (push) */
inline lock_match(me, m, peer, n, s, v)
{
	chan_lock(v);
	match_locked(me, m, peer, n, s);
	if
	:: m == EAGAIN ->
		d_step {
			qpush(me)
			; rpub = rpub || me == R
		}
	:: else
	fi;
	chan_unlock()
}

/* rv_take: take a lone waiter of the other side out of the word: rc 0
 * (taken and finished), EAGAIN, or INUSE */
inline rv_take(me, rc, v, vs, n, s, old, ok)
{
	atomic {
		v = rv;
		vs = rvseq;
		e0 = (me == S && RWAITS)
	}
	do
	:: !ISNODE(v) -> rc = (v == EMPTY -> EAGAIN : (v == CLOSED -> EPIPE : INUSE)); break
	:: ISNODE(v) && SIDE(WHO(v)) == SIDE(me) -> rc = EAGAIN; break
	:: ISNODE(v) && SIDE(WHO(v)) != SIDE(me) ->
		atomic {
			if
			:: rv == v && rvseq == vs ->
				rv = EMPTY;
				n = WHO(v);
				wins[n]++;
				assert(wins[n] == 1);
				INV;
				/* handoff_copy, and finish_alone's look at the state */
				copy(me, n);
				s = mem[WS(n)];
				ok = 1
			:: else -> v = rv; vs = rvseq; ok = 0
			fi
		}
		if
		:: ok ->
			finish_alone(n, DONE, s, old);
			rc = 0;
			break
		:: else
		fi
	od;
	v = 0; vs = 0; n = 0; ok = 0
}

/* try_unbuffered: rc 0, EAGAIN or EPIPE */
inline try_unbuffered(me, rc, v, vs, n, s, old, ok, m, peer)
{
	if
	:: closed -> rc = EPIPE
	:: else ->
		rv_take(me, rc, v, vs, n, s, old, ok);
		if
		:: rc == INUSE ->
			if
			:: qcnt[1 - SIDE(me)] == 0 ->
				rc = EAGAIN /* nobody there */
				/* as weft_chan_try_send: R waited throughout */
				; assert(!(me == S && e0 && RWAITS && !closed))
			:: else ->
				chan_lock(v);
				match_locked(me, m, peer, n, s);
				chan_unlock();
				if
				:: m == 0 -> handoff(me, peer - 1, old)
				:: else
				fi;
				rc = m; m = 0; peer = 0
			fi
		:: else
		fi
	fi
}

/* weft__waiter_wait for a thread: the futex loop; st is the final state,
 * or TIMEOUT (a CLAIMED handoff is waited out without a deadline) */
inline thread_wait(me, timed, st, s, cas, tmo)
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

/* the task runs again once readied */
inline task_run()
{
	atomic { tstate == T_QUEUED -> tstate = T_RUNNING }
}

proctype Sender()
{
	byte v, vs, n, s, old, m, peer, rc, st;
	bit ok;

next:
	if
	:: cur == NSEND -> goto fin
	:: else
	fi;
	d_step { cur++; spend = 1 }
try: /* chan_block's loop: the attempt */
	try_unbuffered(S, rc, v, vs, n, s, old, ok, m, peer);
	if
	:: rc == 0 -> goto sent
	:: rc == EPIPE -> goto pipe
	:: else
	fi;
	/* rv_wait_alone: the word, read relaxed, picks the path; a new waiter
	 * (nobody can see it yet: one step) */
	atomic {
		v = rv;
		vs = rvseq;
		wins[S] = 0;
		mem[WS(S)] = 0;
		if
		:: v == EMPTY ->
			/* weft__task_park_publish: plain */
			mem[WS(S)] = PARKED;
#ifndef EARLY_PUBLISH
			/* switch_out: the context is saved */
			assert(tstate == T_RUNNING);
			tstate = T_SAVED
#endif
		:: else
		fi
	}
	if
	:: v == EMPTY ->
		v = 0;
#ifndef EARLY_PUBLISH
		/* after_switch: the park's commit is rv_publish */
		atomic {
			if
			:: rv == EMPTY && rvseq == vs -> rv = NODE + S; rvseq++; tstate = T_PARKED; INV
			:: else -> tstate = T_QUEUED /* false: runnable again at once */
			fi
		}
#else
		/* the publish before the switch */
		atomic {
			if
			:: rv == EMPTY && rvseq == vs -> rv = NODE + S; rvseq++; ok = 1; INV
			:: else -> ok = 0
			fi
		}
		d_step { assert(tstate == T_RUNNING); tstate = T_SAVED }
		d_step { tstate = (ok -> T_PARKED : T_QUEUED); ok = 0 }
#endif
		vs = 0;
		/* readied, it runs again and looks at its state */
		atomic {
			tstate == T_QUEUED -> tstate = T_RUNNING;
			s = mem[WS(S)];
			if
			:: s == PARKED -> mem[WS(S)] = 0 /* not published: ours alone */
			:: else
			fi
		}
		if
		:: s == PARKED -> s = 0; goto try /* RV_RETRY */
		:: KIND(s) == DONE -> s = 0; goto sent
		:: else -> assert(KIND(s) == NOTIFY); s = 0; goto try /* RV_RETRY */
		fi
	:: else -> v = 0; vs = 0 /* RV_LOCK */
	fi;
	/* match or register, atomically under the lock */
	lock_match(S, m, peer, n, s, v);
	if
	:: m == 0 -> handoff(S, peer - 1, old); m = 0; peer = 0; goto sent
	:: m == EPIPE -> m = 0; goto pipe
	:: else -> m = 0
	fi;
	/* weft__waiter_wait -> task_wait (no deadline) */
	do
	:: atomic {
		s = mem[WS(S)];
		if
		:: FINAL(s) -> st = s; s = 0; break
		:: else -> assert(tstate == T_RUNNING); tstate = T_SAVED /* task_park */
		fi
	   }
		/* commit_wait: PARKED while the wait is live or claimed */
		atomic {
			s = mem[WS(S)];
			if
			:: LIVE(s) || (s & CLAIMED) -> mem[WS(S)] = s | PARKED; tstate = T_PARKED
			:: else -> tstate = T_QUEUED /* the wait was over */
			fi
		}
		task_run()
	od;
	if
	:: KIND(st) == DONE -> st = 0; goto sent
	:: else -> assert(KIND(st) == NOTIFY); st = 0; goto try
	fi;
sent: skip;
	d_step { assert(given & (1 << cur)); spend = 0; rc = 0 }
	goto next;
pipe: skip;
	d_step { assert(closed && !(given & (1 << cur))); spend = 0; rc = 0 }
	goto next;
fin:
	nfin++
}

proctype Receiver(byte me; bit timed)
{
	byte v, vs, n, s, old, m, peer, rc, st;
	bit ok, cas, tmo;
	bit tmo_left = timed; /* the deadline may pass once */

call: skip;
	d_step { dest[me] = 0; rpend[me] = 1 }
try: /* chan_block's loop: the attempt */
	try_unbuffered(me, rc, v, vs, n, s, old, ok, m, peer);
	if
	:: rc == 0 -> goto got
	:: rc == EPIPE -> goto pipe
	:: else
	fi;
	if
	:: !timed ->
		/* rv_wait_alone (a thread); a new waiter, nobody can see it yet */
		atomic { v = rv; vs = rvseq; mem[WS(me)] = 0; wins[me] = 0 }
		if
		:: v == EMPTY ->
			atomic {
				if
				:: rv == EMPTY && rvseq == vs ->
					rv = NODE + me;
					rvseq++;
					ok = 1;
					rpub = 1;
					INV
				:: else -> ok = 0
				fi
			}
			vs = 0;
			if
			:: !ok -> goto try /* RV_RETRY */
			:: else -> ok = 0
			fi;
			thread_wait(me, 0, st, s, cas, tmo);
			if
			:: KIND(st) == DONE -> goto got
			:: else -> assert(KIND(st) == NOTIFY); goto try
			fi
		:: else -> v = 0; vs = 0 /* RV_LOCK */
		fi
	:: else -> d_step { mem[WS(me)] = 0; wins[me] = 0 } /* a new waiter */
	fi;
	/* match or register, atomically under the lock */
	lock_match(me, m, peer, n, s, v);
	if
	:: m == 0 -> handoff(me, peer - 1, old); goto got
	:: m == EPIPE -> goto pipe
	:: else -> m = 0
	fi;
	thread_wait(me, tmo_left, st, s, cas, tmo);
	if
	:: st == TIMEOUT ->
		tmo_left = 0;
		/* weft__waiter_abort */
		atomic {
			s = mem[WS(me)];
			if
			:: LIVE(s) -> mem[WS(me)] = ABORT; st = ABORT; wins[me]++; assert(wins[me] == 1)
			:: else -> st = s & ~SLEEPING
			fi
		}
		if
		:: st & CLAIMED -> thread_wait(me, 0, st, s, cas, tmo) /* wait out the handoff */
		:: else
		fi
	:: else
	fi;
	if
	:: KIND(st) == DONE -> goto got
	:: KIND(st) == NOTIFY -> goto try
	:: KIND(st) == ABORT ->
		/* weft__chan_unregister */
		chan_lock(v);
		qunlink(me);
		chan_unlock();
		/* timed out: a passed deadline behaves like try */
		try_unbuffered(me, rc, v, vs, n, s, old, ok, m, peer);
		if
		:: rc == 0 -> goto got
		:: rc == EPIPE -> goto pipe
		:: else ->
			/* -ETIMEDOUT: the caller calls again */
			d_step { assert(dest[me] == 0); rpend[me] = 0; rc = 0; st = 0; s = 0 }
			goto call
		fi
	fi;
got: skip;
	d_step { assert(dest[me] != 0 && (given & (1 << dest[me]))); rpend[me] = 0; qret = qret || me == Q }
	goto fin;
pipe: skip;
	d_step { assert(closed && dest[me] == 0); rpend[me] = 0; qret = qret || me == Q }
fin: skip;
	d_step {
		nfin++;
		v = 0; vs = 0; n = 0; s = 0; old = 0; m = 0; peer = 0; rc = 0; st = 0;
		ok = 0; cas = 0; tmo = 0
	}
}

proctype Closer()
{
	byte v, n, s, old;
	bit won;

	qret; /* once Q has returned */
	/* weft_chan_close: the ring's mark first */
	closed = 1;
	lock_acquire(); /* weft__mutex_lock: no weft__chan_rv_queue */
	/* rv_close: the CAS to CLOSED */
	atomic {
		v = rv;
		rv = CLOSED;
		if
		:: ISNODE(v) -> wins[WHO(v)]++; assert(wins[WHO(v)] == 1); s = mem[WS(WHO(v))]
		:: else
		fi;
		INV
	}
	if
	:: ISNODE(v) -> finish_alone(WHO(v), NOTIFY, s, old)
	:: else
	fi;
	v = 0;
	/* weft__waitq_notify_all, recvq then sendq */
	do
	:: qlen[v] == 0 ->
		if
		:: v == SEND -> break
		:: else -> v = SEND
		fi
	:: else ->
		n = qs[2 * v] - 1;
		qunlink(n);
		waiter_end(n, NOTIFY, old, won);
		if
		:: won -> waiter_wake(n, old)
		:: else
		fi;
		old = 0; won = 0
	od;
	lock_release(); /* weft__mutex_unlock */
	d_step { nfin++; v = 0; n = 0 }
}

init
{
	atomic {
		run Sender();
		run Receiver(R, 0);
		run Receiver(Q, 1);
		run Closer()
	}
}

ltl live { <> (nfin == 4) }

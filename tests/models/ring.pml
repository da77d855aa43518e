/* tests/models/ring.pml: the ring's slot sleepers and the asymmetric fence
 * pair, under the channel's own waiters, on a store-buffer (TSO) memory.
 *
 * Stands for (line numbers at the commit that added this file):
 *   lib/internal/ring.c  slot_wait 143-164, slot_wake_sleepers 174-178,
 *                        slot_publish 180-197 (the asymmetric branch,
 *                        183-190), push_slow 201-230, push_fast 233-248,
 *                        pop_slow 263-289, pop_fast 291-304
 *   lib/internal/park.c  weft__fence_heavy 49-59 (membarrier), the waiter
 *                        calls as in park.pml
 *   lib/chan.c           notify_other 145-152, weft__chan_notify 130-142,
 *                        chan_block 308-417 (buffered: attempt 331,
 *                        register 373, fence 379, re-check 380-386, wait
 *                        391), leave_registered 289-300; weft_chan_send
 *                        460-475 and weft_chan_recv 477-492 (the quick path
 *                        is chan_block's first attempt without its slow
 *                        loop: it adds no state of its own)
 *
 * The ring has capacity 1 (one slot, one_lap 2: positions 0, 2, 4, ...,
 * stamps pos when free for the push at pos, pos + 1 when full). One
 * producer sends NITEMS elements, one consumer receives them, so each side
 * meets the slot claimed but not yet published by the other (the push
 * that waits on a pop still reading, the pop that waits on a push still
 * writing) and each side may also sleep on the channel's waiter queue
 * (full, empty).
 *
 * Memory: each process has a store buffer (common.pml). Plain stores
 * (the element, the stamp's release store) are buffered; the CASes on
 * tail and head, the faa on the slot's sleeper count and the waiter CASes
 * drain the own buffer; weft__fence_heavy is membarrier, which drains
 * every buffer (asymmetric fences on: weft__asym() true, the case to
 * check; without membarrier the publish is an xchg, a full barrier, which
 * only removes behaviours). The ch->lock critical sections are modelled
 * as single steps that drain the own buffer (the mutex's cmpxchg and
 * xchg are full barriers).
 *
 * The wake of a thread asleep on the stamp also rests on the kernel:
 * FUTEX_WAKE runs a full barrier before it looks for sleepers (common.pml),
 * so the stamp store that slot_publish left in its buffer is visible to
 * the sleeper it wakes. Without that barrier the sleeper could wake, read
 * the old stamp and sleep again for good (the model finds that trace when
 * futex_wake does not drain the waker's buffer).
 *
 * Checked: safety (each element received once, in order, with the value
 * the producer wrote: the release store of the stamp orders the element
 * before it; each waiter wait ended by one party; no process asleep at the
 * end); liveness (LTL, weak fairness): both sides finish.
 *
 * BROKEN: slot_wait without weft__fence_heavy (ring.c line 158). The
 * sleeper's faa drains only its own buffer: the publisher's stamp store
 * can still sit in its buffer while it reads a sleeper count of 0, and the
 * sleeper reads the old stamp and sleeps; nobody wakes it.
 */

#ifndef NITEMS
#define NITEMS 3
#endif
#define TSO
#define NPROC 2 /* 0: producer, 1: consumer */
#define PROD 0
#define CONS 1

#define TAIL 1
#define HEAD 2
#define STAMP 3    /* slot 0's stamp: its low half is the futex word */
#define DATA 4     /* slot 0's element */
#define SLEEPERS 5 /* slot 0's sleeper count */
#define WSP 6      /* the producer's waiter state (chan_block) */
#define WSC 7      /* the consumer's */
#define NMEM 8
#include "common.pml"

#define ONE_LAP 2
/* pos_next for cap 1: the next lap */
#define NEXT(pos) ((pos) + ONE_LAP)

#define SLEEPING 128
#define NOTIFY 1
#define ABORT 3
#define KIND(s) ((s) & 127)
#define LIVE(s) (KIND(s) == 0)

/* the two waiter queues: at most one waiter each (one producer, one
 * consumer), so a queue is its count and the node's linked flag */
byte sendq_count, recvq_count;
bool sendq_linked, recvq_linked;
byte sent, recvd;
byte wins[2];

/* weft__waiter_end: one CAS from a live state */
inline waiter_end(ws, i, val, old, won)
{
	atomic {
		if
		:: LIVE(mem[ws]) ->
			old = mem[ws];
			mem[ws] = val;
			won = 1;
			wins[i]++;
			assert(wins[i] == 1);
			assert(fw[i] != ws || (old & SLEEPING))
		:: else -> won = 0
		fi
	}
}

/* notify_other + weft__chan_notify(q, 1): the count load lock-free, then
 * under the lock unlink and CAS NOTIFY, and after it the wake. The waiter
 * of a queue is the other process. */
inline notify_other(me, count, linked, ws, other, c, old, won)
{
	c = count;
	if
	:: c != 0 ->
		atomic {
			sb_drain(me);
			won = 0;
			if
			:: linked ->
				linked = 0;
				count--;
				waiter_end(ws, other, NOTIFY, old, won)
			:: else
			fi
		}
		if
		:: won && (old & SLEEPING) -> futex_wake(me, ws)
		:: else
		fi
	:: else
	fi;
	c = 0; old = 0; won = 0
}

/* slot_wait(r, pos, stamp, seen) */
inline slot_wait(me, seen, v)
{
	/* the spin polls the stamp: the loop below looks at it as well */
	atomic { sb_drain(me); mem[SLEEPERS]++ }
#ifndef BROKEN
	/* weft__fence_heavy: membarrier(PRIVATE_EXPEDITED) */
	membarrier();
#endif
	do
	:: ld(me, STAMP, v);
		if
		:: v != seen -> break
		:: else -> futex_wait(me, STAMP, seen) /* park_word -> park_futex */
		fi
	od;
	atomic { sb_drain(me); mem[SLEEPERS]-- };
	v = 0
}

/* slot_publish, asymmetric: release store, compiler barrier, then the
 * sleeper count (slot_wake_sleepers) with a plain load */
inline slot_publish(me, val, v)
{
	st(me, STAMP, val);
	ld(me, SLEEPERS, v);
	if
	:: v != 0 -> futex_wake(me, STAMP) /* slot_wake -> weft__unpark_word */
	:: else
	fi;
	v = 0
}

/* weft__ring_push: push_fast is the first round of push_slow's loop */
inline ring_push(me, item, ok, pos, s, h, v, cas)
{
	ld(me, TAIL, pos);
	do
	:: ld(me, STAMP, s);
		if
		:: s == pos ->
			atomic {
				sb_drain(me);
				if
				:: mem[TAIL] == pos -> mem[TAIL] = NEXT(pos); cas = 1
				:: else -> pos = mem[TAIL]; cas = 0
				fi
			}
			if
			:: cas ->
				st(me, DATA, item); /* copy_elem */
				slot_publish(me, pos + 1, v);
				ok = 1;
				break
			:: else /* tail reloaded by the failed CAS */
			fi
		:: s + ONE_LAP == pos + 1 ->
			/* the slot still holds last lap's element */
			ld(me, HEAD, h);
			if
			:: h + ONE_LAP == pos -> ok = 0; break /* full */
			:: else -> slot_wait(me, s, v) /* a pop still reading */
			fi;
			ld(me, TAIL, pos)
		:: else -> ld(me, TAIL, pos) /* another push moved tail on */
		fi
	od;
	pos = 0; s = 0; h = 0; cas = 0
}

/* weft__ring_pop */
inline ring_pop(me, item, ok, pos, s, t, v, cas)
{
	ld(me, HEAD, pos);
	do
	:: ld(me, STAMP, s);
		if
		:: s == pos + 1 ->
			atomic {
				sb_drain(me);
				if
				:: mem[HEAD] == pos -> mem[HEAD] = NEXT(pos); cas = 1
				:: else -> pos = mem[HEAD]; cas = 0
				fi
			}
			if
			:: cas ->
				ld(me, DATA, item); /* copy_elem */
				slot_publish(me, pos + ONE_LAP, v);
				ok = 1;
				break
			:: else
			fi
		:: s == pos ->
			ld(me, TAIL, t);
			if
			:: t == pos -> ok = 0; break /* empty */
			:: else -> slot_wait(me, s, v) /* a push still writing */
			fi;
			ld(me, HEAD, pos)
		:: else -> ld(me, HEAD, pos) /* another pop moved head on */
		fi
	od;
	pos = 0; s = 0; t = 0; cas = 0
}

/* weft__waiter_wait(&w, FOREVER, false): CAS SLEEPING, futex on the state */
inline waiter_wait(me, ws, s, st_, cas)
{
	do
	:: ld(me, ws, s);
		if
		:: !LIVE(s) -> st_ = s & ~SLEEPING; break
		:: else
		fi;
		if
		:: !(s & SLEEPING) ->
			atomic {
				sb_drain(me);
				if
				:: mem[ws] == s -> mem[ws] = s | SLEEPING; s = s | SLEEPING; cas = 1
				:: else -> cas = 0
				fi
			}
		:: else -> cas = 1
		fi;
		if
		:: cas -> futex_wait(me, ws, s)
		:: else
		fi
	od;
	s = 0; cas = 0
}

proctype Producer()
{
	byte item = 1, pos, s, h, v, c, old, st_;
	bit ok, cas, won;
	do
	:: item > NITEMS -> break
	:: else ->
		/* chan_block(SEND): attempt */
	attempt: skip;
		ring_push(PROD, item, ok, pos, s, h, v, cas);
		if
		:: ok ->
			notify_other(PROD, recvq_count, recvq_linked, WSC, CONS, c, old, won);
			goto sent1
		:: else
		fi;
		/* register: w = {WAITING}; lock; waitq_push (faa count); unlock */
		atomic {
			sb_drain(PROD);
			mem[WSP] = 0;
			wins[PROD] = 0;
			sendq_linked = 1;
			sendq_count++
		}
		/* weft__fence_rmw_load: the registration was an RMW */
		ring_push(PROD, item, ok, pos, s, h, v, cas);
		if
		:: ok ->
			notify_other(PROD, recvq_count, recvq_linked, WSC, CONS, c, old, won);
			/* leave_registered: abort, then unregister or pass on */
			atomic {
				sb_drain(PROD);
				if
				:: LIVE(mem[WSP]) -> mem[WSP] = ABORT; st_ = ABORT; wins[PROD]++
				:: else -> st_ = mem[WSP] & ~SLEEPING
				fi
			}
			if
			:: st_ == ABORT ->
				atomic {
					if
					:: sendq_linked -> sendq_linked = 0; sendq_count--
					:: else
					fi
				}
			:: else ->
				/* NOTIFY: pass it on (to our own queue: nobody else
				 * waits there) */
				notify_other(PROD, sendq_count, sendq_linked, WSP, PROD, c, old, won)
			fi;
			goto sent1
		:: else
		fi;
		waiter_wait(PROD, WSP, s, st_, cas);
		assert(KIND(st_) == NOTIFY && !sendq_linked);
		goto attempt;
	sent1: skip;
		d_step { sent++; item++; st_ = 0 }
	od
}

proctype Consumer()
{
	byte want = 1, item, pos, s, t, v, c, old, st_;
	bit ok, cas, won;
	do
	:: want > NITEMS -> break
	:: else ->
	attempt: skip;
		ring_pop(CONS, item, ok, pos, s, t, v, cas);
		if
		:: ok ->
			notify_other(CONS, sendq_count, sendq_linked, WSP, PROD, c, old, won);
			goto got1
		:: else
		fi;
		atomic {
			sb_drain(CONS);
			mem[WSC] = 0;
			wins[CONS] = 0;
			recvq_linked = 1;
			recvq_count++
		}
		ring_pop(CONS, item, ok, pos, s, t, v, cas);
		if
		:: ok ->
			notify_other(CONS, sendq_count, sendq_linked, WSP, PROD, c, old, won);
			atomic {
				sb_drain(CONS);
				if
				:: LIVE(mem[WSC]) -> mem[WSC] = ABORT; st_ = ABORT; wins[CONS]++
				:: else -> st_ = mem[WSC] & ~SLEEPING
				fi
			}
			if
			:: st_ == ABORT ->
				atomic {
					if
					:: recvq_linked -> recvq_linked = 0; recvq_count--
					:: else
					fi
				}
			:: else ->
				notify_other(CONS, recvq_count, recvq_linked, WSC, CONS, c, old, won)
			fi;
			goto got1
		:: else
		fi;
		waiter_wait(CONS, WSC, s, st_, cas);
		assert(KIND(st_) == NOTIFY && !recvq_linked);
		goto attempt;
	got1: skip;
		/* the element the producer wrote, in order, once */
		assert(item == want);
		d_step { recvd++; want++; item = 0; st_ = 0 }
	od
}

init
{
	atomic {
		run Flusher(PROD);
		run Flusher(CONS);
		run Producer();
		run Consumer()
	}
}

ltl live { <> (sent == NITEMS && recvd == NITEMS) }

/* tests/models/wg.pml: the WaitGroup's one state word: counter, WAITERS,
 * generation (waiters sleep on the generation half).
 *
 * Stands for (line numbers at the commit that added this file):
 *   lib/wg.c   weft_wg_add 97-126, weft_wg_done 128-131,
 *              weft_wg_wait_until 138-186 (the loop from 162; the spin
 *              before it only polls the same word)
 *   lib/internal/park.c  weft__park_word 276-281, weft__unpark_word
 *              292-295 (threads: the futex; tasks: sched.pml)
 *   lib/internal/futex.c (common.pml)
 *
 * The 64-bit word is three fields changed together by one CAS: cnt,
 * waiters (bit 63) and the generation, mem[GEN], the futex word. Memory
 * is sequentially consistent: every change of the word is a CAS, and the
 * waiters read it before they CAS or sleep; the kernel compares the
 * generation under its futex lock.
 *
 * Processes: the WaitGroup starts at 2 (weft_wg_add(2) before anyone
 * runs). Worker1 and Worker2 call done. Waiter A waits, then starts a
 * second round (add 1, which Worker3 ends with done) and waits for it.
 * Waiter B waits on round 1; its wait may time out once (then it calls
 * wait again), so it may still be inside wait for round 1 while round 2
 * runs: it must notice that its round is over (the generation moved) and
 * not sleep through round 2.
 *
 * Checked: safety (a wait returns only once the round it started in is
 * over; a round ends once) and end states (nobody asleep at the end);
 * liveness (LTL, weak fairness): every waiter returns and every process
 * finishes.
 *
 * BROKEN: the waiter sleeps without the kernel's re-check of the
 * generation (FUTEX_WAIT's compare of the word with g0, wg.c line 175):
 * a final done between the waiter's WAITERS CAS and its sleep wakes
 * nobody, and the waiter sleeps on after its round ended.
 */

#define NPROC 2 /* sleepers: 0 waiter A, 1 waiter B */
#define GEN 1
#define NMEM 2
#include "common.pml"

byte cnt = 2;    /* bits 32..62 */
bit waiters;     /* bit 63 */
bool ended[4];   /* ghost: round g is over (its final done ran) */
bit round2;      /* ghost: A's add(1) for round 2 happened */
byte nfin;

/* weft_wg_add(wg, delta) by anyone (delta > 0 or -1) */
inline wg_add(delta, lc, lw, lg, n, ok)
{
	atomic { lc = cnt; lw = waiters; lg = mem[GEN] }
	do
	:: n = lc + delta;
		atomic {
			if
			:: cnt == lc && waiters == lw && mem[GEN] == lg ->
				if
				:: n == 0 ->
					/* the round ends: counter 0, WAITERS
					 * cleared, next generation */
					assert(!ended[lg]);
					ended[lg] = 1;
					cnt = 0;
					waiters = 0;
					mem[GEN] = lg + 1
				:: else ->
					cnt = n
				fi;
				ok = 1
			:: else ->
				lc = cnt; lw = waiters; lg = mem[GEN]; ok = 0
			fi
		}
		if
		:: ok -> break
		:: else
		fi
	od;
	if
	:: n == 0 && lw -> futex_wake(0, GEN) /* weft__unpark_word: address only */
	:: else
	fi;
	lc = 0; lw = 0; lg = 0; n = 0; ok = 0
}

#define OVER(c, g, g0) ((c) == 0 || (g) != (g0))

/* weft_wg_wait_until: rc 0, or ETIMEDOUT when allowed */
inline wg_wait(me, allowed, rc, lc, lw, lg, g0, ok, tmo)
{
	rc = 0;
	atomic { lc = cnt; lg = mem[GEN] }
	if
	:: lc == 0 -> goto wdone
	:: else
	fi;
	g0 = lg;
	do
	:: atomic { lc = cnt; lw = waiters; lg = mem[GEN] };
		if
		:: OVER(lc, lg, g0) -> break
		:: else
		fi;
		ok = 1;
		if
		:: !lw ->
			/* full RMW on the word the final done changes */
			atomic {
				if
				:: cnt == lc && waiters == lw && mem[GEN] == lg -> waiters = 1
				:: else -> ok = 0
				fi
			}
		:: else
		fi;
		if
		:: ok ->
			/* weft__park_word(gen_word, g0, deadline) */
#ifndef BROKEN
			futex_wait_timed(me, GEN, g0, allowed, tmo);
#else
			/* no compare: sleeps even if the generation moved */
			tmo = 0;
			fw[me] = GEN;
			if
			:: fw[me] == 0
			:: atomic { allowed && fw[me] != 0 -> fw[me] = 0; tmo = 1 }
			fi;
#endif
			if
			:: tmo ->
				atomic { lc = cnt; lg = mem[GEN] };
				if
				:: OVER(lc, lg, g0) -> break /* ended as we timed out */
				:: else -> rc = ETIMEDOUT; break
				fi
			:: else
			fi
		:: else
		fi
	od;
	/* returning 0: the round we started in is over */
	assert(rc != 0 || ended[g0]);
wdone:
	lc = 0; lw = 0; lg = 0; g0 = 0; ok = 0; tmo = 0
}

proctype Worker(bit second)
{
	byte lc, lg, n;
	bit lw, ok;
	if
	:: second -> round2 /* started by A's add(1) */
	:: else
	fi;
	wg_add(-1, lc, lw, lg, n, ok);
	nfin++
}

proctype WaiterA()
{
	byte rc, lc, lg, g0, n;
	bit lw, ok, tmo;
	wg_wait(0, 0, rc, lc, lw, lg, g0, ok, tmo);
	/* a second round on the same WaitGroup */
	wg_add(1, lc, lw, lg, n, ok);
	round2 = 1;
	wg_wait(0, 0, rc, lc, lw, lg, g0, ok, tmo);
	nfin++
}

proctype WaiterB()
{
	byte rc, lc, lg, g0;
	bit lw, ok, tmo;
	bit tmo_left = 1;
again:
	wg_wait(1, tmo_left, rc, lc, lw, lg, g0, ok, tmo);
	if
	:: rc == ETIMEDOUT -> tmo_left = 0; goto again
	:: else
	fi;
	nfin++
}

init
{
	atomic {
		run Worker(0);
		run Worker(0);
		run Worker(1);
		run WaiterA();
		run WaiterB()
	}
}

ltl live { <> (nfin == 5) }

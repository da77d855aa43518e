/* tests/models/idle.pml: idle carriers and their wake-up, with two
 * carriers, one of which may poll; on a store-buffer (TSO) memory.
 *
 * Stands for (line numbers at the commit that added this file, aa9270c's
 * sched.c):
 *   lib/internal/sched.c global_push 538-549, global_get 638-670,
 *       runq_get 594-607 and runq_steal 616-635 (a local queue is taken
 *       atomically here: its own head/tail protocol is not the subject),
 *       steal_behind 1024-1049 (it steals only what has waited: here it
 *       steals whatever the other carrier has queued, which only helps),
 *       find_work 1051-1076 (no timers), wake_idle 1094-1110, idle
 *       1134-1188, wake_one 1217-1229, monitor_look 1254-1345 (the held
 *       branch: a carrier held by one task with tasks queued behind it
 *       makes the monitor wake a sleeping carrier; the branch for a
 *       waiting global queue needs no carrier asleep, so it is not taken
 *       here), carrier_main's loop 1440-1456, weft__task_go 1603-1642
 *       (from a plain thread: global_push, wake_idle)
 *
 * Processes: carriers 0 and 1, both idle at the start; a plain thread P
 * that starts two tasks with weft_go: HOLD, a task that never parks
 * (it computes, or spins on something: it holds its carrier for good),
 * then WORK; the monitor, as a process whose look may come at any moment
 * and wakes a sleeping carrier for a held one; store buffers' Flushers.
 *
 * Checked: safety (the global queue's count agrees with its list under
 * the lock) and end states (a carrier that sleeps for good while WORK
 * waits in a queue is an invalid end state; the carrier running HOLD is
 * at a valid one); liveness (LTL, weak fairness): WORK runs.
 *
 * This model FAILS on the code above (a real bug; check.sh lists it as a
 * known failure). The shortest counter-example SPIN finds:
 *   1. P pushes HOLD; its wake_idle reads nidle == 0 (both carriers still
 *      spin) and wakes nobody.
 *   2. Carrier 0 registers (sleeping = 1, nidle 1) and its last look
 *      takes HOLD from the global queue. Carrier 1 registers (nidle 2:
 *      idle_now == started, so not the poller), looks (HOLD is gone) and
 *      sleeps with no deadline.
 *   3. Carrier 0 leaves idle: nidle-- (1); its stores sleeping = 0 and
 *      wake = 0 are not visible yet (still ahead of it in program order,
 *      or in its store buffer).
 *   4. P pushes WORK; wake_idle: fence, nidle 1, nspinning 0, npolling 0;
 *      carrier 0's sleeping reads 1 and the CAS of its wake 0 -> 1 wins:
 *      P's one wake-up goes to carrier 0 (futex_wake finds nobody), and
 *      returns.
 *   5. Carrier 0's wake = 0 lands on top of it; it runs HOLD for good.
 *   6. WORK waits in the global queue, carrier 1 sleeps, and the monitor
 *      wakes nobody: its held branch needs tasks in carrier 0's local
 *      queue, its global-queue branch needs no carrier asleep.
 * It is the hang main fixed in 8007d2b ("sched: no lost wake-up of an
 * idle carrier", which describes the same race after a poll time-out):
 * one wake word (a waker's CAS ASLEEP -> WOKEN, the carrier's swap back
 * to AWAKE) and a monitor that wakes a sleeping carrier when the global
 * queue waits. Once that is merged this model must be brought to the new
 * code and must pass (check.sh fails as soon as sched.c no longer has the
 * 'sleeping' flag modelled here).
 *
 * Ahead of that merge, -DAFTER_8007D2B models main's protocol as of
 * 8007d2b (read from main: the wake word, wake_carrier, the fas calls in
 * idle, the monitor's global-queue branch): no error (safety 3,633,651
 * states, liveness 2,979,872). With -DNO_GLOBAL_NET as well (that monitor
 * branch left out) the counter-example is back, shorter: a carrier whose
 * last look took HOLD can still have its ASLEEP taken by P's CAS before
 * it swaps AWAKE, and it returns HOLD without acting on the WOKEN it
 * read, so main relies on the monitor's tick for that case (its comment
 * "its next look finds that work" does not hold when the look before
 * already found a task). -DPASS_ON adds a remedy to that: a carrier whose
 * swap reads WOKEN while it holds a task calls wake_idle() to pass the
 * wake-up on (as leave_registered in chan.c passes a notification on):
 * no error even without the monitor branch (safety 1,492,136 states,
 * liveness 1,101,043).
 */

/* Since 8007d2b and the pass-on that followed it, the model stands for
 * main's code by default (AFTER_8007D2B, PASS_ON: the wake word, the
 * carrier passing on a wake it cannot use) and must pass. Broken
 * variants, each must give a counter-example: BEFORE_8007D2B (the old
 * sleeping flag, the hang above), NO_PASS_ON_NET (main's code without the
 * pass-on and without the monitor's global-queue branch). */
#ifndef BEFORE_8007D2B
#define AFTER_8007D2B
/* the monitor's global-queue branch (a safety net, a tick late) is left
 * out: the wake protocol must be right without it. With it as well the
 * check takes 5.7M states and 2.5 minutes, too long for CI. */
#define NO_GLOBAL_NET
#ifndef NO_PASS_ON_NET
#define PASS_ON
#endif
#endif

#define TSO
#define NPROC 4 /* 0, 1: the carriers; 2: the thread P; 3: the monitor */
#define THR 2
#define MON 3

#define WAKE(c) (1 + (c))    /* c->wake: 1 when woken */
#define SLEEP(c) (3 + (c))   /* c->sleeping */
#define NIDLE 5
#define NSPIN 6
#define NPOLL 7
#define GCOUNT 8
#define GLOCK 9
#define NMEM 10
#include "common.pml"

#define HOLD 1
#define WORK 2

/* the wake word: before 8007d2b 0 or 1 (woken), beside the sleeping
 * flag; after it, AWAKE / ASLEEP / WOKEN and no flag */
#ifndef AFTER_8007D2B
#define AWAKE 0
#define ASLEEP 0 /* the futex sleeps while wake == 0 */
#else
#define AWAKE 0
#define ASLEEP 1
#define WOKEN 2
#endif

byte gq[2];        /* the global queue's list, under GLOCK */
byte glen;
byte lq[2];        /* each carrier's local queue (one task at most here) */
bool holding[2];   /* ghost: carrier c runs HOLD */
bit workdone, pdone;

/* runq_get, then global_get (a share: n / procs + 1, one to run, the
 * rest to the local queue), then runq_get again, then steal_behind */
inline find_work(me, t, v, n)
{
	t = 0;
	atomic { if :: lq[me] != 0 -> t = lq[me]; lq[me] = 0 :: else fi }
	if
	:: t == 0 ->
		ld(me, GCOUNT, v);
		if
		:: v != 0 ->
			atomic { sb_drain(me); mem[GLOCK] == 0 -> mem[GLOCK] = 1 }
			ld(me, GCOUNT, n);
			assert(n == glen);
			if
			:: n != 0 ->
				d_step {
					t = gq[0];
					if
					:: n == 2 -> lq[me] = gq[1]; v = 2 /* take 2/2+1 */
					:: else -> v = 1
					fi;
					gq[0] = 0; gq[1] = 0; glen = 0
				}
				n = n - v;
				st(me, GCOUNT, n);
				st(me, GLOCK, 0)
			:: else -> st(me, GLOCK, 0)
			fi
		:: else
		fi
	:: else
	fi;
	if
	:: t == 0 -> atomic { if :: lq[me] != 0 -> t = lq[me]; lq[me] = 0 :: else fi }
	:: else
	fi;
	if
	:: t == 0 -> atomic { if :: lq[1 - me] != 0 -> t = lq[1 - me]; lq[1 - me] = 0 :: else fi }
	:: else
	fi;
	v = 0; n = 0
}

/* wake_idle(): after the caller's push */
inline wake_idle(me, v, i)
{
	fence(me);
	ld(me, NIDLE, v);
	if
	:: v == 0 -> skip
	:: else ->
		ld(me, NSPIN, v);
		if
		:: v != 0 -> skip
		:: else ->
			ld(me, NPOLL, v);
			if
			:: v != 0 -> skip /* the poller will look */
			:: else ->
				i = 0;
				do
				:: i < 2 ->
#ifndef AFTER_8007D2B
					ld(me, SLEEP(i), v);
					if
					:: v != 0 ->
						atomic {
							sb_drain(me);
							if
							:: mem[WAKE(i)] == 0 -> mem[WAKE(i)] = 1; v = 1
							:: else -> v = 0
							fi
						}
					:: else
					fi;
#else
					/* wake_carrier: CAS ASLEEP -> WOKEN */
					atomic {
						sb_drain(me);
						if
						:: mem[WAKE(i)] == ASLEEP -> mem[WAKE(i)] = WOKEN; v = 1
						:: else -> v = 0
						fi
					}
#endif
					if
					:: v -> futex_wake(me, WAKE(i)); break
					:: else
					fi;
					i++
				:: else -> break
				od
			fi
		fi
	fi;
	v = 0; i = 0
}

proctype Carrier(byte me)
{
	byte t, v, n, idle_now;
	bit poller;
g0:
	find_work(me, t, v, n);
	if
	:: t != 0 -> goto run_t
	:: else
	fi;
	/* idle(c): the spin (one look), then register and look once more */
	atomic { sb_drain(me); mem[NSPIN]++ }
	find_work(me, t, v, n);
	atomic { sb_drain(me); mem[NSPIN]-- }
	if
	:: t != 0 -> goto run_t
	:: else
	fi;
iloop:
#ifndef AFTER_8007D2B
	st(me, SLEEP(me), 1);
#else
	atomic { sb_drain(me); mem[WAKE(me)] = ASLEEP } /* fas: a waker may take us */
#endif
	atomic { sb_drain(me); mem[NIDLE]++; idle_now = mem[NIDLE] }
	find_work(me, t, v, n);
	poller = 0;
	if
	:: t == 0 ->
		if
		:: idle_now < 2 ->
			atomic {
				sb_drain(me);
				if
				:: mem[NPOLL] == 0 -> mem[NPOLL] = 1; poller = 1
				:: else
				fi
			}
		:: else
		fi;
		/* futex_wait(&c->wake, 0, until): a poller's ends at its poll
		 * time; otherwise only a wake ends it */
		atomic { sb_drain(me); if :: mem[WAKE(me)] == ASLEEP -> fw[me] = WAKE(me) :: else fi }
		if
		:: fw[me] == 0
		:: atomic { poller && fw[me] != 0 -> fw[me] = 0 }
		:: atomic { workdone && pdone && fw[me] != 0 -> fw[me] = 0 }; goto stop
		fi;
		if
		:: poller -> st(me, NPOLL, 0)
		:: else
		fi
	:: else
	fi;
	atomic { sb_drain(me); mem[NIDLE]-- }
#ifndef AFTER_8007D2B
	st(me, SLEEP(me), 0);
	st(me, WAKE(me), 0);
#else
	atomic { sb_drain(me); v = mem[WAKE(me)]; mem[WAKE(me)] = AWAKE } /* fas */
#ifdef PASS_ON
	/* (a proposal) woken, but this look found a task already: the
	 * waker's push may wait for another carrier; pass the wake-up on */
	if
	:: v == WOKEN && t != 0 -> wake_idle(me, v, n)
	:: else
	fi;
#endif
	v = 0;
#endif
	if
	:: t != 0 -> goto run_t
	:: else
	fi;
	find_work(me, t, v, n);
	if
	:: t != 0 -> goto run_t
	:: else -> goto iloop
	fi;
run_t:
	if
	:: t == HOLD -> holding[me] = 1; goto held
	:: t == WORK -> workdone = 1; t = 0; goto g0
	fi;
held:
end_held: /* the task never parks: this carrier is its for good */
	skip;
stop:
	skip
}

/* global_push(t, t, 1) */
inline global_push(me, task, v)
{
	atomic { sb_drain(me); mem[GLOCK] == 0 -> mem[GLOCK] = 1 }
	ld(me, GCOUNT, v);
	d_step { gq[glen] = task; glen++ }
	st(me, GCOUNT, v + 1);
	st(me, GLOCK, 0);
	v = 0
}

proctype Thread()
{
	byte v, i;
	/* weft_go(HOLD), weft_go(WORK) from a plain thread */
	global_push(THR, HOLD, v);
	wake_idle(THR, v, i);
	global_push(THR, WORK, v);
	wake_idle(THR, v, i);
	pdone = 1
}

/* monitor_look's held branch: a carrier that one task holds, with tasks
 * queued behind it, makes the monitor wake a sleeping carrier
 * (wake_one), which then takes them (steal_behind) */
proctype Monitor()
{
	byte i;
end:
	do
#ifndef AFTER_8007D2B
	:: atomic {
		((holding[0] && lq[0] != 0) || (holding[1] && lq[1] != 0)) &&
		((mem[SLEEP(0)] && mem[WAKE(0)] == 0) || (mem[SLEEP(1)] && mem[WAKE(1)] == 0)) ->
		if
		:: mem[SLEEP(0)] && mem[WAKE(0)] == 0 -> i = 0
		:: else -> i = 1
		fi;
		mem[WAKE(i)] = 1
	   }
		futex_wake(MON, WAKE(i));
		i = 0
#else
	/* the held branch, and (8007d2b's safety net) a global queue that
	 * waits while a carrier sleeps: wake_one, a CAS ASLEEP -> WOKEN */
	:: atomic {
		(((holding[0] && lq[0] != 0) || (holding[1] && lq[1] != 0))
#ifndef NO_GLOBAL_NET
		 || mem[GCOUNT] != 0
#endif
		) && (mem[WAKE(0)] == ASLEEP || mem[WAKE(1)] == ASLEEP) ->
		if
		:: mem[WAKE(0)] == ASLEEP -> i = 0
		:: else -> i = 1
		fi;
		mem[WAKE(i)] = WOKEN
	   }
		futex_wake(MON, WAKE(i));
		i = 0
#endif
	od
}

init
{
	atomic {
		run Flusher(0);
		run Flusher(1);
		run Flusher(THR);
		run Carrier(0);
		run Carrier(1);
		run Thread();
		run Monitor()
	}
}

ltl live { <> workdone }

/* tests/models/sched.pml: the hand-off between a task and a thread in the
 * M:N runtime: a thread readies a parked task (and wakes an idle carrier
 * for it), a task wakes a sleeping thread; on a store-buffer (TSO) memory.
 *
 * Stands for (line numbers at the commit that added this file):
 *   lib/internal/sched.c global_push 538-549, global_get 638-670,
 *       run_timers 750-770, timer_disarm 772-782, ready_local 786-790,
 *       weft__task_ready 792-803, switch_out 815-832, after_switch
 *       834-854, task_park 858-862, commit_wait 870-909, task_wait
 *       911-930 (through weft__task_wait 932-941), find_work 1051-1076
 *       (one carrier: no stealing), earliest_timer 1078-1089, wake_idle
 *       1094-1110, idle 1134-1188 (one carrier: never the poller; its
 *       spin is one look), carrier_main's loop 1440-1456,
 *       weft__task_entry 1587-1601 (the exit), weft__task_go 1603-1642
 *       (started from a plain thread: the global queue, line 1638)
 *   lib/internal/park.c weft__waiter_wait 466-504 (line 471: a task goes
 *       to weft__task_wait, a thread to the futex loop from 484),
 *       weft__waiter_end (park.h 280-293), weft__waiter_wake 444-455
 *       (PARKED: weft__task_ready; SLEEPING: futex wake),
 *       weft__waiter_abort 524-537
 *   lib/chan.c chan_block line 391 (the call that blocks a task or a
 *       thread alike) and lines 392-393 (abort after a time-out)
 *   lib/task.c weft_go 8-18
 *
 * Processes: one carrier (it runs g0 and the task T: a switch is a jump
 * between the two codes), a plain thread P, a Clock that lets T's
 * deadline pass once, and the store buffers' Flushers. T waits on its
 * waiter wA (with a deadline or without, chosen at the start), gives up
 * after a time-out, then ends P's waiter wB and exits. P ends wA (a send
 * that found T waiting: weft__waiter_end, then weft__waiter_wake, which
 * readies T through the global queue and wakes the carrier if it idles),
 * then waits on wB as a thread (futex). With one carrier, the timer lock,
 * the local run queue and runnext are the carrier's alone: plain
 * variables here.
 *
 * One carrier cannot show a wake-up spent on the wrong carrier: idle.pml
 * models two carriers idling and waking (and finds such a bug).
 *
 * The carrier's idle/wake here is the 'sleeping' flag and 'wake' word of
 * the commit that added this file; 8007d2b replaced them with one wake
 * word (ASLEEP/WOKEN/AWAKE), which idle.pml models. With one carrier the
 * two agree on what this model checks: a wake-up that finds the carrier
 * about to leave idle is either seen by its next look or wakes its sleep
 * (the flag protocol lost a wake-up only by spending it on a second
 * carrier that then ran a task that never parks).
 *
 * Memory: plain stores (gcount and the glock release in global_push,
 * sleeping and wake in idle) are buffered; CASes and faa drain the own
 * buffer; weft__fence_sc drains it.
 *
 * Checked: safety (T is readied exactly once per park, only once its
 * context is saved, and runs only when readied; its wait is ended by one
 * party, the timer included; T received P's notification iff P's CAS won;
 * a sleeping thread is woken by whoever ends its wait) and end states (no
 * carrier asleep while T is runnable, no thread asleep at the end);
 * liveness (LTL, weak fairness): T and P both finish.
 *
 * BROKEN: wake_idle without its store-load fence (sched.c line 1097):
 * P's gcount store can sit in its buffer while it reads nidle as 0; the
 * carrier registers as idle, reads gcount as 0 and sleeps; T stays in the
 * global queue.
 * BROKEN_COMMIT: commit_wait sets PARKED without re-checking that the wait
 * is still live (a blind or instead of the CAS loop at lines 891-900): a
 * NOTIFY that came after task_wait's look and before the commit leaves T
 * parked with nobody to ready it.
 */

#define TSO
#define NPROC 2 /* 0: the carrier (sleeps on WAKE), 1: the thread P */
#define CAR 0
#define THR 1

#define WSA 1     /* T's waiter wA state */
#define WSB 2     /* P's waiter wB state */
#define WAKE 3    /* c->wake: the carrier's futex word */
#define SLEEPC 4  /* c->sleeping */
#define NIDLE 5   /* rt.nidle */
#define NSPIN 6   /* rt.nspinning */
#define GCOUNT 7  /* rt.gcount (the global queue holds gcount tasks: T or none) */
#define GLOCK 8   /* rt.glock */
#define NMEM 9
#include "common.pml"

/* weft__waiter_t.state */
#define SLEEPING 128
#define PARKED 32
#define NOTIFY 1
#define ABORT 3
#define TIMEOUT 4
#define KIND(s) ((s) & 15)
#define LIVE(s) (KIND(s) == 0)
#define FINAL(s) (KIND(s) != 0)

/* ghost: where T is */
#define T_RUNNING 0
#define T_SAVED 1   /* switched out, park not committed yet */
#define T_PARKED 2  /* PARKED set: a waker or the timer will ready it */
#define T_QUEUED 3  /* readied (in a run queue, or about to be) */
#define T_EXITED 4
byte tstate = T_QUEUED;

bit expired;     /* T's deadline has passed */
bit twins;       /* ghost: wA ended (by P or by T's abort) */
bit pwon;        /* P's CAS on wA won */
bit tgot;        /* T's wait ended with P's NOTIFY */
bit pdone;

/* weft__fence_sc; the BROKEN variant leaves wake_idle's out */
inline wake_idle(me, v, z)
{
#ifndef BROKEN
	fence(me);
#endif
	ld(me, NIDLE, v);
	if
	:: v == 0 -> skip
	:: else ->
		ld(me, NSPIN, v);
		if
		:: v != 0 -> skip /* a spinner will look (npolling: never, one carrier) */
		:: else ->
			ld(me, SLEEPC, v);
			if
			:: v != 0 ->
				atomic {
					sb_drain(me);
					if
					:: mem[WAKE] == 0 -> mem[WAKE] = 1; z = 1
					:: else -> z = 0
					fi
				}
				if
				:: z -> futex_wake(me, WAKE)
				:: else
				fi
			:: else
			fi
		fi
	fi;
	v = 0; z = 0
}

/* global_push(t, t, 1) by process me */
inline global_push(me, v)
{
	atomic { sb_drain(me); mem[GLOCK] == 0 -> mem[GLOCK] = 1 } /* spin_lock */
	ld(me, GCOUNT, v);
	st(me, GCOUNT, v + 1);
	st(me, GLOCK, 0); /* spin_unlock: a release store */
	v = 0
}

proctype Clock()
{
	expired = 1
}

proctype Thread()
{
	byte s, old, v, z;
	bit won, cas;
	/* weft__waiter_end(wA, NOTIFY, &old) */
	ld(THR, WSA, s);
	atomic {
		sb_drain(THR);
		if
		:: LIVE(mem[WSA]) ->
			old = mem[WSA];
			mem[WSA] = NOTIFY;
			won = 1;
			assert(!twins);
			twins = 1;
			pwon = 1;
			if
			:: old & PARKED ->
				/* we cleared PARKED: we ready T, exactly once */
				assert(tstate == T_PARKED);
				tstate = T_QUEUED
			:: else
			fi
		:: else -> won = 0
		fi
	}
	/* weft__waiter_wake(wA, old) */
	if
	:: won && (old & PARKED) ->
		/* weft__task_ready(w->task): from a thread, the global queue */
		global_push(THR, v);
		wake_idle(THR, v, z)
	:: won && !(old & PARKED) && (old & SLEEPING) -> assert(0) /* T is a task */
	:: else
	fi;
	/* weft__waiter_wait(wB, FOREVER, ...): a thread sleeps on its futex */
	do
	:: ld(THR, WSB, s);
		if
		:: FINAL(s) -> break
		:: else
		fi;
		cas = 1;
		if
		:: !(s & SLEEPING) ->
			atomic {
				sb_drain(THR);
				if
				:: mem[WSB] == s -> mem[WSB] = s | SLEEPING; s = s | SLEEPING
				:: else -> cas = 0
				fi
			}
		:: else
		fi;
		if
		:: cas -> futex_wait(THR, WSB, s)
		:: else
		fi
	od;
	assert(KIND(s) == NOTIFY);
	pdone = 1
}

proctype Carrier()
{
	/* the carrier's own: local run queue (runnext and tail: one task),
	 * T's timer, where T resumes */
	bit lq, armed, timed, parked, got, tmo, cas;
	byte tpc; /* 0: T not started, 1: T parked in task_wait */
	byte s, old, v, z, n;
	byte t; /* the task a look found (1: T), or 0 */

	/* ---- g0: carrier_main's loop ---- */
g0:
	/* find_work */
	t = 0;
	goto find_work;
fw_back0:
	if
	:: t -> goto to_task
	:: else
	fi;
	/* idle(c): spin (one look), then register and look once more */
	atomic { sb_drain(CAR); mem[NSPIN]++ }
	goto find_work1;
fw_back1:
	atomic { sb_drain(CAR); mem[NSPIN]-- }
	if
	:: t -> goto to_task
	:: else
	fi;
idle_loop:
	st(CAR, SLEEPC, 1);
	atomic { sb_drain(CAR); mem[NIDLE]++ } /* RMW: registered before the last look */
	goto find_work2;
fw_back2:
	if
	:: !t ->
		/* sleep until woken, or until the earliest timer (T's) */
		atomic { sb_drain(CAR); if :: mem[WAKE] == 0 -> fw[CAR] = WAKE :: else fi }
		if
		:: fw[CAR] == 0
		:: atomic { armed && expired && fw[CAR] != 0 -> fw[CAR] = 0 }
		:: atomic { tstate == T_EXITED && pdone && fw[CAR] != 0 -> fw[CAR] = 0 }; goto stop
		fi
	:: else
	fi;
	atomic { sb_drain(CAR); mem[NIDLE]-- }
	st(CAR, SLEEPC, 0);
	st(CAR, WAKE, 0);
	if
	:: t -> goto to_task
	:: else
	fi;
	goto find_work3;
fw_back3:
	if
	:: t -> goto to_task
	:: else -> goto idle_loop
	fi;

	/* ---- find_work(c): local queue, global queue, timers, local again ---- */
find_work: n = 0; goto fwork;
find_work1: n = 1; goto fwork;
find_work2: n = 2; goto fwork;
find_work3: n = 3; goto fwork;
fwork:
	if
	:: lq -> lq = 0; t = 1; goto fw_ret
	:: else
	fi;
	/* global_get */
	ld(CAR, GCOUNT, v);
	if
	:: v != 0 ->
		atomic { sb_drain(CAR); mem[GLOCK] == 0 -> mem[GLOCK] = 1 }
		ld(CAR, GCOUNT, v);
		if
		:: v != 0 ->
			st(CAR, GCOUNT, v - 1);
			st(CAR, GLOCK, 0);
			t = 1;
			goto fw_ret
		:: else -> st(CAR, GLOCK, 0)
		fi
	:: else
	fi;
	/* run_timers(c, v, now) for a due timer */
	if
	:: armed && expired ->
		armed = 0; /* heap_remove, under tlock */
		atomic {
			sb_drain(CAR);
			if
			:: mem[WSA] & PARKED ->
				mem[WSA] = mem[WSA] & ~PARKED;
				assert(tstate == T_PARKED);
				tstate = T_QUEUED;
				z = 1
			:: else -> z = 0
			fi
		}
		if
		:: z -> lq = 1; wake_idle(CAR, v, z) /* ready_local(c, t, false) */
		:: else
		fi
	:: else
	fi;
	if
	:: lq -> lq = 0; t = 1
	:: else
	fi;
fw_ret:
	v = 0; z = 0;
	if
	:: n == 0 -> goto fw_back0
	:: n == 1 -> goto fw_back1
	:: n == 2 -> goto fw_back2
	:: n == 3 -> goto fw_back3
	fi;

	/* ---- switch to T (carrier_main: ctx_switch(&c->g0, &t->ctx)) ---- */
to_task:
	atomic { assert(tstate == T_QUEUED); tstate = T_RUNNING; t = 0; n = 0 }
	if
	:: tpc == 0 -> goto t_start
	:: tpc == 1 -> goto t_resume
	fi;

	/* ---- T: a weft call that blocks (chan_block -> weft__waiter_wait
	 * -> weft__task_wait -> task_wait), then the answer to P ---- */
t_start:
	if
	:: timed = 1
	:: timed = 0
	fi;
	if
	:: timed -> run Clock()
	:: else
	fi;
t_wait: /* task_wait's loop */
	ld(CAR, WSA, s);
	if
	:: FINAL(s) -> goto t_waited
	:: else
	fi;
	if
	:: timed && expired -> s = TIMEOUT; goto t_waited
	:: else
	fi;
	/* w->task = t; task_park(commit_wait): switch_out to g0 (no other
	 * task to switch to: next_quick finds none) */
	atomic { assert(tstate == T_RUNNING); tstate = T_SAVED; tpc = 1 }
	/* after_switch in g0: the pending park's commit_wait */
	if
	:: timed -> armed = 1 /* arm first, under tlock */
	:: else
	fi;
#ifndef BROKEN_COMMIT
	ld(CAR, WSA, s);
	do
	:: atomic {
		sb_drain(CAR);
		if
		:: LIVE(mem[WSA]) ->
			if
			:: mem[WSA] == s ->
				mem[WSA] = s | PARKED;
				tstate = T_PARKED;
				parked = 1
			:: else -> s = mem[WSA]; parked = 0
			fi
		:: else -> parked = 0; cas = 1
		fi
	   };
		if
		:: parked || cas -> break
		:: else
		fi
	od;
	cas = 0;
#else
	atomic {
		sb_drain(CAR);
		mem[WSA] = mem[WSA] | PARKED;
		tstate = T_PARKED;
		parked = 1
	}
#endif
	if
	:: timed && !parked -> armed = 0 /* final already: disarm */
	:: else
	fi;
	if
	:: !parked ->
		/* the wait was over: runnable again at once
		 * (ready_local(c, t, c->current != NULL): the tail) */
		atomic { assert(tstate == T_SAVED); tstate = T_QUEUED };
		lq = 1;
		wake_idle(CAR, v, z)
	:: else
	fi;
	parked = 0;
	s = 0;
	goto g0;
t_resume: /* task_park returned */
	armed = 0; /* timer_disarm */
	goto t_wait;
t_waited:
	if
	:: s == TIMEOUT ->
		/* chan_block 392-393: weft__waiter_abort */
		atomic {
			sb_drain(CAR);
			s = mem[WSA];
			if
			:: LIVE(s) ->
				mem[WSA] = ABORT;
				assert(!twins);
				twins = 1;
				s = ABORT
			:: else -> s = s & ~(SLEEPING | PARKED)
			fi
		}
	:: else
	fi;
	got = (KIND(s) == NOTIFY);
	assert(got == pwon);
	/* T ends P's wait: weft__waiter_end(wB, NOTIFY), then wake */
	atomic {
		sb_drain(CAR);
		old = mem[WSB];
		assert(LIVE(old));
		mem[WSB] = NOTIFY;
		assert(fw[THR] != WSB || (old & SLEEPING))
	}
	if
	:: old & SLEEPING -> futex_wake(CAR, WSB) /* a thread: the futex */
	:: else
	fi;
	/* the task returns: switch_out(PEND_EXIT) to g0 */
	atomic { assert(tstate == T_RUNNING); tstate = T_EXITED; s = 0; old = 0; got = 0 }
	goto g0;
stop:
	skip
}

init
{
	atomic {
		mem[GCOUNT] = 1; /* weft_go from a plain thread: the global queue */
		run Flusher(CAR);
		run Flusher(THR);
		run Carrier();
		run Thread()
	}
}

ltl live { <> (tstate == T_EXITED && pdone) }

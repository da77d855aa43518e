/* tests/models/runnext.pml: a carrier's runnext slot: the owner puts tasks
 * in (a plain store into an empty slot, an xchg over a full one) and takes
 * them out without an RMW when no stealer is there (taking/stealing, an
 * asymmetric fence pair), while stealers on other carriers take the slot's
 * task with a CAS; on a store-buffer (TSO) memory.
 *
 * Stands for (line numbers at the commit that added this file):
 *   lib/internal/sched.c  runq_put 618-636 (next = true: the plain store
 *       626-628, the xchg 630-632, the displaced task to runq_put_tail
 *       634), runnext_take 646-669 (the asymmetric path 651-665, the CAS
 *       666-668), runnext_steal 672-684, runq_get 686-699 (its call of
 *       runnext_take, 688-690; the local queue after it is left out),
 *       steal_behind 1139-1163 (the relaxed load of runnext 1143 and the
 *       call of runnext_steal 1152)
 *   lib/internal/park.c   weft__fence_heavy 50-60 (membarrier); park.h
 *       weft__asym 79-83
 *
 * What is abstracted: tasks are the numbers 1..NTASKS, runnext holds one
 * or 0 (NULL). The local queue is not modelled: a task that runq_put
 * displaces to the tail counts as taken ("to the tail": runq_get and
 * runq_steal take it from there under their own protocol), as does one
 * that runnext_take returns or that a stealer's CAS wins. The owner puts
 * NPUT times, each time a task that is not in the slot (so a task taken
 * may be put again, as a task that ran, parked and was readied by a task
 * of the owner is: a stealer's stale rn may then match again, the ABA
 * case; its CAS then takes the task put again, which is legitimate). The
 * owner's take may come at any point between the puts (a switch, or
 * next_quick), at most once per put, and once more at the end. A stealer
 * tries at any moment until the owner has finished: steal_behind's
 * conditions (the victim has not switched for STEAL_DELAY_NS, rn non-NULL
 * and unchanged nswitch) only make it rarer, a heuristic that safety must
 * not rest on. weft__asym() is chosen once at the start (membarrier
 * registered or not); without it both sides use the CAS, which only an
 * RMW can race. The release/acquire pairs on data (a task's saved context
 * before the store that publishes it, the stealer's CAS and acquire load)
 * are plain program order on TSO and not checked here.
 *
 * Memory: the owner has a store buffer (common.pml, two entries): its
 * plain stores (runnext in runq_put and runnext_take, taking) are
 * buffered and its own loads see them; the xchg and the CAS drain it
 * first. The compiler barrier between the store of taking and the load of
 * stealing is program order only: the load may complete while the store
 * is still buffered, the reordering the stealer's membarrier undoes (it
 * drains every buffer, common.pml). The stealers make no plain stores (faa
 * and CAS only): they have no buffer, their loads read memory. Two buffer
 * entries are enough: after its membarrier a stealer sees the owner's
 * stores exactly, and before it it reads only rn, whose age a deeper
 * buffer could only increase as much as the stealer's own delay between
 * that load and its faa already does (a build of this model on a
 * three-entry buffer, made by hand, found the same: no error, each broken
 * variant caught).
 *
 * Processes: the Owner, NSTEAL Stealers, the owner's Flusher; init
 * chooses weft__asym() and checks the end.
 *
 * Checked: safety (every task put is taken exactly once in all: by the
 * owner's runnext_take, by a stealer's CAS, or displaced to the tail;
 * asserted at each take that the task is in the slot, never taken twice,
 * and at the end that none is still marked in the slot and runnext is
 * NULL: none lost; stealing and taking back at 0) and end states;
 * liveness (LTL, weak fairness): the owner and the stealers finish and the
 * end is checked (nobody waits in this protocol: no loop but the
 * stealers' retries, so this is that each loop ends).
 *
 * NO_HEAVY: runnext_steal without weft__fence_heavy (sched.c line 677):
 * the owner's store of taking = 1 sits in its buffer while it reads
 * stealing at 0 (before the stealer's faa); the stealer reads taking at 0
 * and its CAS wins the task the owner also returns.
 * NO_STEALING_CHECK: runnext_take always takes plainly (as if the load of
 * stealing, line 655, read 0): a stealer that read taking at 0 before the
 * owner's store of 1 wins its CAS between the owner's reload and its
 * store of NULL: the task taken twice.
 * NO_RELOAD: the plain take returns the task its first load saw
 * (line 648) without reloading runnext (line 657): a stealer that took it
 * and left (stealing back at 0) before the owner said taking: taken twice.
 * PLAIN_PUT_ALWAYS: runq_put stores plainly over a full slot too (its
 * load, then a store, then the old task to the tail), instead of the
 * xchg: a stealer's CAS that takes the old task between the owner's load
 * and the moment its store reaches memory (it may sit in the buffer: the
 * stealer's CAS drains only its own) leaves it taken twice, stolen and
 * to the tail.
 *
 * NO_HEAVY fails only with weft__asym() true, the others either way
 * (PLAIN_PUT_ALWAYS's shortest trace has it false).
 */

#define NTASKS 2 /* the Owner's choice below names them */
#ifndef NPUT
#define NPUT 3
#endif
#ifndef NSTEAL
#define NSTEAL 2
#endif
#define TSO
#define NPROC 1 /* 0: the owner (the stealers make no plain stores) */
#define OWN 0

#define RN 1       /* c->runnext */
#define TAKING 2   /* c->taking */
#define STEALING 3 /* c->stealing */
#define NMEM 4
#include "common.pml"

bit asym;          /* weft__asym() */
bit inslot[NTASKS + 1]; /* ghost: put and not taken since */
byte nputs, ntakes; /* ghost: puts made, tasks taken (all ways) */
bit odone;
byte sdone;
bit checked;

/* ghost: task x leaves the slot (returned by a take, won by a stealer's
 * CAS, displaced to the tail): it must be there, once */
inline took(x)
{
	assert(x >= 1 && x <= NTASKS && inslot[x]);
	inslot[x] = 0;
	ntakes++
}

/* runq_put(c, x, true) */
inline runq_put(x, v)
{
	assert(!inslot[x]);
	ld(OWN, RN, v);
#ifndef PLAIN_PUT_ALWAYS
	if
	:: v == 0 ->
		/* a NULL seen stays NULL until we store: release store */
		atomic { st(OWN, RN, x); inslot[x] = 1; nputs++ }
	:: else ->
		/* fasp: the displaced task (or NULL, a stealer took it) */
		atomic {
			sb_drain(OWN);
			v = mem[RN];
			mem[RN] = x;
			inslot[x] = 1;
			nputs++;
			if
			:: v != 0 -> took(v) /* runq_put_tail */
			:: else
			fi
		}
	fi;
#else
	atomic { st(OWN, RN, x); inslot[x] = 1; nputs++ };
	if
	:: v != 0 -> atomic { took(v) } /* runq_put_tail(the old one) */
	:: else
	fi;
#endif
	v = 0
}

/* runnext_take(c) (runq_get's first look): t is what it returns */
inline runnext_take(t, v, fast)
{
	ld(OWN, RN, t);
	fast = 0;
	if
	:: t == 0 -> skip
	:: else ->
		if
		:: asym ->
			st(OWN, TAKING, 1);
			/* __atomic_signal_fence: program order only */
#ifndef NO_STEALING_CHECK
			ld(OWN, STEALING, v);
#else
			v = 0;
#endif
			if
			:: v == 0 ->
#ifndef NO_RELOAD
				ld(OWN, RN, t);
#endif
				st(OWN, RN, 0);
				/* release: runnext's NULL before taking's 0 */
				atomic {
					st(OWN, TAKING, 0);
					if
					:: t != 0 -> took(t)
					:: else
					fi
				}
				fast = 1
			:: else -> st(OWN, TAKING, 0)
			fi
		:: else
		fi;
		if
		:: !fast ->
			/* weft__casp(&c->runnext, &t, NULL) */
			atomic {
				sb_drain(OWN);
				if
				:: mem[RN] == t -> mem[RN] = 0; took(t)
				:: else -> t = 0
				fi
			}
		:: else
		fi
	fi;
	v = 0; fast = 0
}

proctype Owner()
{
	byte x, t, v, calls;
	bit fast;
	do
	:: nputs < NPUT ->
		/* a task not in the slot: new, or one that ran and was
		 * readied again */
		if
		:: !inslot[1] -> x = 1
		:: !inslot[2] -> x = 2
		fi;
		runq_put(x, v);
		x = 0
	:: calls < nputs ->
		calls++;
		runnext_take(t, v, fast);
		t = 0
	:: nputs == NPUT ->
		/* the last look: the slot empty in the owner's view */
		runnext_take(t, v, fast);
		t = 0;
		break
	od;
	odone = 1
}

proctype Stealer()
{
	byte rn, v;
	do
	:: odone -> break
	:: else ->
		/* steal_behind: rn = v->runnext (relaxed) */
		rn = mem[RN];
		if
		:: rn != 0 ->
			if
			:: asym ->
				/* runnext_steal */
				atomic { mem[STEALING]++ }
#ifndef NO_HEAVY
				membarrier();
#endif
				v = mem[TAKING]; /* acquire */
				if
				:: v == 0 ->
					atomic {
						if
						:: mem[RN] == rn -> mem[RN] = 0; took(rn)
						:: else
						fi
					}
				:: else
				fi;
				atomic { mem[STEALING]-- }
			:: else ->
				atomic {
					if
					:: mem[RN] == rn -> mem[RN] = 0; took(rn)
					:: else
					fi
				}
			fi
		:: else
		fi;
		rn = 0; v = 0
	od;
	atomic { sdone++ }
}

init
{
	byte i;
	if
	:: asym = 1
	:: asym = 0
	fi;
	atomic {
		run Flusher(OWN);
		run Owner();
		for (i : 1 .. NSTEAL) {
			run Stealer()
		}
		i = 0
	}
	(odone && sdone == NSTEAL && sb_n[OWN] == 0);
	/* none lost: every put taken once, the slot empty, the counts back */
	assert(nputs == NPUT && ntakes == NPUT);
	for (i : 1 .. NTASKS) {
		assert(!inslot[i])
	}
	assert(mem[RN] == 0 && mem[TAKING] == 0 && mem[STEALING] == 0);
	i = 0;
	checked = 1
}

ltl live { <> checked }

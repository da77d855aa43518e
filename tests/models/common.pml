/* tests/models/common.pml: what every model shares: the futex, and (with
 * TSO defined) store buffers. Included by the models after they define
 * NPROC (processes that may sleep or buffer stores, numbered 0..NPROC-1)
 * and NMEM (words of mem[]; index 0 is unused so that 0 means "no
 * address").
 *
 * Futex (lib/internal/futex.c: weft__futex_wait lines 18-37,
 * weft__futex_wake lines 39-43). The kernel compares the word with the
 * expected value and queues the caller in one step (under its hash-bucket
 * lock); a wake takes the sleepers off the word. fw[p] is the word process
 * p sleeps on (0: awake). Every futex word the models use has one owner
 * that sleeps on it at a time, or is woken with INT_MAX, so waking every
 * sleeper of the word is what FUTEX_WAKE does there. A wake that finds
 * nobody does nothing. Spurious returns (EINTR) are left out: every caller
 * re-checks in a loop, so they only add states. Both calls are full
 * barriers for their caller: FUTEX_WAIT's smp_mb (A) after counting itself
 * a waiter, before it reads the word; FUTEX_WAKE's smp_mb (B) before it
 * looks for waiters (kernel/futex/waitwake.c, "the ordering comment"),
 * so with TSO they drain the caller's store buffer first: a waker's store
 * to the word is visible to any sleeper it wakes.
 *
 * Store buffers (TSO, x86's model): with TSO defined, each process p may
 * hold up to SBDEPTH plain stores of its own, oldest first, not yet in
 * mem[]; its own loads see them (store forwarding), nobody else's do. A
 * Flusher process per buffer moves the oldest to mem[] at any moment. An
 * RMW (lock cmpxchg, xadd, xchg) drains the own buffer first and then acts
 * on mem[] in one step; a full fence (mfence) drains the own buffer;
 * membarrier(2) PRIVATE_EXPEDITED runs a full barrier on every CPU running
 * a thread of the process, so it drains every buffer.
 */

#ifdef TSO
#define SB_DRAIN(p) sb_drain(p)
#else
#define SB_DRAIN(p) skip
#endif

#define EAGAIN 11
#define ETIMEDOUT 110

byte mem[NMEM];
byte fw[NPROC];
byte fscan; /* scratch for the d_steps below; always 0 between steps */

#ifdef TSO
/* two entries: enough for the patterns modelled (data then stamp, a
 * count then a lock word) */
#define SBDEPTH 2
byte sb_n[NPROC];
byte sb_a[NPROC * SBDEPTH];
byte sb_v[NPROC * SBDEPTH];
byte mscan; /* membarrier's scratch; 0 between steps */

/* move p's oldest buffered store to mem[] (inside an atomic step) */
inline sb_flush1(p)
{
	mem[sb_a[p * 2]] = sb_v[p * 2];
	sb_a[p * 2] = sb_a[p * 2 + 1];
	sb_v[p * 2] = sb_v[p * 2 + 1];
	sb_a[p * 2 + 1] = 0;
	sb_v[p * 2 + 1] = 0;
	sb_n[p]--
}

/* drain p's whole buffer (inside an atomic step) */
inline sb_drain(p)
{
	do
	:: sb_n[p] > 0 -> sb_flush1(p)
	:: else -> break
	od
}

/* a plain store (relaxed or release: on TSO both are a mov): buffered.
 * A full buffer first drains its oldest entry, as if the Flusher had just
 * run. */
inline st(p, a, v)
{
	atomic {
		if
		:: sb_n[p] == SBDEPTH -> sb_flush1(p)
		:: else
		fi;
		sb_a[p * 2 + sb_n[p]] = a;
		sb_v[p * 2 + sb_n[p]] = v;
		sb_n[p]++
	}
}

/* a plain load (relaxed or acquire: a mov): the youngest own buffered
 * store to a, else mem[a] */
inline ld(p, a, r)
{
	d_step {
		r = mem[a];
		if
		:: sb_n[p] >= 1 && sb_a[p * 2] == a -> r = sb_v[p * 2]
		:: else
		fi;
		if
		:: sb_n[p] >= 2 && sb_a[p * 2 + 1] == a -> r = sb_v[p * 2 + 1]
		:: else
		fi
	}
}

/* mfence (weft__fence_sc, ck_pr_fence_memory) */
inline fence(p)
{
	atomic { sb_drain(p) }
}

/* membarrier(PRIVATE_EXPEDITED): a full barrier on every thread */
inline membarrier()
{
	d_step {
		mscan = 0;
		do
		:: mscan < NPROC -> sb_drain(mscan); mscan++
		:: else -> break
		od;
		mscan = 0
	}
}

/* Store buffer p drains on its own, one store at a time, at any moment. */
proctype Flusher(byte p)
{
end:
	do
	:: atomic { sb_n[p] > 0 -> sb_flush1(p) }
	od
}
#endif


/* weft__futex_wait(&mem[a], v, FOREVER): sleeps only while mem[a] == v
 * (compared by the kernel under its lock, in the same step as queueing). */
inline futex_wait(p, a, v)
{
	atomic {
		SB_DRAIN(p);
		if
		:: mem[a] == v -> fw[p] = a
		:: else
		fi
	}
	fw[p] == 0 /* asleep here until a wake takes us off the word */
}

/* With a deadline: may return ETIMEDOUT (when allowed) instead of sleeping
 * on; tmo is set to 1 then, else 0. */
inline futex_wait_timed(p, a, v, allowed, tmo)
{
	tmo = 0;
	atomic {
		SB_DRAIN(p);
		if
		:: mem[a] == v -> fw[p] = a
		:: else
		fi
	}
	if
	:: fw[p] == 0
	:: atomic { allowed && fw[p] != 0 -> fw[p] = 0; tmo = 1 }
	fi
}

/* weft__futex_wake(&mem[a], n) by process p: takes every sleeper off
 * word a. */
inline futex_wake(p, a)
{
	d_step {
		SB_DRAIN(p);
		fscan = 0;
		do
		:: fscan < NPROC ->
			if
			:: fw[fscan] == a -> fw[fscan] = 0
			:: else
			fi;
			fscan++
		:: else -> break
		od;
		fscan = 0
	}
}

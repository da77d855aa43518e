/* lib/pool.c: the worker pool. Jobs ({fn, arg, wait bit}) go through one
 * bounded lock-free ring (internal/ring.c); idle workers park on their own
 * waiter word (internal/park.c) on a LIFO stack; blocked submitters park on
 * a FIFO waiter queue.
 *
 * Worker states: RUNNING (a job), SEARCHING (awake, no job, looking: counted
 * in `searching`), PARKED (on the stack, counted in `nparked`). A worker
 * that finishes a job pops the next one directly (RUNNING -> RUNNING, no
 * shared write); only an empty pop makes it SEARCHING. A searcher spins
 * briefly on the ring, then parks. Wake policy (Go's scheduler rule): a
 * submit wakes a parked worker only when nobody searches; the waker counts
 * the woken worker as searching on its behalf, so a burst of submits wakes
 * one worker, not a herd; a searcher that finds a job, stops searching
 * (and was the last searcher) and sees more queued wakes one more.
 *
 * Ordering:
 * - Submit vs. park (Dekker): the submitter's ring push claims its slot
 *   with a CAS on tail (a full barrier); then it loads `searching` and
 *   `nparked`. A worker leaving SEARCHING decrements `searching` (RMW),
 *   registers on the stack (RMW on `nparked`, under plock),
 *   weft__fence_rmw_load(), and re-checks the ring. Either the re-check
 *   sees the job, or the submitter sees the registration (nparked > 0, and
 *   `searching` already 0) and wakes someone.
 * - Every exit from SEARCHING is followed by a look at the ring: parking
 *   re-checks; finding a job checks "more queued and nobody else searches"
 *   after the decrement (RMW, then loads). A submitter that saw searching
 *   > 0 read it before that searcher's decrement, so the searcher's later
 *   look sees the job. So a queued job never sits while every worker
 *   sleeps.
 * - Waking: under plock the waker pops the top worker, CASes its state
 *   from live (WAITING/SLEEPING) to NOTIFY (full RMW: release of the
 *   `searching` increment made on its behalf; pairs with the acquire in
 *   weft__waiter_wait), and futex-wakes it only if it was SLEEPING. A
 *   parked worker that gives up (its re-check found work, or its idle
 *   timeout) wins its own word with weft__waiter_abort (WAITING -> ABORT);
 *   exactly one of the two CASes wins, and the loser backs off.
 * - Full queue: a blocked submitter registers on sendq (RMW on its count
 *   under slock), fences, re-tries the push; a worker's pop ends with an
 *   CAS on head and then loads sendq's count (Dekker, as chan.c).
 * - wait (two generations, serialized by wait_lock): each job is counted
 *   in reserved[b] before its push and in finished[b] when it has run or
 *   been discarded (or its submit failed), b being the low bit of `gen`
 *   read at submit time (carried in the job; a job's own submits take
 *   its bit instead, so its bit cannot drain before its children are
 *   done: they are reserved before it finishes). A waiter first waits for
 *   bit gen+1 (older jobs) to drain, flips gen, then waits for the old
 *   bit: new submits go to the other bit, so it cannot be starved. Drained
 *   means finished[b] == reserved[b], reading finished first (both only
 *   grow and finished <= reserved, so equality holds at the later read).
 *   Finisher: faa finished[b] (RMW), fence, load the waitq count; waiter:
 *   register (RMW), fence, re-check (Dekker).
 * - Shutdown: the ring's closed mark (an RMW on tail) linearizes against
 *   every push: a job either got in (then it is run or discarded: workers
 *   pop until "closed and empty") or its submit gets -EPIPE. `canceled` is
 *   stored before the close; workers load it after each pop.
 * - Counters for stats are relaxed: each is exact on its own.
 *
 * Deaths (a job that ends its thread: pthread_exit, or pthread_cancel
 * acted on at a cancellation point; see internal/death.h): the job being
 * run is described by a `struct running` (the worker's own, or a heap one
 * for a job run inline) with its phase (in fn, in on_error, in on_discard)
 * and is under a death note. If the thread (or, for a task worker, the
 * carrier) ends inside it, the note's died() runs on that dying thread
 * after glibc's unwinding: the job is accounted for as if it had returned
 * -EOWNERDEAD (failed, on_error, finish: wait and shutdown see it), then a
 * replacement worker starts in the same slot (same index and name; a
 * thread replacement joins its predecessor first), under life_lock as any
 * start. A shutdown from outside the pool holds life_lock while it joins
 * the workers, the dying one included, and sets `joining` before it takes
 * the lock: a dying worker that sees it stops trying for the lock and
 * gives up its slot (nworkers - 1, SLOT_EXITED: joined by that shutdown).
 * If every worker died so during a DRAIN, jobs are left queued: the
 * shutdown, once it has joined them, starts workers again to run those
 * (join_all), rather than run them on its caller's thread. A fixed pool
 * below its size (a replacement could not start) starts one at the next
 * submit that finds no worker idle (maybe_grow). The worker was RUNNING
 * (counted neither searching nor parked): weft's code between jobs has no
 * cancellation point, so it can only die inside the user's code.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal/ctx_impl.h"
#include "internal/death.h"
#include "internal/monitor.h"
#include "internal/park.h"
#include "internal/ring.h"
#include "internal/sched.h"
#include "internal/sys.h"
#include <weft/ctx.h>
#include <weft/pool.h>
#include <weft/sync.h>
#include <weft/task.h>

#define DEFAULT_QUEUE 1024
#define DEFAULT_IDLE_NS 1000000000LL

struct job {
	weft_job_fn fn;
	void *arg;
	uintptr_t bit; /* wait generation bit (see Ordering) */
};

enum { SLOT_EMPTY = 0, SLOT_LIVE = 1, SLOT_EXITED = 2 };

/* Where a job being run is (see Deaths). */
enum { PH_IDLE, PH_FN, PH_ON_ERROR, PH_DISCARD };

/* A job being run, as its death note sees it. Written only by the thread
 * or task that runs it (plain fields: the note runs on that thread). */
struct running {
	weft__death_note_t note; /* died: worker_died (the worker's), inline_died */
	struct job j;
	uint32_t phase;          /* PH_* */
	weft_pool_t *p;
	struct worker *wk;       /* the worker whose top-level job it is, or NULL */
};

struct worker {
	WEFT__ALIGNED weft__waiter_t w; /* NOTIFY: woken from the stack */
	uint32_t seq;           /* jobs begun + ended: odd while running one */
	weft__sleep_note_t note; /* its sleeps inside weft (park.h) */
	uint32_t ktid;          /* its kernel thread id (for the monitor) */
	uint32_t state;         /* SLOT_*: LIVE until the thread is done */
	struct worker *next;    /* parked stack link (plock) */
	bool linked;            /* on the parked stack (plock) */
	bool has_thread;        /* tid needs a join (life_lock) */
	pthread_t tid;          /* (life_lock) */
	weft_wg_t exited;       /* a task worker: done as its last act */
	struct pool_self *self; /* its "which pool am I in" (run() reads it: no lookup per job) */
	unsigned index;
	weft_pool_t *p;
	struct running cur;     /* its job (popped straight into cur.j); its note */
	pthread_t dead;         /* a predecessor that died: joined by this thread */
	bool has_dead;          /* (set before the thread starts, then its own) */
};

struct weft_pool {
	/* the queue: its own padded head and tail lines */
	struct weft__ring ring;

	/* read-mostly: configuration, and flags read on every job */
	WEFT__ALIGNED unsigned min_workers, max_workers;
	bool dynamic;
	size_t cap, grow_above;
	int64_t idle_ns;
	void (*on_error)(weft_job_fn, void *, int, void *);
	void (*on_discard)(weft_job_fn, void *, void *);
	void *user;
	char name[16];
	bool sched_batch;     /* workers run SCHED_BATCH */
	bool tasks;           /* workers are tasks */
	struct worker *slots; /* max_workers of them */
	uint32_t canceled;    /* shutdown(CANCEL): discard what is popped */
	uint32_t closing;     /* a shutdown has started */
	uint32_t gen;         /* wait generation; its low bit tags jobs */
	weft__waitq_t waitq;  /* wait callers (count read by finishers) */

	/* submitters: reservations for wait */
	WEFT__ALIGNED uint64_t reserved[2];

	/* workers: finished jobs for wait */
	WEFT__ALIGNED uint64_t finished[2];

	/* the wake policy, read by every submit */
	WEFT__ALIGNED uint32_t searching; /* awake workers looking for work */
	uint32_t nparked;                 /* workers on the parked stack */
	uint32_t nworkers;                /* worker threads alive (counted) */
	uint32_t ncpu;                    /* awake workers wanted (cores) */
	uint32_t mon_parked;              /* the monitor sleeps until kicked */

	/* the monitor (see Monitor) */
	weft__watch_t watch;              /* in monitor.h's list */
	bool has_mon;                     /* watched (set before workers start) */
	int64_t mon_tick_ns;              /* the monitor's (its lock) */
	struct mon_slot *mon_slots;       /* one per slot (the monitor's) */

	/* slow paths */
	WEFT__ALIGNED weft__mutex_t plock; /* the parked stack */
	struct worker *parked;             /* LIFO: most recently parked on top */
	weft__mutex_t slock;               /* sendq */
	weft__waitq_t sendq;               /* submitters blocked on a full queue */
	weft__mutex_t wlock;               /* waitq */
	weft__mutex_t wait_lock;           /* one wait flips gen at a time */
	weft__mutex_t life_lock;           /* starting and joining threads */
	uint32_t joined;                   /* all threads joined (life_lock) */
	uint32_t joining;                  /* a shutdown joins (see Deaths) */

	/* cold statistics (relaxed) */
	WEFT__ALIGNED uint64_t refused, failed, discarded, blocked;
	uint64_t futex_wakes, started, retired, died;
};

/* The pool whose job this worker runs (NULL outside workers), and the
 * wait bit of the job it runs: a job's submits inherit it, so a wait
 * covers the jobs a job submitted before it finished. A thread worker
 * keeps it in a thread-local; a task worker in its task slot (a task moves
 * between carrier threads, and a carrier runs other tasks). */
struct pool_self {
	weft_pool_t *pool;
	unsigned bit;
};
static _Thread_local struct pool_self tl_self;

static struct pool_self *pool_self(void)
{
	static struct pool_self none; /* a task that is no worker: never written */
	void **slot = weft__task_slot();
	if (!slot)
		return &tl_self;
	return *slot ? *slot : &none;
}

/* ---- wait accounting ---- */

static void wake_waiters(weft_pool_t *p)
{
	weft__mutex_lock(&p->wlock);
	weft__waitq_notify_all(&p->waitq);
	weft__mutex_unlock(&p->wlock);
}

static inline bool drained(weft_pool_t *p, unsigned b)
{
	/* finished first: see Ordering (wait) */
	uint64_t f = weft__ld64_acq(&p->finished[b]);
	return f == weft__ld64_acq(&p->reserved[b]);
}

/* A reserved job has run, been discarded, or its submit failed. */
static inline void finish(weft_pool_t *p, unsigned b)
{
	/* full RMW: the job's effects before the count; pairs with the
	 * waiter's acquire load in drained() */
	weft__faa64(&p->finished[b], 1);
	/* store-load: our count before the waiter count (Dekker with the
	 * waiter's registration) */
	weft__fence_rmw_load();
	if (__builtin_expect(weft__waitq_count(&p->waitq) != 0, 0) && drained(p, b))
		wake_waiters(p);
}

/* ---- waking workers ---- */

/* Wake the most recently parked worker, unless someone already searches
 * (the monitor: even then). The woken worker is counted as searching by
 * us. Returns whether one was woken. */
static bool wake_one(weft_pool_t *p, bool even_if_searching)
{
	struct worker *wk;
	uint32_t s = 0;
	bool won = false;

	weft__mutex_lock(&p->plock);
	/* a searcher (maybe one woken by a racing submit) will see the job */
	if (!even_if_searching && weft__ld32_rlx(&p->searching) != 0) {
		weft__mutex_unlock(&p->plock);
		return false;
	}
	while ((wk = p->parked) != NULL) {
		p->parked = wk->next;
		wk->next = NULL;
		wk->linked = false;
		weft__faa32(&p->nparked, (uint32_t)-1);
		/* the worker's WAITING reset before it registered (acquire);
		 * searching is ours to count (the RMW; pairs with the
		 * acquire in weft__waiter_wait / abort) */
		won = weft__waiter_end(&wk->w, WEFT__W_NOTIFY, &s);
		if (won) {
			weft__faa32(&p->searching, 1);
			break;
		}
		/* it aborted (re-check or idle timeout): it leaves alone */
	}
	weft__mutex_unlock(&p->plock);
	if (won && (s & WEFT__W_ASLEEP)) {
		if (s & WEFT__W_SLEEPING)
			weft__faa64(&p->futex_wakes, 1);
		/* the slot outlives the pool's threads: a late wake is at
		 * worst spurious. Yielding: a submitter often waits next for
		 * this very worker (wait, a full queue), and the worker may be
		 * queued on our core (park.h) */
		weft__waiter_wake_yielding(&wk->w, s);
	}
	return won;
}

/* Shutdown: wake every parked worker (they find the ring closed). */
static void wake_all(weft_pool_t *p)
{
	struct worker *wk;

	weft__mutex_lock(&p->plock);
	while ((wk = p->parked) != NULL) {
		p->parked = wk->next;
		wk->next = NULL;
		wk->linked = false;
		weft__faa32(&p->nparked, (uint32_t)-1);
		uint32_t s;
		/* as wake_one */
		if (weft__waiter_end(&wk->w, WEFT__W_NOTIFY, &s)) {
			weft__faa32(&p->searching, 1);
			if (s & WEFT__W_SLEEPING)
				weft__faa64(&p->futex_wakes, 1);
			weft__waiter_wake(&wk->w, s);
		}
	}
	weft__mutex_unlock(&p->plock);
}

/* ---- the monitor ----
 *
 * Keep about one awake worker per core (Go's GOMAXPROCS): a submit (or a
 * searcher that found work) wakes a parked worker only while fewer workers
 * than cores are awake. More would only queue for the same cores and, when
 * the jobs block on something downstream (a full results channel), each
 * would take a job, block, and be woken again by the consumer: a context
 * switch per job. Beyond that number the pool's watch decides, run by the
 * process's one monitor thread (internal/monitor.h, which also watches the
 * task runtime's carriers; as Go's sysmon retakes a P from a thread stuck
 * in a syscall): every tick it
 * looks at the workers running a job and wakes another worker for each one
 * that is stuck outside weft (no new job for MON_STUCK_NS and off the CPU
 * for most of it: I/O, a sleep, a lock) or asleep inside weft for longer
 * than MON_WEFT_NS (a job waiting for another job still queued: the
 * delay is bounded, not a deadlock). Jobs that compute count as running:
 * more workers would not make them faster.
 *
 * The watch goes idle (mon_parked) while there is nothing to decide (no
 * queued job, or a searcher awake, or nobody parked) after lingering about
 * 20 ms; a capped wake kicks it. Its ticks start at MON_TICK_MIN_NS and
 * double while it finds nothing to do (to MON_TICK_MAX_NS). Pools with no
 * more workers than cores are not watched (the cap never binds).
 *
 * Ordering (kick vs. park, Dekker): the monitor sets mon_parked with an
 * RMW, fences, then re-checks mon_needed; a kicker made its change (the
 * push's CAS on tail, or the searcher's RMW on searching) before loading
 * mon_parked. Either the monitor sees the work or the kicker sees it
 * parked and wakes it. Its per-worker notes (mon_slots) are its own.
 */
#define MON_TICK_MIN_NS 50000LL
#define MON_TICK_MAX_NS 10000000LL
#define MON_STUCK_NS 50000LL
#define MON_WEFT_NS 1000000LL
#define MON_PROBES 16 /* /proc reads per tick at most */

/* The monitor's notes on one worker slot: the job it saw running, and how
 * the worker spent the time between two looks (monitor.h's probe: on a
 * CPU, asleep inside weft by its sleep note, or blocked outside weft). */
struct mon_slot {
	uint32_t seen;       /* the worker's seq at our last look */
	int64_t since;       /* when we first saw that seq */
	weft__probe_t probe;
};

static inline bool mon_needed(weft_pool_t *p)
{
	return weft__ld32_rlx(&p->searching) == 0 && weft__ld32_rlx(&p->nparked) != 0 &&
	       !weft__ld32_rlx(&p->closing) && weft__ring_can_pop(&p->ring);
}

static void mon_kick(weft_pool_t *p)
{
	/* after the caller's full barrier: see Monitor, Ordering */
	uint32_t one = 1;
	if (weft__ld32_rlx(&p->mon_parked) == 1 && weft__cas32(&p->mon_parked, &one, 0))
		weft__monitor_kick(&p->watch);
}

/* The wake policy (see Monitor). */
static void wake_capped(weft_pool_t *p)
{
	int awake = (int)weft__ld32_rlx(&p->nworkers) - (int)weft__ld32_rlx(&p->nparked);
	if (awake < (int)p->ncpu || !p->has_mon)
		wake_one(p, false);
	else
		mon_kick(p);
}

/* One look at the workers running a job; wakes parked workers for the
 * stuck ones. Returns how many it woke. */
static unsigned mon_look(weft_pool_t *p, struct mon_slot *ms, int64_t now)
{
	unsigned healthy = 0, stuck = 0, probes = 0;

	for (unsigned i = 0; i < p->max_workers && healthy < p->ncpu; i++) {
		struct worker *wk = &p->slots[i];
		struct mon_slot *m = &ms[i];
		/* relaxed: hints (a wrong guess costs a wake or a tick) */
		uint32_t tid = weft__ld32_rlx(&wk->ktid);
		if (weft__ld32_rlx(&wk->state) != SLOT_LIVE || tid == 0)
			continue;
		uint32_t seq = weft__ld32_rlx(&wk->seq);
		if (seq != m->seen) {
			m->seen = seq;
			m->since = now;
		}
		if (!(seq & 1))
			continue; /* not in a job */
		if (weft__ld32_rlx(&wk->note.asleep)) {
			/* weft will wake it, most likely soon (backpressure);
			 * too long, and it may wait for a queued job */
			if (now - m->since >= MON_WEFT_NS)
				stuck++;
			else
				healthy++;
			continue;
		}
		if (probes >= MON_PROBES)
			break; /* enough for one tick: decide on what we saw */
		probes++;
		switch (weft__probe_look(&m->probe, tid, weft__ld64_rlx(&wk->note.slept_ns), now)) {
		case WEFT__PROBE_OFF_CPU:
			stuck++;
			break;
		case WEFT__PROBE_UNKNOWN:
			/* no schedstat: the same job for a while is stuck */
			if (now - m->since >= MON_STUCK_NS)
				stuck++;
			else
				healthy++;
			break;
		default: /* on a CPU; or first reading: judged next time */
			healthy++;
		}
	}
	if (healthy >= p->ncpu)
		return 0;
	/* a worker for each stuck one, at least enough to fill the cores:
	 * doubling, so a pool of sleepers ramps up in a few ticks */
	unsigned want = p->ncpu - healthy, woke = 0;
	if (stuck > want)
		want = stuck;
	while (woke < want && mon_needed(p) && wake_one(p, true))
		woke++;
	return woke;
}


/* The pool's watch (monitor.h): a look per tick while there is something
 * to decide, ticks backing off while there is not, then idle until
 * mon_kick. */
static int64_t mon_watch(weft__watch_t *w, int64_t now)
{
	weft_pool_t *p = (weft_pool_t *)((char *)w - offsetof(weft_pool_t, watch));
	/* acquire: shutdown's store (it then removes the watch) */
	if (weft__ld32_acq(&p->closing))
		return WEFT__WATCH_IDLE;
	bool needed = mon_needed(p);
	/* nothing to decide for a whole backed-off tick: idle. Until then
	 * linger (a busy pool's "nothing to decide" seldom lasts, and a kick
	 * costs its kicker a futex wake) */
	if (!needed && p->mon_tick_ns >= MON_TICK_MAX_NS) {
		p->mon_tick_ns = MON_TICK_MIN_NS;
		/* full RMW, fence, re-check: Dekker with mon_kick */
		weft__fas32(&p->mon_parked, 1);
		weft__fence_rmw_load();
		if (!mon_needed(p))
			return WEFT__WATCH_IDLE; /* mon_kick clears mon_parked */
		weft__st32_rlx(&p->mon_parked, 0);
		needed = true;
	}
	if (needed && mon_look(p, p->mon_slots, now))
		p->mon_tick_ns = MON_TICK_MIN_NS;
	else if ((p->mon_tick_ns *= 2) > MON_TICK_MAX_NS)
		p->mon_tick_ns = MON_TICK_MAX_NS;
	return p->mon_tick_ns;
}

/* Shutdown (closing is set): no look runs once this returns. */
static void mon_stop(weft_pool_t *p)
{
	if (!p->has_mon)
		return;
	weft__monitor_remove(&p->watch);
	for (unsigned i = 0; i < p->max_workers; i++)
		weft__probe_close(&p->mon_slots[i].probe);
}

/* After a pop: room for one more, so wake a blocked submitter if any. */
static inline void notify_submitter(weft_pool_t *p)
{
	/* the pop's CAS on head was the full barrier: pairs with the submitter's
	 * registration RMW + fence */
	if (__builtin_expect(weft__waitq_count(&p->sendq) != 0, 0)) {
		uint32_t notified, old;
		weft__mutex_lock(&p->slock);
		weft__waiter_t *w = weft__waitq_notify_one(&p->sendq, &notified, &old);
		weft__mutex_unlock(&p->slock);
		if (w)
			weft__waiter_wake(w, old);
	}
}

static inline int pop(weft_pool_t *p, struct job *j)
{
	int rc = weft__ring_pop(&p->ring, j);
	if (rc == 0)
		notify_submitter(p);
	return rc;
}


/* ---- running jobs ---- */

static void discard(weft_pool_t *p, const struct job *j)
{
	if (p->on_discard)
		p->on_discard(j->fn, j->arg, p->user);
	weft__faa64(&p->discarded, 1);
	finish(p, (unsigned)j->bit);
}

/* Run (or discard) r->j; r->phase says where it is, for its death note
 * (see Deaths). wk: the worker whose top-level job it is, or NULL. */
static void run(weft_pool_t *p, struct worker *wk, struct running *r)
{
	const struct job *j = &r->j;
	/* relaxed: set before the close (see shutdown); a job popped after
	 * a CANCEL may still run if we read it just before: it is counted
	 * as run, never both */
	if (__builtin_expect(weft__ld32_rlx(&p->canceled) != 0, 0)) {
		r->phase = PH_DISCARD;
		discard(p, j);
		r->phase = PH_IDLE;
		return;
	}
	/* relaxed: read by stats and the monitor (one writer: us) */
	if (wk)
		weft__st32_rlx(&wk->seq, wk->seq + 1);
	struct pool_self *me = wk ? wk->self : pool_self();
	unsigned saved = me->bit; /* (nested when run inline) */
	me->bit = (unsigned)j->bit;
	r->phase = PH_FN;
	int rc = j->fn(j->arg);
	me->bit = saved;
	if (__builtin_expect(rc != 0, 0)) {
		weft__faa64(&p->failed, 1);
		if (p->on_error) {
			r->phase = PH_ON_ERROR;
			p->on_error(j->fn, j->arg, rc, p->user);
		}
	}
	r->phase = PH_IDLE;
	if (wk)
		weft__st32_rlx(&wk->seq, wk->seq + 1);
	finish(p, (unsigned)j->bit);
}

/* ---- deaths (see Deaths) ---- */

/* r's job will never return: account for it as run() would have. */
static void account_died(struct running *r)
{
	weft_pool_t *p = r->p;
	uint32_t ph = r->phase;
	r->phase = PH_IDLE;
	switch (ph) {
	case PH_FN:
		weft__faa64(&p->failed, 1);
		if (p->on_error)
			p->on_error(r->j.fn, r->j.arg, -EOWNERDEAD, p->user);
		break;
	case PH_ON_ERROR:
		break; /* counted failed, and on_error had its rc */
	case PH_DISCARD:
		weft__faa64(&p->discarded, 1); /* on_discard had it */
		break;
	default:
		return; /* between jobs: nothing to account for */
	}
	struct worker *wk = r->wk;
	/* relaxed: as in run (we are its thread, or the carrier it died on) */
	if (wk && (weft__ld32_rlx(&wk->seq) & 1))
		weft__st32_rlx(&wk->seq, wk->seq + 1);
	finish(p, (unsigned)r->j.bit);
}

/* A job run inline (not a worker's top-level one) ended its thread. */
static void inline_died(weft__death_note_t *n)
{
	struct running *r = (struct running *)((char *)n - offsetof(struct running, note));
	account_died(r);
	free(r);
}

/* Run one job on the calling thread, outside the worker loop (a job's
 * submit to its full pool): under a note of its own. 0, or -ENOMEM (no
 * memory for the note: nothing ran). */
static int run_inline(weft_pool_t *p, const struct job *j)
{
	struct running *r = malloc(sizeof *r);
	if (!r)
		return -ENOMEM;
	*r = (struct running){.note = {.died = inline_died}, .j = *j, .p = p};
	weft__death_push(&r->note);
	run(p, NULL, r);
	weft__death_pop(&r->note);
	free(r);
	return 0;
}

/* Run (or discard) whatever is queued, on the calling thread (no worker
 * left: shutdown, or none could start), each job under a note. */
static void run_leftovers(weft_pool_t *p)
{
	struct running *r = malloc(sizeof *r), local;
	bool noted = r != NULL;
	if (!noted)
		r = &local; /* no memory for a note: a death here goes unnoticed */
	*r = (struct running){.note = {.died = inline_died}, .p = p};
	if (noted)
		weft__death_push(&r->note);
	while (pop(p, &r->j) == 0)
		run(p, NULL, r);
	if (noted) {
		weft__death_pop(&r->note);
		free(r);
	}
}

/* ---- workers ---- */

/* The thread's name: the pool's prefix, cut to fit, then suffix. */
static void set_name(weft_pool_t *p, const char *suffix)
{
	char buf[16];
	size_t n = strlen(suffix), room = 15 - n, len = strlen(p->name);
	if (len > room)
		len = room;
	memcpy(buf, p->name, len);
	memcpy(buf + len, suffix, n + 1);
	pthread_setname_np(pthread_self(), buf);
}

/* Spin on the ring while searching; true if a job may be there. */
static bool spin_for_work(weft_pool_t *p)
{
	weft__spin_t s;
	if (!weft__spin_start(&s))
		return false;
	do {
		/* polls the slot at head only: the producer's tail line
		 * stays with the producer */
		if (weft__ring_pop_ready(&p->ring)) {
			weft__spin_end(&s);
			return true;
		}
	} while (weft__spin_again(&s));
	return false;
}

enum { PARK_WORK, PARK_RETIRE };

/* Called while counted neither as searching nor as parked. Returns
 * PARK_WORK counted as searching again, or PARK_RETIRE uncounted from
 * nworkers. */
static int park(weft_pool_t *p, struct worker *wk)
{
	for (;;) {
		/* nobody touches our word while we are off the stack */
		weft__st32_rlx(&wk->w.state, WEFT__W_WAITING);
		weft__mutex_lock(&p->plock);
		wk->next = p->parked;
		p->parked = wk;
		wk->linked = true;
		/* RMW: the registration half of the Dekker pair */
		weft__faa32(&p->nparked, 1);
		weft__mutex_unlock(&p->plock);
		/* store-load: registration before the re-check; pairs with
		 * the submitter's push (CAS on tail) then loads */
		weft__fence_rmw_load();

		uint32_t st;
		if (weft__ring_can_pop(&p->ring)) {
			st = weft__waiter_abort(&wk->w); /* work, or closed */
		} else {
			int64_t dl = WEFT_FOREVER;
			if (p->dynamic && weft__ld32_rlx(&p->nworkers) > p->min_workers)
				dl = weft_deadline(p->idle_ns);
			st = weft__waiter_wait(&wk->w, dl, true);
			if (st == WEFT__W_TIMEOUT)
				st = weft__waiter_abort(&wk->w);
		}
		if (WEFT__W_KIND(st) == WEFT__W_NOTIFY)
			return PARK_WORK; /* the waker counted us searching */

		/* ABORT: we won our own word; leave the stack */
		weft__mutex_lock(&p->plock);
		if (wk->linked) {
			struct worker **pp = &p->parked;
			while (*pp != wk)
				pp = &(*pp)->next;
			*pp = wk->next;
			wk->next = NULL;
			wk->linked = false;
			weft__faa32(&p->nparked, (uint32_t)-1);
		}
		weft__mutex_unlock(&p->plock);

		if (!weft__ring_can_pop(&p->ring) && p->dynamic) {
			/* idle timeout: retire if above min */
			uint32_t n = weft__ld32_rlx(&p->nworkers);
			while (n > p->min_workers) {
				/* full RMW: Dekker with a submitter's
				 * "no worker" check (see maybe_grow) */
				if (weft__cas32(&p->nworkers, &n, n - 1)) {
					weft__fence_rmw_load();
					if (!weft__ring_can_pop(&p->ring))
						return PARK_RETIRE;
					/* a job came in: stay if allowed */
					uint32_t m = weft__ld32_rlx(&p->nworkers);
					while (m < p->max_workers) {
						if (weft__cas32(&p->nworkers, &m, m + 1))
							goto stay;
					}
					/* others exist (started after us): they
					 * search and see the job */
					return PARK_RETIRE;
				}
			}
			if (weft__ring_is_closed(&p->ring) == false &&
			    !weft__ring_can_pop(&p->ring))
				continue; /* at min: park again, forever */
		}
	stay:
		/* full RMW: searching again (we pop after this) */
		weft__faa32(&p->searching, 1);
		return PARK_WORK;
	}
}

/* A worker's life, thread or task: search, run, park, until shutdown or
 * retirement. */
static void worker_loop(struct worker *wk)
{
	weft_pool_t *p = wk->p;
	struct job *j = &wk->cur.j; /* where its death note finds it */
	int rc;

	/* full RMW: we start searching (we pop after this) */
	weft__faa32(&p->searching, 1);
	for (;;) {
		/* SEARCHING */
		rc = pop(p, j);
		if (rc == 0) {
			/* full RMW, then the look at the ring: see Ordering */
			uint32_t left = weft__faa32(&p->searching, (uint32_t)-1) - 1;
			if (left == 0 && weft__ld32_rlx(&p->nparked) != 0 &&
			    weft__ring_can_pop(&p->ring))
				wake_capped(p);
			/* RUNNING: take the next job directly */
			do
				run(p, wk, &wk->cur);
			while ((rc = pop(p, j)) == 0);
			if (rc == -EPIPE)
				break;
			/* full RMW: searching; the pop above is retried */
			weft__faa32(&p->searching, 1);
			continue;
		}
		if (rc == -EPIPE) {
			weft__faa32(&p->searching, (uint32_t)-1);
			break;
		}
		if (spin_for_work(p))
			continue;
		/* full RMW: we stop searching; park re-checks the ring */
		weft__faa32(&p->searching, (uint32_t)-1);
		if (park(p, wk) == PARK_RETIRE) {
			weft__faa64(&p->retired, 1);
			/* release: our last access to the slot before a
			 * spawner reuses it (after joining us) */
			weft__st32_rel(&wk->state, SLOT_EXITED);
			return;
		}
	}
	weft__faa32(&p->nworkers, (uint32_t)-1);
	weft__st32_rel(&wk->state, SLOT_EXITED);
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	weft_pool_t *p = wk->p;

	if (wk->has_dead) {
		/* a replacement: its predecessor has left the pool's code */
		weft__join_nocancel(wk->dead);
		wk->has_dead = false;
	}
	tl_self.pool = p;
	wk->self = &tl_self;
	weft__tl_sleep_note = &wk->note;
	weft__st32_rlx(&wk->ktid, (uint32_t)gettid());
	char idx[12];
	snprintf(idx, sizeof idx, "-%u", wk->index);
	set_name(p, idx);
	if (p->sched_batch) {
		/* this thread only; a refusal leaves the normal policy */
		struct sched_param sp = {.sched_priority = 0};
		(void)sched_setscheduler(0, SCHED_BATCH, &sp);
	}
	weft__death_push(&wk->cur.note);
	worker_loop(wk);
	weft__death_pop(&wk->cur.note);
	return NULL;
}

static void worker_task(void *arg)
{
	struct worker *wk = arg;
	struct pool_self me = {wk->p, 0};

	*weft__task_slot() = &me;
	wk->self = &me;
	weft__death_push(&wk->cur.note);
	worker_loop(wk);
	weft__death_pop(&wk->cur.note);
	*weft__task_slot() = NULL;
	/* our last touch of the slot: whoever joins us may reuse it */
	weft_wg_done(&wk->exited);
}

/* Wait for a worker that has been told to exit (life_lock held). */
static void join_worker(weft_pool_t *p, struct worker *wk)
{
	if (p->tasks)
		weft_wg_wait(&wk->exited);
	else
		/* (a replacement joined its predecessor before its loop) */
		weft__join_nocancel(wk->tid);
	wk->has_thread = false;
}

static void worker_died(weft__death_note_t *n);

/* Start wk's thread or task (life_lock held; nworkers already counts it).
 * replace: wk's last thread or task died in a job (see Deaths): a thread
 * replacement joins it; a task replacement takes over its `exited`. */
static int launch(weft_pool_t *p, struct worker *wk, bool replace)
{
	weft__st32_rlx(&wk->state, SLOT_LIVE);
	weft__st32_rlx(&wk->seq, 0);
	weft__st32_rlx(&wk->note.asleep, 0);
	weft__st32_rlx(&wk->ktid, 0);
	wk->linked = false;
	wk->next = NULL;
	wk->cur = (struct running){.note = {.died = worker_died}, .p = p, .wk = wk};
	int e;
	if (p->tasks) {
		char name[32];
		snprintf(name, sizeof name, "%s-%u", p->name, wk->index);
		weft_task_opts_t o = {.name = name};
		if (!replace) {
			weft_wg_init(&wk->exited);
			weft_wg_add(&wk->exited, 1);
		}
		e = -weft_go_opts(worker_task, wk, &o);
	} else {
		pthread_t old = wk->tid;
		wk->dead = old;
		wk->has_dead = replace;
		e = weft__sys_thread_create(&wk->tid, NULL, worker_main, wk);
		if (e) {
			wk->tid = old;
			wk->has_dead = false;
		}
	}
	if (e)
		return e == ENOMEM ? -ENOMEM : -EAGAIN;
	wk->has_thread = true;
	weft__faa64(&p->started, 1);
	return 0;
}

/* life_lock held; nworkers already counts the new worker. */
static int start_worker(weft_pool_t *p)
{
	struct worker *wk = NULL;
	for (unsigned i = 0; i < p->max_workers; i++) {
		/* acquire: pairs with the exiting worker's release */
		uint32_t st = weft__ld32_acq(&p->slots[i].state);
		if (st != SLOT_LIVE) {
			wk = &p->slots[i];
			break;
		}
	}
	if (!wk)
		return -EAGAIN; /* cannot happen: nworkers <= max */
	if (wk->has_thread)
		join_worker(p, wk);
	int rc = launch(p, wk, false);
	if (rc)
		weft__st32_rlx(&wk->state, SLOT_EMPTY);
	return rc;
}

/* wk's thread or task ended inside a job (see Deaths): on the dying thread
 * (a thread worker) or the dying carrier (a task worker), after glibc's
 * unwinding. Accounts for the job, then keeps the pool's size. */
static void worker_died(weft__death_note_t *n)
{
	struct worker *wk = (struct worker *)((char *)n - offsetof(struct worker, cur.note));
	weft_pool_t *p = wk->p;
	bool tasks = p->tasks;

	weft__faa64(&p->died, 1);
	account_died(&wk->cur);
	/* a shutdown holds life_lock while it joins the workers, us among
	 * them: never wait for the lock then (see Deaths). A yield loop, not
	 * the parking layer: it watches two words (the lock and joining),
	 * runs once per death, and on a task worker's dying carrier there is
	 * no task left to park (weft__mutex_lock_unless, a futex sleep in
	 * 1 ms slices, hung stress_pool: left for the next session) */
	while (!weft__mutex_trylock(&p->life_lock)) {
		/* acquire: pairs with shutdown's release, before it locks */
		if (weft__ld32_acq(&p->joining))
			goto leave;
		sched_yield();
	}
	int rc = -EPIPE;
	if (!p->joined)
		rc = launch(p, wk, true);
	weft__mutex_unlock(&p->life_lock);
	if (rc == 0)
		return; /* the replacement counts in nworkers for us */
leave:
	/* as a worker that exits: joined by shutdown, or its slot reused by a
	 * later start (maybe_grow), which joins it first */
	weft__faa32(&p->nworkers, (uint32_t)-1);
	/* release: our last access to the slot before a spawner reuses it
	 * (a thread: the joiner waits for our end; a task worker's joiner
	 * waits for the done below, our last touch of the pool) */
	weft__st32_rel(&wk->state, SLOT_EXITED);
	if (tasks)
		weft_wg_done(&wk->exited);
}

/* Dynamic sizing: called by a submit that found nobody searching and
 * nobody parked, or found the queue full. */
static void maybe_grow(weft_pool_t *p)
{
	uint32_t n = weft__ld32_rlx(&p->nworkers);
	if (n >= p->max_workers)
		return;
	/* (below min: a replacement for a worker that died could not start) */
	if (n != 0 && n >= p->min_workers && weft__ring_len(&p->ring) <= p->grow_above)
		return;
	if (!weft__mutex_trylock(&p->life_lock))
		return; /* someone is starting one (or shutting down) */
	int rc = -EAGAIN;
	if (!weft__ld32_rlx(&p->closing) && !p->joined) {
		n = weft__ld32_rlx(&p->nworkers);
		/* full RMW: Dekker with a retiring worker's CAS (it re-checks
		 * the ring after; we checked it before) */
		while (n < p->max_workers && !weft__cas32(&p->nworkers, &n, n + 1))
			;
		if (n < p->max_workers) {
			rc = start_worker(p);
			if (rc)
				weft__faa32(&p->nworkers, (uint32_t)-1);
		}
	}
	weft__mutex_unlock(&p->life_lock);
	if (rc && weft__ld32_rlx(&p->nworkers) == 0)
		/* no worker and none can start: run the queue here rather
		 * than strand it */
		run_leftovers(p);
}

/* ---- submit ---- */

/* A job is in the ring: see whether a worker must be woken. */
static inline void after_push(weft_pool_t *p)
{
	/* the push's CAS on tail was the full barrier: these loads pair with a
	 * parking worker's registration (see Ordering) */
	if (weft__ld32_rlx(&p->searching) != 0)
		return;
	if (weft__ld32_rlx(&p->nparked) != 0)
		wake_capped(p);
	else if (p->dynamic || weft__ld32_rlx(&p->nworkers) < p->min_workers)
		maybe_grow(p); /* (a fixed pool: a worker died, not replaced) */
}

static bool spin_for_room(weft_pool_t *p)
{
	weft__spin_t s;
	if (!weft__spin_start(&s))
		return false;
	do {
		if (weft__ring_push_ready(&p->ring)) {
			weft__spin_end(&s);
			return true;
		}
	} while (weft__spin_again(&s));
	return false;
}

/* Leave sendq after registering without sleeping. */
static void leave_sendq(weft_pool_t *p, weft__wnode_t *node)
{
	uint32_t st = weft__waiter_abort(node->w);
	if (st == WEFT__W_ABORT || WEFT__W_KIND(st) == WEFT__W_CANCEL) {
		weft__mutex_lock(&p->slock);
		weft__waitq_unlink(&p->sendq, node);
		weft__mutex_unlock(&p->slock);
	} else if (WEFT__W_KIND(st) == WEFT__W_NOTIFY) {
		/* a notification we will not use: pass it on */
		notify_submitter(p);
	}
}

/* The queue was full: block (as chan.c's chan_block for a send). */
static int push_block(weft_pool_t *p, const struct job *j, int64_t deadline, weft_ctx_t *ctx)
{
	bool may_spin = true;
	int64_t wait_until = deadline;
	int rc;

	if (ctx) {
		int64_t cd = weft__ctx_deadline(ctx);
		if (cd < wait_until)
			wait_until = cd;
	}
	for (;;) {
		rc = weft__ring_push(&p->ring, j);
		if (rc != -EAGAIN)
			return rc;
		if (wait_until != WEFT_FOREVER && weft_now() >= wait_until) {
			int e = ctx ? weft_ctx_err(ctx) : 0;
			if (e)
				return e;
			if (weft_now() >= deadline)
				return -ETIMEDOUT;
		}
		if (may_spin) {
			may_spin = false;
			if (spin_for_room(p))
				continue;
		}
		weft__waiter_t w = {WEFT__W_WAITING};
		weft__wnode_t node = {.w = &w};
		weft__wnode_t cnode = {.w = &w};
		weft__mutex_lock(&p->slock);
		weft__waitq_push(&p->sendq, &node);
		weft__mutex_unlock(&p->slock);
		if (ctx && (rc = weft__ctx_watch(ctx, &cnode)) != 0) {
			leave_sendq(p, &node);
			return rc;
		}
		/* store-load: registration before the re-check; pairs with
		 * the pop's CAS on head then count load (notify_submitter) */
		weft__fence_rmw_load();
		rc = weft__ring_push(&p->ring, j);
		if (rc != -EAGAIN) {
			if (ctx)
				weft__ctx_unwatch(ctx, &cnode);
			leave_sendq(p, &node);
			return rc;
		}
		uint32_t st = weft__waiter_wait(&w, wait_until, false);
		if (st == WEFT__W_TIMEOUT)
			st = weft__waiter_abort(&w);
		if (ctx)
			weft__ctx_unwatch(ctx, &cnode);
		switch (WEFT__W_KIND(st)) {
		case WEFT__W_CANCEL:
			weft__mutex_lock(&p->slock);
			weft__waitq_unlink(&p->sendq, &node);
			weft__mutex_unlock(&p->slock);
			return weft_ctx_err(ctx);
		case WEFT__W_ABORT:
			weft__mutex_lock(&p->slock);
			weft__waitq_unlink(&p->sendq, &node);
			weft__mutex_unlock(&p->slock);
			if (ctx && (rc = weft_ctx_err(ctx)) != 0)
				return rc;
			if (weft_now() < deadline)
				continue;
			rc = weft__ring_push(&p->ring, j);
			return rc == -EAGAIN ? -ETIMEDOUT : rc;
		default:
			/* NOTIFY: room was made (or the ring closed); the
			 * notifier unlinked us */
			may_spin = true;
			break;
		}
	}
}

enum { SUB_BLOCK, SUB_TRY, SUB_UNTIL, SUB_CTX };

static int submit(weft_pool_t *p, weft_job_fn fn, void *arg, int mode, int64_t deadline,
		  weft_ctx_t *ctx)
{
	if (!p || !fn || (mode == SUB_CTX && !ctx))
		return -EINVAL;
	if (ctx) {
		int e = weft_ctx_err(ctx);
		if (e)
			return e;
	}
	/* relaxed: any generation is right (see Ordering: wait); a job's
	 * own submits take its bit, which cannot drain before it ends */
	struct pool_self *me = pool_self();
	unsigned b = me->pool == p ? me->bit : weft__ld32_rlx(&p->gen) & 1;
	struct job j = {fn, arg, b};
	/* full RMW: counted before it can run, so a wait that sees it
	 * finished has also seen it reserved */
	weft__faa64(&p->reserved[b], 1);
	int rc = weft__ring_push(&p->ring, &j);
	if (__builtin_expect(rc == 0, 1)) {
		after_push(p);
		return 0;
	}
	/* a full queue is the plainest sign that the workers are too few:
	 * grow now, not only on the next successful push (with every worker
	 * busy and the queue full, that push might never come) */
	if (rc == -EAGAIN && (p->dynamic || weft__ld32_rlx(&p->nworkers) < p->min_workers))
		maybe_grow(p);
	if (rc == -EAGAIN && mode != SUB_TRY) {
		if (pool_self()->pool == p) {
			/* a job of ours, queue full: run it here (the
			 * queue cannot drain while we wait if every worker
			 * does the same) */
			rc = run_inline(p, &j);
			if (rc == 0)
				return 0;
			goto refused; /* -ENOMEM: nothing ran */
		}
		weft__faa64(&p->blocked, 1);
		rc = push_block(p, &j, deadline, ctx);
		if (rc == 0) {
			after_push(p);
			return 0;
		}
	}
refused:
	weft__faa64(&p->refused, 1);
	finish(p, b);
	return rc;
}

int weft_pool_submit(weft_pool_t *p, weft_job_fn fn, void *arg)
{
	return submit(p, fn, arg, SUB_BLOCK, WEFT_FOREVER, NULL);
}

int weft_pool_try_submit(weft_pool_t *p, weft_job_fn fn, void *arg)
{
	return submit(p, fn, arg, SUB_TRY, WEFT_FOREVER, NULL);
}

int weft_pool_submit_until(weft_pool_t *p, weft_job_fn fn, void *arg, int64_t deadline)
{
	return submit(p, fn, arg, SUB_UNTIL, deadline, NULL);
}

int weft_pool_submit_ctx(weft_pool_t *p, weft_job_fn fn, void *arg, weft_ctx_t *ctx)
{
	return submit(p, fn, arg, SUB_CTX, WEFT_FOREVER, ctx);
}

/* ---- wait ---- */

static void wait_bit(weft_pool_t *p, unsigned b)
{
	while (!drained(p, b)) {
		weft__waiter_t w = {WEFT__W_WAITING};
		weft__wnode_t node = {.w = &w};
		weft__mutex_lock(&p->wlock);
		weft__waitq_push(&p->waitq, &node);
		weft__mutex_unlock(&p->wlock);
		/* store-load: registration before the re-check; pairs with
		 * finish()'s faa + fence + count load */
		weft__fence_rmw_load();
		if (drained(p, b)) {
			if (weft__waiter_abort(&w) == WEFT__W_ABORT) {
				weft__mutex_lock(&p->wlock);
				weft__waitq_unlink(&p->waitq, &node);
				weft__mutex_unlock(&p->wlock);
			}
			return;
		}
		/* NOTIFY: notify_all unlinked us */
		weft__waiter_wait(&w, WEFT_FOREVER, true);
	}
}

int weft_pool_wait(weft_pool_t *p)
{
	if (!p)
		return -EINVAL;
	if (pool_self()->pool == p)
		return -EDEADLK;
	weft__mutex_lock(&p->wait_lock);
	uint32_t g = weft__ld32_rlx(&p->gen);
	wait_bit(p, (g + 1) & 1); /* older jobs (and late submits) */
	/* full RMW: later submits take the other bit */
	weft__faa32(&p->gen, 1);
	wait_bit(p, g & 1);
	weft__mutex_unlock(&p->wait_lock);
	return 0;
}

/* ---- create / shutdown / destroy ---- */

static unsigned ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* life_lock held: join every thread started (they have been told to
 * exit). Workers that died during the shutdown may have left jobs queued
 * (see Deaths): for a DRAIN, start workers again to run them, and join
 * those. The caller then runs or discards whatever is still left with no
 * worker alive (run_leftovers), after unlocking: a job there may end the
 * thread. */
static void join_all(weft_pool_t *p)
{
	while (!p->joined) {
		for (unsigned i = 0; i < p->max_workers; i++) {
			struct worker *wk = &p->slots[i];
			if (wk->has_thread) {
				join_worker(p, wk);
				weft__st32_rlx(&wk->state, SLOT_EMPTY);
			}
		}
		p->joined = 1;
		/* relaxed: set before the close, which we follow */
		if (weft__ld32_rlx(&p->canceled) || weft__ring_len(&p->ring) == 0)
			break;
		unsigned want = p->min_workers ? p->min_workers : 1;
		for (unsigned k = 0; k < want; k++) {
			weft__faa32(&p->nworkers, 1);
			if (start_worker(p) != 0) {
				weft__faa32(&p->nworkers, (uint32_t)-1);
				break;
			}
			p->joined = 0; /* join again */
		}
	}
}

int weft_pool_shutdown(weft_pool_t *p, int how)
{
	if (!p || (how != WEFT_POOL_DRAIN && how != WEFT_POOL_CANCEL))
		return -EINVAL;
	if (how == WEFT_POOL_CANCEL)
		/* before the close: a worker that pops after it sees it */
		weft__st32_rel(&p->canceled, 1);
	uint32_t zero = 0;
	/* full RMW: the first shutdown wins */
	bool first = weft__cas32(&p->closing, &zero, 1);
	if (first) {
		/* RMW on tail: every later push fails (-EPIPE) */
		weft__ring_close(&p->ring);
		weft__mutex_lock(&p->slock);
		weft__waitq_notify_all(&p->sendq); /* blocked submitters: -EPIPE */
		weft__mutex_unlock(&p->slock);
		/* a worker registering after this re-checks and sees the
		 * closed mark (the plock orders it after the close) */
		wake_all(p);
		mon_stop(p);
	}
	if (pool_self()->pool == p)
		return first ? 0 : -EPIPE; /* cannot join ourselves: destroy does */
	/* release: before we take the lock (see Deaths) */
	weft__st32_rel(&p->joining, 1);
	weft__mutex_lock(&p->life_lock);
	join_all(p);
	weft__mutex_unlock(&p->life_lock);
	run_leftovers(p); /* discards if canceled */
	return first ? 0 : -EPIPE;
}

void weft_pool_destroy(weft_pool_t *p)
{
	if (!p)
		return;
	weft_pool_shutdown(p, WEFT_POOL_DRAIN);
	weft__ring_fini(&p->ring);
	free(p->mon_slots);
	free(p->slots);
	free(p);
}

int weft_pool_create(weft_pool_t **out, const weft_pool_opts_t *opts)
{
	weft_pool_opts_t o = {0};
	if (!out)
		return -EINVAL;
	if (opts)
		o = *opts;
	else
		o.workers = ncpus();
	unsigned min = o.workers, max = o.workers;
	bool dynamic = false;
	if (o.workers == 0) {
		if (o.max_workers == 0 || o.min_workers > o.max_workers)
			return -EINVAL;
		min = o.min_workers;
		max = o.max_workers;
		dynamic = true;
	} else if (o.min_workers || o.max_workers) {
		return -EINVAL;
	}
	if (max > WEFT_POOL_MAX_WORKERS || o.idle_timeout_ns < 0)
		return -EINVAL;
	size_t cap = o.queue_capacity ? o.queue_capacity : DEFAULT_QUEUE;
	if (cap > WEFT_POOL_MAX_QUEUE)
		return -ENOMEM;

	size_t size = (sizeof(weft_pool_t) + WEFT__PAD - 1) & ~(size_t)(WEFT__PAD - 1);
	weft_pool_t *p = weft__sys_aligned_alloc(WEFT__PAD, size);
	if (!p)
		return -ENOMEM;
	memset(p, 0, sizeof *p);
	p->slots = weft__sys_aligned_alloc(WEFT__PAD, sizeof(struct worker) * max);
	if (!p->slots || weft__ring_init(&p->ring, cap, sizeof(struct job)) != 0) {
		free(p->slots);
		free(p);
		return -ENOMEM;
	}
	memset(p->slots, 0, sizeof(struct worker) * max);
	for (unsigned i = 0; i < max; i++) {
		p->slots[i].index = i;
		p->slots[i].p = p;
	}
	p->min_workers = min;
	p->max_workers = max;
	p->dynamic = dynamic;
	p->cap = cap;
	p->grow_above = cap / 4;
	p->ncpu = ncpus();
	p->idle_ns = o.idle_timeout_ns ? o.idle_timeout_ns : DEFAULT_IDLE_NS;
	p->on_error = o.on_error;
	p->on_discard = o.on_discard;
	p->user = o.user;
	p->sched_batch = o.sched_batch != 0;
	p->tasks = o.tasks != 0;
	if (p->tasks)
		p->ncpu = max; /* tasks: no awake cap, no monitor thread */
	snprintf(p->name, sizeof p->name, "%s", o.name ? o.name : "weft-pool");

	int rc = 0;
	weft__mutex_lock(&p->life_lock);
	/* the monitor first: has_mon is then set before any worker reads it
	 * (they start after, pthread_create ordering it) */
	if (max > p->ncpu && !p->tasks) {
		p->mon_slots = weft__sys_calloc(max, sizeof *p->mon_slots);
		p->mon_tick_ns = MON_TICK_MIN_NS;
		p->watch.look = mon_watch;
		for (unsigned i = 0; p->mon_slots && i < max; i++)
			weft__probe_init(&p->mon_slots[i].probe);
		rc = p->mon_slots ? weft__monitor_add(&p->watch) : -ENOMEM;
		p->has_mon = rc == 0;
	}
	for (unsigned i = 0; i < min && rc == 0; i++) {
		weft__faa32(&p->nworkers, 1);
		rc = start_worker(p);
		if (rc)
			weft__faa32(&p->nworkers, (uint32_t)-1);
	}
	weft__mutex_unlock(&p->life_lock);
	if (rc) {
		weft_pool_destroy(p);
		return rc;
	}
	*out = p;
	return 0;
}

int weft_pool_stats(weft_pool_t *p, weft_pool_stats_t *out)
{
	if (!p || !out)
		return -EINVAL;
	*out = (weft_pool_stats_t){0};
	uint64_t refused = weft__ld64_rlx(&p->refused);
	uint64_t discarded = weft__ld64_rlx(&p->discarded);
	uint64_t fin = weft__ld64_rlx(&p->finished[0]) + weft__ld64_rlx(&p->finished[1]);
	uint64_t res = weft__ld64_rlx(&p->reserved[0]) + weft__ld64_rlx(&p->reserved[1]);
	out->submitted = res >= refused ? res - refused : 0;
	out->completed = fin >= refused + discarded ? fin - refused - discarded : 0;
	out->failed = weft__ld64_rlx(&p->failed);
	out->discarded = discarded;
	out->submits_blocked = weft__ld64_rlx(&p->blocked);
	out->futex_wakes = weft__ld64_rlx(&p->futex_wakes);
	out->workers_started = weft__ld64_rlx(&p->started);
	out->workers_retired = weft__ld64_rlx(&p->retired);
	out->workers_died = weft__ld64_rlx(&p->died);
	out->queued = weft__ring_len(&p->ring);
	unsigned running = 0;
	for (unsigned i = 0; i < p->max_workers; i++)
		running += weft__ld32_rlx(&p->slots[i].seq) & 1;
	out->running = running;
	out->parked = weft__ld32_rlx(&p->nparked);
	out->workers = weft__ld32_rlx(&p->nworkers);
	return 0;
}

/* lib/internal/park.c: bounded spinning, the slow-path futex mutex, and
 * waiters with exactly-once wake-up.
 *
 * Ordering:
 * - A waiter's state word is the only thing a waker and its owner share
 *   about the wait. Wakers change it with a CAS from WAITING (or SLEEPING);
 *   exactly one wins. The owner reads it with acquire, pairing with the
 *   waker's RMW, so whatever the waker wrote before (a handed-off element)
 *   is visible once the owner sees the final value.
 * - The owner sets SLEEPING with a CAS before futex_wait(state, SLEEPING):
 *   a waker that replaces SLEEPING knows it must futex_wake; one that
 *   replaces WAITING knows the owner will see the change before sleeping
 *   (futex_wait fails on the changed word). No syscall when nobody sleeps.
 * - Queue counts change with RMWs under the queue lock; publishers read
 *   them without the lock after their own RMW (Dekker, see park.h).
 */
#include "internal/park.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal/death.h"
#include "internal/futex.h"
#include "internal/sched.h"
#include <weft/common.h>

/* ---- asymmetric fences (see park.h) ---- */

uint32_t weft__asym_fences;

__attribute__((constructor)) static void asym_fences_init(void)
{
#if !(defined(WEFT_TSAN_ATOMICS) && WEFT_TSAN_ATOMICS)
	if (getenv("WEFT_NO_MEMBARRIER"))
		return;
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		/* relaxed: before main; threads created later see it */
		weft__st32_rlx(&weft__asym_fences, 1);
#endif
}

void weft__fence_heavy(void)
{
	if (!weft__asym()) {
		weft__fence_rmw_load();
		return;
	}
	/* does not fail once registered; EINTR retried all the same */
	while (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0 &&
	       errno == EINTR)
		;
}

/* ---- spinning ---- */

#define SPIN_NS_DEFAULT 4000
#define RUNNABLE_REFRESH_NS 10000000 /* re-read /proc/loadavg every 10 ms */

static uint64_t spin_ns_cfg = UINT64_MAX; /* UINT64_MAX: not read yet */
static uint32_t ncpu_cached;
static uint32_t spinners;          /* threads in a spin phase now */
static uint64_t runnable_stamp;    /* when runnable_cached was read */
static uint32_t runnable_cached;   /* runnable threads, system-wide */

static uint32_t ncpu(void)
{
	uint32_t n = weft__ld32_rlx(&ncpu_cached);
	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (uint32_t)c : 1;
		weft__st32_rlx(&ncpu_cached, n);
	}
	return n;
}

static int64_t spin_ns(void)
{
	uint64_t v = weft__ld64_rlx(&spin_ns_cfg);
	if (v == UINT64_MAX) {
		const char *env = getenv("WEFT_SPIN_NS");
		long long e = env ? atoll(env) : -1;
		uint64_t want = e < 0 ? SPIN_NS_DEFAULT
				      : e > WEFT_SPIN_NS_MAX ? WEFT_SPIN_NS_MAX : (uint64_t)e;
		uint64_t unset = UINT64_MAX;
		/* first reader (or weft_set_spin_ns) wins; relaxed is enough:
		 * a tunable, not a publication */
		weft__cas64(&spin_ns_cfg, &unset, want);
		v = weft__ld64_rlx(&spin_ns_cfg);
	}
	return (int64_t)v;
}

int64_t weft_set_spin_ns(int64_t ns)
{
	int64_t old = spin_ns();
	/* bounded: a spin's end is now + ns and its adaptive ceiling ns x
	 * SPIN_GROW_MAX (fuzz_opts: INT64_MAX overflowed both) */
	if (ns > WEFT_SPIN_NS_MAX)
		ns = WEFT_SPIN_NS_MAX;
	if (ns >= 0)
		weft__st64_rlx(&spin_ns_cfg, (uint64_t)ns);
	return old;
}

/* procs_running from /proc/loadavg ("0.1 0.2 0.3 R/T pid"). Called by a
 * thread about to sleep, with its waiter registered: open, read and close
 * are cancellation points, so cancellation is off around them (death.h). */
static uint32_t read_runnable(void)
{
	char buf[128];
	int old = weft__nocancel_begin();
	int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;
	if (fd >= 0) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
	}
	weft__nocancel_end(old);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	int field = 0;
	for (char *p = buf; *p; p++) {
		if (*p == ' ' && ++field == 3)
			return (uint32_t)strtoul(p + 1, NULL, 10);
	}
	return 0;
}

/* Oversubscribed? procs_running is an instant, noisy sample (a kernel
 * thread passing by counts), so both of the last two samples must exceed
 * the cores. Samples are taken at most every RUNNABLE_REFRESH_NS, and only
 * by a thread about to sleep (park_before_sleep): reading /proc costs
 * microseconds, which a spinning waiter must not pay. If nobody sleeps the
 * sample goes stale, which is harmless: spinning is working. */
static uint32_t runnable_prev;

static bool oversubscribed(uint32_t cpus)
{
	uint32_t a = weft__ld32_rlx(&runnable_cached), b = weft__ld32_rlx(&runnable_prev);
	return (a < b ? a : b) > cpus;
}

static void park_before_sleep(void)
{
	int64_t now = weft_now();
	uint64_t stamp = weft__ld64_rlx(&runnable_stamp);
	if ((uint64_t)now - stamp > RUNNABLE_REFRESH_NS &&
	    weft__cas64(&runnable_stamp, &stamp, (uint64_t)now)) {
		weft__st32_rlx(&runnable_prev, weft__ld32_rlx(&runnable_cached));
		weft__st32_rlx(&runnable_cached, read_runnable());
	}
}

/* Set by weft__waiter_wake_yielding, cleared when the thread next sleeps:
 * its spins yield instead of pausing (see park.h). */
static _Thread_local bool tl_woke;

/* Every futex sleep of weft goes through here. */
_Thread_local weft__sleep_note_t *weft__tl_sleep_note;

static int park_futex(uint32_t *word, uint32_t val, int64_t deadline)
{
	park_before_sleep();
	tl_woke = false; /* our wakees have had the core meanwhile */
	weft__sleep_note_t *note = weft__tl_sleep_note;
	if (!note)
		return weft__futex_wait(word, val, deadline);
	/* relaxed: hints for the pool's monitor; we are the only writer */
	int64_t t0 = weft_now();
	weft__st32_rlx(&note->asleep, 1);
	int rc = weft__futex_wait(word, val, deadline);
	weft__st32_rlx(&note->asleep, 0);
	weft__st64_rlx(&note->slept_ns,
		       weft__ld64_rlx(&note->slept_ns) + (uint64_t)(weft_now() - t0));
	return rc;
}

/* Adaptive spin, per thread. A wait that spun out and then slept, but
 * ended within SPIN_GROW_MAX x the base spin, would have been cheaper to
 * spin through (a futex wake-to-run costs 2 to 30 us on a loaded or
 * virtual machine, and a partner that waits on a sleeper spins out too:
 * a convoy). So such a wait lengthens the next spins to twice its length;
 * a wait that outlasted the maximum shortens them again. */
#define SPIN_GROW_MAX 16
static _Thread_local int64_t tl_spin_ns;     /* 0: the base value */
static _Thread_local int64_t tl_spin_began;  /* a spin that ran out, or 0 */

/* The first rounds of a spin are free: no clock read and no place in the
 * spinner budget, whose counter is a line every spinning thread writes
 * (two transfers of it per wait cost more than a cache-line round trip,
 * the whole of a ping-pong hand-off). A partner that is running answers
 * within them; only a wait that outlasts them joins the budget and starts
 * the clock. SPIN_FREE_ROUNDS pauses are about 0.5 us here (a pause is
 * ~30 ns on this EPYC VM). */
#define SPIN_FREE_ROUNDS 16
#define SPIN_UNTIMED INT64_MAX /* s->until in the free rounds */

bool weft__spin_start(weft__spin_t *s)
{
	s->until = 0;
	s->iter = 0;
	s->counted = false;
	if (weft__task_self())
		return false; /* a task parks at once: its carrier has others to run */
	int64_t base = spin_ns();
	uint32_t cpus = ncpu();
	if (base <= 0 || cpus < 2)
		return false;
	if (oversubscribed(cpus))
		return false; /* the core is worth more to the runnable threads */
	s->until = SPIN_UNTIMED;
	return true;
}

/* After the free rounds: take a place in the budget, start the clock. */
static bool spin_timed(weft__spin_t *s)
{
	if (weft__faa32(&spinners, 1) >= ncpu()) {
		weft__faa32(&spinners, (uint32_t)-1);
		s->until = 0;
		return false; /* every core already spins: someone must run */
	}
	int64_t base = spin_ns(), now = weft_now();
	int64_t ns = tl_spin_ns > base ? tl_spin_ns : base;
	s->counted = true;
	s->start = now;
	s->until = now + ns;
	return true;
}

void weft__spin_end(weft__spin_t *s)
{
	if (s->counted) {
		s->counted = false;
		weft__faa32(&spinners, (uint32_t)-1);
	}
	s->until = 0;
}

bool weft__spin_again(weft__spin_t *s)
{
	if (s->until == 0)
		return false;
	/* tl_woke holds for the whole phase: only a sleep clears it */
	if (tl_woke)
		sched_yield(); /* our wakee may be queued behind us */
	else
		weft__cpu_relax();
	++s->iter;
	if (s->until == SPIN_UNTIMED)
		return s->iter < SPIN_FREE_ROUNDS || spin_timed(s);
	/* a clock read costs about one pause: look every 4 rounds */
	if ((s->iter & 3) == 0 && weft_now() >= s->until) {
		weft__spin_end(s);
		/* ran out: see weft__spin_slept (a yielding spin waited on
		 * our wakee's start-up, not on a peer worth spinning for) */
		tl_spin_began = tl_woke ? 0 : s->start;
		return false;
	}
	return true;
}

void weft__spin_slept(void)
{
	if (tl_spin_began == 0)
		return;
	int64_t base = spin_ns(), max = base * SPIN_GROW_MAX;
	int64_t waited = weft_now() - tl_spin_began;
	tl_spin_began = 0;
	if (waited < max)
		tl_spin_ns = waited * 2 < max ? waited * 2 : max;
	else
		tl_spin_ns = tl_spin_ns / 2;
}

/* ---- sleeping on a flagged word (see park.h) ---- */

int weft__park_word(uint32_t *word, uint32_t expected, int64_t deadline)
{
	if (weft__task_self())
		return weft__task_park_word(word, expected, deadline);
	return park_futex(word, expected, deadline);
}

/* Wake up to n sleepers on word: threads on the futex, tasks in the
 * scheduler's word table (each side up to n: an extra wake-up is at worst
 * spurious, and every sleeper re-checks). */
static void unpark_word_n(uint32_t *word, int n)
{
	weft__futex_wake(word, n);
	weft__task_unpark_word(word, n);
}

void weft__unpark_word(uint32_t *word)
{
	unpark_word_n(word, INT_MAX);
}

/* ---- mutex ---- */

void weft__mutex_lock_slow(weft__mutex_t *m)
{
	weft__spin_t s;
	if (weft__spin_start(&s)) {
		do {
			uint32_t free_ = 0;
			if (weft__ld32_rlx(&m->v) == 0 && weft__cas32(&m->v, &free_, 1)) {
				weft__spin_end(&s);
				return;
			}
		} while (weft__spin_again(&s));
		tl_spin_began = 0; /* lock waits do not tune the channel spin */
	}
	/* mark contended; whoever unlocks 2 wakes one sleeper */
	while (weft__fas32(&m->v, 2) != 0) {
		weft__park_word(&m->v, 2, WEFT_FOREVER);
	}
}

void weft__mutex_unlock_slow(weft__mutex_t *m)
{
	unpark_word_n(&m->v, 1);
}

/* ---- waiter queues ---- */

static void waitq_link(weft__waitq_t *q, weft__wnode_t *n)
{
	n->next = NULL;
	n->prev = q->tail;
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	n->linked = true;
	/* release, then the count: a registration is counted in regs
	 * before it can be seen through count (weft__waitq_regs) */
	weft__st32_rel(&q->regs, weft__ld32_rlx(&q->regs) + 1);
}

void weft__waitq_push(weft__waitq_t *q, weft__wnode_t *n)
{
	waitq_link(q, n);
	/* RMW: the registration half of the Dekker pair; the caller fences
	 * (weft__fence_rmw_load) before re-checking its condition */
	weft__faa32(&q->count, 1);
}

void weft__waitq_push_locked(weft__waitq_t *q, weft__wnode_t *n)
{
	waitq_link(q, n);
	/* release: a hint for lock-free readers, who decide under the lock */
	weft__st32_rel(&q->count, weft__ld32_rlx(&q->count) + 1);
}

void weft__waitq_count_add(weft__waitq_t *q, int32_t d)
{
	/* release: as every change of count, made under the queue's lock */
	weft__st32_rel(&q->count, weft__ld32_rlx(&q->count) + (uint32_t)d);
}

void weft__waitq_push_counted(weft__waitq_t *q, weft__wnode_t *n)
{
	waitq_link(q, n);
}

void weft__waitq_unlink(weft__waitq_t *q, weft__wnode_t *n)
{
	if (!n->linked)
		return;
	if (n->prev)
		n->prev->next = n->next;
	else
		q->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		q->tail = n->prev;
	n->next = n->prev = NULL;
	n->linked = false;
	/* every change of count is made under the queue's lock; a reader
	 * that sees the old value a moment longer only takes the lock for
	 * nothing (a waker) or re-checks (a waiter) */
	weft__st32_rel(&q->count, weft__ld32_rlx(&q->count) - 1);
}

weft__waiter_t *weft__waitq_notify_one(weft__waitq_t *q, uint32_t *notified, uint32_t *old)
{
	weft__wnode_t *n = q->head;
	*notified = 0;
	while (n) {
		weft__wnode_t *next = n->next;
		weft__waiter_t *w = n->w;
		/* unlink first: live or dead, the entry leaves the queue, and
		 * an owner that sees our final value knows it is unlinked */
		weft__waitq_unlink(q, n);
		/* exactly once: the CAS winner owns this wake-up */
		if (weft__waiter_end(w, WEFT__W_NOTIFY | n->index, old)) {
			*notified = 1;
			return (*old & WEFT__W_ASLEEP) ? w : NULL;
		}
		/* already won by someone else, or aborted: a dead entry */
		n = next;
	}
	return NULL;
}

void weft__waitq_notify_all(weft__waitq_t *q)
{
	weft__wnode_t *n;
	while ((n = q->head) != NULL) {
		weft__waiter_t *w = n->w;
		uint32_t old, val = WEFT__W_NOTIFY | n->index;
		weft__waitq_unlink(q, n);
		if (weft__waiter_end(w, val, &old))
			weft__waiter_wake(w, old);
	}
}

weft__wnode_t *weft__waitq_claim(weft__waitq_t *q, const weft__waiter_t *self)
{
	weft__wnode_t *n = q->head;
	while (n) {
		weft__wnode_t *next = n->next;
		if (n->w == self) {
			n = next; /* a select never meets itself */
			continue;
		}
		weft__waitq_unlink(q, n);
		uint32_t s = weft__ld32_acq(&n->w->state);
		while (weft__waiter_live(s)) {
			/* keep the ASLEEP bits so finish knows to wake the owner */
			if (weft__cas32(&n->w->state, &s, WEFT__W_CLAIMED | (s & WEFT__W_ASLEEP)))
				return n;
		}
		n = next;
	}
	return NULL;
}

bool weft__waitq_has_peer(weft__waitq_t *q)
{
	for (weft__wnode_t *n = q->head; n; n = n->next)
		if (weft__waiter_live(weft__ld32_rlx(&n->w->state)))
			return true;
	return false;
}

void weft__waiter_wake_yielding(weft__waiter_t *w, uint32_t old)
{
	if (old & WEFT__W_SLEEPING)
		tl_woke = true; /* see park.h */
	weft__waiter_wake(w, old);
}

void weft__waiter_wake(weft__waiter_t *w, uint32_t old)
{
	if (old & WEFT__W_PARKED) {
		/* a parked task keeps w valid until it is readied: by us */
		weft__task_ready(w->task);
		return;
	}
	/* the owner may have left already: a wake on its old stack address
	 * is at worst a spurious wake-up for a later wait, which re-checks */
	if (old & WEFT__W_SLEEPING)
		weft__futex_wake(&w->state, 1);
}

void weft__waiter_finish(weft__waiter_t *w, uint32_t val)
{
	/* release (full RMW): the handed-off element before the final state;
	 * pairs with the owner's acquire load in weft__waiter_wait. The owner
	 * waits out CLAIMED, so w is valid until this store. */
	uint32_t old = weft__fas32(&w->state, val);
	weft__waiter_wake(w, old);
}

void weft__waiter_finish_alone(weft__waiter_t *w, uint32_t val)
{
	/* relaxed: the word the caller won with a CAS (acquire) showed w
	 * after the owner's last change to it */
	if (weft__ld32_rlx(&w->state) != WEFT__W_PARKED) {
		weft__waiter_finish(w, val); /* a thread: see park.h */
		return;
	}
	struct weft__task *t = w->task;
	/* release: the handed-off element before the final state; the owner
	 * reads it with acquire once it runs again, which is after the
	 * ready below */
	weft__st32_rel(&w->state, val);
	weft__task_ready(t);
}

uint32_t weft__waiter_wait(weft__waiter_t *w, int64_t deadline, bool spin)
{
	uint32_t s;
	weft__spin_t sp;

	if (weft__task_self())
		return weft__task_wait(w, deadline);

	if (spin && weft__spin_start(&sp)) {
		do {
			/* acquire: pairs with the waker's RMW on state */
			s = weft__ld32_acq(&w->state);
			if (weft__waiter_final(s)) {
				weft__spin_end(&sp);
				return s;
			}
		} while (weft__spin_again(&sp));
	}
	bool slept = false;
	for (;;) {
		s = weft__ld32_acq(&w->state);
		if (weft__waiter_final(s)) {
			if (slept)
				weft__spin_slept();
			return s;
		}
		if (!(s & WEFT__W_SLEEPING)) {
			uint32_t e = s;
			if (!weft__cas32(&w->state, &e, s | WEFT__W_SLEEPING))
				continue;
			s |= WEFT__W_SLEEPING;
		}
		/* a claimed handoff is never abandoned: it completes promptly */
		int64_t dl = (s & WEFT__W_CLAIMED) ? WEFT_FOREVER : deadline;
		if (park_futex(&w->state, s, dl) == -ETIMEDOUT)
			return WEFT__W_TIMEOUT;
		slept = true;
	}
}

uint32_t weft__waiter_wait_runnable(weft__waiter_t *w, int64_t deadline, int64_t ns)
{
	if (weft__task_self())
		return weft__task_wait(w, deadline);
	int64_t now = weft_now(), until = now + ns;
	if (until > deadline)
		until = deadline;
	while (now < until) {
		/* acquire: pairs with the waker's RMW on state */
		uint32_t s = weft__ld32_acq(&w->state);
		if (weft__waiter_final(s))
			return s;
		sched_yield();
		now = weft_now();
	}
	return weft__waiter_wait(w, deadline, false);
}

uint32_t weft__waiter_abort(weft__waiter_t *w)
{
	uint32_t s = weft__ld32_acq(&w->state);
	for (;;) {
		if (weft__waiter_live(s)) {
			if (weft__cas32(&w->state, &s, WEFT__W_ABORT))
				return WEFT__W_ABORT;
			continue;
		}
		if (s & WEFT__W_CLAIMED)
			return weft__waiter_wait(w, WEFT_FOREVER, true);
		return s & ~WEFT__W_ASLEEP;
	}
}

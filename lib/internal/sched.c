/* lib/internal/sched.c: the task runtime's scheduler (see sched.h).
 *
 * Carriers. One thread per CPU by default (WEFT_PROCS, or
 * weft_runtime_set_procs). Each has a local run queue (a ring of
 * RUNQ_LEN tasks: the owner pushes at the tail and pops at the head,
 * stealers take half from the head with a CAS: Go's runq), a runnext slot
 * (a task readied by a task of this carrier runs next: a hand-off costs one
 * switch and stays on one core), its own timer heap, and a context of its
 * own (g0: the carrier thread's stack) where it looks for work and idles.
 * A global queue takes what plain threads start or ready, and a local
 * queue's overflow.
 *
 * Switching. A task that parks saves its context and switches straight to
 * the next task of its carrier (runnext, then the local queue), or to g0
 * when there is none. What must happen only once the old context is saved
 * (commit the park: set PARKED, arm a timer; requeue a yielder; free an
 * exited task's stack) is left in the carrier's pending action and done by
 * whichever context resumes next (after_switch), before it runs on. A
 * commit that finds the wait already over makes the task runnable again at
 * once: no wake-up is lost, and nobody readies a task whose context is not
 * saved.
 *
 * Idling. A carrier with nothing to run spins for a while looking (local,
 * global, timers, work that waits on the others: steal_behind), then
 * registers as idle (nidle), looks once more, and sleeps on its own futex
 * word: until the earliest timer when every carrier is idle, or, as the
 * one poller, for 20 us to 1 ms (doubling while it finds nothing) while
 * some carrier is busy. Whoever queues a task fences and, if some carrier
 * is idle and none spins or polls, wakes one (which then polls).
 *
 * Stealing only what has waited (steal_behind): with tasks that hand off to
 * each other all the time, one core running them all beats two that pass
 * cache lines on every hand-off; a carrier that falls behind its queue, or
 * that one task holds, loses its queue to the poller within ~20 us to 1 ms.
 *
 * Ordering:
 * - Local queue: the owner publishes a slot with a release store of tail;
 *   stealers and the owner claim with a CAS on head (acquire loads of
 *   tail/head first). Slots are read relaxed: a claim that loses its CAS
 *   throws away what it read.
 * - Wake-up of idle carriers is a Dekker pair: a producer pushes, then
 *   weft__fence_sc, then reads nidle/nspinning; an idler's faa on nidle
 *   (an RMW) precedes its last look at every queue. One sees the other.
 *   The wake-up itself is a CAS ASLEEP -> WOKEN on the carrier's wake
 *   word, which the carrier swaps back to AWAKE (a full RMW) before it
 *   looks again (see WAKE_ASLEEP).
 * - A task's wait: the task writes w->task, then the commit (after the
 *   switch) CASes PARKED into w->state; a waker that clears PARKED
 *   (weft__waiter_end, a full RMW) reads w->task after it and readies the
 *   task. The timer of a timed wait is armed under the carrier's timer lock
 *   in the same commit and fired under that lock with a CAS that clears
 *   PARKED; the task disarms it under the lock before it leaves the wait,
 *   so a timer never touches a waiter that is gone.
 */
#include "internal/sched.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal/clock.h"
#include "internal/death.h"
#include "internal/futex.h"
#include "internal/monitor.h"
#include "internal/switch.h"
#include "internal/sys.h"
#include <weft/common.h>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif
#ifdef WEFT__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT__TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define RUNQ_LEN 256u
#define MAX_PROCS 256u
#define STACK_DEFAULT ((size_t)64 << 10)
#define STACK_MIN ((size_t)16 << 10)
#define STACK_MAX ((size_t)1 << 30)
/* Guard pages split a mapping in two, and a process has vm.max_map_count
 * mappings (65530 by default): past this many live stacks, new ones get a
 * canary word at their low end instead, checked at every switch out. */
#define GUARD_BUDGET 16384u
#define STACK_CANARY 0x7765667453544b21ull /* "weftSTK!" */
#define LOCAL_CACHE 64u
#define CACHE_BATCH 32u
#define GLOBAL_CACHE 16384u
#define WORD_BUCKETS 251u
#define IDLE_SPIN_ROUNDS 64
/* Another carrier takes only work that has waited this long (steal_behind) */
#define STEAL_DELAY_NS 20000
/* An idle carrier looks for such work every POLL_MIN..POLL_MAX ns (doubling
 * while it finds none) as long as some carrier is busy; one at a time. */
#define POLL_MIN_NS 20000
#define POLL_MAX_NS 1000000

/* ---- types ---- */

struct ctx {
	void *sp;
	void *stack_lo; /* for the sanitizers' fiber calls */
	size_t stack_size;
	void *tsan_fiber;
	void *asan_fake;
};

struct carrier;

struct weft__task {
	struct ctx ctx;
	void (*fn)(void *);
	void *arg;
	weft__task_t *next; /* global queue, caches */
	void *map;          /* the mapping: [guard page] stack ... this struct */
	size_t map_size;
	size_t stack_size; /* as asked (rounded): the cache key */
	bool guarded;
	uint64_t id;
	/* timer of a timed wait: armed on tcar's heap while heap_idx >= 0 */
	int64_t when;
	int32_t heap_idx;
	struct carrier *tcar;
	weft__waiter_t *tw;
	void *slot; /* weft__task_slot */
	weft__death_note_t *notes; /* weft__task_notes: what to do if it dies */
	/* for weft_runtime_dump: the live tasks' registry and what each does
	 * (relaxed: a snapshot for people, not a synchronisation) */
	weft__task_t *all_next, *all_prev;
	uint32_t status; /* TASK_RUNNABLE, TASK_RUNNING, TASK_WAITING */
	const char *wait_kind;
	const void *wait_obj;
	int64_t wait_until;
	char name[32];
};

enum { TASK_RUNNABLE, TASK_RUNNING, TASK_WAITING };

/* what the task waits in, for the dump (relaxed: read by weft_runtime_dump) */
static void set_wait(weft__task_t *t, const char *kind, const void *obj)
{
	weft__stp_rlx((void **)&t->wait_obj, (void *)obj);
	weft__stp_rlx((void **)&t->wait_kind, (void *)kind);
}
#define REGISTRY_SHARDS 16

enum { PEND_NONE, PEND_PARK, PEND_YIELD, PEND_EXIT };

struct carrier {
	WEFT__ALIGNED uint32_t head; /* stealers' line */
	uint32_t stealing; /* stealers of runnext now (see runnext_take) */
	WEFT__ALIGNED uint32_t tail; /* the owner's line */
	uint32_t taking; /* 1 while the owner takes runnext without a CAS */
	weft__task_t *runnext;
	weft__task_t *current;
	int pending;
	weft__task_t *pending_task;
	bool (*pending_commit)(void *);
	void *pending_arg;
	struct ctx g0;
	unsigned id;
	uint32_t nswitch; /* switches made: a stealer sees whether we move */
	uint64_t rng;
	int64_t poll_ns;
	/* what this carrier saw of each other one when it last looked */
	struct {
		uint32_t tail, nswitch;
		int64_t when;
	} obs[MAX_PROCS];
	unsigned ncache;
	weft__task_t *cache[LOCAL_CACHE];
	/* timers */
	WEFT__ALIGNED uint32_t tlock;
	uint32_t nheap, capheap;
	weft__task_t **heap;
	uint64_t next_when; /* heap[0]->when, or INT64_MAX; read lock-free */
	/* idling */
	WEFT__ALIGNED uint32_t wake; /* futex word: WAKE_AWAKE / ASLEEP / WOKEN */
	uint32_t ktid; /* its kernel thread id (the monitor's probe) */
	void *altstack; /* its signal stack (the overflow message) */
	pthread_t thread;
	uint32_t respawning; /* 1 from its thread's death to its replacement's start */
	weft__task_t *buf[RUNQ_LEN];
};

struct wordwait {
	uint32_t *word;
	weft__waiter_t w;
	struct wordwait *next, *prev;
	bool linked;
};

struct bucket {
	uint32_t lock;
	uint32_t count;
	struct wordwait *head;
	char pad_[64 - 2 * sizeof(uint32_t) - sizeof(void *)];
};

static struct {
	uint32_t startlock;
	uint32_t started;  /* carriers running (0: the runtime is not up) */
	uint32_t nprocs;   /* carriers wanted (GOMAXPROCS) */
	uint32_t nextra;   /* more, started by the monitor for held carriers */
	uint32_t nactive;  /* nprocs + nextra: carriers allowed to run tasks */
	uint32_t mon_parked; /* 1: the watch is idle until monitor_kick */
	weft__watch_t watch; /* the runtime's, in monitor.h's list */
	size_t stack_size; /* the default, page-rounded; 0: not read yet */
	struct carrier *car[MAX_PROCS];
	WEFT__ALIGNED uint32_t glock;
	uint32_t gcount;
	weft__task_t *ghead, *gtail;
	WEFT__ALIGNED uint32_t nidle;
	uint32_t nspinning;
	uint32_t npolling; /* idle carriers polling for work that waits (0 or 1) */
	WEFT__ALIGNED uint32_t cachelock;
	uint32_t ngcache;
	weft__task_t *gcache;
	uint64_t next_id;
	uint32_t guarded;
	size_t page;
	uint32_t dump_on_sigquit, dump_requested;
	struct {
		uint32_t lock;
		weft__task_t *head;
		char pad_[64 - sizeof(uint32_t) - sizeof(void *)];
	} reg[REGISTRY_SHARDS];
	struct bucket words[WORD_BUCKETS];
} rt;

static _Thread_local struct carrier *tl_carrier;

/* ---- small helpers ---- */

static void spin_lock(uint32_t *l)
{
	for (unsigned n = 1;; n++) {
		uint32_t z = 0;
		/* acquire (full RMW): the guarded data after the lock */
		if (weft__ld32_rlx(l) == 0 && weft__cas32(l, &z, 1))
			return;
		if (n % 64 == 0)
			sched_yield(); /* the holder may be preempted */
		else
			weft__cpu_relax();
	}
}

static void spin_unlock(uint32_t *l)
{
	/* release: the guarded data before the unlock */
	weft__st32_rel(l, 0);
}

/* The carrier of the calling thread, read anew at each call: never
 * inlined, so no caller keeps a thread-local address across a switch. */
__attribute__((noinline)) static struct carrier *carrier_now(void)
{
	struct carrier *c = tl_carrier;
	__asm__ __volatile__("" ::: "memory");
	return c;
}

__attribute__((noinline)) weft__task_t *weft__task_self(void)
{
	struct carrier *c = tl_carrier;
	return c ? c->current : NULL;
}

static size_t page_size(void)
{
	if (!rt.page)
		rt.page = (size_t)sysconf(_SC_PAGESIZE);
	return rt.page;
}

static size_t round_stack(size_t n)
{
	size_t p = page_size();
	if (n < STACK_MIN)
		n = STACK_MIN;
	return (n + p - 1) & ~(p - 1);
}

static size_t default_stack(void)
{
	size_t s = __atomic_load_n(&rt.stack_size, __ATOMIC_RELAXED);
	if (s == 0) {
		const char *e = getenv("WEFT_STACK_SIZE");
		long long v = e ? atoll(e) : 0;
		s = v > 0 && (size_t)v <= STACK_MAX ? round_stack((size_t)v) : STACK_DEFAULT;
		__atomic_store_n(&rt.stack_size, s, __ATOMIC_RELAXED);
	}
	return s;
}

static uint32_t rnd(struct carrier *c)
{
	uint64_t x = c->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

/* ---- stacks (with the task struct at the top) ---- */

static weft__task_t *stack_new(size_t stack_size)
{
	size_t page = page_size();
	size_t tsz = (sizeof(weft__task_t) + 63) & ~(size_t)63;
	size_t total = ((stack_size + tsz + page - 1) & ~(page - 1)) + page;
	void *map = weft__sys_mmap(NULL, total, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	bool guarded = false;
	/* relaxed: a budget, not a publication */
	if (weft__faa32(&rt.guarded, 1) < GUARD_BUDGET && weft__sys_mprotect(map, page, PROT_NONE) == 0)
		guarded = true;
	else
		weft__faa32(&rt.guarded, (uint32_t)-1);
	weft__task_t *t = (weft__task_t *)((char *)map + total - tsz);
	memset(t, 0, sizeof *t);
	t->map = map;
	t->map_size = total;
	t->stack_size = stack_size;
	t->guarded = guarded;
	t->heap_idx = -1;
	if (!guarded)
		*(uint64_t *)map = STACK_CANARY;
	t->ctx.stack_lo = (char *)map + (guarded ? page : 0);
	t->ctx.stack_size = (size_t)((char *)t - (char *)t->ctx.stack_lo);
	return t;
}

static void stack_delete(weft__task_t *t)
{
	if (t->guarded)
		weft__faa32(&rt.guarded, (uint32_t)-1);
	munmap(t->map, t->map_size);
}

/* Stacks of the default size are kept for reuse: LOCAL_CACHE per carrier
 * (no lock), and up to GLOBAL_CACHE in a global list, moved CACHE_BATCH at
 * a time so a carrier that only starts tasks and one that only ends them
 * (a spawner's tasks stolen by the other) meet there once per batch. A
 * cached stack keeps the pages its last task touched (4-8 KiB for most). */
static weft__task_t *task_alloc(struct carrier *c, size_t stack_size)
{
	weft__task_t *t = NULL;
	if (stack_size == default_stack()) {
		if (c && !c->ncache && weft__ld32_rlx(&rt.ngcache)) {
			spin_lock(&rt.cachelock);
			while (rt.gcache && c->ncache < CACHE_BATCH) {
				c->cache[c->ncache++] = rt.gcache;
				rt.gcache = rt.gcache->next;
				weft__st32_rlx(&rt.ngcache, rt.ngcache - 1);
			}
			spin_unlock(&rt.cachelock);
		}
		if (c && c->ncache) {
			t = c->cache[--c->ncache];
		} else if (!c && weft__ld32_rlx(&rt.ngcache)) {
			spin_lock(&rt.cachelock);
			if ((t = rt.gcache) != NULL) {
				rt.gcache = t->next;
				weft__st32_rlx(&rt.ngcache, rt.ngcache - 1);
			}
			spin_unlock(&rt.cachelock);
		}
	}
	if (!t && !(t = stack_new(stack_size)))
		return NULL;
	t->next = NULL;
	t->heap_idx = -1;
	t->tcar = NULL;
	return t;
}

static void task_free(struct carrier *c, weft__task_t *t)
{
#ifdef WEFT__TSAN
	__tsan_destroy_fiber(t->ctx.tsan_fiber);
	t->ctx.tsan_fiber = NULL;
#endif
	if (t->stack_size != default_stack()) {
		stack_delete(t);
		return;
	}
	if (c && c->ncache == LOCAL_CACHE) {
		/* full: a batch to the global list (or back to the kernel) */
		spin_lock(&rt.cachelock);
		while (c->ncache > LOCAL_CACHE - CACHE_BATCH && rt.ngcache < GLOBAL_CACHE) {
			weft__task_t *x = c->cache[--c->ncache];
			x->next = rt.gcache;
			rt.gcache = x;
			weft__st32_rlx(&rt.ngcache, rt.ngcache + 1);
		}
		spin_unlock(&rt.cachelock);
		while (c->ncache > LOCAL_CACHE - CACHE_BATCH)
			stack_delete(c->cache[--c->ncache]);
	}
	if (c) {
		c->cache[c->ncache++] = t;
		return;
	}
	if (weft__ld32_rlx(&rt.ngcache) < GLOBAL_CACHE) {
		spin_lock(&rt.cachelock);
		t->next = rt.gcache;
		rt.gcache = t;
		weft__st32_rlx(&rt.ngcache, rt.ngcache + 1);
		spin_unlock(&rt.cachelock);
		return;
	}
	stack_delete(t);
}

static void stack_check(weft__task_t *t)
{
	if (!t->guarded && *(volatile uint64_t *)t->map != STACK_CANARY) {
		fprintf(stderr,
			"weft: task %llu (\"%s\") overflowed its stack of %zu bytes "
			"(found at a switch; set weft_task_opts_t.stack_size or WEFT_STACK_SIZE)\n",
			(unsigned long long)t->id, t->name, t->stack_size);
		abort();
	}
}

/* ---- stack overflow into a guard page ---- */

/* (not under the sanitizers: they handle SIGSEGV themselves) */
#if !defined(WEFT__ASAN) && !defined(WEFT__TSAN)

static struct sigaction old_segv;

static void put_str(char *buf, size_t *n, size_t cap, const char *s)
{
	while (*s && *n < cap)
		buf[(*n)++] = *s++;
}

static void put_u64(char *buf, size_t *n, size_t cap, uint64_t v)
{
	char d[24];
	int k = 0;
	do
		d[k++] = (char)('0' + v % 10);
	while ((v /= 10) && k < 24);
	while (k && *n < cap)
		buf[(*n)++] = d[--k];
}

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	struct carrier *c = tl_carrier;
	weft__task_t *t = c ? c->current : NULL;
	char *a = si->si_addr;
	if (t && t->guarded && a >= (char *)t->map && a < (char *)t->map + page_size()) {
		char msg[256];
		size_t n = 0;
		put_str(msg, &n, sizeof msg, "weft: task ");
		put_u64(msg, &n, sizeof msg, t->id);
		put_str(msg, &n, sizeof msg, " (\"");
		put_str(msg, &n, sizeof msg, t->name);
		put_str(msg, &n, sizeof msg, "\") overflowed its stack of ");
		put_u64(msg, &n, sizeof msg, t->stack_size);
		put_str(msg, &n, sizeof msg,
			" bytes (set weft_task_opts_t.stack_size or WEFT_STACK_SIZE)\n");
		if (write(2, msg, n) < 0) {
		}
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	/* not ours: the fault repeats under the handler that was there */
	(void)sig;
	sigaction(SIGSEGV, &old_segv, NULL);
}

#endif

static void install_overflow_handler(void)
{
#if !defined(WEFT__ASAN) && !defined(WEFT__TSAN)
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
#endif
}

/* ---- context switches (with the sanitizers' fiber hooks) ---- */

static void after_switch(struct carrier *c);

/* Switch from the running context to `to`. Returns when something switches
 * back to `from` (on whichever carrier), after that carrier's pending
 * action is done. */
static void ctx_switch(struct ctx *from, struct ctx *to, bool from_exits)
{
	/* (to is a task's ctx, or the carrier's g0) */
#ifdef WEFT__ASAN
	__sanitizer_start_switch_fiber(from_exits ? NULL : &from->asan_fake, to->stack_lo,
				       to->stack_size);
#else
	(void)from_exits;
#endif
#ifdef WEFT__TSAN
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
	weft__switch(&from->sp, to->sp, NULL);
#ifdef WEFT__ASAN
	__sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
	after_switch(carrier_now());
}

/* ---- run queues ---- */

static void wake_idle(void);

/* A carrier's wake word. It is ASLEEP from before its last look at the
 * queues until it is awake again, and only a waker's CAS ASLEEP -> WOKEN
 * counts as a wake-up: a carrier that has left its sleep (a poll timeout,
 * a spurious return) swaps AWAKE in, so a waker either sees AWAKE and
 * wakes another, or its CAS comes first and the carrier's swap reads
 * WOKEN, after the waker's push (so its next look finds that work). A
 * separate "sleeping" flag checked before a CAS on the word lost wake-ups:
 * the waker could read a stale flag and spend its one wake on a carrier
 * that had just looked and gone on to run a task for good. */
#define WAKE_AWAKE 0u
#define WAKE_ASLEEP 1u
#define WAKE_WOKEN 2u

/* Wake v if it sleeps; true if this call woke it. */
static bool wake_carrier(struct carrier *v)
{
	uint32_t asleep = WAKE_ASLEEP;
	/* full RMW: after the caller's push and fence; the carrier's swap
	 * to AWAKE reads what we wrote, and so sees the push */
	if (!weft__cas32(&v->wake, &asleep, WAKE_WOKEN))
		return false;
	weft__futex_wake(&v->wake, 1);
	return true;
}

static void global_push(weft__task_t *first, weft__task_t *last, uint32_t n)
{
	spin_lock(&rt.glock);
	last->next = NULL;
	if (rt.gtail)
		rt.gtail->next = first;
	else
		rt.ghead = first;
	rt.gtail = last;
	weft__st32_rlx(&rt.gcount, rt.gcount + n);
	spin_unlock(&rt.glock);
}

/* Owner only: put t at the tail; half the queue to the global one when
 * full. */
static void runq_put_tail(struct carrier *c, weft__task_t *t)
{
	for (;;) {
		/* acquire: stealers' claims before we reuse their slots */
		uint32_t h = weft__ld32_acq(&c->head), tl = weft__ld32_rlx(&c->tail);
		if (tl - h < RUNQ_LEN) {
			weft__stp_rlx((void **)&c->buf[tl % RUNQ_LEN], t);
			/* release: the slot before the tail that shows it */
			weft__st32_rel(&c->tail, tl + 1);
			return;
		}
		/* full: move half of it, and t, to the global queue. Link
		 * them only once the CAS has made them ours: a stealer may
		 * have taken (and be running, or queueing) any of them. */
		weft__task_t *batch[RUNQ_LEN / 2];
		uint32_t n = (tl - h) / 2;
		for (uint32_t i = 0; i < n; i++)
			batch[i] = weft__ldp_rlx((void **)&c->buf[(h + i) % RUNQ_LEN]);
		if (!weft__cas32(&c->head, &h, h + n))
			continue; /* stealers took some: room now */
		for (uint32_t i = 0; i + 1 < n; i++)
			batch[i]->next = batch[i + 1];
		batch[n - 1]->next = t;
		global_push(batch[0], t, n + 1);
		return;
	}
}

/* Owner only: runnext (a hand-off: runs next) or the tail. Returns true if
 * a task went to the tail (someone idle could take it). */
static bool runq_put(struct carrier *c, weft__task_t *t, bool next)
{
	if (next) {
		/* Only the owner makes runnext non-NULL (stealers only take a
		 * task out), so a NULL seen here stays NULL until we store:
		 * no RMW needed. release: t's saved context before a stealer
		 * that takes it. (A hand-off finds it NULL: the task it last
		 * readied is the one running.) */
		if (!weft__ldp_rlx((void **)&c->runnext)) {
			weft__stp_rel((void **)&c->runnext, t);
			return false;
		}
		t = weft__fasp((void **)&c->runnext, t);
		if (!t)
			return false;
	}
	runq_put_tail(c, t);
	return true;
}

/* runnext is taken by its owner on every hand-off, and by a stealer only
 * from a carrier that has not switched for STEAL_DELAY_NS (steal_behind).
 * So the owner takes it without an RMW when it can: it says `taking`,
 * then looks at `stealing` (store, then load: the light side of an
 * asymmetric fence, see park.h); a stealer says `stealing`, runs the heavy
 * fence, then looks at `taking`. One of the two sees the other: the owner
 * falls back to the CAS, or the stealer gives up this time. Without
 * membarrier both use the CAS. */
static weft__task_t *runnext_take(struct carrier *c)
{
	weft__task_t *t = weft__ldp_rlx((void **)&c->runnext);
	if (!t)
		return NULL;
	if (weft__asym()) {
		weft__st32_rlx(&c->taking, 1);
		/* program order only: the heavy fence orders it for stealers */
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		if (weft__ld32_rlx(&c->stealing) == 0) {
			/* no stealer can be between its look and its CAS */
			t = weft__ldp_rlx((void **)&c->runnext);
			weft__stp_rlx((void **)&c->runnext, NULL);
			/* release: runnext's NULL before a stealer that sees
			 * taking at 0 */
			weft__st32_rel(&c->taking, 0);
			return t;
		}
		weft__st32_rlx(&c->taking, 0);
	}
	if (weft__casp((void **)&c->runnext, (void **)&t, NULL))
		return t;
	return NULL;
}

/* A stealer's side of runnext_take: take v's runnext if it is still rn. */
static bool runnext_steal(struct carrier *v, weft__task_t *rn)
{
	if (!weft__asym())
		return weft__casp((void **)&v->runnext, (void **)&rn, NULL);
	weft__faa32(&v->stealing, 1);
	weft__fence_heavy();
	bool got = false;
	/* acquire: pairs with the owner's release of taking */
	if (weft__ld32_acq(&v->taking) == 0)
		got = weft__casp((void **)&v->runnext, (void **)&rn, NULL);
	weft__faa32(&v->stealing, (uint32_t)-1);
	return got;
}

static weft__task_t *runq_get(struct carrier *c)
{
	weft__task_t *t = runnext_take(c);
	if (t)
		return t;
	for (;;) {
		uint32_t h = weft__ld32_acq(&c->head), tl = weft__ld32_rlx(&c->tail);
		if (h == tl)
			return NULL;
		t = weft__ldp_rlx((void **)&c->buf[h % RUNQ_LEN]);
		if (weft__cas32(&c->head, &h, h + 1))
			return t;
	}
}

static bool runq_empty(struct carrier *c)
{
	return weft__ld32_acq(&c->head) == weft__ld32_acq(&c->tail) &&
	       weft__ldp_rlx((void **)&c->runnext) == NULL;
}

/* Take half of v's queue: one to run, the rest into c's (c owns its own). */
static weft__task_t *runq_steal(struct carrier *c, struct carrier *v)
{
	weft__task_t *batch[RUNQ_LEN / 2];
	for (;;) {
		uint32_t h = weft__ld32_acq(&v->head), tl = weft__ld32_acq(&v->tail);
		uint32_t n = tl - h;
		n -= n / 2;
		if (n == 0)
			return NULL;
		if (n > RUNQ_LEN / 2)
			continue; /* a torn read of head and tail */
		for (uint32_t i = 0; i < n; i++)
			batch[i] = weft__ldp_rlx((void **)&v->buf[(h + i) % RUNQ_LEN]);
		if (!weft__cas32(&v->head, &h, h + n))
			continue;
		for (uint32_t i = 1; i < n; i++)
			runq_put_tail(c, batch[i]);
		return batch[0];
	}
}

/* A share of the global queue: one to run, some more into c's queue. */
static weft__task_t *global_get(struct carrier *c)
{
	if (weft__ld32_rlx(&rt.gcount) == 0)
		return NULL;
	spin_lock(&rt.glock);
	uint32_t n = rt.gcount, procs = weft__ld32_rlx(&rt.nactive);
	if (n == 0) {
		spin_unlock(&rt.glock);
		return NULL;
	}
	uint32_t take = n / (procs ? procs : 1) + 1;
	if (take > n)
		take = n;
	if (take > RUNQ_LEN / 2)
		take = RUNQ_LEN / 2;
	weft__task_t *first = rt.ghead, *t = first;
	for (uint32_t i = 1; i < take; i++)
		t = t->next;
	rt.ghead = t->next;
	if (!rt.ghead)
		rt.gtail = NULL;
	weft__st32_rlx(&rt.gcount, n - take);
	spin_unlock(&rt.glock);
	t->next = NULL;
	weft__task_t *run = first;
	for (weft__task_t *x = first->next; x;) {
		weft__task_t *nx = x->next;
		runq_put_tail(c, x);
		x = nx;
	}
	run->next = NULL;
	return run;
}

/* ---- timers (one heap per carrier, under its lock) ---- */

static void heap_set(struct carrier *c, uint32_t i, weft__task_t *t)
{
	c->heap[i] = t;
	t->heap_idx = (int32_t)i;
}

static void heap_up(struct carrier *c, uint32_t i)
{
	weft__task_t *t = c->heap[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (c->heap[p]->when <= t->when)
			break;
		heap_set(c, i, c->heap[p]);
		i = p;
	}
	heap_set(c, i, t);
}

static void heap_down(struct carrier *c, uint32_t i)
{
	weft__task_t *t = c->heap[i];
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;
		weft__task_t *best = t;
		if (l < c->nheap && c->heap[l]->when < best->when)
			best = c->heap[m = l];
		if (l + 1 < c->nheap && c->heap[l + 1]->when < best->when)
			best = c->heap[m = l + 1];
		if (m == i)
			break;
		heap_set(c, i, best);
		i = m;
	}
	heap_set(c, i, t);
}

static void heap_publish(struct carrier *c)
{
	/* relaxed: a hint for idlers and for the park path; the heap itself
	 * is read under the lock */
	weft__st64_rlx(&c->next_when, c->nheap ? (uint64_t)c->heap[0]->when : (uint64_t)INT64_MAX);
}

static bool heap_push(struct carrier *c, weft__task_t *t)
{
	if (c->nheap == c->capheap) {
		uint32_t cap = c->capheap ? 2 * c->capheap : 64;
		weft__task_t **h = weft__sys_realloc(c->heap, cap * sizeof *h);
		if (!h)
			return false;
		c->heap = h;
		c->capheap = cap;
	}
	c->heap[c->nheap] = t;
	heap_up(c, c->nheap++);
	heap_publish(c);
	return true;
}

static void heap_remove(struct carrier *c, weft__task_t *t)
{
	uint32_t i = (uint32_t)t->heap_idx;
	t->heap_idx = -1;
	weft__task_t *last = c->heap[--c->nheap];
	if (i < c->nheap) {
		heap_set(c, i, last);
		heap_down(c, i);
		heap_up(c, (uint32_t)last->heap_idx);
	}
	heap_publish(c);
}

static void ready_local(struct carrier *c, weft__task_t *t, bool next);

/* Fire v's due timers; the tasks go to c's queue (c is the caller's). */
static void run_timers(struct carrier *c, struct carrier *v, int64_t now)
{
	if ((int64_t)weft__ld64_rlx(&v->next_when) > now)
		return;
	spin_lock(&v->tlock);
	while (v->nheap && v->heap[0]->when <= now) {
		weft__task_t *t = v->heap[0];
		heap_remove(v, t);
		/* clear PARKED: the winner readies (the owner's commit set it
		 * under this lock, and it disarms us under it before leaving) */
		weft__waiter_t *w = t->tw;
		uint32_t s = weft__ld32_acq(&w->state);
		while (s & WEFT__W_PARKED) {
			if (weft__cas32(&w->state, &s, s & ~WEFT__W_PARKED)) {
				ready_local(c, t, false);
				break;
			}
		}
	}
	spin_unlock(&v->tlock);
}

static void timer_disarm(weft__task_t *t)
{
	struct carrier *c = t->tcar;
	if (!c)
		return; /* never armed */
	t->tcar = NULL;
	spin_lock(&c->tlock);
	if (t->heap_idx >= 0)
		heap_remove(c, t);
	spin_unlock(&c->tlock);
}

/* ---- making tasks runnable ---- */

static void ready_local(struct carrier *c, weft__task_t *t, bool next)
{
	if (runq_put(c, t, next))
		wake_idle();
}

void weft__task_ready(weft__task_t *t)
{
	struct carrier *c = carrier_now();
	if (c) {
		/* from a task: a hand-off, runs next here; from the carrier's
		 * own loop: the tail */
		ready_local(c, t, c->current != NULL);
		return;
	}
	global_push(t, t, 1);
	wake_idle();
}

/* ---- parking the running task ---- */

/* The next task for c to switch to without going through g0, or NULL. */
static weft__task_t *next_quick(struct carrier *c)
{
	if (c->id >= weft__ld32_rlx(&rt.nactive))
		return NULL; /* retired: g0 hands its queue back */
	return runq_get(c);
}

static void switch_out(struct carrier *c, weft__task_t *t, int action, bool (*commit)(void *),
		       void *arg)
{
	stack_check(t);
	if (weft__deadline_passed((int64_t)weft__ld64_rlx(&c->next_when)))
		run_timers(c, c, weft_now());
	c->pending = action;
	c->pending_task = t;
	c->pending_commit = commit;
	c->pending_arg = arg;
	weft__task_t *next = next_quick(c);
	weft__stp_rlx((void **)&c->current, next); /* relaxed: read by the dump */
	if (next)
		weft__st32_rlx(&next->status, TASK_RUNNING);
	/* relaxed: a progress count for stealers (steal_behind) */
	weft__st32_rlx(&c->nswitch, c->nswitch + 1);
	ctx_switch(&t->ctx, next ? &next->ctx : &c->g0, action == PEND_EXIT);
}

static void after_switch(struct carrier *c)
{
	int a = c->pending;
	weft__task_t *t = c->pending_task;
	if (a == PEND_NONE)
		return;
	c->pending = PEND_NONE;
	c->pending_task = NULL;
	switch (a) {
	case PEND_PARK:
		if (!c->pending_commit(c->pending_arg))
			ready_local(c, t, c->current != NULL); /* the wait was over */
		break;
	case PEND_YIELD:
		runq_put_tail(c, t);
		break;
	case PEND_EXIT:
		task_free(c, t);
		break;
	}
}

/* Park the running task: commit(arg) runs once its context is saved; if it
 * returns false the task is runnable again at once. */
static void task_park(bool (*commit)(void *), void *arg)
{
	struct carrier *c = carrier_now();
	switch_out(c, c->current, PEND_PARK, commit, arg);
}

struct wait_commit {
	weft__waiter_t *w;
	weft__task_t *t;
	int64_t deadline;
};

static bool commit_wait(void *p)
{
	struct wait_commit *a = p;
	struct carrier *c = carrier_now();
	bool timed = a->deadline != WEFT_FOREVER;
	if (timed) {
		/* arm first, under the lock, so the fields are set before
		 * PARKED makes the task wakeable (and a timer cannot fire
		 * before we know whether we park) */
		spin_lock(&c->tlock);
		a->t->when = a->deadline;
		a->t->tw = a->w;
		a->t->tcar = c;
		if (!heap_push(c, a->t)) {
			/* no memory for a timer: do not park (the task looks
			 * again: a busy wait, not a hang) */
			a->t->tcar = NULL;
			spin_unlock(&c->tlock);
			return false;
		}
	}
	uint32_t s = weft__ld32_acq(&a->w->state);
	bool parked = false;
	while (weft__waiter_live(s) || (s & WEFT__W_CLAIMED)) {
		/* release (full RMW): w->task and the timer before PARKED;
		 * pairs with the waker's CAS, after which it reads w->task */
		if (weft__cas32(&a->w->state, &s, s | WEFT__W_PARKED)) {
			parked = true;
			break;
		}
	}
	if (timed) {
		if (!parked) {
			heap_remove(c, a->t); /* final already: the wait is over */
			a->t->tcar = NULL;
		}
		spin_unlock(&c->tlock);
	}
	return parked;
}

static uint32_t task_wait(weft__task_t *t, weft__waiter_t *w, int64_t deadline)
{
	for (;;) {
		/* acquire: pairs with the waker's RMW on state */
		uint32_t s = weft__ld32_acq(&w->state);
		if (weft__waiter_final(s))
			return s;
		/* a claimed handoff is never abandoned: it completes promptly */
		int64_t dl = (s & WEFT__W_CLAIMED) ? WEFT_FOREVER : deadline;
		if (weft__deadline_passed(dl))
			return WEFT__W_TIMEOUT;
		w->task = t;
		struct wait_commit a = {w, t, dl};
		weft__st64_rlx((uint64_t *)&t->wait_until, (uint64_t)dl);
		weft__st32_rlx(&t->status, TASK_WAITING);
		task_park(commit_wait, &a);
		if (dl != WEFT_FOREVER)
			timer_disarm(t);
	}
}

#define WAIT_IN_WEFT "a weft call (channel, select, sync, context, pool, group)"

uint32_t weft__task_wait(weft__waiter_t *w, int64_t deadline)
{
	weft__task_t *t = weft__task_self();
	if (weft__ldp_rlx((void **)&t->wait_kind))
		return task_wait(t, w, deadline); /* park_word, sleep: theirs */
	set_wait(t, WAIT_IN_WEFT, w);
	uint32_t st = task_wait(t, w, deadline);
	set_wait(t, NULL, NULL);
	return st;
}

bool weft__task_park_publish(weft__waiter_t *w, bool (*publish)(void *), void *arg)
{
	weft__task_t *t = weft__task_self();
	w->task = t;
	/* plain: nobody can see w before publish */
	w->state = WEFT__W_PARKED;
	set_wait(t, WAIT_IN_WEFT, w);
	weft__st64_rlx((uint64_t *)&t->wait_until, (uint64_t)WEFT_FOREVER);
	weft__st32_rlx(&t->status, TASK_WAITING);
	/* publish is the park's commit: it runs once our context is saved,
	 * so a waker that finds w may ready us at once; false readies us
	 * again with w untouched */
	task_park(publish, arg);
	set_wait(t, NULL, NULL);
	/* acquire: pairs with the release of whoever ended the wait */
	if (weft__ld32_acq(&w->state) != WEFT__W_PARKED)
		return true;
	w->state = WEFT__W_WAITING; /* not published: still ours alone */
	return false;
}

/* ---- flagged words ---- */

static struct bucket *bucket_of(const uint32_t *word)
{
	return &rt.words[((uintptr_t)word >> 2) % WORD_BUCKETS];
}

static void word_unlink(struct bucket *b, struct wordwait *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		b->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	e->linked = false;
	weft__faa32(&b->count, (uint32_t)-1);
}

int weft__task_park_word(uint32_t *word, uint32_t expected, int64_t deadline)
{
	weft__task_t *self = weft__task_self();
	set_wait(self, "a weft word (Once, WaitGroup, a slow lock, a ring slot)", word);
	struct bucket *b = bucket_of(word);
	struct wordwait e = {.word = word, .linked = true};
	spin_lock(&b->lock);
	e.next = b->head;
	if (b->head)
		b->head->prev = &e;
	b->head = &e;
	/* RMW: registered before we look at the word (Dekker with the
	 * waker's change then its count load, in task_unpark_word) */
	weft__faa32(&b->count, 1);
	if (weft__ld32_acq(word) != expected) {
		word_unlink(b, &e);
		spin_unlock(&b->lock);
		return 0;
	}
	spin_unlock(&b->lock);
	uint32_t st = weft__task_wait(&e.w, deadline);
	spin_lock(&b->lock);
	if (e.linked)
		word_unlink(b, &e);
	spin_unlock(&b->lock);
	set_wait(self, NULL, NULL);
	return st == WEFT__W_TIMEOUT ? -ETIMEDOUT : 0;
}

void weft__task_unpark_word(uint32_t *word, int n)
{
	struct bucket *b = bucket_of(word);
	/* store-load: the caller's change of the word before the count */
	weft__fence_sc();
	if (weft__ld32_rlx(&b->count) == 0)
		return;
	spin_lock(&b->lock);
	for (struct wordwait *e = b->head; e && n > 0;) {
		struct wordwait *nx = e->next;
		if (e->word == word) {
			uint32_t old;
			word_unlink(b, e);
			if (weft__waiter_end(&e->w, WEFT__W_NOTIFY, &old)) {
				weft__waiter_wake(&e->w, old);
				n--;
			}
		}
		e = nx;
	}
	spin_unlock(&b->lock);
}

/* ---- finding work, idling ---- */

/* Take work from v only if it has waited. A carrier that keeps up with
 * its queue (hand-offs among its tasks: a pipeline, a pool of tasks that
 * each run briefly) runs it faster alone than with its tasks split over
 * cores, where every hand-off moves cache lines between cores (~250 ns
 * here, more than a switch). One that is behind (the tasks queued
 * STEAL_DELAY_NS ago still wait: long tasks, or a task that holds the
 * carrier) loses half its queue; one that has not switched at all in that
 * time loses its runnext task too. */
static weft__task_t *steal_behind(struct carrier *c, struct carrier *v, int64_t now)
{
	uint32_t h = weft__ld32_acq(&v->head), tl = weft__ld32_acq(&v->tail);
	uint32_t sw = weft__ld32_rlx(&v->nswitch);
	weft__task_t *rn = weft__ldp_rlx((void **)&v->runnext), *got = NULL;
	int64_t age = now - c->obs[v->id].when;
	if (h == tl && !rn) {
		c->obs[v->id].when = 0; /* nothing queued */
		return NULL;
	}
	if (c->obs[v->id].when && age >= STEAL_DELAY_NS && age < 50 * STEAL_DELAY_NS) {
		if ((int32_t)(h - c->obs[v->id].tail) < 0)
			got = runq_steal(c, v);
		else if (sw == c->obs[v->id].nswitch && rn && runnext_steal(v, rn))
			got = rn;
	}
	if (got) {
		c->obs[v->id].when = 0;
	} else if (!c->obs[v->id].when || age >= STEAL_DELAY_NS) {
		c->obs[v->id].tail = tl;
		c->obs[v->id].nswitch = sw;
		c->obs[v->id].when = now;
	}
	return got;
}

static weft__task_t *find_work(struct carrier *c)
{
	weft__task_t *t = runq_get(c);
	if (t)
		return t;
	if ((t = global_get(c)) != NULL)
		return t;
	uint32_t started = weft__ld32_acq(&rt.started);
	int64_t now = weft_now();
	for (uint32_t i = 0; i < started; i++) {
		struct carrier *v = weft__ldp_acq((void **)&rt.car[i]);
		if (v && (int64_t)weft__ld64_rlx(&v->next_when) <= now)
			run_timers(c, v, now);
	}
	if ((t = runq_get(c)) != NULL)
		return t;
	if (started > 1) {
		uint32_t k = rnd(c) % started;
		for (uint32_t i = 0; i < started; i++) {
			struct carrier *v = weft__ldp_acq((void **)&rt.car[(k + i) % started]);
			if (v && v != c && (t = steal_behind(c, v, now)) != NULL)
				return t;
		}
	}
	return NULL;
}

static int64_t earliest_timer(void)
{
	int64_t when = WEFT_FOREVER;
	uint32_t started = weft__ld32_acq(&rt.started);
	for (uint32_t i = 0; i < started; i++) {
		struct carrier *v = weft__ldp_acq((void **)&rt.car[i]);
		int64_t w = v ? (int64_t)weft__ld64_rlx(&v->next_when) : WEFT_FOREVER;
		if (w < when)
			when = w;
	}
	return when;
}

/* Work was queued: if every other carrier sleeps for good (none spins,
 * none polls), wake one; it polls from then on while some carrier is
 * busy (idle). */
static void wake_idle(void)
{
	/* store-load: our push before the idle counts (see Ordering) */
	weft__fence_sc();
	if (weft__ld32_rlx(&rt.nidle) == 0 || weft__ld32_rlx(&rt.nspinning) != 0 ||
	    weft__ld32_rlx(&rt.npolling) != 0)
		return;
	uint32_t started = weft__ld32_acq(&rt.started), procs = weft__ld32_rlx(&rt.nactive);
	for (uint32_t i = 0; i < started && i < procs; i++) {
		struct carrier *v = weft__ldp_acq((void **)&rt.car[i]);
		if (v && wake_carrier(v))
			return;
	}
}

/* A retired carrier (id >= nprocs) hands its queue to the others. */
static void hand_back(struct carrier *c)
{
	weft__task_t *t;
	while ((t = runq_get(c)) != NULL) {
		global_push(t, t, 1);
		wake_idle();
	}
}

static void monitor_kick(void)
{
	uint32_t one = 1;
	/* the monitor parks only after ~20 idle ticks: this is rare */
	if (weft__ld32_rlx(&rt.mon_parked) && weft__cas32(&rt.mon_parked, &one, 0))
		weft__monitor_kick(&rt.watch);
}

/* Nothing to run: spin a little looking, then sleep: until woken or the
 * next timer when every carrier is idle (about no CPU), else as the one
 * poller, waking every poll_ns to look for work that waits. Returns work,
 * or NULL for a retired carrier (its caller looks at nprocs again). */
static weft__task_t *idle(struct carrier *c)
{
	weft__task_t *t;
	bool retired = c->id >= weft__ld32_rlx(&rt.nactive);
	if (retired) {
		hand_back(c);
	} else {
		weft__faa32(&rt.nspinning, 1);
		for (int k = 0; k < IDLE_SPIN_ROUNDS; k++) {
			if ((t = find_work(c)) != NULL) {
				weft__faa32(&rt.nspinning, (uint32_t)-1);
				return t;
			}
			for (int i = 0; i < 32; i++)
				weft__cpu_relax();
			if (k % 16 == 15)
				sched_yield();
		}
		weft__faa32(&rt.nspinning, (uint32_t)-1);
	}
	if (!c->poll_ns)
		c->poll_ns = POLL_MIN_NS;
	for (;;) {
		/* full RMW: from here a waker may take us (see WAKE_ASLEEP) */
		weft__fas32(&c->wake, WAKE_ASLEEP);
		/* RMW: registered as idle before the last look (Ordering) */
		uint32_t idle_now = weft__faa32(&rt.nidle, 1) + 1;
		/* retired, but active again (kick_carriers: its store of
		 * nactive, then its CAS on wake; ours the other way round) */
		bool back = retired && c->id < weft__ld32_rlx(&rt.nactive);
		t = retired ? NULL : find_work(c);
		bool poller = false;
		if (!t && !back) {
			int64_t until = retired ? WEFT_FOREVER : earliest_timer();
			uint32_t z = 0;
			if (!retired && idle_now < weft__ld32_acq(&rt.started) &&
			    weft__cas32(&rt.npolling, &z, 1)) {
				poller = true;
				int64_t p = weft_now() + c->poll_ns;
				if (p < until)
					until = p;
			}
			weft__futex_wait(&c->wake, WAKE_ASLEEP, until);
			if (poller)
				weft__st32_rel(&rt.npolling, 0);
		}
		weft__faa32(&rt.nidle, (uint32_t)-1);
		/* full RMW: awake before the look below; reading WOKEN means a
		 * waker's push is visible to it */
		uint32_t was = weft__fas32(&c->wake, WAKE_AWAKE);
		/* woken, but our last look found work already: that wake was
		 * meant for work we may not take, pass it on (the SPIN model
		 * tests/models/idle.pml finds the lost wake-up without this) */
		if (was == WAKE_WOKEN && t)
			wake_idle();
		if (t || retired || (t = find_work(c)) != NULL) {
			c->poll_ns = POLL_MIN_NS;
			if (t)
				monitor_kick();
			return t;
		}
		if (poller && c->poll_ns < POLL_MAX_NS)
			c->poll_ns *= 2;
	}
}

/* ---- the monitor ---- */

/* Tasks are cooperative: a task that computes, spins or blocks outside
 * weft (a system call, sleep(3), a pthread lock) holds its carrier. Once a
 * millisecond while any carrier is busy, the monitor looks at each: one
 * that has not switched since the last look and has tasks queued behind
 * its running one is held. Then an idle carrier is woken (it takes what
 * waits: steal_behind), or, with none idle, one more carrier is started
 * (nextra; Go starts another M for a P whose M is in a system call).
 * Extra carriers retire after ~100 ms without a held carrier. With every
 * carrier idle for ~20 ms the monitor parks until a carrier wakes with
 * work (monitor_kick). */
#define MON_TICK_NS 1000000
#define MON_LINGER_TICKS 20
#define MON_RETIRE_TICKS 100
#define MON_GROW_TICKS 2
#define MAX_EXTRA 64

static int start_carriers(uint32_t want);

static void set_active(void)
{
	uint32_t n = weft__ld32_rlx(&rt.nprocs) + weft__ld32_rlx(&rt.nextra);
	weft__st32_rlx(&rt.nactive, n < MAX_PROCS ? n : MAX_PROCS);
}

/* wake one sleeping carrier, whoever spins or polls */
static bool wake_one(uint32_t active)
{
	uint32_t started = weft__ld32_acq(&rt.started);
	for (uint32_t i = 0; i < started && i < active; i++) {
		struct carrier *v = weft__ldp_acq((void **)&rt.car[i]);
		if (v && wake_carrier(v))
			return true;
	}
	return false;
}

/* After nactive changed: wake every sleeping carrier, so one that was
 * retired and asleep for good runs again, and one retired now hands its
 * queue back. One that is awake reads nactive again before it sleeps
 * (idle, carrier_main). */
static void kick_carriers(void)
{
	uint32_t started = weft__ld32_acq(&rt.started);
	for (uint32_t i = 0; i < started; i++) {
		struct carrier *v = weft__ldp_acq((void **)&rt.car[i]);
		if (v)
			wake_carrier(v);
	}
}

/* The monitor's notes (its own: looks run one at a time) */
static struct {
	uint32_t seen[MAX_PROCS], seen_head[MAX_PROCS]; /* nswitch, head */
	weft__probe_t probe[MAX_PROCS];
	uint32_t seen_gcount;
	unsigned quiet, calm, grow_wait;
	bool probes_ready;
} mon;

/* The runtime's watch (monitor.h): a look per MON_TICK_NS. */
static int64_t monitor_look(weft__watch_t *w, int64_t now)
{
	(void)w;
	uint32_t one = 1;
	if (weft__ld32_acq(&rt.dump_requested) && weft__cas32(&rt.dump_requested, &one, 0))
		weft__runtime_dump(2);
	if (!mon.probes_ready) {
		for (unsigned i = 0; i < MAX_PROCS; i++)
			weft__probe_init(&mon.probe[i]);
		mon.probes_ready = true;
	}
	uint32_t started = weft__ld32_acq(&rt.started);
	uint32_t active = weft__ld32_rlx(&rt.nactive);
	uint32_t held = 0, held_off_cpu = 0, busy = 0, sleeping = 0, stuck = 0;
	uint32_t gcount = weft__ld32_rlx(&rt.gcount);
	/* the global queue waits: not empty, and nobody took from it */
	bool global_waits = gcount != 0 && gcount >= mon.seen_gcount;
	mon.seen_gcount = gcount;
	for (uint32_t i = 0; i < started && i < MAX_PROCS; i++) {
		struct carrier *v = weft__ldp_acq((void **)&rt.car[i]);
		if (!v)
			continue;
		uint32_t sw = weft__ld32_rlx(&v->nswitch);
		bool asleep = weft__ld32_rlx(&v->wake) != WAKE_AWAKE;
		sleeping += asleep && i < active;
		uint32_t head = weft__ld32_acq(&v->head);
		/* (a carrier whose thread died and is being replaced is not
		 * held: its tasks wait for the replacement, not for a task) */
		bool still = !asleep && sw == mon.seen[i] && i < active &&
			     !weft__ld32_rlx(&v->respawning);
		if (!asleep)
			busy++;
		if (still) {
			/* not switched since the last look: one task holds it.
			 * Computing, or blocked outside weft? (the probe) */
			stuck++;
			enum weft__probe_verdict how =
				weft__probe_look(&mon.probe[i], weft__ld32_rlx(&v->ktid), 0, now);
			/* and the tasks queued behind it not taken either */
			if (!runq_empty(v) && head == mon.seen_head[i]) {
				held++;
				held_off_cpu += how == WEFT__PROBE_OFF_CPU;
			}
		} else {
			weft__probe_reset(&mon.probe[i]);
		}
		mon.seen[i] = sw;
		mon.seen_head[i] = head;
	}
	/* the global queue starves only if every carrier is stuck */
	if (held || (global_waits && !sleeping && stuck >= active)) {
		mon.calm = 0;
		if (!sleeping || !wake_one(active)) {
			bool kick = false;
			spin_lock(&rt.startlock);
			/* at most MAX_EXTRA. A carrier held by a task blocked
			 * outside weft leaves its core free: its replacement
			 * starts at once. One held by a task that computes:
			 * one more per MON_GROW_TICKS at most (more threads
			 * than cores only crowd them) */
			if (rt.nextra < MAX_EXTRA && rt.nprocs + rt.nextra < MAX_PROCS &&
			    (held_off_cpu || ++mon.grow_wait >= MON_GROW_TICKS)) {
				mon.grow_wait = 0;
				weft__st32_rlx(&rt.nextra, rt.nextra + 1);
				set_active();
				start_carriers(rt.nprocs + rt.nextra);
				/* (the carrier it allows may exist already,
				 * retired and asleep) */
				kick = true;
			}
			spin_unlock(&rt.startlock);
			if (kick)
				kick_carriers();
		}
	} else if (global_waits && sleeping && wake_one(active)) {
		/* work has waited a whole tick while a carrier sleeps: a
		 * safety net (wake_idle wakes one whenever work is queued) */
		mon.calm = 0;
	} else if (++mon.calm >= MON_RETIRE_TICKS && weft__ld32_rlx(&rt.nextra)) {
		mon.calm = 0;
		spin_lock(&rt.startlock);
		weft__st32_rlx(&rt.nextra, rt.nextra - 1);
		set_active();
		spin_unlock(&rt.startlock);
	}
	mon.quiet = busy || global_waits ? 0 : mon.quiet + 1;
	if (mon.quiet >= MON_LINGER_TICKS) {
		mon.quiet = 0;
		weft__st32_rel(&rt.mon_parked, 1);
		/* store-load: idle before the last look; pairs with a
		 * carrier's leaving idle, then monitor_kick's load */
		weft__fence_sc();
		if (weft__ld32_rlx(&rt.nidle) >= weft__ld32_acq(&rt.started) &&
		    weft__ld32_rlx(&rt.gcount) == 0 && !weft__ld32_acq(&rt.dump_requested))
			return WEFT__WATCH_IDLE; /* monitor_kick clears mon_parked */
		weft__st32_rlx(&rt.mon_parked, 0);
	}
	return MON_TICK_NS;
}

/* ---- the dump ---- */

static const char *status_name(uint32_t s)
{
	return s == TASK_RUNNING ? "running" : s == TASK_WAITING ? "waiting" : "runnable";
}

static void runtime_dump(int fd);

void weft__runtime_dump(int fd)
{
	/* dprintf is a cancellation point, called under the registry's
	 * locks: not cancellable here (death.h) */
	int old = weft__nocancel_begin();
	runtime_dump(fd);
	weft__nocancel_end(old);
}

static void runtime_dump(int fd)
{
	uint32_t started = weft__ld32_acq(&rt.started);
	uint64_t ntasks = 0;
	int64_t now = weft_now();
	dprintf(fd, "weft runtime: %u carriers (%u wanted, %u extra), %u idle, %u in the global queue\n",
		started, weft__ld32_rlx(&rt.nprocs), weft__ld32_rlx(&rt.nextra),
		weft__ld32_rlx(&rt.nidle), weft__ld32_rlx(&rt.gcount));
	for (uint32_t i = 0; i < started; i++) {
		struct carrier *v = weft__ldp_acq((void **)&rt.car[i]);
		if (!v)
			continue;
		weft__task_t *cur = weft__ldp_rlx((void **)&v->current);
		uint32_t q = weft__ld32_acq(&v->tail) - weft__ld32_acq(&v->head);
		dprintf(fd, "carrier %u: %s, task %llu, %u queued%s, %u switches\n", i,
 weft__ld32_rlx(&v->wake) != WAKE_AWAKE ? "asleep" : cur ? "running" : "looking for work",
			cur ? (unsigned long long)cur->id : 0ull, q,
			weft__ldp_rlx((void **)&v->runnext) ? " + next" : "",
			weft__ld32_rlx(&v->nswitch));
	}
	for (unsigned k = 0; k < REGISTRY_SHARDS; k++) {
		spin_lock(&rt.reg[k].lock);
		for (weft__task_t *t = rt.reg[k].head; t; t = t->all_next, ntasks++) {
			uint32_t st = weft__ld32_rlx(&t->status);
			dprintf(fd, "task %llu \"%s\": %s", (unsigned long long)t->id, t->name,
				status_name(st));
			const char *kind = weft__ldp_rlx((void **)&t->wait_kind);
			int64_t until = (int64_t)weft__ld64_rlx((uint64_t *)&t->wait_until);
			const void *obj = weft__ldp_rlx((void **)&t->wait_obj);
			if (st == TASK_WAITING && kind)
				dprintf(fd, " in %s", kind);
			if (st == TASK_WAITING && kind && obj)
				dprintf(fd, " (%p)", obj);
			if (st == TASK_WAITING && until != WEFT_FOREVER)
				dprintf(fd, ", until %+.3f ms", (until - now) / 1e6);
			dprintf(fd, "; stack %zu KiB%s\n", t->stack_size >> 10,
				t->guarded ? "" : " (canary)");
		}
		spin_unlock(&rt.reg[k].lock);
	}
	dprintf(fd, "%llu tasks\n", (unsigned long long)ntasks);
}

static void sigquit_handler(int sig)
{
	(void)sig;
	uint32_t one = 1;
	/* async-signal-safe: a flag and a futex wake; the monitor prints */
	weft__st32_rel(&rt.dump_requested, 1);
	weft__cas32(&rt.mon_parked, &one, 0);
	weft__monitor_kick(&rt.watch); /* lock-free (monitor.h) */
}

int weft__runtime_dump_on_sigquit(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = sigquit_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGQUIT, &sa, NULL) == 0 ? 0 : -errno;
}

/* ---- carriers ---- */

static int carrier_thread(struct carrier *c);
static void registry_remove(weft__task_t *t);

/* Its thread-specific datum: set for life (a carrier never returns), so
 * its destructor runs only for a carrier thread that dies (below). */
static pthread_key_t carrier_key;
static pthread_once_t carrier_key_once = PTHREAD_ONCE_INIT;
static int carrier_key_ok;

/* ---- a carrier thread that ends inside a task ----
 *
 * A task that calls pthread_exit, or that is running when its carrier
 * thread is canceled at a cancellation point (pthread_cancel; the task's
 * pthread_self() is its carrier), ends the carrier thread: glibc unwinds
 * the task's stack up to its first frame (weft__switch_trampoline says it
 * has no caller), runs the cleanups of the frames with unwind info on the
 * way, longjmps to the carrier thread's start on the thread's own stack
 * and runs its thread-specific destructors before the thread ends. Ours:
 *  - tells the sanitizers that the thread is back on its own stack;
 *  - starts a replacement thread on the same struct carrier, whose run
 *    queue, runnext, timers and stack cache carry on: no task queued or
 *    parked there is lost, and the runtime keeps its carriers;
 *  - runs the dead task's death notes (internal/death.h: the pool counts
 *    its job as failed and starts another worker, ...) as a plain thread;
 *  - frees the dead task's stack.
 * Only the task that was running dies. The others keep no pointer into the
 * carrier thread's stack or thread-locals (task.h), so they carry on.
 * weft's own code on a carrier has no cancellation point (death.h), so a
 * cancel is acted on only inside a task's own code. */
static void carrier_died(void *v)
{
	struct carrier *c = v;
	/* relaxed: our own field (the task ran here when the thread ended) */
	weft__task_t *t = weft__ldp_rlx((void **)&c->current);
#ifdef WEFT__TSAN
	__tsan_switch_to_fiber(c->g0.tsan_fiber, 0);
#endif
#ifdef WEFT__ASAN
	/* back on the thread's stack; NULL: the dead task's fake stack goes */
	__sanitizer_start_switch_fiber(NULL, c->g0.stack_lo, c->g0.stack_size);
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	/* the unwound frames' shadow is stale where our frames now go */
	weft__death_unpoison_below(c->g0.stack_lo);
	tl_carrier = NULL; /* from here on a plain thread */
	/* the replacement takes the signal stack over */
	stack_t off = {.ss_flags = SS_DISABLE};
	sigaltstack(&off, NULL);
	weft__stp_rlx((void **)&c->current, NULL); /* relaxed: read by the dump */
	c->pending = PEND_NONE;
	/* relaxed: for the monitor (the task that held it is gone: not a
	 * held carrier to add another for, while its replacement starts) */
	weft__st32_rlx(&c->respawning, 1);
	if (t)
		registry_remove(t);
	/* our last touch of c: the replacement owns it from its start */
	unsigned id = c->id;
	int rc = carrier_thread(c);
	if (rc) {
		/* the others take its queue (steal_behind: it never switches)
		 * and the monitor, seeing it held, adds a carrier if tasks
		 * wait (relaxed: a hint) */
		weft__st32_rlx(&c->respawning, 0);
		char msg[160];
		int n = snprintf(msg, sizeof msg,
				 "weft: carrier %u ended inside task %llu and could not be "
				 "replaced (pthread_create: %d)\n",
				 id, t ? (unsigned long long)t->id : 0ull, rc);
		if (n > 0 && write(2, msg, (size_t)n) < 0) {
		}
	}
	if (!t)
		return;
	weft__death_run(&t->notes);
#ifdef WEFT__ASAN
	__asan_unpoison_memory_region(t->ctx.stack_lo, t->ctx.stack_size);
#endif
#ifdef WEFT__TSAN
	__tsan_destroy_fiber(t->ctx.tsan_fiber);
	t->ctx.tsan_fiber = NULL;
#endif
	stack_delete(t);
}

static void carrier_key_init(void)
{
	/* without a key a carrier that dies is not replaced (as before) */
	carrier_key_ok = pthread_key_create(&carrier_key, carrier_died) == 0;
}

static void *carrier_main(void *p)
{
	struct carrier *c = p;
	tl_carrier = c;
	if (carrier_key_ok)
		pthread_setspecific(carrier_key, c);
	/* kept in the carrier (reachable: the leak checker sees it in use);
	 * a replacement carrier thread takes its predecessor's */
	if (!c->altstack)
		c->altstack = weft__sys_malloc(64 << 10);
	stack_t ss = {.ss_sp = c->altstack, .ss_size = 64 << 10};
	if (ss.ss_sp)
		weft__sys_sigaltstack(&ss, NULL);
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstack(&attr, &c->g0.stack_lo, &c->g0.stack_size);
		pthread_attr_destroy(&attr);
	}
#ifdef WEFT__TSAN
	c->g0.tsan_fiber = __tsan_get_current_fiber();
#endif
	char name[16];
	snprintf(name, sizeof name, "weft-carrier%u", c->id);
	weft__st32_rlx(&c->ktid, (uint32_t)gettid());
	pthread_setname_np(pthread_self(), name);
	weft__st32_rlx(&c->respawning, 0); /* relaxed: a hint for the monitor */
	for (;;) {
		weft__task_t *t = NULL;
		if (c->id < weft__ld32_rlx(&rt.nactive))
			t = find_work(c);
		if (!t && !(t = idle(c)))
			continue;
		if (c->id >= weft__ld32_rlx(&rt.nactive)) {
			/* retired meanwhile: give it back */
			global_push(t, t, 1);
			wake_idle();
			continue;
		}
		weft__stp_rlx((void **)&c->current, t); /* relaxed: read by the dump */
		weft__st32_rlx(&t->status, TASK_RUNNING);
		weft__st32_rlx(&c->nswitch, c->nswitch + 1);
		ctx_switch(&c->g0, &t->ctx, false);
	}
	return NULL;
}

/* A detached thread running carrier_main(c): 0 or pthread_create's error. */
static int carrier_thread(struct carrier *c)
{
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int rc = weft__sys_thread_create(&c->thread, &a, carrier_main, c);
	pthread_attr_destroy(&a);
	return rc;
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static unsigned procs_from_env(void)
{
	const char *e = getenv("WEFT_PROCS");
	long v = e ? atol(e) : 0;
	if (v <= 0)
		return online_cpus();
	return v > (long)MAX_PROCS ? MAX_PROCS : (unsigned)v;
}

/* Start carriers up to the wanted count; lock held. */
static int start_carriers(uint32_t want)
{
	if (want > MAX_PROCS)
		want = MAX_PROCS;
	for (uint32_t i = rt.started; i < want; i++) {
		struct carrier *c = weft__sys_aligned_alloc(WEFT__PAD, (sizeof *c + WEFT__PAD - 1) &
								~(size_t)(WEFT__PAD - 1));
		if (!c)
			return -ENOMEM;
		memset(c, 0, sizeof *c);
		c->id = i;
		c->rng = 0x9E3779B97F4A7C15ull * (i + 1);
		c->next_when = (uint64_t)INT64_MAX;
		pthread_once(&carrier_key_once, carrier_key_init);
		int rc = carrier_thread(c);
		if (rc) {
			free(c);
			return -EAGAIN;
		}
		/* release: the carrier's fields before others find it */
		weft__stp_rel((void **)&rt.car[i], c);
		weft__st32_rel(&rt.started, i + 1);
	}
	return 0;
}

static int ensure_started(void)
{
	if (__builtin_expect(weft__ld32_acq(&rt.started) != 0, 1))
		return 0;
	spin_lock(&rt.startlock);
	int rc = 0;
	bool watch = false;
	if (rt.started == 0) {
		if (rt.nprocs == 0)
			weft__st32_rlx(&rt.nprocs, procs_from_env());
		install_overflow_handler();
		set_active();
		rc = start_carriers(rt.nprocs);
		/* watched as soon as one carrier runs: after a partial start
		 * (a carrier thread that could not start) tasks run on the
		 * others, and the monitor is what replaces a held one (without
		 * it, a task holding the only carrier held every task queued
		 * behind it for good) */
		watch = rt.started != 0 && !rt.watch.look;
		if (watch)
			rt.watch.look = monitor_look;
	}
	spin_unlock(&rt.startlock);
	/* (outside the spin lock: add takes the monitor's lock, and a look
	 * takes ours). If the monitor cannot start, carriers still run; held
	 * ones are not replaced */
	if (watch)
		weft__monitor_add(&rt.watch);
	return weft__ld32_acq(&rt.started) ? 0 : rc;
}

int weft__runtime_set_procs(unsigned n)
{
	if (n > MAX_PROCS)
		return -EINVAL;
	if (n == 0)
		n = online_cpus();
	spin_lock(&rt.startlock);
	int rc = 0;
	weft__st32_rlx(&rt.nprocs, n);
	set_active();
	if (rt.started && rt.nactive > rt.started)
		rc = start_carriers(rt.nactive);
	spin_unlock(&rt.startlock);
	kick_carriers();
	return rc;
}

int weft__runtime_set_stack_size(size_t size)
{
	if (size == 0) {
		__atomic_store_n(&rt.stack_size, STACK_DEFAULT, __ATOMIC_RELAXED);
		return 0;
	}
	if (size > STACK_MAX)
		return -ENOMEM;
	__atomic_store_n(&rt.stack_size, round_stack(size), __ATOMIC_RELAXED);
	return 0;
}

/* ---- tasks ---- */

static void registry_add(weft__task_t *t)
{
	unsigned k = (unsigned)(t->id % REGISTRY_SHARDS);
	spin_lock(&rt.reg[k].lock);
	t->all_prev = NULL;
	t->all_next = rt.reg[k].head;
	if (t->all_next)
		t->all_next->all_prev = t;
	rt.reg[k].head = t;
	spin_unlock(&rt.reg[k].lock);
}

static void registry_remove(weft__task_t *t)
{
	unsigned k = (unsigned)(t->id % REGISTRY_SHARDS);
	spin_lock(&rt.reg[k].lock);
	if (t->all_prev)
		t->all_prev->all_next = t->all_next;
	else
		rt.reg[k].head = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
	spin_unlock(&rt.reg[k].lock);
}

void weft__task_entry(void *arg)
{
	(void)arg;
#ifdef WEFT__ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	struct carrier *c = carrier_now();
	weft__task_t *t = c->current;
	after_switch(c);
	t->fn(t->arg);
	registry_remove(t);
	c = carrier_now();
	switch_out(c, t, PEND_EXIT, NULL, NULL);
	__builtin_unreachable();
}

int weft__task_go(void (*fn)(void *), void *arg, size_t stack_size, const char *name)
{
	if (!WEFT__HAVE_SWITCH)
		return -ENOSYS;
	if (stack_size > STACK_MAX)
		return -ENOMEM;
	int rc = ensure_started();
	if (rc)
		return rc;
	size_t size = stack_size ? round_stack(stack_size) : default_stack();
	struct carrier *c = carrier_now();
	weft__task_t *t = task_alloc(c, size);
	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->arg = arg;
	t->id = weft__faa64(&rt.next_id, 1) + 1;
	if (name) {
		strncpy(t->name, name, sizeof t->name - 1);
		t->name[sizeof t->name - 1] = 0;
	} else {
		t->name[0] = 0;
	}
	t->ctx.sp = weft__switch_init(t, weft__task_entry);
	t->ctx.asan_fake = NULL;
	t->status = TASK_RUNNABLE;
	set_wait(t, NULL, NULL);
	t->slot = NULL;
	t->notes = NULL;
	registry_add(t);
#ifdef WEFT__TSAN
	t->ctx.tsan_fiber = __tsan_create_fiber(0);
#endif
	if (c) {
		runq_put_tail(c, t);
	} else {
		global_push(t, t, 1);
	}
	wake_idle();
	return 0;
}

void weft__task_yield(void)
{
	struct carrier *c = carrier_now();
	weft__task_t *t = c ? c->current : NULL;
	if (!t) {
		sched_yield();
		return;
	}
	/* anything else to run? (else carry on: a yield that finds nobody) */
	if (runq_empty(c) && weft__ld32_rlx(&rt.gcount) == 0 &&
	    !weft__deadline_passed((int64_t)weft__ld64_rlx(&c->next_when)))
		return;
	if (runq_empty(c)) {
		weft__task_t *g = global_get(c);
		if (g)
			runq_put_tail(c, g);
	}
	switch_out(c, t, PEND_YIELD, NULL, NULL);
}

int weft__task_sleep_until(int64_t deadline)
{
	weft__waiter_t w = {WEFT__W_WAITING, NULL};
	weft__task_t *self = weft__task_self();
	set_wait(self, "weft_sleep", NULL);
	/* nobody ends this wait: only its timer */
	while (weft__task_wait(&w, deadline) != WEFT__W_TIMEOUT)
		;
	set_wait(self, NULL, NULL);
	return 0;
}

uint64_t weft__task_id(void)
{
	weft__task_t *t = weft__task_self();
	return t ? t->id : 0;
}

void **weft__task_slot(void)
{
	weft__task_t *t = weft__task_self();
	return t ? &t->slot : NULL;
}

weft__death_note_t **weft__task_notes(void)
{
	weft__task_t *t = weft__task_self();
	return t ? &t->notes : NULL;
}

/* bench/sync.c: the sync benchmark scenarios (see sync.h).
 *
 * Each scenario is one function that sets up, times and checks itself;
 * run() around it adds the hang watchdog. Timing (bench/measure.h's
 * meter): wall time from CLOCK_MONOTONIC, CPU time and context switches of
 * the whole process from getrusage, all over the same spans (threaded
 * scenarios: from the barrier that releases the threads to the last join);
 * peak RSS over the whole run, setup included.
 */
#include "sync.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h> /* _exit */

#include <weft/chan.h>
#include <weft/ctx.h>
#include <weft/group.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "baseline/sem_mutex.h"
#include "baseline/wg_mutex.h"
#include "internal/switch.h"
#include "measure.h"
#ifdef WEFT_BOOST_FIBER
#include "strategies/boost_fiber.h"
#endif

#define NS_PER_S BENCH_NS_PER_S
#define MAX_THREADS 8
#define TREE_CHILDREN 10000

const struct sync_bench_case sync_bench_cases[] = {
	{ "sem_uncontended", SYNC_BENCH_SEM_UNCONTENDED, 1, 1, 0 },
	{ "sem_contended/threads:2", SYNC_BENCH_SEM_CONTENDED, 2, 1, 0 },
	{ "sem_contended/threads:4", SYNC_BENCH_SEM_CONTENDED, 4, 1, 0 },
	{ "sem_contended/threads:8", SYNC_BENCH_SEM_CONTENDED, 8, 1, 0 },
	{ "errgroup/limit:100", SYNC_BENCH_ERRGROUP, 0, 100, 0 },
	/* the same with weft_group_set_tasks (threads: 1 = tasks) */
	{ "errgroup/limit:100/as:tasks", SYNC_BENCH_ERRGROUP, 1, 100, 0 },
	{ "ctx_with_cancel/parent:background", SYNC_BENCH_CTX_BACKGROUND, 1, 0, 0 },
	{ "ctx_with_cancel/parent:live", SYNC_BENCH_CTX_CHILD, 1, 0, 0 },
	{ "ctx_cancel_tree/children:10000", SYNC_BENCH_CTX_TREE, 1, 0, TREE_CHILDREN },
	{ "wg/threads:2", SYNC_BENCH_WG, 2, 0, 0 },
	{ "wg/threads:8", SYNC_BENCH_WG, 8, 0, 0 },
	/* a task starts them in a loop: they run on the other carrier (the
	 * spawner holds its own), so each task's lines cross cores */
	{ "task_spawn_exit", SYNC_BENCH_TASK_SPAWN, 1, 0, 0 },
	/* the spawner yields every 64 starts: they run on its carrier */
	{ "task_spawn_exit/yield_every:64", SYNC_BENCH_TASK_SPAWN, 64, 0, 0 },
	{ "task_handoff/cap:0", SYNC_BENCH_TASK_HANDOFF, 2, 0, 0 },
	{ "task_parked/tasks:100000", SYNC_BENCH_TASK_PARKED, 1, 0, 100000 },
	/* sites:1, both contexts switch from one loop (as the scheduler's
	 * parks, which all switch in ctx_switch); sites:2, each from its own */
	{ "task_switch/sites:1", SYNC_BENCH_TASK_SWITCH, 1, 0, 0 },
	{ "task_switch/sites:2", SYNC_BENCH_TASK_SWITCH, 2, 0, 0 },
};
const size_t sync_bench_ncases = sizeof sync_bench_cases / sizeof sync_bench_cases[0];

const char *sync_bench_impl_name(enum sync_bench_impl impl)
{
	return impl == SYNC_IMPL_WEFT ? "weft" : impl == SYNC_IMPL_MUTEX ? "mutex" : "boost_fiber";
}

static int is_task_case(const struct sync_bench_case *c)
{
	return c->kind == SYNC_BENCH_TASK_SPAWN || c->kind == SYNC_BENCH_TASK_HANDOFF ||
	       c->kind == SYNC_BENCH_TASK_PARKED || c->kind == SYNC_BENCH_TASK_SWITCH;
}

int sync_bench_supported(const struct sync_bench_case *c, enum sync_bench_impl impl)
{
	if (impl == SYNC_IMPL_BOOST_FIBER) {
#ifdef WEFT_BOOST_FIBER
		return is_task_case(c);
#else
		return 0;
#endif
	}
	switch (c->kind) {
	case SYNC_BENCH_CTX_BACKGROUND:
	case SYNC_BENCH_CTX_CHILD:
	case SYNC_BENCH_CTX_TREE:
	case SYNC_BENCH_TASK_HANDOFF:
	case SYNC_BENCH_TASK_PARKED:
	case SYNC_BENCH_TASK_SWITCH:
		return impl == SYNC_IMPL_WEFT;
	case SYNC_BENCH_TASK_SPAWN:
		return impl == SYNC_IMPL_WEFT || c->threads == 1;
	case SYNC_BENCH_ERRGROUP:
		return impl == SYNC_IMPL_WEFT || c->threads == 0;
	default:
		return impl == SYNC_IMPL_WEFT || impl == SYNC_IMPL_MUTEX;
	}
}

static uint64_t at_least(uint64_t n, uint64_t min)
{
	return n < min ? min : n;
}

uint64_t sync_bench_items(const struct sync_bench_case *c, enum sync_bench_impl impl,
			  uint64_t base)
{
	switch (c->kind) {
	case SYNC_BENCH_SEM_UNCONTENDED:
		return at_least(base, 100);
	case SYNC_BENCH_SEM_CONTENDED: {
		uint64_t n = at_least(base / 20, 100);

		return n - n % c->threads; /* split evenly */
	}
	case SYNC_BENCH_ERRGROUP:
		return at_least(impl == SYNC_IMPL_WEFT ? base / 10 : base / 100, 100);
	case SYNC_BENCH_CTX_BACKGROUND:
	case SYNC_BENCH_CTX_CHILD:
		return at_least(base / 10, 100);
	case SYNC_BENCH_CTX_TREE: {
		uint64_t rounds = base / 1000000;

		rounds = rounds < 1 ? 1 : rounds > 10 ? 10 : rounds;
		return rounds * c->children;
	}
	case SYNC_BENCH_WG:
		return at_least(base / 1000, 100);
	case SYNC_BENCH_TASK_SPAWN:
		return at_least(impl != SYNC_IMPL_MUTEX ? base / 10 : base / 1000, 100);
	case SYNC_BENCH_TASK_HANDOFF:
		return at_least(base / 5, 100) & ~(uint64_t)1; /* two per round trip */
	case SYNC_BENCH_TASK_PARKED:
		return base >= 1000000 ? c->children : at_least(base / 10, 100);
	case SYNC_BENCH_TASK_SWITCH:
		return at_least(base, 100) & ~(uint64_t)1; /* there and back */
	}
	return 0;
}

char *sync_bench_name(char *buf, size_t size, const struct sync_bench_case *c,
		      enum sync_bench_impl impl)
{
	snprintf(buf, size, "sync/%s/%s", c->name, sync_bench_impl_name(impl));
	return buf;
}

/* ---- the semaphore, either implementation ----------------------------- */

struct sem {
	enum sync_bench_impl impl;
	union {
		weft_sem_t w;
		msem_t m;
	} u;
};

static int sem_init(struct sem *s, enum sync_bench_impl impl, int64_t cap)
{
	s->impl = impl;
	return impl == SYNC_IMPL_WEFT ? weft_sem_init(&s->u.w, cap) : msem_init(&s->u.m, cap);
}

static void sem_destroy(struct sem *s)
{
	if (s->impl == SYNC_IMPL_WEFT)
		weft_sem_destroy(&s->u.w);
	else
		msem_destroy(&s->u.m);
}

static inline int sem_acquire(struct sem *s, int64_t n)
{
	return s->impl == SYNC_IMPL_WEFT ? weft_sem_acquire(&s->u.w, n) : msem_acquire(&s->u.m, n);
}

static inline int sem_try_acquire(struct sem *s, int64_t n)
{
	return s->impl == SYNC_IMPL_WEFT ? weft_sem_try_acquire(&s->u.w, n)
					 : msem_try_acquire(&s->u.m, n);
}

static inline int sem_release(struct sem *s, int64_t n)
{
	return s->impl == SYNC_IMPL_WEFT ? weft_sem_release(&s->u.w, n) : msem_release(&s->u.m, n);
}

/* Every token back: try_acquire(capacity) succeeds (then give them back). */
static int tokens_all_back(struct sem *s, int64_t cap, struct sync_bench_result *r)
{
	int rc = sem_try_acquire(s, cap);

	if (rc != 0) {
		snprintf(r->error, sizeof r->error,
			 "tokens lost: try_acquire(%lld) after the run gave %d",
			 (long long)cap, rc);
		return -1;
	}
	if ((rc = sem_release(s, cap)) != 0) {
		snprintf(r->error, sizeof r->error, "release(%lld) gave %d", (long long)cap, rc);
		return -1;
	}
	return 0;
}

/* ---- watchdog --------------------------------------------------------- */

/* A run that does not finish by the timeout is a hang: print its progress
 * and exit 124 (threads blocked on a semaphore cannot be released). */
struct watchdog {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int64_t timeout_ns;
	const char *name;
	_Atomic uint64_t *progress; /* may be NULL */
	uint64_t total;
	pthread_t tid;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *wd = arg;
	struct timespec dl;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += wd->timeout_ns / NS_PER_S;
	pthread_mutex_lock(&wd->mu);
	while (!wd->done)
		if (pthread_cond_timedwait(&wd->cv, &wd->mu, &dl) == ETIMEDOUT && !wd->done) {
			fprintf(stderr,
				"weft-bench: %s hung: not finished after %lld s (%llu of %llu "
				"ops done); exiting\n",
				wd->name, (long long)(wd->timeout_ns / NS_PER_S),
				wd->progress ? (unsigned long long)atomic_load(wd->progress) : 0ULL,
				(unsigned long long)wd->total);
			fflush(stderr);
			_exit(124);
		}
	pthread_mutex_unlock(&wd->mu);
	return NULL;
}

static void watchdog_start(struct watchdog *wd)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&wd->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&wd->tid, NULL, watchdog_main, wd) != 0) {
		fprintf(stderr, "weft-bench: pthread_create failed\n");
		abort();
	}
}

static void watchdog_stop(struct watchdog *wd)
{
	pthread_mutex_lock(&wd->mu);
	wd->done = 1;
	pthread_cond_signal(&wd->cv);
	pthread_mutex_unlock(&wd->mu);
	pthread_join(wd->tid, NULL);
	pthread_cond_destroy(&wd->cv);
	pthread_mutex_destroy(&wd->mu);
}

/* ---- scenarios -------------------------------------------------------- */

struct run {
	const struct sync_bench_case *c;
	enum sync_bench_impl impl;
	uint64_t items;
	struct bench_meter m; /* the timed spans */
	alignas(64) _Atomic uint64_t progress; /* for the hang report */
};

static int sem_uncontended(struct run *b, struct sync_bench_result *r)
{
	struct sem s;
	int rc;

	if ((rc = sem_init(&s, b->impl, 1)) != 0) {
		snprintf(r->error, sizeof r->error, "sem init: %d", rc);
		return -1;
	}
	bench_meter_start(&b->m);
	for (uint64_t i = 0; i < b->items; i++) {
		rc = sem_acquire(&s, 1);
		rc |= sem_release(&s, 1);
		if (rc != 0) {
			snprintf(r->error, sizeof r->error, "acquire/release at pair %llu: %d",
				 (unsigned long long)i, rc);
			sem_destroy(&s);
			return -1;
		}
	}
	bench_meter_stop(&b->m);
	atomic_store_explicit(&b->progress, b->items, memory_order_relaxed);
	rc = tokens_all_back(&s, 1, r);
	sem_destroy(&s);
	return rc;
}

struct contender {
	alignas(64) struct run *b;
	struct sem *s;
	pthread_barrier_t *go;
	uint64_t *shared; /* incremented inside the critical section */
	uint64_t pairs;
	int err;
	pthread_t tid;
};

static void *contender_main(void *arg)
{
	struct contender *t = arg;
	int rc;

	pthread_barrier_wait(t->go);
	for (uint64_t i = 0; i < t->pairs; i++) {
		if ((rc = sem_acquire(t->s, 1)) != 0) {
			t->err = rc;
			break;
		}
		++*t->shared; /* capacity 1: a plain increment must not be lost */
		if ((rc = sem_release(t->s, 1)) != 0) {
			t->err = rc;
			break;
		}
		if ((i & 1023) == 1023)
			atomic_fetch_add_explicit(&t->b->progress, 1024, memory_order_relaxed);
	}
	return NULL;
}

static int sem_contended(struct run *b, struct sync_bench_result *r)
{
	struct contender t[MAX_THREADS];
	unsigned n = b->c->threads;
	pthread_barrier_t go;
	struct sem s;
	uint64_t shared = 0;
	int rc;

	if (n > MAX_THREADS) {
		snprintf(r->error, sizeof r->error, "too many threads");
		return -1;
	}
	if ((rc = sem_init(&s, b->impl, b->c->capacity)) != 0) {
		snprintf(r->error, sizeof r->error, "sem init: %d", rc);
		return -1;
	}
	pthread_barrier_init(&go, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		t[i] = (struct contender){ .b = b, .s = &s, .go = &go, .shared = &shared,
					   .pairs = b->items / n };
		if (pthread_create(&t[i].tid, NULL, contender_main, &t[i]) != 0) {
			fprintf(stderr, "weft-bench: pthread_create failed\n");
			abort();
		}
	}
	bench_meter_start(&b->m);
	pthread_barrier_wait(&go);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i].tid, NULL);
	bench_meter_stop(&b->m);
	pthread_barrier_destroy(&go);
	for (unsigned i = 0; i < n; i++)
		if (t[i].err) {
			snprintf(r->error, sizeof r->error, "thread %u: acquire/release gave %d", i,
				 t[i].err);
			sem_destroy(&s);
			return -1;
		}
	if (shared != b->items) {
		snprintf(r->error, sizeof r->error,
			 "mutual exclusion broken: %llu increments inside the semaphore, "
			 "%llu expected",
			 (unsigned long long)shared, (unsigned long long)b->items);
		sem_destroy(&s);
		return -1;
	}
	rc = tokens_all_back(&s, b->c->capacity, r);
	sem_destroy(&s);
	return rc;
}

/* errgroup, weft: tasks add to an atomic counter */
static int count_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	atomic_fetch_add_explicit((_Atomic uint64_t *)arg, 1, memory_order_relaxed);
	return 0;
}

static int errgroup_weft(struct run *b, struct sync_bench_result *r)
{
	weft_group_stats_t before, after, gs;
	weft_group_t *g;
	int rc;

	if ((rc = weft_group_create(&g, NULL, NULL)) != 0 ||
	    (rc = weft_group_set_limit(g, (int)b->c->capacity)) != 0 ||
	    (rc = weft_group_set_tasks(g, b->c->threads == 1)) != 0) {
		snprintf(r->error, sizeof r->error, "group create/set_limit: %d", rc);
		return -1;
	}
	weft_group_stats(NULL, &before);
	bench_meter_start(&b->m);
	for (uint64_t i = 0; i < b->items; i++)
		if ((rc = weft_group_go(g, count_task, &b->progress)) != 0) {
			snprintf(r->error, sizeof r->error, "weft_group_go at task %llu: %d",
				 (unsigned long long)i, rc);
			weft_group_destroy(g);
			return -1;
		}
	rc = weft_group_wait(g);
	bench_meter_stop(&b->m);
	weft_group_stats(g, &gs);
	weft_group_stats(NULL, &after);
	weft_group_destroy(g);
	r->threads = (int64_t)(after.threads_created - before.threads_created);
	if (rc != 0)
		snprintf(r->error, sizeof r->error, "weft_group_wait: %d", rc);
	else if (atomic_load(&b->progress) != b->items)
		snprintf(r->error, sizeof r->error, "counter %llu after wait, %llu tasks",
			 (unsigned long long)atomic_load(&b->progress),
			 (unsigned long long)b->items);
	else if (gs.started != b->items || gs.max_running > b->c->capacity)
		snprintf(r->error, sizeof r->error, "stats: %llu started, %u at most in flight "
			 "(limit %lld)", (unsigned long long)gs.started, gs.max_running,
			 (long long)b->c->capacity);
	return r->error[0] ? -1 : 0;
}

/* errgroup baseline: a detached pthread per task, capped by the mutex
 * semaphore (acquire before pthread_create, release at the end of the
 * task); the wait is acquire(limit). */
struct pt_group {
	msem_t sem;
	_Atomic uint64_t *counter;
	_Atomic int err;
};

static void *pt_task(void *arg)
{
	struct pt_group *pg = arg;
	int rc;

	atomic_fetch_add_explicit(pg->counter, 1, memory_order_relaxed);
	if ((rc = msem_release(&pg->sem, 1)) != 0)
		atomic_store(&pg->err, rc);
	return NULL;
}

static int errgroup_pthread(struct run *b, struct sync_bench_result *r)
{
	struct pt_group pg = { .counter = &b->progress };
	int64_t limit = b->c->capacity;
	pthread_attr_t attr;
	int rc;

	if ((rc = msem_init(&pg.sem, limit)) != 0) {
		snprintf(r->error, sizeof r->error, "msem_init: %d", rc);
		return -1;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	bench_meter_start(&b->m);
	for (uint64_t i = 0; i < b->items; i++) {
		if ((rc = msem_acquire(&pg.sem, 1)) != 0) {
			snprintf(r->error, sizeof r->error, "msem_acquire: %d", rc);
			break;
		}
		if ((rc = pthread_create(&(pthread_t){ 0 }, &attr, pt_task, &pg)) != 0) {
			msem_release(&pg.sem, 1);
			snprintf(r->error, sizeof r->error, "pthread_create at task %llu: %d",
				 (unsigned long long)i, rc);
			break;
		}
	}
	/* wait: every task has released its token */
	msem_acquire(&pg.sem, limit);
	bench_meter_stop(&b->m);
	r->threads = (int64_t)b->items;
	pthread_attr_destroy(&attr);
	msem_release(&pg.sem, limit);
	if (!r->error[0] && atomic_load(&pg.err))
		snprintf(r->error, sizeof r->error, "msem_release in a task: %d",
			 atomic_load(&pg.err));
	if (!r->error[0] && atomic_load(&b->progress) != b->items)
		snprintf(r->error, sizeof r->error, "counter %llu after wait, %llu tasks",
			 (unsigned long long)atomic_load(&b->progress),
			 (unsigned long long)b->items);
	/* a task touches pg no more once its msem_release has unlocked (the
	 * acquire above waited for that; POSIX lets a mutex be destroyed once
	 * unlocked), though its thread may still be exiting */
	msem_destroy(&pg.sem);
	return r->error[0] ? -1 : 0;
}

/* with_cancel + release, from background or a live parent */
static int ctx_pairs(struct run *b, struct sync_bench_result *r)
{
	weft_ctx_t *parent = weft_ctx_background(), *c;
	int rc;

	if (b->c->kind == SYNC_BENCH_CTX_CHILD && (rc = weft_ctx_with_cancel(&parent, parent)) != 0) {
		snprintf(r->error, sizeof r->error, "with_cancel (parent): %d", rc);
		return -1;
	}
	bench_meter_start(&b->m);
	for (uint64_t i = 0; i < b->items; i++) {
		if ((rc = weft_ctx_with_cancel(&c, parent)) != 0) {
			snprintf(r->error, sizeof r->error, "with_cancel at %llu: %d",
				 (unsigned long long)i, rc);
			break;
		}
		weft_ctx_release(c);
	}
	bench_meter_stop(&b->m);
	atomic_store(&b->progress, b->items);
	/* a released child leaves its parent live, and a new child starts live */
	if (!r->error[0] && (rc = weft_ctx_err(parent)) != 0)
		snprintf(r->error, sizeof r->error, "parent done after its children's release: %d",
			 rc);
	if (!r->error[0]) {
		if ((rc = weft_ctx_with_cancel(&c, parent)) != 0 || (rc = weft_ctx_err(c)) != 0)
			snprintf(r->error, sizeof r->error, "child after the run: %d", rc);
		else
			weft_ctx_release(c);
	}
	if (parent != weft_ctx_background())
		weft_ctx_release(parent);
	return r->error[0] ? -1 : 0;
}

/* cancel of a parent with many children (the children built untimed) */
static int ctx_tree(struct run *b, struct sync_bench_result *r)
{
	unsigned n = b->c->children;
	uint64_t rounds = b->items / n;
	weft_ctx_t **kids = malloc(n * sizeof *kids), *parent;
	int rc;

	if (!kids) {
		snprintf(r->error, sizeof r->error, "out of memory");
		return -1;
	}
	for (uint64_t round = 0; round < rounds && !r->error[0]; round++) {
		unsigned made = 0;
	
		if ((rc = weft_ctx_with_cancel(&parent, weft_ctx_background())) != 0) {
			snprintf(r->error, sizeof r->error, "with_cancel (parent): %d", rc);
			break;
		}
		for (; made < n; made++)
			if ((rc = weft_ctx_with_cancel(&kids[made], parent)) != 0) {
				snprintf(r->error, sizeof r->error, "with_cancel (child %u): %d",
					 made, rc);
				break;
			}
		if (made == n) {
			bench_meter_start(&b->m);
			weft_ctx_cancel(parent);
			bench_meter_stop(&b->m);
			for (unsigned i = 0; i < n; i++)
				if ((rc = weft_ctx_err(kids[i])) != -ECANCELED ||
				    (rc = weft_ctx_cause(kids[i])) != -ECANCELED) {
					snprintf(r->error, sizeof r->error,
						 "child %u after the parent's cancel: %d", i, rc);
					break;
				}
			atomic_fetch_add(&b->progress, n);
		}
		for (unsigned i = 0; i < made; i++)
			weft_ctx_release(kids[i]);
		weft_ctx_release(parent);
	}
	free(kids);
	return r->error[0] ? -1 : 0;
}

/* ---- WaitGroup, either implementation ---------------------------------- */

/* 64-aligned: each WaitGroup on its own cache lines (packed at 120 bytes,
 * the mutex baseline's gate[0] counters shared a line with gate[1]'s
 * mutex); rounds, read by every thread each round, off arrived's line. */
struct wg {
	alignas(64) enum sync_bench_impl impl;
	union {
		weft_wg_t w;
		mwg_t m;
	} u;
};

static int wg_init(struct wg *g, enum sync_bench_impl impl)
{
	g->impl = impl;
	return impl == SYNC_IMPL_WEFT ? weft_wg_init(&g->u.w) : mwg_init(&g->u.m);
}

static void wg_destroy(struct wg *g)
{
	if (g->impl == SYNC_IMPL_MUTEX)
		mwg_destroy(&g->u.m); /* weft_wg_t needs none */
}

static inline int wg_add(struct wg *g, int64_t n)
{
	return g->impl == SYNC_IMPL_WEFT ? weft_wg_add(&g->u.w, n) : mwg_add(&g->u.m, n);
}

static inline int wg_done(struct wg *g)
{
	return g->impl == SYNC_IMPL_WEFT ? weft_wg_done(&g->u.w) : mwg_done(&g->u.m);
}

static inline int wg_wait(struct wg *g)
{
	return g->impl == SYNC_IMPL_WEFT ? weft_wg_wait(&g->u.w) : mwg_wait(&g->u.m);
}

struct wg_shared {
	struct wg wg;      /* the one measured: add(N), N done, wait */
	struct wg gate[2]; /* round r waits on gate[r % 2] */
	alignas(64) _Atomic uint64_t arrived; /* one per thread per round */
	alignas(64) uint64_t rounds;          /* read-only while threads run */
	pthread_barrier_t go;
};

struct wg_thread {
	alignas(64) struct wg_shared *sh;
	int err;
	pthread_t tid;
};

static void *wg_thread_main(void *arg)
{
	struct wg_thread *t = arg;
	struct wg_shared *sh = t->sh;
	int rc;

	pthread_barrier_wait(&sh->go);
	for (uint64_t r = 0; r < sh->rounds; r++) {
		if ((rc = wg_wait(&sh->gate[r % 2])) != 0) {
			t->err = rc;
			break; /* main's check fails the run */
		}
		/* relaxed: done's release and main's wait's acquire order it
		 * before main's check */
		atomic_fetch_add_explicit(&sh->arrived, 1, memory_order_relaxed);
		if ((rc = wg_done(&sh->wg)) != 0) {
			t->err = rc;
			break;
		}
	}
	return NULL;
}

/* Fork-join rounds: main arms the next gate, opens this round's, waits for
 * the N done. The next gate is free to re-arm: every thread left it in the
 * previous round before its done, which main's wait has seen. */
static int wg_rounds(struct run *b, struct sync_bench_result *r)
{
	struct wg_thread t[MAX_THREADS];
	unsigned n = b->c->threads;
	struct wg_shared *sh;
	int rc = 0;

	if (n > MAX_THREADS) {
		snprintf(r->error, sizeof r->error, "too many threads");
		return -1;
	}
	sh = aligned_alloc(64, sizeof *sh);
	if (!sh) {
		snprintf(r->error, sizeof r->error, "out of memory");
		return -1;
	}
	memset(sh, 0, sizeof *sh);
	atomic_init(&sh->arrived, 0);
	sh->rounds = b->items;
	if (wg_init(&sh->wg, b->impl) || wg_init(&sh->gate[0], b->impl) ||
	    wg_init(&sh->gate[1], b->impl) || wg_add(&sh->gate[0], 1)) {
		snprintf(r->error, sizeof r->error, "wg init failed");
		free(sh);
		return -1;
	}
	pthread_barrier_init(&sh->go, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		t[i] = (struct wg_thread){ .sh = sh };
		if (pthread_create(&t[i].tid, NULL, wg_thread_main, &t[i]) != 0) {
			fprintf(stderr, "weft-bench: pthread_create failed\n");
			abort();
		}
	}
	bench_meter_start(&b->m);
	pthread_barrier_wait(&sh->go);
	for (uint64_t i = 0; i < sh->rounds; i++) {
		uint64_t got;

		if ((rc = wg_add(&sh->wg, n)) != 0 || (rc = wg_add(&sh->gate[(i + 1) % 2], 1)) != 0 ||
		    (rc = wg_done(&sh->gate[i % 2])) != 0 || (rc = wg_wait(&sh->wg)) != 0) {
			snprintf(r->error, sizeof r->error, "round %llu: add/done/wait gave %d",
				 (unsigned long long)i, rc);
			break;
		}
		/* relaxed: wait's acquire ordered the threads' increments */
		got = atomic_load_explicit(&sh->arrived, memory_order_relaxed);
		if (got != (i + 1) * n) {
			snprintf(r->error, sizeof r->error,
				 "wait returned early: %llu dones seen after round %llu, want %llu",
				 (unsigned long long)got, (unsigned long long)i,
				 (unsigned long long)((i + 1) * n));
			break;
		}
		atomic_store_explicit(&b->progress, i + 1, memory_order_relaxed);
	}
	if (r->error[0]) {
		/* the threads may be blocked on a gate for good */
		fprintf(stderr, "weft-bench: sync/wg: %s; exiting\n", r->error);
		fflush(stderr);
		_exit(124);
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i].tid, NULL);
	bench_meter_stop(&b->m);
	pthread_barrier_destroy(&sh->go);
	for (unsigned i = 0; i < n; i++)
		if (t[i].err && !r->error[0])
			snprintf(r->error, sizeof r->error, "thread %u: wait/done gave %d", i,
				 t[i].err);
	wg_done(&sh->gate[sh->rounds % 2]); /* the last armed, never opened */
	wg_destroy(&sh->gate[0]);
	wg_destroy(&sh->gate[1]);
	wg_destroy(&sh->wg);
	free(sh);
	return r->error[0] ? -1 : 0;
}

/* ---- tasks ------------------------------------------------------------- */

struct task_run {
	struct run *b;
	weft_wg_t done;
	weft_chan_t *a, *z;
	atomic_uint_fast64_t count;
	int err;
};

static void task_nop(void *p)
{
	struct task_run *t = p;

	atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
	weft_wg_done(&t->done);
}

/* a task starts them all, so they go to its carrier's queue */
static void task_spawner(void *p)
{
	struct task_run *t = p;

	unsigned every = t->b->c->threads;

	for (uint64_t i = 0; i < t->b->items; i++) {
		while ((t->err = weft_go(task_nop, t)) == -ENOMEM)
			weft_yield();
		if (every > 1 && i % every == every - 1)
			weft_yield();
	}
}

static void *thread_nop(void *p)
{
	task_nop(p);
	return NULL;
}

static int task_spawn(struct run *b, struct sync_bench_result *r)
{
	struct task_run t = { .b = b };

	weft_wg_init(&t.done);
	weft_wg_add(&t.done, (int64_t)b->items);
	bench_meter_start(&b->m);
	if (b->impl == SYNC_IMPL_WEFT) {
		if ((t.err = weft_go(task_spawner, &t)) != 0)
			weft_wg_add(&t.done, -(int64_t)b->items);
	} else {
		for (uint64_t i = 0; i < b->items && !t.err; i++) {
			pthread_t th;

			if ((t.err = -pthread_create(&th, NULL, thread_nop, &t)) == 0)
				t.err = -pthread_join(th, NULL);
		}
	}
	weft_wg_wait(&t.done);
	bench_meter_stop(&b->m);
	atomic_store(&b->progress, atomic_load(&t.count));
	if (t.err || atomic_load(&t.count) != b->items)
		snprintf(r->error, sizeof r->error, "%llu of %llu ran (error %d)",
			 (unsigned long long)atomic_load(&t.count), (unsigned long long)b->items,
			 t.err);
	return r->error[0] ? -1 : 0;
}

static void handoff_ping(void *p)
{
	struct task_run *t = p;
	uint64_t rounds = t->b->items / 2, v;

	for (uint64_t i = 0; i < rounds; i++)
		if (weft_chan_send(t->a, &i) || weft_chan_recv(t->z, &v) || v != i) {
			t->err = -EPROTO;
			break;
		}
	weft_chan_close(t->a);
	weft_wg_done(&t->done);
}

static void handoff_pong(void *p)
{
	struct task_run *t = p;
	uint64_t v;

	while (weft_chan_recv(t->a, &v) == 0) {
		/* the only writer: a plain add, no RMW in the measured loop */
		atomic_store_explicit(&t->count,
				      atomic_load_explicit(&t->count, memory_order_relaxed) + 2,
				      memory_order_relaxed);
		if (weft_chan_send(t->z, &v))
			break;
	}
	weft_wg_done(&t->done);
}

static int task_handoff(struct run *b, struct sync_bench_result *r)
{
	struct task_run t = { .b = b };

	if (weft_chan_create(&t.a, sizeof(uint64_t), 0) ||
	    weft_chan_create(&t.z, sizeof(uint64_t), 0)) {
		snprintf(r->error, sizeof r->error, "out of memory");
		return -1;
	}
	weft_wg_init(&t.done);
	weft_wg_add(&t.done, 2);
	bench_meter_start(&b->m);
	if (weft_go(handoff_pong, &t) || weft_go(handoff_ping, &t)) {
		snprintf(r->error, sizeof r->error, "weft_go failed");
		_exit(1); /* a started task would use t after we return */
	}
	weft_wg_wait(&t.done);
	bench_meter_stop(&b->m);
	atomic_store(&b->progress, atomic_load(&t.count));
	if (t.err || atomic_load(&t.count) != b->items)
		snprintf(r->error, sizeof r->error, "%llu of %llu hand-offs (error %d)",
			 (unsigned long long)atomic_load(&t.count), (unsigned long long)b->items,
			 t.err);
	weft_chan_destroy(t.a);
	weft_chan_destroy(t.z);
	return r->error[0] ? -1 : 0;
}

static void parked_fn(void *p)
{
	struct task_run *t = p;
	uint64_t v;

	weft_wg_done(&t->done);
	if (weft_chan_recv(t->a, &v) == -EPIPE) /* parked until the close */
		atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
	weft_wg_done(&t->done);
}

/* start items tasks that park in recv, then close: peak RSS / items is
 * what a parked task costs */
static int task_parked(struct run *b, struct sync_bench_result *r)
{
	struct task_run t = { .b = b };

	if (weft_chan_create(&t.a, sizeof(uint64_t), 0)) {
		snprintf(r->error, sizeof r->error, "out of memory");
		return -1;
	}
	weft_wg_init(&t.done);
	weft_wg_add(&t.done, (int64_t)b->items);
	bench_meter_start(&b->m);
	for (uint64_t i = 0; i < b->items; i++)
		while ((t.err = weft_go(parked_fn, &t)) == -ENOMEM)
			weft_sleep(1000000);
	weft_wg_wait(&t.done); /* every one parked (or about to) */
	weft_wg_add(&t.done, (int64_t)b->items);
	weft_chan_close(t.a);
	weft_wg_wait(&t.done);
	bench_meter_stop(&b->m);
	atomic_store(&b->progress, atomic_load(&t.count));
	if (t.err || atomic_load(&t.count) != b->items)
		snprintf(r->error, sizeof r->error, "%llu of %llu released (error %d)",
			 (unsigned long long)atomic_load(&t.count), (unsigned long long)b->items,
			 t.err);
	weft_chan_destroy(t.a);
	return r->error[0] ? -1 : 0;
}

/* The bare switch under tasks (internal/switch.h): this thread and a
 * context on a stack of its own switch there and back, items switches in
 * all, no scheduler; the floor of every task hand-off. Where each side
 * switches from matters to the CPU's return predictor: from one shared
 * loop (sites 1: as tasks, which all park through ctx_switch) the switch's
 * `ret` lands where the predictor expects; from two different loops
 * (sites 2) it misses every time. */
struct switch_run {
	void *main_sp, *co_sp;
	uint64_t count;
	unsigned sites;
};

static __attribute__((noinline)) void switch_loop(struct switch_run *s, void **save, void **to,
						  uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		s->count++;
		weft__switch(save, *to, s);
	}
}

static void switch_entry(void *arg)
{
	struct switch_run *s = arg;

	if (s->sites == 1)
		switch_loop(s, &s->co_sp, &s->main_sp, UINT64_MAX);
	for (;;) {
		s->count++;
		weft__switch(&s->co_sp, s->main_sp, s);
	}
}

static int task_switch(struct run *b, struct sync_bench_result *r)
{
	size_t size = (size_t)64 << 10;
	void *stack = malloc(size);
	struct switch_run s = { 0 };

	if (!stack) {
		snprintf(r->error, sizeof r->error, "out of memory");
		return -1;
	}
	if (!WEFT__HAVE_SWITCH) {
		free(stack);
		snprintf(r->error, sizeof r->error, "no context switch for this CPU");
		return -1;
	}
	s.sites = b->c->threads;
	s.co_sp = weft__switch_init((char *)stack + size, switch_entry);
	bench_meter_start(&b->m);
	if (s.sites == 1) {
		switch_loop(&s, &s.main_sp, &s.co_sp, b->items / 2);
	} else {
		for (uint64_t i = 0; i < b->items / 2; i++) {
			s.count++;
			weft__switch(&s.main_sp, s.co_sp, &s);
		}
	}
	bench_meter_stop(&b->m);
	free(stack); /* the context is never resumed again */
	atomic_store(&b->progress, s.count);
	if (s.count != b->items)
		snprintf(r->error, sizeof r->error, "%llu of %llu switches",
			 (unsigned long long)s.count, (unsigned long long)b->items);
	return r->error[0] ? -1 : 0;
}

#ifdef WEFT_BOOST_FIBER
/* the task cases on Boost.Fiber (strategies/boost_fiber.cc); the bare
 * switch on Boost.Context's fcontext */
static int fiber_case(struct run *b, struct sync_bench_result *r)
{
	static const enum boost_fiber_sync_kind kinds[] = {
		[SYNC_BENCH_TASK_SPAWN] = BOOST_FIBER_SPAWN,
		[SYNC_BENCH_TASK_HANDOFF] = BOOST_FIBER_HANDOFF,
		[SYNC_BENCH_TASK_PARKED] = BOOST_FIBER_PARKED,
		[SYNC_BENCH_TASK_SWITCH] = BOOST_CONTEXT_SWITCH,
	};
	uint64_t count;
	int rc;

	bench_meter_start(&b->m);
	rc = boost_fiber_sync_run(kinds[b->c->kind], b->items, b->c->threads, &count);
	bench_meter_stop(&b->m);
	atomic_store(&b->progress, count);
	if (rc || count != b->items)
		snprintf(r->error, sizeof r->error, "%llu of %llu done (error %d)",
			 (unsigned long long)count, (unsigned long long)b->items, rc);
	return r->error[0] ? -1 : 0;
}
#endif

int sync_bench_run(const struct sync_bench_case *c, enum sync_bench_impl impl,
		   const struct sync_bench_params *p, struct sync_bench_result *r)
{
	struct run b = { .c = c, .impl = impl };
	struct watchdog wd = { 0 };
	char name[160];
	int rc;

	memset(r, 0, sizeof *r);
	r->threads = -1;
	if (!sync_bench_supported(c, impl)) {
		snprintf(r->error, sizeof r->error, "not supported by this implementation");
		return -1;
	}
	b.items = sync_bench_items(c, impl, p->base_items);
	r->items = b.items;
	wd.timeout_ns = p->timeout_ns > 0 ? p->timeout_ns : 120 * NS_PER_S;
	wd.name = sync_bench_name(name, sizeof name, c, impl);
	wd.progress = &b.progress;
	wd.total = b.items;
	watchdog_start(&wd);
	bench_peak_rss_reset(); /* refused: the process's lifetime peak */
#ifdef WEFT_BOOST_FIBER
	if (impl == SYNC_IMPL_BOOST_FIBER) {
		rc = fiber_case(&b, r);
		goto done;
	}
#endif
	switch (c->kind) {
	case SYNC_BENCH_SEM_UNCONTENDED:
		rc = sem_uncontended(&b, r);
		break;
	case SYNC_BENCH_SEM_CONTENDED:
		rc = sem_contended(&b, r);
		break;
	case SYNC_BENCH_ERRGROUP:
		rc = impl == SYNC_IMPL_WEFT ? errgroup_weft(&b, r) : errgroup_pthread(&b, r);
		break;
	case SYNC_BENCH_CTX_BACKGROUND:
	case SYNC_BENCH_CTX_CHILD:
		rc = ctx_pairs(&b, r);
		break;
	case SYNC_BENCH_CTX_TREE:
		rc = ctx_tree(&b, r);
		break;
	case SYNC_BENCH_WG:
		rc = wg_rounds(&b, r);
		break;
	case SYNC_BENCH_TASK_SPAWN:
		rc = task_spawn(&b, r);
		break;
	case SYNC_BENCH_TASK_HANDOFF:
		rc = task_handoff(&b, r);
		break;
	case SYNC_BENCH_TASK_PARKED:
		rc = task_parked(&b, r);
		break;
	case SYNC_BENCH_TASK_SWITCH:
		rc = task_switch(&b, r);
		break;
	default:
		snprintf(r->error, sizeof r->error, "unknown case");
		rc = -1;
	}
#ifdef WEFT_BOOST_FIBER
done:
#endif
	watchdog_stop(&wd);
	r->wall_ns = b.m.wall_ns;
	r->cpu_ns = b.m.cpu_ns;
	r->ctx_switches = b.m.ctx_switches;
	r->peak_rss_kb = bench_peak_rss_kb();
	if (rc == 0 && r->wall_ns <= 0)
		r->wall_ns = 1; /* a timer too coarse for a tiny run */
	return rc != 0 || r->error[0] ? -1 : 0;
}

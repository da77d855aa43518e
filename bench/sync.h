/* bench/sync.h: the sync benchmark family (weft/sync.h, weft/group.h,
 * weft/ctx.h), plain C. bench/harness.cc registers one Google Benchmark per
 * case x implementation and only reports what sync_bench_run() measured.
 *
 * Every scenario measures wall time (CLOCK_MONOTONIC), the CPU time and
 * the context switches of the whole process (getrusage RUSAGE_SELF, user +
 * sys, every thread) over the timed span, and the run's peak RSS (see
 * bench/measure.h), and checks its own result (tokens all returned, counters
 * equal to the work done, contexts canceled): an implementation that loses
 * work or tokens fails the run instead of looking fast. An op is one
 * acquire(1)+release(1) pair, one task, or one context.
 *
 * Implementations: "weft" (weft_sem_t, weft_group, weft_ctx) and "mutex",
 * the baseline: the mutex + condition variable FIFO weighted semaphore of
 * bench/baseline/sem_mutex.h, and for errgroup one pthread per task capped
 * by that semaphore. The context cases have no baseline. "boost_fiber"
 * (where the strategy of that name is built) runs the three task cases with
 * Boost.Fiber's fibers on its work_stealing pool (strategies/boost_fiber.cc):
 * spawn + exit, an unbuffered hand-off, fibers parked in pop.
 *
 * The cases (sync_bench_cases[]), ops per run for base items B (default
 * 10 million, --weft_items / WEFT_BENCH_ITEMS):
 *   sem_uncontended            one thread: acquire(1) + release(1), B pairs
 *   sem_contended/threads:T    T threads (2, 4, 8) share a semaphore of
 *                              capacity 1, each doing acquire(1), a plain
 *                              increment of a shared counter (checks
 *                              mutual exclusion), release(1): B / 20 pairs
 *                              in total (500k), split evenly. Bimodal: until
 *                              a FIFO queue forms, a pair costs 30-90 ns and
 *                              200k fit in one scheduler time slice; once
 *                              it forms, every release is a hand-off to a
 *                              sleeper (mutex, 8 threads: ~15 us a pair)
 *   errgroup/limit:100         weft: one group, limit 100, B / 10 tasks (1M)
 *                              that each add 1 to an atomic counter; go
 *                              for each, then wait. mutex: B / 100 tasks
 *                              (100k; a thread per task costs tens of us),
 *                              acquire(1) before a detached pthread_create,
 *                              release(1) at the end of the task, then
 *                              acquire(100) to wait for them all
 *   ctx_with_cancel/parent:background   with_cancel from background +
 *                              release, B / 10 pairs
 *   ctx_with_cancel/parent:live         the same as the child of a live
 *                              (not canceled) parent, B / 10 pairs
 *   ctx_cancel_tree/children:10000      a parent with 10,000 children
 *                              (built untimed); timed: cancel of the parent;
 *                              ns per child; B / 1M rounds (1 to 10)
 *   wg/threads:N               N (2, 8) threads, B / 1000 rounds (10k): the
 *                              main thread add(N), releases the N threads
 *                              through a gate (a second WaitGroup of the
 *                              same implementation, count 1, done by
 *                              main), each thread increments a shared
 *                              atomic and done(), main wait()s and checks
 *                              the counter is N x rounds so far. An op is
 *                              one round. mutex: bench/baseline/wg_mutex.h
 * never fewer than 100 ops (except the tree, always 10,000 children).
 */
#ifndef WEFT_BENCH_SYNC_H
#define WEFT_BENCH_SYNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sync_bench_kind {
	SYNC_BENCH_SEM_UNCONTENDED,
	SYNC_BENCH_SEM_CONTENDED,
	SYNC_BENCH_ERRGROUP,
	SYNC_BENCH_CTX_BACKGROUND, /* with_cancel + release from background */
	SYNC_BENCH_CTX_CHILD,      /* ... as the child of a live parent */
	SYNC_BENCH_CTX_TREE,       /* cancel of a parent with many children */
	SYNC_BENCH_WG,             /* WaitGroup fork-join rounds */
	/* tasks (weft/task.h); "mutex" is the thread baseline where there is
	 * one: */
	SYNC_BENCH_TASK_SPAWN,   /* start + finish (mutex: pthread_create + join) */
	SYNC_BENCH_TASK_HANDOFF, /* unbuffered ping-pong between two tasks: per hand-off */
	SYNC_BENCH_TASK_PARKED,  /* `children` tasks parked in recv, then released */
	SYNC_BENCH_TASK_SWITCH,  /* the bare context switch, one thread: per switch
				    (boost_fiber: Boost.Context's fcontext) */
};

enum sync_bench_impl {
	SYNC_IMPL_WEFT,
	SYNC_IMPL_MUTEX, /* the baseline */
	/* the task cases as Boost.Fiber's fibers (strategies/boost_fiber.h),
	 * where the boost_fiber strategy is built */
	SYNC_IMPL_BOOST_FIBER,
	SYNC_IMPL_COUNT,
};

struct sync_bench_case {
	const char *name; /* "sem_contended/threads:4", without family and impl */
	enum sync_bench_kind kind;
	unsigned threads;  /* contended, wg: threads */
	int64_t capacity;  /* contended: semaphore capacity; errgroup: the limit */
	unsigned children; /* ctx tree */
};

extern const struct sync_bench_case sync_bench_cases[];
extern const size_t sync_bench_ncases;

struct sync_bench_params {
	uint64_t base_items; /* B above (default 10 million) */
	int64_t timeout_ns;  /* a run longer than this is a hang: exit 124 (0: 120 s) */
};

struct sync_bench_result {
	uint64_t items;   /* ops timed (pairs, tasks, contexts) */
	int64_t wall_ns;  /* the timed span */
	int64_t cpu_ns;   /* process user + sys over the same span */
	int64_t ctx_switches; /* process context switches (voluntary + involuntary), same span */
	int64_t peak_rss_kb;  /* the process's peak RSS during the run (VmHWM reset first) */
	int64_t threads;  /* errgroup: threads created during the run; else -1 */
	char error[200];  /* nonempty: the run failed (and says why) */
};

/* "weft", "mutex" or "boost_fiber" */
const char *sync_bench_impl_name(enum sync_bench_impl impl);

/* 1 if impl can run case c (the ctx cases are weft only). */
int sync_bench_supported(const struct sync_bench_case *c, enum sync_bench_impl impl);

/* Ops a run of case c with impl does for the given base count. */
uint64_t sync_bench_items(const struct sync_bench_case *c, enum sync_bench_impl impl,
			  uint64_t base_items);

/* e.g. "sync/sem_contended/threads:4/mutex". Returns buf. */
char *sync_bench_name(char *buf, size_t size, const struct sync_bench_case *c,
		      enum sync_bench_impl impl);

/* Run case c once. Returns 0, or -1 with r->error set. A run that hangs
 * past the timeout prints what it knows to stderr and exits 124 (threads
 * blocked on a semaphore cannot be released from outside). */
int sync_bench_run(const struct sync_bench_case *c, enum sync_bench_impl impl,
		   const struct sync_bench_params *p, struct sync_bench_result *r);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_SYNC_H */

/* bench/pool.h: the worker pool benchmark family (weft/pool.h), plain C over
 * a small pool strategy table, so weft_pool_t and the mutex + condition
 * variable baseline (bench/baseline/pool_mutex.h) run through the same
 * code. bench/harness.cc registers one Google Benchmark per case x strategy
 * and only reports what pool_bench_run() measured.
 *
 * Streaming cases (the seed's shape): the pool is created first (untimed);
 * then one producer thread submits the jobs one by one (blocking while the
 * queue is full: the backpressure), each job does its work and sends
 * {id, mix(id)} into a weft results channel (weft_chan_t, 200 slots, for
 * every strategy), and the main thread receives every result. Timed: from
 * the producer's release to the last result received and the producer
 * joined; CPU is the whole process's user + sys over that span. After the
 * run the results are checked (every job id once: count, sum of ids, each
 * result's value) and so are the strategy's own counts (submitted =
 * completed = jobs, none failed or discarded): a pool that loses, repeats
 * or invents jobs fails the run instead of looking fast.
 *
 * The cases (pool_bench_cases[]), jobs per run for base items B (default
 * 10 million, --weft_items / WEFT_BENCH_ITEMS):
 *   seed/workers:100/queue:200        B / 10 jobs (1M): a few ns of
 *                                     arithmetic per job
 *   seed_10x/workers:100/queue:200    B jobs (10M): same RSS expected
 *   cost/workers:W/cost_ns:C          W in 2, 8, 100, 1000; C in 0, 1000,
 *                                     10000 ns of busy arithmetic (calibrated
 *                                     once): B / 10, B / 50, B / 500 jobs
 *   sleep/workers:100/sleep_us:100    each job sleeps 100 us (I/O-like; the
 *                                     sleeps overlap): B / 50 jobs
 *   latency/workers:100/gap_us:100    submit-to-start latency on an idle
 *                                     pool: one job at a time, 100 us apart
 *                                     (the workers go back to sleep), the
 *                                     job records when it starts; B / 1000
 *                                     samples into the log-linear histogram
 *                                     of bench/measure.h (clock cost
 *                                     subtracted): p50, p90, p99, p99.9,
 *                                     p99.99, max
 *   idle/workers:100                  CPU the parked workers burn over
 *                                     --weft_idle_ms (after one job each);
 *                                     release: shutdown(DRAIN) to return
 * never fewer than 100 jobs. With B < 100,000 (bench-smoke) the 1000-worker
 * cases are not registered.
 *
 * Strategies: weft_pool_t; weft_batch, the same with sched_batch (its
 * workers under SCHED_BATCH; not in the idle case); the mutex pool; and
 * go where Debian's golang-go is installed: the streaming cases without
 * busy work run as Go's own program (bench/peers/go_peer.go: goroutines
 * ranging over a jobs channel, the same results check) in a child process
 * (bench/peers/go_peer.c), so Go's runtime stands beside weft's pool in
 * the same run.
 *
 * Per run: futex wakes (the strategy's own count, where it keeps one),
 * context switches of the process (voluntary + involuntary, getrusage),
 * and peak RSS: the process's VmHWM after resetting it at the start of the
 * run (bench/measure.h; the peak of the whole process so far when the
 * kernel refuses the reset).
 */
#ifndef WEFT_BENCH_POOL_H
#define WEFT_BENCH_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "measure.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One pool implementation, as the scenarios see it. Returns are 0 or a
 * negative errno, as weft/pool.h. */
struct pool_counts {
	uint64_t submitted, completed, failed, discarded;
};

struct pool_bench_case;
struct pool_bench_result;

struct pool_strategy {
	const char *name;
	int (*create)(void **out, unsigned workers, size_t queue_capacity);
	int (*submit)(void *p, int (*fn)(void *arg), void *arg); /* blocks while full */
	int (*wait)(void *p);
	int (*shutdown)(void *p, int how); /* 1 drain, 2 cancel */
	void (*destroy)(void *p);
	int (*counts)(void *p, struct pool_counts *out);
	/* worker wake-ups that needed a syscall so far; NULL: not known */
	uint64_t (*futex_wakes)(void *p);
	/* 1: the streaming cases' producer and drainer run as weft tasks
	 * (as Go's program runs them as goroutines), not threads */
	int tasks;
	/* A peer in another process (Go): runs a whole streaming case itself
	 * and fills r (its own wall, CPU, switches, peak RSS; futex_wakes -1),
	 * or returns -1 with r->error set. The calls above are then NULL, and
	 * the latency and idle cases are not registered for it. */
	int (*run_stream)(const struct pool_bench_case *c, uint64_t jobs, int64_t timeout_ns,
			  struct pool_bench_result *r);
};

/* NULL-terminated: weft, weft_batch, mutex, and go when built
 * (bench/peers/go_peer.c) */
extern const struct pool_strategy *const pool_strategies[];
/* NULL-terminated: "name: reason" for each peer not built */
extern const char *const pool_strategies_skipped[];

enum pool_bench_kind {
	POOL_BENCH_STREAM,
	POOL_BENCH_LATENCY,
	POOL_BENCH_IDLE,
};

struct pool_bench_case {
	const char *scenario; /* "seed", "cost", ... */
	enum pool_bench_kind kind;
	unsigned workers;
	size_t queue;
	int64_t cost_ns;  /* busy work per job */
	int64_t sleep_ns; /* sleep per job (sleep); gap between submits (latency) */
	unsigned jobs_div; /* jobs = B / jobs_div */
};

extern const struct pool_bench_case pool_bench_cases[];
extern const size_t pool_bench_ncases;

struct pool_bench_params {
	uint64_t base_items; /* B */
	int64_t idle_ns;     /* idle: the window (0: 1 s) */
	int64_t timeout_ns;  /* a run longer than this is a hang (0: 120 s) */
};

struct pool_bench_result {
	uint64_t jobs;
	int64_t wall_ns, cpu_ns;
	int64_t futex_wakes;  /* -1: the strategy does not count them */
	int64_t ctx_switches; /* voluntary + involuntary, whole process */
	int64_t peak_rss_kb;
	int rss_per_run;      /* 1: VmHWM reset for this run; 0: ru_maxrss */
	int has_latency;
	struct bench_latency lat; /* latency case: submit-to-start */
	int64_t idle_cpu_ns, release_ns; /* idle */
	char error[200];
};

/* 1 if case c is registered for strategy s and base items B (1000
 * workers: B >= 100k; a run_stream peer: streaming cases without busy
 * work, which is calibrated in this process) */
int pool_bench_supported(const struct pool_bench_case *c, const struct pool_strategy *s,
			 uint64_t base_items);
uint64_t pool_bench_jobs(const struct pool_bench_case *c, uint64_t base_items);
/* e.g. "pool/seed/workers:100/queue:200/weft". Returns buf. */
char *pool_bench_name(char *buf, size_t size, const struct pool_bench_case *c,
		      const struct pool_strategy *s);
/* Run case c once. Returns 0, or -1 with r->error set. A hang past the
 * timeout is reported, the pool canceled and the run failed; if even that
 * does not release the threads, the process exits 124. */
int pool_bench_run(const struct pool_bench_case *c, const struct pool_strategy *s,
		   const struct pool_bench_params *p, struct pool_bench_result *r);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_POOL_H */

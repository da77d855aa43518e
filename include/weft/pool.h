/* weft/pool.h: a worker pool whose idle workers park on futexes.
 *
 * A fixed number of workers (or a dynamic range) runs jobs from a bounded
 * queue. The queue is weft's lock-free ring; a full queue blocks submitters
 * (backpressure). Idle workers sleep on their own futex word through
 * weft's parking layer, and the pool wakes one only when work is queued
 * and no worker is already awake and looking for work; the most recently
 * parked worker is woken first (LIFO), so few threads stay hot and the
 * rest sleep. With a steady stream of short jobs almost no futex syscalls
 * happen. Submitting allocates nothing: memory is bounded by the queue.
 *
 * Awake workers: about one per core (Go's GOMAXPROCS). A pool with more
 * workers than cores is watched by weft's one monitor thread
 * ("weft-monitor", which also watches the task runtime's carriers; idle
 * for this pool unless jobs are queued while workers are parked). It wakes
 * more when the
 * running jobs cannot use the cores: for each job blocked outside weft
 * (I/O, sleep, a pthread lock: seen from the kernel's schedstat) it wakes
 * another worker within about 0.1 ms; a job asleep inside weft (a full
 * channel, a WaitGroup) counts as running for 1 ms first, since weft
 * will most likely wake it soon (backpressure: more workers would only
 * block the same way), then as blocked (so a job waiting for a job still
 * queued costs a millisecond, never a deadlock). Jobs that compute count
 * as running: more workers would not make them faster.
 *
 * Jobs: weft_job_fn returns 0 for success; nonzero counts as failed and is
 * passed to on_error with its arg; the worker carries on (the pool never
 * shrinks because jobs fail). A job that submits to its own pool while
 * the queue is full does not deadlock: see weft_pool_submit.
 *
 * Every accepted job is accounted for exactly once: it runs (completed,
 * perhaps failed), or shutdown(CANCEL) hands it to on_discard (discarded).
 * A submit that returns an error did not enqueue its job: the job is still
 * the caller's.
 *
 * Dynamic sizing (workers == 0, max_workers > 0): the pool starts
 * min_workers workers and adds one (up to max_workers) when a submit finds
 * no worker awake and looking for work, none parked, and more than
 * queue_capacity / 4 jobs queued (or no worker at all). A worker parked
 * for longer than idle_timeout_ns retires, never taking the pool below
 * min_workers. min_workers may be 0: the first submit then starts a worker.
 *
 * Callbacks (on_error, on_discard) run on the thread that ran or discarded
 * the job: a worker, or the thread inside weft_pool_shutdown /
 * weft_pool_destroy for jobs left when no worker remains. They may call
 * any pool function except weft_pool_destroy and weft_pool_wait (-EDEADLK
 * from a worker).
 *
 * A job that ends its thread. A job that calls pthread_exit, or whose
 * worker thread is canceled (pthread_cancel, acted on at a cancellation
 * point inside the job), never returns; the pool does not lose it: it
 * counts as failed with rc -EOWNERDEAD (on_error gets it, once; stats:
 * completed and failed, and the worker in workers_died), wait and
 * shutdown see it finished, and a replacement worker (same index and
 * name) starts in its place, so the pool keeps its size; every other job
 * queued still runs exactly once. on_error for it runs on the dying thread
 * after glibc has unwound the job's stack (for a task worker: on the
 * carrier thread it ended, as a plain thread, see weft/task.h), then the
 * replacement starts. It works whatever the job's code was compiled with
 * (C without -fexceptions, no unwind tables): weft notices the thread's
 * end from a thread-specific-data destructor, after the unwinding. A job
 * that ran inline (a submit to its own full pool) and ends the thread
 * takes the job that submitted it along: both are reported. A thread that
 * dies in on_error (or on_discard) is replaced too; the job is not
 * reported twice. If no replacement can start (pthread_create fails), a
 * fixed pool starts one at the next submit that finds no idle worker.
 * Cancellation: a cancel request to a worker thread is acted on only at a
 * cancellation point inside a job or a callback (weft's own waits are not
 * cancellation points, so a worker is never canceled while it holds a pool
 * lock); a request that arrives while the worker is idle waits for the
 * next such point, in a later job. Asynchronous cancellation is not
 * supported: a job that enables it must restore the deferred type before
 * it calls weft or returns.
 *
 * A crashing job. A job that crashes (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * abort) ends the whole process, like an unrecovered panic in Go: weft does
 * not catch signals to recover from them, as nothing can make a crashed
 * thread's state safe to go on with. (The task runtime's SIGSEGV handler
 * only names a task that overflowed its stack before the process ends,
 * weft/task.h.)
 *
 * Concurrency: every call may be made from any thread, including from
 * inside a job, except weft_pool_destroy (the last call on the pool, never
 * from one of its own jobs).
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_pool weft_pool_t;

/* A job: nonzero means it failed (the worker carries on). */
typedef int (*weft_job_fn)(void *arg);

/* Largest queue_capacity accepted: larger ones are -ENOMEM (as channels). */
#define WEFT_POOL_MAX_QUEUE ((size_t)1 << 30)
/* Largest worker count (workers or max_workers): larger ones are -EINVAL. */
#define WEFT_POOL_MAX_WORKERS 32768u

/* Options: zeroed fields take their defaults. Give either workers (a fixed
 * pool) or max_workers (and optionally min_workers: a dynamic pool), not
 * both. */
typedef struct weft_pool_opts {
	unsigned workers;      /* fixed worker count, > 0 (0: use min/max) */
	unsigned min_workers;  /* dynamic sizing: keep at least this many */
	unsigned max_workers;  /* dynamic sizing: never more than this (>= min, > 0) */
	size_t queue_capacity; /* jobs waiting, not counting running ones; 0: 1024 */
	int64_t idle_timeout_ns; /* dynamic: retire a worker idle this long; 0: 1 s */
	/* a job returned rc != 0 (called on the worker, after the job), or
	 * ended its thread: rc -EOWNERDEAD (see "A job that ends its thread") */
	void (*on_error)(weft_job_fn fn, void *arg, int rc, void *user);
	/* a job that shutdown(CANCEL) did not run (called once per job) */
	void (*on_discard)(weft_job_fn fn, void *arg, void *user);
	void *user;       /* passed to both callbacks */
	const char *name; /* thread name prefix (top -H, gdb); NULL: "weft-pool".
			   * Threads are named "<prefix>-<index>", the prefix
			   * shortened so the whole fits Linux's 15 characters. */
	/* Nonzero: workers run under SCHED_BATCH (Linux; no privilege needed).
	 * A woken worker then does not preempt the thread running on its
	 * core (the submitter, say) but waits until that thread blocks or
	 * its slice ends, as a readied goroutine waits in Go's runnext. For
	 * streams of short jobs on busy cores this saves context switches
	 * (the seed benchmark on 2 cores: a third to a half fewer, and
	 * about a third less time per job); the cost is start latency when
	 * every core is busy, for jobs and for threads blocked inside jobs.
	 * Threads a job creates inherit the policy. Default 0: the normal
	 * policy. If the kernel refuses, workers keep the normal policy. */
	int sched_batch;
	/* Nonzero: workers are tasks (weft/task.h), not threads. A job that
	 * blocks in weft (a channel, a WaitGroup, the pool's own submit or
	 * wait) then parks its task and the carrier runs another worker: many
	 * workers cost what their stacks touched, and hand-offs between a job
	 * and a task cost a switch in user space. A job that blocks outside
	 * weft holds its carrier (see weft/task.h: the runtime's monitor moves
	 * the others' work). Thread-locals in a job belong to the carrier.
	 * name and sched_batch do not apply (tasks are named "<name>-<i>");
	 * the monitor does not watch the pool (it watches the carriers). Default 0: threads. */
	int tasks;
} weft_pool_opts_t;

enum { WEFT_POOL_DRAIN = 1, WEFT_POOL_CANCEL = 2 };

/* A snapshot; each field is read on its own (relaxed), so fields taken at
 * one instant may not add up exactly while the pool is busy. */
typedef struct weft_pool_stats {
	uint64_t submitted;       /* jobs accepted (queued, or run inline) */
	uint64_t completed;       /* jobs that ran to the end (failed ones too) */
	uint64_t failed;          /* jobs that returned nonzero */
	uint64_t discarded;       /* jobs shutdown(CANCEL) passed to on_discard */
	uint64_t submits_blocked; /* submits that found the queue full and waited */
	uint64_t futex_wakes;     /* worker wake-ups that needed a syscall */
	uint64_t workers_started, workers_retired; /* threads, over the pool's life */
	uint64_t workers_died;    /* workers whose thread (or task) ended inside a
				   * job: each replaced (see "A job that ends its
				   * thread"); counted in workers_started too */
	size_t queued;            /* jobs in the queue now */
	unsigned running;         /* workers running a job now */
	unsigned parked;          /* workers parked (idle) now */
	unsigned workers;         /* worker threads alive now */
} weft_pool_stats_t;

/* Create a pool and start its workers (a fixed pool: all of them; a
 * dynamic pool: min_workers). opts NULL: defaults (as many workers as
 * online CPUs, queue of 1024). *out is set only on success.
 * Returns 0; -EINVAL for out NULL, workers == 0 with max_workers == 0,
 * both workers and min/max given, min_workers > max_workers, more than
 * WEFT_POOL_MAX_WORKERS workers, or idle_timeout_ns < 0; -ENOMEM for
 * queue_capacity > WEFT_POOL_MAX_QUEUE or no memory; -EAGAIN when a worker
 * thread cannot be started (nothing is left running). The caller owns the
 * pool (weft_pool_destroy); opts and name are copied. */
WEFT_API int weft_pool_create(weft_pool_t **out, const weft_pool_opts_t *opts);

/* Queue fn(arg); blocks while the queue is full. Returns 0 once queued;
 * -EINVAL (p or fn NULL); -EPIPE if the pool is or becomes shut down
 * before the job is queued (a submitter blocked at that moment is woken
 * and gets -EPIPE; the job is not queued). Allocates nothing.
 * From inside a job of the same pool, a full queue does not block: the
 * job is run inline, at once, on the calling worker (its result goes to
 * on_error as usual) and 0 is returned; so a job submitting to its own
 * pool never deadlocks (-ENOMEM, the job not run, if no memory is left
 * for its bookkeeping). Any thread may call it. */
WEFT_API int weft_pool_submit(weft_pool_t *p, weft_job_fn fn, void *arg);

/* Never blocks: 0, -EAGAIN when the queue is full (also from a job of the
 * pool: nothing runs inline), -EPIPE after shutdown, -EINVAL. */
WEFT_API int weft_pool_try_submit(weft_pool_t *p, weft_job_fn fn, void *arg);

/* As weft_pool_submit, but gives up at the absolute CLOCK_MONOTONIC
 * deadline (ns; WEFT_FOREVER: never) with -ETIMEDOUT, the job not queued.
 * A deadline already passed behaves like try_submit but returns
 * -ETIMEDOUT instead of -EAGAIN. Inside a job of the pool: runs inline
 * when full, as weft_pool_submit. */
WEFT_API int weft_pool_submit_until(weft_pool_t *p, weft_job_fn fn, void *arg,
				    int64_t deadline);

/* As weft_pool_submit, but returns the context's error (-ECANCELED, or
 * -ETIMEDOUT for its deadline) once ctx is done, the job not queued; a
 * context already done fails the call even if there is room. ctx NULL:
 * -EINVAL. Inside a job of the pool: runs inline when full. */
WEFT_API int weft_pool_submit_ctx(weft_pool_t *p, weft_job_fn fn, void *arg, weft_ctx_t *ctx);

/* Block until every job submitted before the call (accepted by a submit
 * that returned before wait was called) has finished: run to the end or
 * been discarded; and with them every job those jobs submitted to this
 * pool before returning (transitively: a job's children are covered by
 * the wait that covers it). Jobs submitted meanwhile may be waited for
 * too, but wait
 * never needs the queue to go empty, so steady submitting cannot starve
 * it. Returns 0; -EINVAL (p NULL); -EDEADLK from inside a job of the pool
 * (it would wait for itself). Any thread; many may wait at once. */
WEFT_API int weft_pool_wait(weft_pool_t *p);

/* Stop the pool. Both ways refuse new jobs at once (-EPIPE, blocked
 * submitters included) and wake every parked worker.
 *   WEFT_POOL_DRAIN:  every job queued runs, then the workers exit.
 *   WEFT_POOL_CANCEL: no queued job runs any more (jobs already running
 *                     finish); each is passed to on_discard (if set) and
 *                     counted as discarded: nothing is lost silently.
 * From any thread outside the pool's jobs, it returns once the workers are
 * joined (and, for DRAIN, every queued job has run). From inside a job of
 * the pool it cannot join its own worker: it starts the shutdown and
 * returns at once; the workers finish the queue (DRAIN) or discard it
 * (CANCEL) and exit, and weft_pool_destroy joins them.
 * Returns 0 for the call that started the shutdown; -EPIPE for any later
 * call (which, from outside a job, also returns only once the workers are
 * joined). A CANCEL after a DRAIN has started still cancels what is left
 * (and returns -EPIPE). -EINVAL for p NULL or another `how` (nothing
 * changes). */
WEFT_API int weft_pool_shutdown(weft_pool_t *p, int how);

/* Shut the pool down if nobody did (as WEFT_POOL_DRAIN), join the workers
 * and free everything. Must be the last call on the pool and never be
 * made from one of its jobs. NULL is a no-op. */
WEFT_API void weft_pool_destroy(weft_pool_t *p);

/* Fill *out with a snapshot (see weft_pool_stats_t): relaxed reads, no
 * lock, no syscall; cheap enough to poll every millisecond. Returns 0,
 * or -EINVAL (p or out NULL). Any thread. */
WEFT_API int weft_pool_stats(weft_pool_t *p, weft_pool_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_POOL_H */

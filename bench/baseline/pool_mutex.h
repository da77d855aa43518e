/* bench/baseline/pool_mutex.h: the mutex + condition variable worker pool,
 * the yardstick weft_pool_t (weft/pool.h) is measured against.
 *
 * Same contract as weft_pool_t under the prefix mpool_, for a fixed number
 * of workers (no dynamic sizing, no context variant): a bounded FIFO job
 * queue whose full state blocks submitters (backpressure); a job returning
 * nonzero is counted as failed and handed to on_error, the worker carries
 * on; wait() returns once every job submitted before the call has finished
 * (or was discarded); shutdown(MPOOL_DRAIN) refuses new jobs (-EPIPE), runs
 * what is queued and joins the workers; shutdown(MPOOL_CANCEL) refuses new
 * jobs, runs no queued job and hands each to on_discard (counted as
 * discarded); a second shutdown returns -EPIPE once the first has finished.
 * A job that submits to its own pool while the queue is full runs the new
 * job inline (on the calling worker), so it never waits for itself.
 * Deadlines are absolute CLOCK_MONOTONIC ns (MPOOL_FOREVER never passes).
 *
 * Design, as a careful engineer writes it with locks:
 * - one pthread mutex guards a ring buffer of {fn, arg} (the queue), the
 *   counters and the state;
 * - idle workers sleep on the condition variable not_empty; a submit
 *   signals it (one signal per job) only when some worker waits, and
 *   signals after unlocking, so the woken worker does not block on the
 *   mutex the submitter still holds;
 * - blocked submitters sleep on not_full, signalled per dequeued job only
 *   when a submitter waits;
 * - wait() callers sleep on done, broadcast when a job they wait for ends;
 * - jobs, on_error and on_discard run without the lock.
 *
 * futex_wakes in mpool_stats counts worker wake-ups, as weft_pool_stats
 * does: the not_empty signals made while a worker waited, each one
 * FUTEX_WAKE syscall in glibc. Wakes of blocked submitters and of wait()
 * callers, and mutex contention, are not counted (weft counts neither).
 *
 * Every call may be made by any number of threads at once, except destroy
 * (the last call on the pool). shutdown must not be called from a job of
 * the same pool (it would join its own thread): -EDEADLK.
 */
#ifndef WEFT_BENCH_POOL_MUTEX_H
#define WEFT_BENCH_POOL_MUTEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mpool mpool_t;
typedef int (*mpool_job_fn)(void *arg);

#define MPOOL_FOREVER INT64_MAX
/* Largest queue capacity accepted: larger ones are -EINVAL. */
#define MPOOL_MAX_QUEUE ((size_t)1 << 30)
/* Most workers accepted: more are -EINVAL. */
#define MPOOL_MAX_WORKERS 65536u

enum { MPOOL_DRAIN = 1, MPOOL_CANCEL = 2 };

struct mpool_opts {
	unsigned workers;      /* > 0 */
	size_t queue_capacity; /* 0: 1024 */
	void (*on_error)(mpool_job_fn fn, void *arg, int rc, void *user);
	void (*on_discard)(mpool_job_fn fn, void *arg, void *user);
	void *user;
};

struct mpool_stats {
	uint64_t submitted, completed, failed, discarded; /* completed counts failed */
	uint64_t submits_blocked, futex_wakes;
	size_t queued;
	unsigned running, parked, workers;
};

/* 0, -EINVAL (NULL out or opts, workers 0 or > MPOOL_MAX_WORKERS, queue
 * too large), -ENOMEM, or -EAGAIN (a thread could not be created; none is
 * left running). *out is set only on success. */
int mpool_create(mpool_t **out, const struct mpool_opts *opts);
/* 0 | -EPIPE (shut down: the job is still the caller's) | -EINVAL (NULL).
 * Blocks while the queue is full (inside a job of this pool: runs the job
 * inline instead). */
int mpool_submit(mpool_t *p, mpool_job_fn fn, void *arg);
/* never blocks: as submit, or -EAGAIN when full */
int mpool_try_submit(mpool_t *p, mpool_job_fn fn, void *arg);
/* as submit, or -ETIMEDOUT at the deadline (nothing queued) */
int mpool_submit_until(mpool_t *p, mpool_job_fn fn, void *arg, int64_t deadline);
/* 0 once every job submitted before the call has finished or was
 * discarded; -EINVAL (NULL). */
int mpool_wait(mpool_t *p);
/* 0 | -EPIPE (second call; returns once the first has finished) |
 * -EINVAL (NULL p, bad how) | -EDEADLK (called from a job of this pool) */
int mpool_shutdown(mpool_t *p, int how);
/* shuts down (DRAIN) if not yet, frees; NULL is a no-op */
void mpool_destroy(mpool_t *p);
/* a consistent snapshot; 0 or -EINVAL */
int mpool_stats(mpool_t *p, struct mpool_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_POOL_MUTEX_H */

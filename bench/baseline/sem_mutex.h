/* bench/baseline/sem_mutex.h: the mutex + condition variable weighted
 * semaphore, the yardstick weft_sem_t (weft/sync.h) is measured against.
 *
 * Same contract as weft_sem_t under the prefix msem_ (Go's
 * golang.org/x/sync/semaphore semantics): capacity tokens, acquired and
 * released n at a time, strictly FIFO (once anyone waits, later acquires
 * queue behind it even if they would fit, so a large request is never
 * starved; try_acquire fails while anyone waits); n < 0 or n > capacity is
 * -EINVAL; n == 0 succeeds at once; over-release is -EINVAL and changes
 * nothing; a timed-out acquire takes no token and, if it was at the head,
 * lets the waiters behind it proceed if they now fit. Deadlines are absolute
 * CLOCK_MONOTONIC ns (MSEM_FOREVER never passes).
 *
 * Design, as a competent engineer would write it with locks:
 * - one pthread mutex guards the free count and a FIFO queue of waiter
 *   records; the uncontended path is lock, check, unlock;
 * - each blocked acquire parks a record on its own stack with its own
 *   condition variable (CLOCK_MONOTONIC), so a release wakes exactly the
 *   waiters it hands tokens to, in order, and nobody else (no thundering
 *   herd on a shared condvar);
 * - release hands tokens directly to the head waiters as far as they fit
 *   (marks them granted and dequeues them under the lock), so a woken
 *   waiter never has to re-check or re-queue.
 *
 * Every call may be made by any number of threads at once, except init and
 * destroy, which must not overlap any other call on the same semaphore.
 */
#ifndef WEFT_BENCH_SEM_MUTEX_H
#define WEFT_BENCH_SEM_MUTEX_H

#include <pthread.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSEM_FOREVER INT64_MAX

struct msem_waiter;

typedef struct msem {
	pthread_mutex_t mu;
	int64_t capacity;
	int64_t free; /* tokens not held and not handed to a waiter */
	struct msem_waiter *head, *tail;
} msem_t;

/* 0, or -EINVAL (s NULL, capacity <= 0), or the error of pthread init. */
int msem_init(msem_t *s, int64_t capacity);
/* No thread may be waiting. NULL: nothing. */
void msem_destroy(msem_t *s);
/* Block until n tokens are taken: 0, or -EINVAL. */
int msem_acquire(msem_t *s, int64_t n);
/* Never blocks: 0, or -EAGAIN if fewer than n are free or anyone waits. */
int msem_try_acquire(msem_t *s, int64_t n);
/* As acquire, or -ETIMEDOUT (no token taken) once deadline passes. */
int msem_acquire_until(msem_t *s, int64_t n, int64_t deadline);
/* Return n tokens, handing them to the head waiters in order as far as
 * they fit. 0, or -EINVAL (over-release: nothing changes). */
int msem_release(msem_t *s, int64_t n);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_SEM_MUTEX_H */

/* bench/baseline/wg_mutex.h: the mutex + condition variable WaitGroup, the
 * yardstick weft_wg_t (weft/sync.h) is measured against.
 *
 * Same contract as weft_wg_t under the prefix mwg_: add(delta) changes the
 * counter (-EINVAL, nothing changed, if it would go negative or exceed
 * INT32_MAX), done is add(-1), wait blocks until the counter is zero; any
 * number of waiters; reusable once wait has returned.
 *
 * Design, as a competent engineer would write it with locks: one mutex
 * guards the counter and a count of waiters; the add that brings the
 * counter to zero broadcasts the condition variable only if someone waits
 * (no syscall otherwise); a waiter re-checks the counter under the lock.
 * A round number lets a waiter return once its round has ended even if a
 * new round has already started. Init and destroy must not overlap any
 * other call on the same WaitGroup.
 */
#ifndef WEFT_BENCH_WG_MUTEX_H
#define WEFT_BENCH_WG_MUTEX_H

#include <pthread.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mwg {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t count;
	uint64_t round;  /* incremented each time count reaches zero */
	unsigned waiters; /* threads in wait */
} mwg_t;

/* 0, or -EINVAL (NULL), or the error of pthread init. */
int mwg_init(mwg_t *wg);
/* No thread may be waiting. NULL: nothing. */
void mwg_destroy(mwg_t *wg);
int mwg_add(mwg_t *wg, int64_t delta);
int mwg_done(mwg_t *wg);
/* 0 once the counter is zero (or the round this call saw has ended). */
int mwg_wait(mwg_t *wg);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_WG_MUTEX_H */

/* lib/internal/futex.c: FUTEX_WAIT_BITSET (absolute monotonic deadline)
 * and FUTEX_WAKE, process-private. */
#include "internal/futex.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal/atomic.h"
#include <weft/common.h>

/* statistics only: relaxed, approximate under races is fine */
static uint64_t futex_wait_calls, futex_wake_calls;

int weft__futex_wait(uint32_t *word, uint32_t expected, int64_t deadline)
{
	struct timespec ts, *tsp = NULL;

	if (deadline != WEFT_FOREVER) {
		if (deadline <= weft_now())
			return -ETIMEDOUT;
		ts.tv_sec = deadline / 1000000000;
		ts.tv_nsec = deadline % 1000000000;
		tsp = &ts;
	}
	weft__faa64(&futex_wait_calls, 1);
	/* FUTEX_WAIT_BITSET takes an absolute timeout on CLOCK_MONOTONIC */
	long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
			  expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (rc == -1 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	/* woken, EAGAIN (value changed) or EINTR: the caller re-checks */
	return 0;
}

void weft__futex_wake(uint32_t *word, int n)
{
	weft__faa64(&futex_wake_calls, 1);
	syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

uint64_t weft__futex_waits(void)
{
	return weft__ld64_rlx(&futex_wait_calls);
}

uint64_t weft__futex_wakes(void)
{
	return weft__ld64_rlx(&futex_wake_calls);
}

/* lib/common.c: clocks, deadlines, error names. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include <weft/common.h>

#include "internal/clock.h"

int64_t weft__coarse_slack;

__attribute__((constructor)) static void coarse_clock_init(void)
{
	struct timespec r;
	if (clock_getres(CLOCK_MONOTONIC_COARSE, &r) != 0 || r.tv_sec != 0 ||
	    r.tv_nsec > 50000000)
		return; /* (weft__coarse_slack stays 0: precise reads only) */
	int64_t slack = 4 * (int64_t)r.tv_nsec;
	weft__coarse_slack = slack < 16000000 ? 16000000 : slack;
}

int64_t weft_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t weft_deadline(int64_t timeout_ns)
{
	int64_t now = weft_now();
	if (timeout_ns <= 0)
		return now;
	if (timeout_ns > WEFT_FOREVER - now)
		return WEFT_FOREVER;
	return now + timeout_ns;
}

const char *weft_strerror(int err)
{
	/* widen first: -INT_MIN does not fit in an int */
	long long e = err < 0 ? -(long long)err : err;
	switch (e) {
	case 0:
		return "success";
	case EAGAIN:
		return "would block (EAGAIN)";
	case ETIMEDOUT:
		return "deadline passed (ETIMEDOUT)";
	case ECANCELED:
		return "context canceled (ECANCELED)";
	case EPIPE:
		return "closed or shut down (EPIPE)";
	case EBUSY:
		return "busy: circuit open or in use (EBUSY)";
	case ENOMEM:
		return "out of memory or size too large (ENOMEM)";
	case EINVAL:
		return "invalid argument (EINVAL)";
	case EDEADLK:
		return "would deadlock (EDEADLK)";
	case EOWNERDEAD:
		return "its thread ended (pthread_exit or pthread_cancel) before it returned "
		       "(EOWNERDEAD)";
	default: {
		/* an application's own errno (a job's -EIO, say): libc's
		 * static, thread-safe description, when it has one */
		const char *d = e <= INT_MAX ? strerrordesc_np((int)e) : NULL;
		return d ? d : "unknown error";
	}
	}
}

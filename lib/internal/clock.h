/* lib/internal/clock.h: "has this deadline passed?" on hot paths.
 *
 * clock_gettime(CLOCK_MONOTONIC) costs 40-60 ns on this kind of VM
 * (kvm-clock through the vDSO), more than a task switch. A carrier with a
 * timer armed would read it on every switch, and a receive with a deadline
 * on every block. CLOCK_MONOTONIC_COARSE (the time at the last tick, about
 * 7 ns) is never ahead of the precise clock and at most a tick behind it,
 * so while coarse + slack is still before the deadline (slack: four ticks,
 * at least 16 ms) the deadline has not passed, and the precise clock is
 * read only near it. weft__coarse_slack is 0 where the coarse clock is
 * missing or coarser than 50 ms: then every check reads the precise one.
 */
#ifndef WEFT_INTERNAL_CLOCK_H
#define WEFT_INTERNAL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <weft/common.h>

extern int64_t weft__coarse_slack; /* set once by a constructor (common.c) */

static inline bool weft__deadline_passed(int64_t deadline)
{
	if (deadline == WEFT_FOREVER)
		return false;
	if (weft__coarse_slack) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		if ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + weft__coarse_slack < deadline)
			return false;
	}
	return weft_now() >= deadline;
}

#endif

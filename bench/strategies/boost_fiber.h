/* bench/strategies/boost_fiber.h: the sync family's fiber cases, run by
 * boost_fiber.cc (built when meson found Boost.Fiber: WEFT_BOOST_FIBER).
 * bench/sync.c times them beside weft's task cases. */
#ifndef WEFT_BENCH_BOOST_FIBER_H
#define WEFT_BENCH_BOOST_FIBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum boost_fiber_sync_kind {
	BOOST_FIBER_SPAWN,   /* items fibers started and finished (every: yield) */
	BOOST_FIBER_HANDOFF, /* items / 2 round trips over two unbuffered channels */
	BOOST_FIBER_PARKED,  /* items fibers parked in pop, then released by close */
	BOOST_CONTEXT_SWITCH, /* items bare switches (fcontext), there and back */
};

/* Run one case on the fiber pool of the boost_fiber strategy; blocks the
 * caller until it is over. *count: what was done (fibers run, hand-offs,
 * fibers released), to check against items. 0, or a negative errno. */
int boost_fiber_sync_run(enum boost_fiber_sync_kind kind, uint64_t items, unsigned every,
			 uint64_t *count);

#ifdef __cplusplus
}
#endif

#endif

/* bench/strategies/list.c: every channel strategy built into this binary,
 * and the ones meson left out (with why). To add a strategy, add one line
 * here (and its file to meson.build, its declaration to strategy.h). */
#include <string.h>

#include "strategy.h"

const struct chan_strategy *const chan_strategies[] = {
	&chan_strategy_weft,
	&chan_strategy_mutex,
	&chan_strategy_spin,
#ifdef WEFT_HAVE_CK_RING
	&chan_strategy_ck_ring_mpmc,
#endif
#ifdef WEFT_HAVE_MOODYCAMEL
	&chan_strategy_moodycamel,
#endif
#ifdef WEFT_HAVE_TBB
	&chan_strategy_tbb,
#endif
	NULL,
};

/* Strategies for one sender and one receiver only (caps without
 * CHAN_CAP_MPMC). They are not in chan_strategies[]: the unit conformance
 * suite (tests/unit/test_chan.c, c_mpmc) runs several senders on every
 * strategy it is given. weft-bench runs them in the 1 x 1 cases, and
 * bench/strategies/test_spsc.c checks them against the contract. */
const struct chan_strategy *const chan_strategies_spsc[] = {
#ifdef WEFT_HAVE_CK_RING
	&chan_strategy_ck_ring_spsc,
#endif
	NULL,
};

/* "name: reason" for every strategy this build skipped (meson.build) */
const char *const chan_strategies_skipped[] = { WEFT_STRATEGIES_SKIPPED };

const struct chan_strategy *chan_strategy_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; chan_strategies[i]; i++)
		if (!strcmp(chan_strategies[i]->name, name))
			return chan_strategies[i];
	for (size_t i = 0; chan_strategies_spsc[i]; i++)
		if (!strcmp(chan_strategies_spsc[i]->name, name))
			return chan_strategies_spsc[i];
	return NULL;
}

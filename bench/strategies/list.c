/* bench/strategies/list.c: every channel strategy built into this binary,
 * and the ones meson left out (with why). The lists come from
 * bench/strategies/meson.build, where each strategy is one line [name,
 * file]: meson passes them as X-macro lists, WEFT_STRATEGIES and
 * WEFT_STRATEGIES_SPSC (X(weft)X(mutex)...), which this file expands into
 * the declarations and the arrays. Nothing here changes when a strategy is
 * added. */
#include <string.h>

#include "strategy.h"

#ifndef WEFT_STRATEGIES
#error "WEFT_STRATEGIES: the strategy list comes from bench/strategies/meson.build"
#endif

#define X(name) extern const struct chan_strategy chan_strategy_##name;
WEFT_STRATEGIES
WEFT_STRATEGIES_SPSC
#undef X

#define X(name) &chan_strategy_##name,
const struct chan_strategy *const chan_strategies[] = { WEFT_STRATEGIES NULL };

/* Strategies for one sender and one receiver only (caps without
 * CHAN_CAP_MPMC), kept apart so that whoever walks chan_strategies[] may
 * run several senders on each (the stress tests do). weft-bench runs them
 * in the 1 x 1 cases; the conformance suite (tests/unit/test_chan.c) runs
 * them too, skipping the cases that need several senders or receivers. */
const struct chan_strategy *const chan_strategies_spsc[] = { WEFT_STRATEGIES_SPSC NULL };
#undef X

/* "name: reason" for every strategy this build skipped (meson.build) */
const char *const chan_strategies_skipped[] = { WEFT_STRATEGIES_SKIPPED };

const struct chan_strategy *chan_strategy_find(const char *name)
{
	const struct chan_strategy *const *lists[] = { chan_strategies, chan_strategies_spsc };

	if (!name)
		return NULL;
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; lists[l][i]; i++)
			if (!strcmp(lists[l][i]->name, name))
				return lists[l][i];
	return NULL;
}

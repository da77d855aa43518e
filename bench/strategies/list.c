/* bench/strategies/list.c: every channel strategy built into this binary. */
#include <string.h>

#include "strategy.h"

const struct chan_strategy *const chan_strategies[] = {
	&chan_strategy_weft,
	&chan_strategy_mutex,
	/* Peers go here, each guarded by its meson feature, for example:
	 * #ifdef WEFT_HAVE_MOODYCAMEL
	 *	&chan_strategy_moodycamel,
	 * #endif
	 * (likewise TBB's concurrent_bounded_queue and ck_ring), with the
	 * extern declaration in strategy.h and the source in meson.build. */
	NULL,
};

const struct chan_strategy *chan_strategy_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; chan_strategies[i]; i++)
		if (!strcmp(chan_strategies[i]->name, name))
			return chan_strategies[i];
	return NULL;
}

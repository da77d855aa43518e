/* bench/strategy.h: a channel strategy is one implementation of the channel
 * contract (weft/chan.h), seen through this table so the benchmark suite and
 * the conformance tests run every strategy through the same code.
 *
 * To add a strategy: write one file bench/strategies/<name>.c defining a
 * `const struct chan_strategy chan_strategy_<name>` and add one line,
 * `strategies += [['<name>', '<name>.c']]`, to bench/strategies/meson.build
 * (list.c declares and lists it from there; README.md, "Adding a strategy",
 * walks through it). Optional members may be NULL: the suite skips what a
 * strategy cannot do (a strategy without select skips select scenarios;
 * without *_many the bulk scenarios loop over single calls), and caps says
 * the rest: without
 * CHAN_CAP_UNBUFFERED no capacity-0 case runs, without CHAN_CAP_MPMC only
 * one sender and one receiver, without CHAN_CAP_BLOCKING the stress tests
 * skip the 1000-thread chain. close is required: a strategy that has none
 * of its own implements it in the wrapper (see ck_ring.c). rt, when set,
 * names the runtime whose user-space threads the benchmark's participants
 * run as (weft tasks, Boost fibers): see struct chan_runtime.
 *
 * Contract (same as weft/chan.h): return 0 or a negative errno; try calls
 * return -EAGAIN instead of blocking; after close, sends give -EPIPE and
 * receives drain then give -EPIPE; capacity 0 means rendezvous (a strategy
 * that cannot do it sets caps & CHAN_CAP_UNBUFFERED to 0).
 */
#ifndef WEFT_BENCH_STRATEGY_H
#define WEFT_BENCH_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
	CHAN_CAP_UNBUFFERED = 1 << 0, /* capacity 0 works (rendezvous) */
	CHAN_CAP_BLOCKING = 1 << 1,   /* send/recv sleep instead of spinning */
	CHAN_CAP_MPMC = 1 << 2,       /* any number of senders and receivers */
	/* a peer run as it is, without the wrapper that exact capacity and
	 * len() would take (boost_fiber: capacity rounded up to a power of
	 * two minus 1, no length query): the benchmark runs it (and checks
	 * exactly-once delivery), the conformance and stress suites skip it */
	CHAN_CAP_BENCH_ONLY = 1 << 3,
};

/* The user-space threads (weft tasks, Boost fibers) that a strategy's
 * participants run as in the benchmark runner (bench/chan.c): the
 * strategy's channels block them in user space, so starting them as
 * threads would measure something else. The runner starts one group per
 * run: group_create(n), group_spawn once per participant (each starts
 * held), group_go releases them all at once (the timed span starts just
 * before), group_join waits for all to return. Only the main thread calls
 * these, one group at a time.
 *   group_create: the group, or NULL (out of memory)
 *   group_spawn:  0, or a negative errno (the group is then unusable)
 *   group_join:   0 once all n returned, or -ETIMEDOUT at the absolute
 *                 CLOCK_MONOTONIC deadline (then join may be called again)
 *   group_destroy: after a join that returned 0 */
struct chan_runtime {
	const char *name; /* "weft tasks", "boost fibers" */
	void *(*group_create)(unsigned n);
	int (*group_spawn)(void *g, void (*fn)(void *), void *arg);
	void (*group_go)(void *g);
	int (*group_join)(void *g, int64_t deadline);
	void (*group_destroy)(void *g);
};

/* one case of a select over channels of this strategy */
struct chan_case {
	void *chan; /* NULL: disabled */
	int op;     /* 1 send, 2 recv (WEFT_SEND / WEFT_RECV) */
	void *elem;
	int err;
};

struct chan_strategy {
	const char *name;
	unsigned caps;
	int (*create)(void **out, size_t elem_size, size_t capacity);
	void (*destroy)(void *ch);
	int (*send)(void *ch, const void *elem);
	int (*recv)(void *ch, void *elem);
	int (*try_send)(void *ch, const void *elem);
	int (*try_recv)(void *ch, void *elem);
	int (*send_until)(void *ch, const void *elem, int64_t deadline);
	int (*recv_until)(void *ch, void *elem, int64_t deadline);
	int (*close)(void *ch);
	size_t (*len)(const void *ch);
	/* optional */
	long (*send_many)(void *ch, const void *elems, size_t n);
	long (*recv_many)(void *ch, void *elems, size_t max);
	int (*select)(struct chan_case *cases, size_t n);
	int (*select_try)(struct chan_case *cases, size_t n);
	int (*select_until)(struct chan_case *cases, size_t n, int64_t deadline);
	/* NULL: the benchmark's participants are threads */
	const struct chan_runtime *rt;
};

/* NULL-terminated list of every strategy built into this binary (meson.build
 * says which: weft, mutex, spin, ck_ring_mpmc, and the peers installed). */
extern const struct chan_strategy *const chan_strategies[];
/* NULL-terminated list of the single-sender, single-receiver strategies
 * (ck_ring_spsc; not in chan_strategies[]: see list.c). */
extern const struct chan_strategy *const chan_strategies_spsc[];
/* NULL-terminated "name: reason" for each strategy this build left out
 * (a peer not installed, or not built under ThreadSanitizer). */
extern const char *const chan_strategies_skipped[];
/* the runtime of strategy "tasks" (strategies/weft.c) */
extern const struct chan_runtime chan_runtime_tasks;
/* by name (from either list), or NULL */
const struct chan_strategy *chan_strategy_find(const char *name);

#ifdef __cplusplus
}
#endif

#endif

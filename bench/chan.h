/* bench/chan.h: the channel benchmark scenarios, plain C over
 * struct chan_strategy (bench/strategy.h), so every strategy runs through
 * the same code. bench/harness.cc registers one Google Benchmark per
 * case x strategy and only reports what chan_bench_run() measured.
 *
 * Every scenario creates its own threads (pthreads), releases them together
 * through a barrier, and measures wall time (CLOCK_MONOTONIC), the CPU
 * time of the whole process (getrusage RUSAGE_SELF, user + sys) and its
 * context switches (voluntary + involuntary) from the release until the
 * last thread is joined, and the run's peak RSS (bench/measure.h). Every
 * item carries a value, and the scenario checks that each was received
 * exactly once (count and sum): a strategy that loses or invents items
 * fails the run instead of looking fast.
 *
 * The matrix (chan_bench_cases[]):
 *   seq          one thread: send cap items, receive cap items, repeat (cap >= 1)
 *   spsc/mpsc/spmc/mpmc  P producers and C consumers on one channel; the last
 *                producer closes it, consumers receive until -EPIPE
 *   select_rx    4 senders, each on its own channel (closing it at the end),
 *                one receiver selecting over the 4 receive cases
 *   select_both  2 threads and 2 channels; thread i selects over "send on
 *                channel i" and "receive on channel 1-i" until it has sent
 *                its half and received the other half
 *   pingpong     round trips over two capacity-1 channels, each timed
 *   floor        the hardware floor for pingpong: one 64-byte aligned atomic
 *                word each way, both threads spinning (no strategy)
 *   floor/...    more of the hardware floor (no strategy), run first:
 *                clock (the cost of one CLOCK_MONOTONIC read, which every
 *                latency sample has subtracted), cas (one uncontended
 *                compare-and-swap on a line this core owns) and futex_wake
 *                (FUTEX_WAKE of a thread parked in FUTEX_WAIT to that
 *                thread running again, timed one way)
 *   scale        spsc at capacity 1024 with 0.1x, 1x and 10x the base items
 *                (1M, 10M, 100M by default): time and peak RSS must scale
 *                with the items and stay flat respectively
 *   pipeline     the seed's three stages, a thread each, on 3 channels:
 *                generate 0..items-1 -> square -> keep the even squares ->
 *                a fourth thread drains and sums them; each stage closes
 *                its output when its input is closed and drained. Checked:
 *                every stage moved its count, and the kept count and sum
 *                equal (items + 1) / 2 and the sum of (2k)^2 (computed
 *                independently after the run); items counts the numbers
 *                generated
 *   idle         64 threads blocked in recv on 64 empty channels for a while
 *                (the CPU they burn), then released by close
 */
#ifndef WEFT_BENCH_CHAN_H
#define WEFT_BENCH_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "measure.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

enum chan_bench_kind {
	CHAN_BENCH_SEQ,
	CHAN_BENCH_PC, /* producers x consumers on one channel */
	CHAN_BENCH_SELECT_RX,
	CHAN_BENCH_SELECT_BOTH,
	CHAN_BENCH_PINGPONG,
	CHAN_BENCH_FLOOR, /* no strategy */
	CHAN_BENCH_IDLE,
	CHAN_BENCH_FLOOR_CLOCK, /* no strategy */
	CHAN_BENCH_FLOOR_CAS,   /* no strategy */
	CHAN_BENCH_FLOOR_FUTEX, /* no strategy */
	CHAN_BENCH_PIPELINE,    /* generate -> square -> keep-even -> drain */
	CHAN_BENCH_SELECT_TRY,  /* select_try over `producers` empty channels */
	/* the seed's fanOut + FanIn: generate -> `producers` squaring workers,
	 * each with its own output -> one forwarder per output -> one channel
	 * -> drain */
	CHAN_BENCH_FANOUT,
	/* the seed's channel worker pool, line for line: generate -> jobs
	 * channel -> `producers` workers -> results channel -> drain */
	CHAN_BENCH_SEEDPOOL,
};

struct chan_bench_case {
	const char *family; /* "spsc", "mpmc", "pingpong", ... */
	enum chan_bench_kind kind;
	unsigned producers; /* sending threads (idle: blocked threads) */
	unsigned consumers; /* receiving threads */
	size_t capacity;
	/* items = base items x scale_x10 / 10 (0: the rule of chan_bench_items) */
	unsigned scale_x10;
	/* 1: only for the strategies of CHAN_SCALE_STRATEGIES at the largest
	 * scale (slow strategies would take minutes) */
	int capped;
};

/* the strategies the largest scale case runs for: weft, the mutex baseline
 * and the raw ring reference */
#define CHAN_SCALE_STRATEGIES "weft mutex ck_ring_spsc"

/* With more than 2 threads (more threads than the 2 cores of the machine
 * this was tuned on), every other strategy moves a tenth of the items of
 * chan_bench_items(): the peers and the spinning references need up to
 * 10 us per item there, and the default run must stay under 10 minutes.
 * The per-item figures compare all the same; the items counter says what
 * each moved. go (Go's runtime, bench/peers/go_peer.c, P x C cases only)
 * is as fast as weft there and moves them all. */
#define CHAN_FULL_ITEMS_STRATEGIES "weft tasks mutex go boost_fiber"

/* The whole matrix; count in chan_bench_ncases. */
extern const struct chan_bench_case chan_bench_cases[];
extern const size_t chan_bench_ncases;

struct chan_bench_params {
	/* Items per run for capacity >= 2 (default 10 million); the other
	 * cases derive theirs from it, see chan_bench_items(). */
	uint64_t base_items;
	/* idle: how long the threads stay blocked (default 1 s) */
	int64_t idle_ns;
	/* a run longer than this is a hang: each thread's progress goes to
	 * stderr, the channels are closed to release the threads and the run
	 * fails (if close does not release them, the process exits 124).
	 * 0: 120 s */
	int64_t timeout_ns;
};

struct chan_bench_result {
	uint64_t items;  /* items moved (pingpong, floor: round trips) */
	int64_t wall_ns; /* release of the threads to the last join (idle: the idle window) */
	int64_t cpu_ns;  /* process user + sys over the same span */
	int64_t ctx_switches; /* process context switches (voluntary + involuntary), same span */
	int has_latency; /* pingpong, floor: per round trip; floor/futex_wake: one way */
	/* from the log-linear histogram of bench/measure.h (within 3%; a
	 * percentile is its bucket's upper bound), the clock cost (lat.clock_ns)
	 * subtracted from every sample; max is exact */
	struct bench_latency lat;
	int64_t peak_rss_kb; /* the process's peak RSS during the run (VmHWM reset first) */
	int64_t futex_calls; /* weft strategy: FUTEX_WAIT + FUTEX_WAKE syscalls; else -1 */
	int64_t release_ns; /* idle: close of the channels to the last join */
	char error[200];    /* nonempty: the run failed (and says why) */
};

/* 1 if case c is a hardware floor (no strategy; s is NULL) */
int chan_bench_is_floor(const struct chan_bench_case *c);

/* 1 if strategy s can run case c (s is NULL only for the floor cases). */
int chan_bench_supported(const struct chan_bench_case *c, const struct chan_strategy *s);

/* Items a run of case c moves for the given base count:
 *   capacity >= 2           base (10 million by default)
 *   capacity 0 and 1        base / 100 (100k by default): there nearly every
 *                           item is a hand-off that may wake a sleeping
 *                           thread, 5 to 50 us each on 2 cores for the mutex
 *                           baseline, so 10 million would take an hour
 *   pingpong, floor         base / 50 round trips (200k by default)
 *   idle                    0
 *   floor/clock, floor/cas  base (clock reads, CASes)
 *   floor/futex_wake        base / 5000 wake-ups (2000 by default; each
 *                           needs the other thread asleep first)
 *   scale_x10 != 0          base x scale_x10 / 10
 * never less than 100 (except idle). */
uint64_t chan_bench_items(const struct chan_bench_case *c, uint64_t base_items);

/* Name of the benchmark, e.g. "chan/spsc/cap:1024/weft",
 * "chan/mpmc/cap:0/threads:4x4/mutex", "chan/pingpong/hw_floor",
 * "chan/floor/cas/hw_floor", "chan/scale/cap:1024/items:100000000/weft"
 * (base_items gives the items of the scale cases). Returns buf. */
char *chan_bench_name(char *buf, size_t size, const struct chan_bench_case *c,
		      const struct chan_strategy *s, uint64_t base_items);

#ifdef WEFT_GO_PEER
/* Go's runtime on the P x C cases (bench/peers/go_peer.c): the strategy is
 * only a name here, chan_bench_run hands its runs to go_peer_chan_run. */
extern const struct chan_strategy chan_strategy_go;
int go_peer_chan_run(const struct chan_bench_case *c, uint64_t items, int64_t timeout_ns,
		     struct chan_bench_result *r);
#endif

/* Run case c once with strategy s. Returns 0, or -1 with r->error set. */
int chan_bench_run(const struct chan_bench_case *c, const struct chan_strategy *s,
		   const struct chan_bench_params *p, struct chan_bench_result *r);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_CHAN_H */

/* bench/breaker.h: the circuit breaker benchmark family (weft/breaker.h),
 * plain C. bench/harness.cc registers one Google Benchmark per case x
 * implementation and only reports what breaker_bench_run() measured.
 *
 * An op is one execute of a function that only counts its calls (a
 * per-thread counter), so what is measured is the breaker's own overhead.
 * T threads (1, 2, 4, 8 on whatever cores there are) are released by a
 * barrier and each makes its share of the ops on one shared breaker.
 * Measured over that span: wall time, the process's CPU time and context
 * switches (bench/measure.h's meter), and the latency of every 64th call
 * (timed alone, the clock cost subtracted) into the log-linear histogram:
 * p50 ... p99.99 and the max. Each run checks itself: every call returned
 * what the state says (0 closed and half-open, -EBUSY open), the function
 * ran exactly once per admitted call, the breaker's request count agrees
 * and the state did not change.
 *
 * The cases (breaker_bench_cases[]), ops per run for base items B (default
 * 10 million, --weft_items / WEFT_BENCH_ITEMS), never fewer than 100:
 *   execute_closed/threads:T     closed, default settings (gobreaker's: no
 *                                interval), B ops: weft's lock-free path
 *   execute_open/threads:T       tripped, timeout 1 hour: every call is
 *                                rejected (-EBUSY), B ops
 *   execute_half_open/threads:T  half-open with max_requests = UINT32_MAX
 *                                (every call is a probe, it never closes):
 *                                the locked path, B / 4 ops
 * Every implementation uses the real clock (CLOCK_MONOTONIC; weft also
 * the coarse one while open), as gobreaker reads time.Now().
 *
 * Implementations: "weft" (weft_breaker_t), "mutex" (bench/baseline/
 * breaker_mutex.c: gobreaker written in C, one pthread mutex) and "go"
 * where Debian's golang-go is installed: the same program in Go
 * (bench/peers/go_peer.go: gobreaker's algorithm with one sync.Mutex,
 * goroutines as the threads, GOMAXPROCS = the cores) in a child process,
 * measured by itself (no latency samples).
 */
#ifndef WEFT_BENCH_BREAKER_H
#define WEFT_BENCH_BREAKER_H

#include <stddef.h>
#include <stdint.h>

#include "measure.h"

#ifdef __cplusplus
extern "C" {
#endif

enum breaker_bench_kind {
	BREAKER_BENCH_CLOSED,
	BREAKER_BENCH_OPEN,
	BREAKER_BENCH_HALF_OPEN,
};

enum breaker_bench_impl {
	BREAKER_IMPL_WEFT,
	BREAKER_IMPL_MUTEX,
	BREAKER_IMPL_GO, /* only when the Go peer is built (breaker_bench_supported) */
	BREAKER_IMPL_COUNT,
};

struct breaker_bench_case {
	const char *name; /* "execute_closed/threads:2", without family and impl */
	enum breaker_bench_kind kind;
	unsigned threads;
};

extern const struct breaker_bench_case breaker_bench_cases[];
extern const size_t breaker_bench_ncases;

struct breaker_bench_result {
	uint64_t items; /* ops (execute calls) */
	int64_t wall_ns, cpu_ns, ctx_switches, peak_rss_kb;
	int has_latency;
	struct bench_latency lat;
	char error[200];
};

const char *breaker_bench_impl_name(enum breaker_bench_impl impl);
/* 1 if impl runs here (go: built with the peer) */
int breaker_bench_supported(enum breaker_bench_impl impl);
uint64_t breaker_bench_items(const struct breaker_bench_case *c, uint64_t base_items);
/* e.g. "breaker/execute_closed/threads:2/weft". Returns buf. */
char *breaker_bench_name(char *buf, size_t size, const struct breaker_bench_case *c,
			 enum breaker_bench_impl impl);
/* Run case c once. 0, or -1 with r->error set. */
int breaker_bench_run(const struct breaker_bench_case *c, enum breaker_bench_impl impl,
		      uint64_t base_items, int64_t timeout_ns, struct breaker_bench_result *r);

/* bench/peers/go_peer.c: the Go program's run of case c (no latency) */
int go_peer_breaker_run(const struct breaker_bench_case *c, uint64_t items, int64_t timeout_ns,
			struct breaker_bench_result *r);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_BREAKER_H */

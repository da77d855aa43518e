/* bench/pipeline.h: the pipeline and spill benchmark families
 * (weft/pipeline.h, the overflow policies of weft/chan.h), plain C;
 * bench/harness.cc registers one Google Benchmark per case and reports what
 * pl_bench_run() measured (wall, process CPU, context switches, peak RSS,
 * and bytes for the spill family).
 *
 * pipeline family (items for base B, default 10 million):
 *   seed/cap:C/V        the seed pipeline generate -> square -> keep even ->
 *                       the caller drains, C in 0, 64, 1024 (B; B / 100 at
 *                       cap 0, where nearly every item is a hand-off), as
 *                       weft_pipeline sources/stages with workers as
 *                       threads (V = weft_threads) or tasks (weft_tasks),
 *                       and go: Go's runtime on the same program
 *                       (bench/peers/go_peer.go runPipeline) in the same run.
 *                       weft_threads at cap 64 moves B / 10 (each blocking
 *                       hop is a futex sleep and wake: 1-5 us).
 *   ordered/workers:N/V source -> one stage of N workers (N in 1, 2, 8),
 *                       about 200 ns of arithmetic per item, ordered or
 *                       unordered (V), cap 1024, the caller checks order
 *                       where asked: B / 10 items.
 *   fanout:8/cap:C/V    source -> fan_out 8 squaring workers -> fan_in ->
 *                       the caller (the seed's fanOut + FanIn; go: runFanout),
 *                       C in 0 (B / 100) and 64 (B / 10; threads B / 100).
 * spill family:
 *   producer_ahead/elem:E/V
 *                       64 B x B / 10 (640 MB at B = 10M) in elements of
 *                       E = 64 or 1024 bytes, sent by one
 *                       producer with nobody receiving, then drained:
 *                       V = spill: a SPILL channel (ring 1024, 256 KiB
 *                       blocks, the file in $TMPDIR or /tmp); MB/s of the
 *                       send phase (write), the drain phase (read) and
 *                       overall. V = raw_write: the same bytes written by
 *                       pwrite in 256 KiB blocks to an unlinked file in the
 *                       same directory (dd-like, no fsync, as the spill),
 *                       then read back. V = mem_chan: a BLOCK channel of
 *                       1024 with producer and consumer running together.
 *   drop/cap:1024/V     one producer sending B elements of 8 bytes as fast
 *                       as it can, one consumer receiving: V = block (the
 *                       plain ring: the producer waits when full),
 *                       drop_newest, drop_oldest: ns per send.
 */
#ifndef WEFT_BENCH_PIPELINE_H
#define WEFT_BENCH_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "measure.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pl_kind { PL_SEED, PL_ORDERED, PL_FANOUT, PL_SPILL, PL_DROP };

struct pl_bench_case {
	const char *family;   /* "pipeline" or "spill" */
	const char *scenario; /* "seed", "ordered", ... */
	enum pl_kind kind;
	size_t capacity;
	unsigned workers;
	const char *variant;  /* weft_threads, weft_tasks, go, ordered, ... */
	unsigned items_div;   /* items = B / items_div (at least 100) */
};

extern const struct pl_bench_case pl_bench_cases[];
extern const size_t pl_bench_ncases;

struct pl_bench_result {
	uint64_t items;
	int64_t wall_ns, cpu_ns, ctx_switches, peak_rss_kb;
	/* spill family: bytes moved, and the two phases' wall time */
	uint64_t bytes;
	int64_t write_ns, read_ns;
	char error[200];
};

/* 1 if the case can run in this build (go needs the peer) */
int pl_bench_supported(const struct pl_bench_case *c);
/* "pipeline/seed/cap:64/weft_tasks", ... Returns buf. */
char *pl_bench_name(char *buf, size_t size, const struct pl_bench_case *c);
/* 0, or -1 with r->error set (lost or invented items fail the run) */
int pl_bench_run(const struct pl_bench_case *c, uint64_t base_items, int64_t timeout_ns,
		 struct pl_bench_result *r);

#ifdef __cplusplus
}
#endif

#endif

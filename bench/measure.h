/* bench/measure.h: what every benchmark family (chan.c, sync.c, pool.c)
 * measures the same way, so one implementation serves them all:
 *   - a meter over one or more timed spans: wall time (CLOCK_MONOTONIC),
 *     CPU time of the whole process (getrusage RUSAGE_SELF, user + sys,
 *     every thread, the joined ones included) and its context switches
 *     (ru_nvcsw + ru_nivcsw: voluntary and involuntary);
 *   - the peak RSS of a run: the kernel's mark (VmHWM) reset at its start;
 *   - the latency histogram: log-linear buckets (HDR style: values below 64
 *     exactly, then 32 linear sub-buckets per power of two, so a bucket is
 *     within 1/32 of its values), fixed memory however many samples, and
 *     its percentiles p50, p90, p99, p99.9, p99.99 and the exact max;
 *   - the cost of one clock read, which every latency sample has subtracted.
 * Plain C; the harness (C++) reads struct bench_latency.
 */
#ifndef WEFT_BENCH_MEASURE_H
#define WEFT_BENCH_MEASURE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_NS_PER_S 1000000000LL

int64_t bench_now_ns(void); /* CLOCK_MONOTONIC */
void bench_sleep_ns(int64_t ns);
/* The cost of one bench_now_ns(): the median of back-to-back differences,
 * measured once per process (thread-safe). */
int64_t bench_clock_cost_ns(void);

/* Timed spans, summed. start reads the process usage then the clock, stop
 * the clock then the usage, so the usage brackets the wall time. */
struct bench_meter {
	int64_t wall_ns, cpu_ns, ctx_switches; /* summed over the spans */
	int64_t end_ns;                        /* the clock when the last span stopped */
	int64_t t0, cpu0, csw0;                /* the open span */
};
void bench_meter_start(struct bench_meter *m);
void bench_meter_stop(struct bench_meter *m);

/* Reset the process's peak-RSS mark to its current RSS (/proc/self/clear_refs
 * "5", Linux >= 4.0): 1 if the kernel took it, so that bench_peak_rss_kb()
 * reports the peak since; 0 otherwise (the peak is then the lifetime one). */
int bench_peak_rss_reset(void);
/* peak RSS in KiB: VmHWM, or getrusage ru_maxrss where /proc is not there */
int64_t bench_peak_rss_kb(void);

/* the log-linear latency histogram (about 15 KiB: allocate it) */
#define BENCH_HIST_SUB 32
#define BENCH_HIST_BUCKETS (2 * BENCH_HIST_SUB + (63 - 6 + 1) * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t n[BENCH_HIST_BUCKETS];
	uint64_t count;
	int64_t max;
};

/* one sample, ns (a negative one counts as 0); a count and an increment */
void bench_hist_add(struct bench_hist *h, int64_t v);
/* nearest rank over the buckets: the upper bound of the bucket holding the
 * smallest sample with at least q of the samples at or below it (never above
 * the exact max) */
int64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* A run's latency, as every family reports it. */
struct bench_latency {
	int64_t p50_ns, p90_ns, p99_ns, p999_ns, p9999_ns, max_ns;
	int64_t clock_ns; /* the clock cost that was subtracted from each sample */
};
void bench_hist_latency(const struct bench_hist *h, int64_t clock_ns, struct bench_latency *out);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_MEASURE_H */

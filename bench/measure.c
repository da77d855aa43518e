/* bench/measure.c: time, process usage, peak RSS and the latency histogram
 * shared by the benchmark families (see measure.h). */
#include "measure.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- time ------------------------------------------------------------- */

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * BENCH_NS_PER_S + ts.tv_nsec;
}

void bench_sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / BENCH_NS_PER_S, .tv_nsec = ns % BENCH_NS_PER_S };

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

int64_t bench_clock_cost_ns(void)
{
	static _Atomic int64_t cost = -1;
	int64_t c = atomic_load_explicit(&cost, memory_order_relaxed);

	if (c < 0) {
		enum { N = 2001 };
		unsigned hist[256] = { 0 }, acc = 0;

		for (int i = 0; i < N; i++) {
			int64_t a = bench_now_ns(), d = bench_now_ns() - a;

			hist[d < 255 ? d : 255]++;
		}
		for (c = 0; c < 255 && (acc += hist[c]) <= N / 2; c++)
			;
		/* relaxed: a racing first caller measures the same thing */
		atomic_store_explicit(&cost, c, memory_order_relaxed);
	}
	return c;
}

/* ---- the meter --------------------------------------------------------- */

static void usage(int64_t *cpu, int64_t *csw)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*cpu = ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * BENCH_NS_PER_S +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
	*csw = (int64_t)ru.ru_nvcsw + ru.ru_nivcsw;
}

void bench_meter_start(struct bench_meter *m)
{
	usage(&m->cpu0, &m->csw0);
	m->t0 = bench_now_ns();
}

void bench_meter_stop(struct bench_meter *m)
{
	int64_t cpu, csw;

	m->end_ns = bench_now_ns();
	usage(&cpu, &csw);
	m->wall_ns += m->end_ns - m->t0;
	m->cpu_ns += cpu - m->cpu0;
	m->ctx_switches += csw - m->csw0;
}

/* ---- peak RSS ------------------------------------------------------------ */

int bench_peak_rss_reset(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	int ok;

	if (fd < 0)
		return 0;
	ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

int64_t bench_peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = -1;
	struct rusage ru;

	if (f) {
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "VmHWM: %lld kB", &kb) == 1)
				break;
		fclose(f);
	}
	if (kb >= 0)
		return kb;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* ---- the latency histogram ----------------------------------------------- */

static unsigned hist_index(uint64_t v)
{
	unsigned m, shift;

	if (v < 2 * BENCH_HIST_SUB)
		return (unsigned)v;
	m = 63 - (unsigned)__builtin_clzll(v); /* >= 6 */
	shift = m - 5;
	return 2 * BENCH_HIST_SUB + (m - 6) * BENCH_HIST_SUB +
	       (unsigned)((v >> shift) - BENCH_HIST_SUB);
}

/* the largest value bucket i holds */
static int64_t hist_upper(unsigned i)
{
	unsigned m, shift, sub;

	if (i < 2 * BENCH_HIST_SUB)
		return i;
	m = (i - 2 * BENCH_HIST_SUB) / BENCH_HIST_SUB + 6;
	shift = m - 5;
	sub = (i - 2 * BENCH_HIST_SUB) % BENCH_HIST_SUB + BENCH_HIST_SUB;
	return (int64_t)((((uint64_t)sub + 1) << shift) - 1);
}

void bench_hist_add(struct bench_hist *h, int64_t v)
{
	if (v < 0)
		v = 0;
	h->n[hist_index((uint64_t)v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

int64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999), acc = 0;

	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		acc += h->n[i];
		if (acc >= rank)
			return hist_upper(i) < h->max ? hist_upper(i) : h->max;
	}
	return h->max;
}

void bench_hist_latency(const struct bench_hist *h, int64_t clock_ns, struct bench_latency *out)
{
	out->p50_ns = bench_hist_quantile(h, 0.5);
	out->p90_ns = bench_hist_quantile(h, 0.9);
	out->p99_ns = bench_hist_quantile(h, 0.99);
	out->p999_ns = bench_hist_quantile(h, 0.999);
	out->p9999_ns = bench_hist_quantile(h, 0.9999);
	out->max_ns = h->max;
	out->clock_ns = clock_ns;
}

// bench/harness.cc: the Google Benchmark driver. It only registers one
// benchmark per case x strategy (bench/chan.c does the threading, timing
// and checking) and turns each result into counters:
//   items_per_second  items moved per second of wall time (SetItemsProcessed
//                     over the manual time, which is the scenario's wall time)
//   ns_per_item       wall time per item
//   cpu_ns_per_item   process CPU (user + sys, every thread) per item
//   cpu_util          process CPU / wall time (cores kept busy)
//   p50_ns p99_ns p999_ns max_ns   pingpong round trips
//   idle_cpu_ns release_ns          idle: CPU burned while blocked, close-to-join
// Google Benchmark's own cpu_time is the process CPU clock over the whole
// iteration (setup and thread creation included): prefer cpu_ns_per_item.
//
// Flags (before the --benchmark_* ones, which Google Benchmark parses):
//   --weft_items=N      base items per run (default 10000000, or the
//                       environment variable WEFT_BENCH_ITEMS); see
//                       chan_bench_items() for what each case derives
//   --weft_idle_ms=MS   idle: how long the threads stay blocked (default 1000)
//   --weft_timeout=S    a run taking longer is a hang (default 120): report
//                       it, release the threads by closing the channels, fail
//                       (sync family: print its progress and exit 124)
// The sync family (bench/sync.c: semaphore, errgroup, context) reports the
// same counters with an op (acquire+release pair, task, context) as the
// item, plus threads_created (errgroup: threads created during the run).
// The pool family (bench/pool.c: weft_pool_t against the mutex pool) counts
// jobs as items and adds futex_wakes_per_item (where the strategy counts
// them), ctx_switches_per_item (process, getrusage) and peak_rss_kb (see
// bench/pool.h); its latency case reports the submit-to-start percentiles,
// its idle case idle_cpu_ns and release_ns (shutdown) as the chan idle case.
// Exit status: 1 if any run failed (lost items, an error from a strategy).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "chan.h"
#include "sync.h"
#include "pool.h"

namespace {

chan_bench_params params = { 10000000, 1000000000, 0 };
bool any_failed = false;

void run_case(benchmark::State &state, const chan_bench_case *c, const chan_strategy *s)
{
	double wall = 0, cpu = 0, items = 0, release = 0;
	std::vector<chan_bench_result> lat; // per iteration, for the worst

	for (auto _ : state) {
		chan_bench_result r;

		if (chan_bench_run(c, s, &params, &r) != 0) {
			any_failed = true;
			state.SkipWithError(r.error);
			break;
		}
		state.SetIterationTime(static_cast<double>(r.wall_ns) / 1e9);
		wall += static_cast<double>(r.wall_ns);
		cpu += static_cast<double>(r.cpu_ns);
		items += static_cast<double>(r.items);
		release += static_cast<double>(r.release_ns);
		if (r.has_latency)
			lat.push_back(r);
	}
	if (wall == 0)
		return; // failed
	auto &k = state.counters;
	if (c->kind == CHAN_BENCH_IDLE) {
		double n = static_cast<double>(state.iterations());
		k["idle_cpu_ns"] = cpu / n;
		k["release_ns"] = release / n;
		k["cpu_util"] = cpu / wall;
		k["threads"] = c->producers;
		return;
	}
	state.SetItemsProcessed(static_cast<int64_t>(items));
	k["items"] = items / static_cast<double>(state.iterations());
	k["ns_per_item"] = wall / items;
	k["cpu_ns_per_item"] = cpu / items;
	k["cpu_util"] = cpu / wall;
	if (!lat.empty()) {
		// several iterations: the median of each percentile, the worst max
		auto med = [&](int64_t chan_bench_result::*f) {
			std::vector<int64_t> v;
			for (auto &r : lat)
				v.push_back(r.*f);
			std::sort(v.begin(), v.end());
			return static_cast<double>(v[v.size() / 2]);
		};
		k["p50_ns"] = med(&chan_bench_result::p50_ns);
		k["p99_ns"] = med(&chan_bench_result::p99_ns);
		k["p999_ns"] = med(&chan_bench_result::p999_ns);
		k["max_ns"] = static_cast<double>(
			std::max_element(lat.begin(), lat.end(), [](auto &a, auto &b) {
				return a.max_ns < b.max_ns;
			})->max_ns);
	}
}

void run_sync(benchmark::State &state, const sync_bench_case *c, sync_bench_impl impl)
{
	sync_bench_params sp = { params.base_items, params.timeout_ns };
	double wall = 0, cpu = 0, items = 0, threads = -1;

	for (auto _ : state) {
		sync_bench_result r;

		if (sync_bench_run(c, impl, &sp, &r) != 0) {
			any_failed = true;
			state.SkipWithError(r.error);
			break;
		}
		state.SetIterationTime(static_cast<double>(r.wall_ns) / 1e9);
		wall += static_cast<double>(r.wall_ns);
		cpu += static_cast<double>(r.cpu_ns);
		items += static_cast<double>(r.items);
		threads = static_cast<double>(r.threads);
	}
	if (wall == 0)
		return; // failed
	auto &k = state.counters;
	state.SetItemsProcessed(static_cast<int64_t>(items));
	k["items"] = items / static_cast<double>(state.iterations());
	k["ns_per_item"] = wall / items;
	k["cpu_ns_per_item"] = cpu / items;
	k["cpu_util"] = cpu / wall;
	if (threads >= 0)
		k["threads_created"] = threads;
}

bool flag(const char *arg, const char *name, double *out)
{
	size_t n = std::strlen(name);

	if (std::strncmp(arg, name, n) != 0 || arg[n] != '=')
		return false;
	char *end;
	*out = std::strtod(arg + n + 1, &end);
	if (end == arg + n + 1 || *end || *out < 0) {
		std::fprintf(stderr, "weft-bench: bad value in %s\n", arg);
		std::exit(2);
	}
	return true;
}

// Take our flags out of argv; leave the rest to Google Benchmark.
void parse_flags(int *argc, char **argv)
{
	if (const char *e = std::getenv("WEFT_BENCH_ITEMS"))
		params.base_items = std::strtoull(e, nullptr, 10);
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		double v;
		if (flag(argv[i], "--weft_items", &v))
			params.base_items = static_cast<uint64_t>(v);
		else if (flag(argv[i], "--weft_idle_ms", &v))
			params.idle_ns = static_cast<int64_t>(v * 1e6);
		else if (flag(argv[i], "--weft_timeout", &v))
			params.timeout_ns = static_cast<int64_t>(v * 1e9);
		else
			argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = nullptr;
}

void register_all()
{
	char name[160];

	for (size_t i = 0; i < chan_bench_ncases; i++) {
		const chan_bench_case *c = &chan_bench_cases[i];
		std::vector<const chan_strategy *> strategies;

		if (c->kind == CHAN_BENCH_FLOOR)
			strategies.push_back(nullptr);
		else
			for (const chan_strategy *const *s = chan_strategies; *s; s++)
				strategies.push_back(*s);
		for (const chan_strategy *s : strategies) {
			if (!chan_bench_supported(c, s))
				continue;
			chan_bench_name(name, sizeof name, c, s);
			benchmark::RegisterBenchmark(name, run_case, c, s)
				->Iterations(1)
				->UseManualTime()
				->MeasureProcessCPUTime()
				->Unit(benchmark::kMillisecond);
		}
	}
	for (size_t i = 0; i < sync_bench_ncases; i++) {
		const sync_bench_case *c = &sync_bench_cases[i];

		for (int impl = 0; impl < SYNC_IMPL_COUNT; impl++) {
			auto si = static_cast<sync_bench_impl>(impl);
			if (!sync_bench_supported(c, si))
				continue;
			sync_bench_name(name, sizeof name, c, si);
			benchmark::RegisterBenchmark(name, run_sync, c, si)
				->Iterations(1)
				->UseManualTime()
				->MeasureProcessCPUTime()
				->Unit(benchmark::kMillisecond);
		}
	}
}

void run_pool(benchmark::State &state, const pool_bench_case *c, const pool_strategy *s)
{
	pool_bench_params pp = { params.base_items, params.idle_ns, params.timeout_ns };
	double wall = 0, cpu = 0, items = 0, wakes = 0, csw = 0, rss = 0;
	bool have_wakes = true;
	std::vector<pool_bench_result> lat;

	for (auto _ : state) {
		pool_bench_result r;

		if (pool_bench_run(c, s, &pp, &r) != 0) {
			any_failed = true;
			state.SkipWithError(r.error);
			break;
		}
		state.SetIterationTime(static_cast<double>(r.wall_ns) / 1e9);
		wall += static_cast<double>(r.wall_ns);
		cpu += static_cast<double>(r.cpu_ns);
		items += static_cast<double>(r.jobs);
		csw += static_cast<double>(r.ctx_switches);
		rss = std::max(rss, static_cast<double>(r.peak_rss_kb));
		if (r.futex_wakes < 0)
			have_wakes = false;
		wakes += static_cast<double>(r.futex_wakes);
		if (r.has_latency)
			lat.push_back(r);
	}
	if (wall == 0)
		return; // failed
	auto &k = state.counters;
	double n = static_cast<double>(state.iterations());
	k["peak_rss_kb"] = rss;
	if (c->kind == POOL_BENCH_IDLE) {
		k["idle_cpu_ns"] = cpu / n;
		k["cpu_util"] = cpu / wall;
		k["threads"] = c->workers;
		return;
	}
	state.SetItemsProcessed(static_cast<int64_t>(items));
	k["items"] = items / n;
	k["ns_per_item"] = wall / items;
	k["cpu_ns_per_item"] = cpu / items;
	k["cpu_util"] = cpu / wall;
	k["ctx_switches_per_item"] = csw / items;
	if (have_wakes)
		k["futex_wakes_per_item"] = wakes / items;
	if (!lat.empty()) {
		auto med = [&](int64_t pool_bench_result::*f) {
			std::vector<int64_t> v;
			for (auto &r : lat)
				v.push_back(r.*f);
			std::sort(v.begin(), v.end());
			return static_cast<double>(v[v.size() / 2]);
		};
		k["p50_ns"] = med(&pool_bench_result::p50_ns);
		k["p99_ns"] = med(&pool_bench_result::p99_ns);
		k["p999_ns"] = med(&pool_bench_result::p999_ns);
		k["max_ns"] = static_cast<double>(
			std::max_element(lat.begin(), lat.end(), [](auto &a, auto &b) {
				return a.max_ns < b.max_ns;
			})->max_ns);
	}
}

// The pool family: one benchmark per case x pool strategy (bench/pool.c).
void register_pool()
{
	char name[160];

	for (size_t i = 0; i < pool_bench_ncases; i++) {
		const pool_bench_case *c = &pool_bench_cases[i];

		if (!pool_bench_supported(c, params.base_items))
			continue;
		for (const pool_strategy *const *s = pool_strategies; *s; s++) {
			pool_bench_name(name, sizeof name, c, *s);
			benchmark::RegisterBenchmark(name, run_pool, c, *s)
				->Iterations(1)
				->UseManualTime()
				->MeasureProcessCPUTime()
				->Unit(benchmark::kMillisecond);
		}
	}
}

} // namespace

int main(int argc, char **argv)
{
	parse_flags(&argc, argv);
	register_all();
	register_pool();
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 2;
	benchmark::AddCustomContext("weft_base_items", std::to_string(params.base_items));
	benchmark::AddCustomContext("weft_idle_ms", std::to_string(params.idle_ns / 1000000));
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return any_failed ? 1 : 0;
}

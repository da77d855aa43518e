// bench/harness.cc: the Google Benchmark driver. It only registers one
// benchmark per case x strategy (bench/chan.c does the threading, timing
// and checking) and turns each result into counters:
//   items_per_second  items moved per second of wall time (SetItemsProcessed
//                     over the manual time, which is the scenario's wall time)
//   ns_per_item       wall time per item
//   cpu_ns_per_item   process CPU (user + sys, every thread) per item
//   cpu_util          process CPU / wall time (cores kept busy)
//   ctx_switches_per_item  process context switches (voluntary +
//                     involuntary, getrusage) per item
//   peak_rss_kb       the run's peak RSS (bench/measure.h)
//   p50_ns p90_ns p99_ns p999_ns p9999_ns max_ns   pingpong round trips, the
//                     floor's samples, the pool's submit-to-start (the
//                     log-linear histogram of bench/measure.h, clock cost
//                     subtracted: clock_ns)
//   futex_per_item    weft's FUTEX_WAIT + FUTEX_WAKE syscalls per item
//                     (weft strategy only: weft counts its own)
//   idle_cpu_ns release_ns          idle: CPU burned while blocked, close-to-join
// Google Benchmark's own cpu_time is the process CPU clock over the whole
// iteration (setup and thread creation included): prefer cpu_ns_per_item.
//
// Before running it prints the strategies built in and those skipped (peers
// not installed, with why; also in the JSON context as weft_strategies and
// weft_skipped), and before each run a progress line on stderr: which
// benchmark, n of N, time so far and an estimate of the time left (from
// --weft_estimates when given, else the mean so far).
//
// Flags (before the --benchmark_* ones, which Google Benchmark parses):
//   --weft_items=N      base items per run (default 10000000, or the
//                       environment variable WEFT_BENCH_ITEMS); see
//                       chan_bench_items() for what each case derives
//   --weft_idle_ms=MS   idle: how long the threads stay blocked (default 1000)
//   --weft_timeout=S    a run taking longer is a hang (default 120): report
//                       it, release the threads by closing the channels, fail
//                       (sync family: print its progress and exit 124)
//   --weft_estimates=F  seconds per benchmark from an earlier run ("name
//                       seconds" lines), for the time-left estimate
//   --weft_times_out=F  write this run's seconds per benchmark there (with
//                       the entries of --weft_estimates it did not run)
//   --weft_no_progress  no progress lines
//   --weft_map_full     the map family's whole matrix (default: a subset,
//                       see register_map)
// The sync family (bench/sync.c: semaphore, errgroup, context, WaitGroup)
// reports the same counters with an op (acquire+release pair, task,
// context, fork-join round) as the item, plus threads_created (errgroup:
// threads created during the run). The pool family (bench/pool.c:
// weft_pool_t against the mutex pool) counts jobs as items and adds
// futex_wakes_per_item (where the strategy counts them); its latency case
// reports the submit-to-start percentiles, its idle case idle_cpu_ns and
// release_ns (shutdown) as the chan idle case.
// The breaker family (bench/breaker.c: weft_breaker_t against the mutex
// breaker written as gobreaker is, and gobreaker's algorithm in Go) counts
// execute calls as items and reports the latency percentiles of one call
// in 64 (weft and mutex; the Go peer has none).
// The map family (bench/map.c: weft's map against the mutex and rwlock
// maps, ck_ht, TBB, libcuckoo and Go's sync.Map) counts map calls as items
// and adds rss_bytes_per_key (RSS growth while filling the keys, per key)
// and, in the herd case, computes_per_key.
// Exit status: 1 if any run failed (lost items, an error from a strategy).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "breaker.h"
#include "chan.h"
#include "sync.h"
#include "map.h"
#include "pool.h"
#include "pipeline.h"

namespace {

chan_bench_params params = { 10000000, 1000000000, 0 };
bool any_failed = false;

// ---- progress ----------------------------------------------------------

struct progress_state {
	std::vector<std::string> names; // registered, in run order
	std::map<std::string, double> estimate, took;
	size_t total = 0, done = 0; // runs (benchmarks x repetitions)
	int reps = 1;
	bool on = true;
	std::string estimates_in, times_out;
	std::chrono::steady_clock::time_point start, last;
	std::string current;
} prog;

std::string clock_text(double s)
{
	char b[32];
	long t = static_cast<long>(s + 0.5);

	if (t >= 3600)
		std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		std::snprintf(b, sizeof b, "%ld:%02ld", t / 60, t % 60);
	return b;
}

// the benchmarks Google Benchmark will run: ours that match the filter
// (its rules: "all" or empty is everything, a leading '-' negates; the
// name it matches carries "/iterations:1/manual_time")
void count_runs(const std::string &filter)
{
	std::string f = filter.empty() || filter == "all" ? "." : filter;
	bool negate = !f.empty() && f[0] == '-';
	if (negate)
		f = f.substr(1);
	std::regex re;
	try {
		re = std::regex(f, std::regex::extended);
	} catch (const std::regex_error &) {
		prog.on = false; // Google Benchmark will report the bad filter
		return;
	}
	std::vector<std::string> kept;
	for (auto &n : prog.names)
		if (std::regex_search(n + "/iterations:1/manual_time", re) != negate)
			kept.push_back(n);
	prog.names = kept;
	prog.total = kept.size() * static_cast<size_t>(prog.reps);
}

void load_estimates()
{
	if (prog.estimates_in.empty())
		return;
	std::ifstream in(prog.estimates_in);
	std::string name;
	double sec;
	while (in >> name >> sec)
		prog.estimate[name] = sec;
}

void save_times()
{
	if (prog.times_out.empty())
		return;
	std::map<std::string, double> all = prog.estimate;
	for (auto &kv : prog.took)
		all[kv.first] = kv.second / prog.reps;
	std::ofstream out(prog.times_out);
	for (auto &kv : all)
		out << kv.first << " " << kv.second << "\n";
}

// the previous run's time is booked; this one starts
void progress(const std::string &name)
{
	auto now = std::chrono::steady_clock::now();
	if (!prog.current.empty())
		prog.took[prog.current] += std::chrono::duration<double>(now - prog.last).count();
	prog.last = now;
	prog.current = name;
	if (name.empty() || !prog.on || prog.total == 0)
		return;
	if (prog.done == 0)
		prog.start = now;
	prog.done++;
	double elapsed = std::chrono::duration<double>(now - prog.start).count();
	// time left: what is left at the earlier run's pace, scaled by how this
	// run compares with it so far; the mean so far where nothing is known
	double est_done = 0, real_done = 0, left = 0;
	for (auto &kv : prog.took) {
		auto e = prog.estimate.find(kv.first);
		if (e != prog.estimate.end() && e->second > 0) {
			est_done += e->second * prog.reps;
			real_done += kv.second;
		}
	}
	double pace = est_done > 0 ? real_done / est_done : 1;
	double mean = prog.done > 1 ? elapsed / static_cast<double>(prog.done - 1) : 0;
	bool found = false;
	for (auto &n : prog.names) {
		double reps_left = prog.reps;
		if (n == name) { // this one's repetitions not over yet
			found = true;
			reps_left = prog.reps - static_cast<double>((prog.done - 1) % prog.reps);
		} else if (!found) {
			continue; // run already
		}
		auto e = prog.estimate.find(n);
		left += reps_left * (e != prog.estimate.end() ? e->second * pace : mean);
	}
	if (prog.done == 1 && prog.estimate.empty())
		std::fprintf(stderr, "[%*zu/%zu] %s\n", static_cast<int>(std::to_string(prog.total).size()),
			     prog.done, prog.total, name.c_str());
	else
		std::fprintf(stderr, "[%*zu/%zu] %s  (%s so far, about %s left)\n",
			     static_cast<int>(std::to_string(prog.total).size()), prog.done, prog.total,
			     name.c_str(), clock_text(elapsed).c_str(), clock_text(left).c_str());
}

// What every family's runs add up to over the iterations, and the counters
// they all report from it.
struct totals {
	double wall = 0, cpu = 0, items = 0, csw = 0, rss = 0;

	void add(int64_t wall_ns, int64_t cpu_ns, uint64_t n, int64_t ctx_switches,
		 int64_t peak_rss_kb)
	{
		wall += static_cast<double>(wall_ns);
		cpu += static_cast<double>(cpu_ns);
		items += static_cast<double>(n);
		csw += static_cast<double>(ctx_switches);
		rss = std::max(rss, static_cast<double>(peak_rss_kb));
	}

	// items, ns/item, CPU ns/item, cores busy, context switches per item
	// and peak RSS (wall > 0 and items > 0: a run that moved something)
	void report(benchmark::State &state) const
	{
		auto &k = state.counters;
		state.SetItemsProcessed(static_cast<int64_t>(items));
		k["items"] = items / static_cast<double>(state.iterations());
		k["ns_per_item"] = wall / items;
		k["cpu_ns_per_item"] = cpu / items;
		k["cpu_util"] = cpu / wall;
		k["ctx_switches_per_item"] = csw / items;
		k["peak_rss_kb"] = rss;
	}
};

// several iterations with latency: the median of each percentile, the worst max
void report_latency(benchmark::State &state, const std::vector<bench_latency> &lat)
{
	if (lat.empty())
		return;
	auto med = [&](int64_t bench_latency::*f) {
		std::vector<int64_t> v;
		for (auto &l : lat)
			v.push_back(l.*f);
		std::sort(v.begin(), v.end());
		return static_cast<double>(v[v.size() / 2]);
	};
	auto &k = state.counters;
	k["p50_ns"] = med(&bench_latency::p50_ns);
	k["p90_ns"] = med(&bench_latency::p90_ns);
	k["p99_ns"] = med(&bench_latency::p99_ns);
	k["p999_ns"] = med(&bench_latency::p999_ns);
	k["p9999_ns"] = med(&bench_latency::p9999_ns);
	k["clock_ns"] = med(&bench_latency::clock_ns);
	int64_t worst = 0;
	for (auto &l : lat)
		worst = std::max(worst, l.max_ns);
	k["max_ns"] = static_cast<double>(worst);
}

void run_case(benchmark::State &state, const chan_bench_case *c, const chan_strategy *s,
	      const std::string &name)
{
	totals t;
	double release = 0, futex = 0;
	bool have_futex = true;
	std::vector<bench_latency> lat;

	progress(name);
	for (auto _ : state) {
		chan_bench_result r;

		if (chan_bench_run(c, s, &params, &r) != 0) {
			any_failed = true;
			state.SkipWithError(r.error);
			break;
		}
		state.SetIterationTime(static_cast<double>(r.wall_ns) / 1e9);
		t.add(r.wall_ns, r.cpu_ns, r.items, r.ctx_switches, r.peak_rss_kb);
		release += static_cast<double>(r.release_ns);
		if (r.futex_calls < 0)
			have_futex = false;
		futex += static_cast<double>(r.futex_calls);
		if (r.has_latency)
			lat.push_back(r.lat);
	}
	if (t.wall == 0)
		return; // failed
	auto &k = state.counters;
	if (c->kind == CHAN_BENCH_IDLE) {
		double n = static_cast<double>(state.iterations());
		k["peak_rss_kb"] = t.rss;
		k["idle_cpu_ns"] = t.cpu / n;
		k["release_ns"] = release / n;
		k["cpu_util"] = t.cpu / t.wall;
		k["threads"] = c->producers;
		return;
	}
	t.report(state);
	if (have_futex)
		k["futex_per_item"] = futex / t.items;
	report_latency(state, lat);
}

void run_sync(benchmark::State &state, const sync_bench_case *c, sync_bench_impl impl,
	      const std::string &name)
{
	sync_bench_params sp = { params.base_items, params.timeout_ns };
	totals t;
	double threads = -1;

	progress(name);
	for (auto _ : state) {
		sync_bench_result r;

		if (sync_bench_run(c, impl, &sp, &r) != 0) {
			any_failed = true;
			state.SkipWithError(r.error);
			break;
		}
		state.SetIterationTime(static_cast<double>(r.wall_ns) / 1e9);
		t.add(r.wall_ns, r.cpu_ns, r.items, r.ctx_switches, r.peak_rss_kb);
		threads = static_cast<double>(r.threads);
	}
	if (t.wall == 0)
		return; // failed
	t.report(state);
	if (threads >= 0)
		state.counters["threads_created"] = threads;
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
bool map_full = false; // --weft_map_full

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
		else if (!std::strncmp(argv[i], "--weft_estimates=", 17))
			prog.estimates_in = argv[i] + 17;
		else if (!std::strncmp(argv[i], "--weft_times_out=", 17))
			prog.times_out = argv[i] + 17;
		else if (!std::strcmp(argv[i], "--weft_no_progress"))
			prog.on = false;
		else if (!std::strcmp(argv[i], "--weft_map_full"))
			map_full = true;
		else {
			if (!std::strncmp(argv[i], "--benchmark_repetitions=", 24))
				prog.reps = std::max(1, std::atoi(argv[i] + 24));
			argv[out++] = argv[i];
		}
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

		if (chan_bench_is_floor(c))
			strategies.push_back(nullptr);
		else {
			for (const chan_strategy *const *s = chan_strategies; *s; s++)
				strategies.push_back(*s);
			for (const chan_strategy *const *s = chan_strategies_spsc; *s; s++)
				strategies.push_back(*s);
#ifdef WEFT_GO_PEER
			strategies.push_back(&chan_strategy_go);
#endif
		}
		for (const chan_strategy *s : strategies) {
			if (!chan_bench_supported(c, s))
				continue;
			chan_bench_name(name, sizeof name, c, s, params.base_items);
			prog.names.push_back(name);
			benchmark::RegisterBenchmark(name, run_case, c, s, std::string(name))
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
			prog.names.push_back(name);
			benchmark::RegisterBenchmark(name, run_sync, c, si, std::string(name))
				->Iterations(1)
				->UseManualTime()
				->MeasureProcessCPUTime()
				->Unit(benchmark::kMillisecond);
		}
	}
}

void run_pool(benchmark::State &state, const pool_bench_case *c, const pool_strategy *s,
	      const std::string &name)
{
	pool_bench_params pp = { params.base_items, params.idle_ns, params.timeout_ns };
	totals t;
	double wakes = 0, release = 0;
	bool have_wakes = true;
	std::vector<bench_latency> lat;

	progress(name);
	for (auto _ : state) {
		pool_bench_result r;

		if (pool_bench_run(c, s, &pp, &r) != 0) {
			any_failed = true;
			state.SkipWithError(r.error);
			break;
		}
		state.SetIterationTime(static_cast<double>(r.wall_ns) / 1e9);
		t.add(r.wall_ns, r.cpu_ns, r.jobs, r.ctx_switches, r.peak_rss_kb);
		release += static_cast<double>(r.release_ns);
		if (r.futex_wakes < 0)
			have_wakes = false;
		wakes += static_cast<double>(r.futex_wakes);
		if (r.has_latency)
			lat.push_back(r.lat);
	}
	if (t.wall == 0)
		return; // failed
	auto &k = state.counters;
	if (c->kind == POOL_BENCH_IDLE) {
		k["peak_rss_kb"] = t.rss;
		double n = static_cast<double>(state.iterations());
		k["idle_cpu_ns"] = t.cpu / n;
		k["release_ns"] = release / n;
		k["cpu_util"] = t.cpu / t.wall;
		k["threads"] = c->workers;
		return;
	}
	t.report(state);
	if (have_wakes)
		k["futex_wakes_per_item"] = wakes / t.items;
	report_latency(state, lat);
}

// The map family (bench/map.c): impl NULL is the Go peer (go_sf: with
// singleflight).
void run_map(benchmark::State &state, const map_bench_case *c, const map_impl *impl, bool go_sf,
	     const std::string &name)
{
	map_bench_params mp = { params.base_items, params.timeout_ns };
	totals t;
	double rss_per_key = -1, computes = -1;

	progress(name);
	for (auto _ : state) {
		map_bench_result r;
		int rc;

		if (impl) {
			rc = map_bench_run(c, impl, &mp, &r);
		} else {
#ifdef WEFT_GO_PEER
			uint64_t keys = std::max<uint64_t>(params.base_items / 10, 1000);
			uint64_t ops = c->kind == MAP_BENCH_HERD ? uint64_t(c->threads) * 64
								 : keys / c->threads * c->threads;
			std::memset(&r, 0, sizeof r);
			rc = go_peer_map_run(c, keys, ops, go_sf, mp.timeout_ns ? mp.timeout_ns
									 : 120000000000LL, &r);
#else
			rc = -1;
			std::snprintf(r.error, sizeof r.error, "go peer not built");
#endif
		}
		if (rc != 0) {
			any_failed = true;
			state.SkipWithError(r.error);
			break;
		}
		state.SetIterationTime(static_cast<double>(r.wall_ns) / 1e9);
		t.add(r.wall_ns, r.cpu_ns, r.items, r.ctx_switches, r.peak_rss_kb);
		rss_per_key = r.rss_bytes_per_key;
		computes = r.computes_per_key;
	}
	if (t.wall == 0)
		return; // failed
	t.report(state);
	if (rss_per_key >= 0)
		state.counters["rss_bytes_per_key"] = rss_per_key;
	if (computes >= 0)
		state.counters["computes_per_key"] = computes;
}

// One implementation's cases together (map.c keeps its filled map between
// them); the Go peer fills its own each run. By default a subset (the full
// matrix takes about 5 minutes on 2 cores, mostly refilling Go's map in
// every child process): uniform keys at 1, 2 and 8 threads, Zipf at 2, the
// Go peer at 2 threads and in the herd. --weft_map_full: every case.
bool map_default_case(const map_bench_case *c, bool go)
{
	if (c->kind == MAP_BENCH_HERD)
		return true;
	if (go || c->dist == MAP_DIST_ZIPF)
		return c->threads == 2;
	return c->threads != 4;
}

void register_map()
{
	char name[160];
	struct entry {
		const map_impl *impl;
		const char *name;
		bool sf;
	};
	std::vector<entry> impls;
	for (const map_impl *const *m = map_impls; *m; m++)
		impls.push_back({ *m, (*m)->name, false });
#ifdef WEFT_GO_PEER
	impls.push_back({ nullptr, "go", false });
#ifdef WEFT_GO_SF
	impls.push_back({ nullptr, "go_sf", true });
#endif
#endif
	for (const entry &e : impls) {
		for (size_t i = 0; i < map_bench_ncases; i++) {
			const map_bench_case *c = &map_bench_cases[i];
			if (!map_bench_supported(c, e.impl) || (e.sf && c->kind != MAP_BENCH_HERD))
				continue;
			if (!map_full && !map_default_case(c, e.impl == nullptr))
				continue;
			map_bench_name(name, sizeof name, c, e.name);
			prog.names.push_back(name);
			benchmark::RegisterBenchmark(name, run_map, c, e.impl, e.sf, std::string(name))
				->Iterations(1)
				->UseManualTime()
				->MeasureProcessCPUTime()
				->Unit(benchmark::kMillisecond);
		}
	}
}

// The pool family: one benchmark per case x pool strategy (bench/pool.c).
void register_pool()
{
	char name[160];

	for (size_t i = 0; i < pool_bench_ncases; i++) {
		const pool_bench_case *c = &pool_bench_cases[i];

		for (const pool_strategy *const *s = pool_strategies; *s; s++) {
			if (!pool_bench_supported(c, *s, params.base_items))
				continue;
			pool_bench_name(name, sizeof name, c, *s);
			prog.names.push_back(name);
			benchmark::RegisterBenchmark(name, run_pool, c, *s, std::string(name))
				->Iterations(1)
				->UseManualTime()
				->MeasureProcessCPUTime()
				->Unit(benchmark::kMillisecond);
		}
	}
}

void run_breaker(benchmark::State &state, const breaker_bench_case *c, breaker_bench_impl impl,
		 const std::string &name)
{
	totals t;
	std::vector<bench_latency> lat;

	progress(name);
	for (auto _ : state) {
		breaker_bench_result r;

		if (breaker_bench_run(c, impl, params.base_items, params.timeout_ns, &r) != 0) {
			any_failed = true;
			state.SkipWithError(r.error);
			break;
		}
		state.SetIterationTime(static_cast<double>(r.wall_ns) / 1e9);
		t.add(r.wall_ns, r.cpu_ns, r.items, r.ctx_switches, r.peak_rss_kb);
		if (r.has_latency)
			lat.push_back(r.lat);
	}
	if (t.wall == 0)
		return; // failed
	t.report(state);
	report_latency(state, lat);
}

// The breaker family: one benchmark per case x implementation (bench/breaker.c).
void register_breaker()
{
	char name[160];

	for (size_t i = 0; i < breaker_bench_ncases; i++) {
		const breaker_bench_case *c = &breaker_bench_cases[i];

		for (int impl = 0; impl < BREAKER_IMPL_COUNT; impl++) {
			auto bi = static_cast<breaker_bench_impl>(impl);
			if (!breaker_bench_supported(bi))
				continue;
			breaker_bench_name(name, sizeof name, c, bi);
			prog.names.push_back(name);
			benchmark::RegisterBenchmark(name, run_breaker, c, bi, std::string(name))
				->Iterations(1)
				->UseManualTime()
				->MeasureProcessCPUTime()
				->Unit(benchmark::kMillisecond);
		}
	}
}

void run_pipeline(benchmark::State &state, const pl_bench_case *c, const std::string &name)
{
	totals t;
	double bytes = 0, wr = 0, rd = 0;

	progress(name);
	for (auto _ : state) {
		pl_bench_result r;

		if (pl_bench_run(c, params.base_items, params.timeout_ns, &r) != 0) {
			any_failed = true;
			state.SkipWithError(r.error);
			break;
		}
		state.SetIterationTime(static_cast<double>(r.wall_ns) / 1e9);
		t.add(r.wall_ns, r.cpu_ns, r.items, r.ctx_switches, r.peak_rss_kb);
		bytes += static_cast<double>(r.bytes);
		wr += static_cast<double>(r.write_ns);
		rd += static_cast<double>(r.read_ns);
	}
	if (t.wall == 0)
		return; // failed
	t.report(state);
	auto &k = state.counters;
	if (c->kind == PL_SPILL) {
		// MB/s (10^6 bytes) of the send phase, the drain phase, overall
		k["write_MBps"] = bytes / wr * 1e3;
		k["read_MBps"] = bytes / rd * 1e3;
		k["MBps"] = bytes / t.wall * 1e3;
	} else if (c->kind == PL_DROP) {
		k["dropped"] = bytes / static_cast<double>(state.iterations());
	}
}

// The pipeline and spill families: one benchmark per case (bench/pipeline.c).
void register_pipeline()
{
	char name[160];

	for (size_t i = 0; i < pl_bench_ncases; i++) {
		const pl_bench_case *c = &pl_bench_cases[i];

		if (!pl_bench_supported(c))
			continue;
		pl_bench_name(name, sizeof name, c);
		prog.names.push_back(name);
		benchmark::RegisterBenchmark(name, run_pipeline, c, std::string(name))
			->Iterations(1)
			->UseManualTime()
			->MeasureProcessCPUTime()
			->Unit(benchmark::kMillisecond);
	}
}

} // namespace

int main(int argc, char **argv)
{
	if (argc == 2 && !std::strncmp(argv[1], "--weft_map_rss=", 15))
		return map_bench_rss_child(argv[1] + 15); // bench/map.c's child
	parse_flags(&argc, argv);
	register_all();
	register_pool();
	register_breaker();
	register_pipeline();
	register_map();
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 2;
	benchmark::AddCustomContext("weft_base_items", std::to_string(params.base_items));
	benchmark::AddCustomContext("weft_idle_ms", std::to_string(params.idle_ns / 1000000));
	std::string built, skipped;
	for (const chan_strategy *const *s = chan_strategies; *s; s++)
		built += (built.empty() ? "" : " ") + std::string((*s)->name);
	for (const chan_strategy *const *s = chan_strategies_spsc; *s; s++)
		built += (built.empty() ? "" : " ") + std::string((*s)->name) + "(1x1 only)";
#ifdef WEFT_GO_PEER
	built += " go(P x C cases)";
#endif
	for (const char *const *s = chan_strategies_skipped; *s; s++)
		skipped += (skipped.empty() ? "" : "; ") + std::string(*s);
	for (const char *const *s = pool_strategies_skipped; *s; s++)
		skipped += (skipped.empty() ? "" : "; ") + std::string(*s);
	for (const char *const *s = map_impls_skipped; *s; s++)
		skipped += (skipped.empty() ? "" : "; ") + std::string(*s);
	benchmark::AddCustomContext("weft_strategies", built);
	benchmark::AddCustomContext("weft_skipped", skipped.empty() ? "none" : skipped);
	std::string pools;
	for (const pool_strategy *const *s = pool_strategies; *s; s++)
		pools += (pools.empty() ? "" : " ") + std::string((*s)->name);
	benchmark::AddCustomContext("weft_pool_strategies", pools);
	std::string maps;
	for (const map_impl *const *m = map_impls; *m; m++)
		maps += (maps.empty() ? "" : " ") + std::string((*m)->name);
#ifdef WEFT_GO_PEER
	maps += " go";
#ifdef WEFT_GO_SF
	maps += " go_sf(herd)";
#endif
#endif
	benchmark::AddCustomContext("weft_map_impls", maps);
	std::fprintf(stderr, "weft-bench: map implementations: %s\n", maps.c_str());
	std::fprintf(stderr, "weft-bench: channel strategies: %s\n", built.c_str());
	std::fprintf(stderr, "weft-bench: pool strategies: %s\n", pools.c_str());
	std::fprintf(stderr, "weft-bench: skipped: %s\n", skipped.empty() ? "none" : skipped.c_str());
	load_estimates();
	count_runs(benchmark::GetBenchmarkFilter());
	benchmark::RunSpecifiedBenchmarks();
	progress(""); // book the last one
	save_times();
	benchmark::Shutdown();
	return any_failed ? 1 : 0;
}

#!/usr/bin/python3
"""bench-smoke test of report.py and compare.py: run the report on three
recorded runs (testdata/sample.json, sample2.json, sample3.json) and check
that report.md holds the expected tables and figures, that the plots are
written (when matplotlib imports), that cells of the tables hold the
JSON's figures (medians, the worst max, ratios of medians, computed here
from the JSON), and that compare.py runs (a run compared with itself:
nothing flagged).

sample.json was made with (quick, tiny, 3 repetitions so the median is used):
  weft-bench --weft_items=20000 --weft_idle_ms=50 --benchmark_repetitions=3 \
    --benchmark_filter='spsc|mpmc/cap:1024/threads:2x2|select_rx/cap:1024|pingpong|idle' \
    --benchmark_out=sample.json --benchmark_out_format=json
sample2.json (newer counters) with RECORD2 below; breaker.json (the
breaker family) with RECORD_BREAKER. If one is re-recorded,
update its EXPECTED list from the new report.md.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# lines report.md must contain (medians of the 3 repetitions; "vs weft" then
# "vs mutex"; spread = half the min-max range of ns/item over the median)
EXPECTED = [
    # summary: weft items/s over mutex items/s, and their geometric mean
    "| spsc | 5.81x | 14.61x | 4.06x | - |",
    "| pingpong | - | - | - | 31.66x |",
    "Geometric mean over 6 cases: 6.66x",
    # median of 18.09M, 16.55M, 19.56M items/s; 4.06x = 18.09M / 4.46M
    "| cap:1024 | weft | 18.09M | 55.3 | ±8.4% | 91.3 | 1.62 | 1.00x | 4.06x |",
    "| cap:1024 | mutex | 4.46M | 224 | ±3.2% | 309 | 1.38 | 0.25x | 1.00x |",
    # percentiles: medians of the repetitions, max the worst; this recording
    # predates p90/p99.99 ("-"); p50 / floor = 1035 / 371
    "| - | weft | 426.48k | 2345 | ±22.0% | 3432 | 1.46 | 1035 | - | 1245 | 71.1 us | - | "
    "103.5 us | 2.79x | 1.00x | 31.66x |",
    "| - | hw_floor | 1.14M | 876 | ±13.1% | 1460 | 1.67 | 371 | - | 431 | 34.5 us | - | "
    "76.0 us | 1.00x | 2.68x | 84.71x |",
    "| cap:1/threads:64 | weft | 564.0 us | 1.12% | 2.26 ms |",
    "| cap:1024/threads:4x1 | weft | 3.89M | 257 | ±52.8% | 460 | 1.67 | 1.00x | 3.57x |",
    # the comparison table: ns/item per strategy, geometric mean speed vs weft
    "| pingpong | 2345 | 74.2 us | 876 |",
]

# sample2.json: a recorded run with the newer counters (hardware floor,
# p90/p99.99, peak RSS, the scale family, peers), see RECORD2 below
RECORD2 = """weft-bench --weft_items=20000 --benchmark_repetitions=3 \\
  --benchmark_filter='floor|pingpong|spsc/cap:1024|scale' \\
  --benchmark_out=sample2.json --benchmark_out_format=json"""
EXPECTED2 = [
    "Strategies: weft mutex spin ck_ring_mpmc moodycamel tbb ck_ring_spsc(1x1 only).",
    # the hardware floor on top: clock p50/p99, CAS ns/item, round trip, futex
    "| clock read (CLOCK_MONOTONIC) | 20.0 | 31.0 | subtracted from every latency sample |",
    "| uncontended CAS | 7.5 | - | one thread, a line it owns |",
    "| cache-line round trip, 2 cores | 229.4 us | 335.9 us |",
    "| futex wake to running | 5119 | 135.0 us |",
    # vs weft (5.22M / 5.22M, 1.69M / 5.22M) and vs mutex; peak RSS
    "| cap:1024 | weft | 5.22M | 192 | ±29.5% | 192 | 1.00 | 5.8 MB | 1.00x | 0.25x |",
    "| cap:1024 | tbb | 1.69M | 592 | ±5.9% | 589 | 1.00 | 6.4 MB | 0.32x | 0.08x |",
    # p50 p90 p99 p99.9 p99.99 max, p50 / floor (5119 / 229.4 us)
    "| - | weft | 177.42k | 5636 | ±2.2% | 5595 | 0.99 | 5119 | 6399 | 6783 | 15.4 us | "
    "15.4 us | 58.3 us | 0.02x | 6.4 MB | 1.00x | 2.17x |",
    # the scale family with its peak RSS
    "| cap:1024/items:200000 | weft | 35.85M | 27.9 | ±0.7% | 27.6 | 0.99 | 7.0 MB | 1.00x | 1.92x |",
    # the comparison table: ns/item per strategy; geometric mean speed vs weft
    "| spsc cap:1024 | 192 | 48.5 | 61.0 | 39.8 | 117 | 31.6 | 592 |  |",
    "| speed vs weft (geomean) | 1.00x | 0.82x | 0.84x | 1.08x | 0.44x | 1.39x | 0.28x | - |",
]
# sample3.json: the counters every family reports (context switches, peak
# RSS), the pipeline, sync (with wg) and pool (the latency case's histogram
# percentiles) families, "vs weft" in sync and pool; see RECORD3
RECORD3 = """weft-bench --weft_items=20000 --weft_idle_ms=50 --benchmark_repetitions=3 \\
  --benchmark_filter='chan/spsc/cap:1024|chan/pipeline|sync/|pool/(seed/|latency|idle)' \\
  --benchmark_out=sample3.json --benchmark_out_format=json"""
EXPECTED3 = [
    # every table has the context switch column (and sync the peak RSS)
    "| case | strategy | items/s | ns/item | spread | CPU ns/item | cores busy | peak RSS | "
    "futex/item | ctx sw/item | vs weft | vs mutex |",
    "| case | impl | ops | ops/s | ns/op | spread | CPU ns/op | cores busy | threads made | "
    "peak RSS | ctx sw/op | vs weft | vs mutex |",
    "| case | strategy | jobs | jobs/s | ns/job | spread | CPU ns/job | cores busy | p50 ns | "
    "p90 ns | p99 ns | p99.9 ns | p99.99 ns | max ns | peak RSS | futex wakes/job | ctx sw/job "
    "| vs weft | vs mutex |",
    "| cap:1024 | weft | 4.81M | 208 | ±93.1% | 45.7 | 0.97 | 5.8 MB | 0.006 | 0.004 | 1.00x | "
    "0.31x |",
    # the pipeline family in its place: after spsc, before sync
    "## pipeline",
    "| cap:0 | mutex | 55.12k | 18.1 us | ±37.5% | 18.0 us | 0.99 | 6.2 MB | - | 4.785 | 1.73x "
    "| 1.00x |",
    "| pipeline | 0.58x | 1.67x |",
    "| wg/threads:8 | mutex | 100 | 13.78k | 72.6 us | ±33.1% | 72.0 us | 0.99 | - | 8.0 MB | "
    "19.640 | 0.95x | 1.00x |",
    "| ctx_cancel_tree/children:10000 | weft | 10.00k | 37.44M | 26.7 | ±8.0% | 27.1 | 1.01 | - "
    "| 8.0 MB | 0.000 | 1.00x | - |",
    "| latency/workers:100/gap_us:100 | weft | 100 | 5.24k | 190.9 us | ±7.8% | 33.2 us | 0.167 "
    "| 4479 | 5631 | 8063 | 9935 | 9935 | 56.4 us | 9.1 MB | 1.000 | 3.380 | 1.00x | 1.01x |",
    "| seed/workers:100/queue:200 | mutex | 2.00k | 123.69k | 8085 | ±14.3% | 8083 | 1.003 | - "
    "| - | - | - | - | - | 8.7 MB | 1.000 | 1.849 | 0.75x | 1.00x |",
]
# the sync note describes every sync scenario in the run
EXPECTED3 += ["sem_uncontended: one thread", "sem_contended/threads:T: T threads",
              "errgroup/limit:100: a weft_group", "ctx_with_cancel: with_cancel + release",
              "ctx_cancel_tree/children:10000: the parent's cancel only",
              "wg/threads:N: WaitGroup fork-join rounds", "(bench/baseline/wg_mutex.c)"]
# (section, case, strategy, column, benchmark, counter, how): the cell must
# hold the JSON's figure. how: "median" (of the repetitions), "max" (the
# worst), or another strategy's benchmark: the ratio of the items/s medians
CELLS3 = [
    ("spsc", "cap:1024", "weft", "ctx sw/item", "chan/spsc/cap:1024/weft", "ctx_switches_per_item",
     "median"),
    ("pipeline", "cap:1024", "mutex", "ctx sw/item", "chan/pipeline/cap:1024/mutex",
     "ctx_switches_per_item", "median"),
    ("pipeline", "cap:1024", "mutex", "vs weft", "chan/pipeline/cap:1024/mutex",
     "items_per_second", "chan/pipeline/cap:1024/weft"),
    ("sync", "wg/threads:2", "weft", "ctx sw/op", "sync/wg/threads:2/weft",
     "ctx_switches_per_item", "median"),
    ("sync", "errgroup/limit:100", "mutex", "peak RSS", "sync/errgroup/limit:100/mutex",
     "peak_rss_kb", "median"),
    ("sync", "sem_contended/threads:4", "mutex", "vs weft", "sync/sem_contended/threads:4/mutex",
     "items_per_second", "sync/sem_contended/threads:4/weft"),
    ("sync", "wg/threads:8", "weft", "vs mutex", "sync/wg/threads:8/weft", "items_per_second",
     "sync/wg/threads:8/mutex"),
    ("pool", "seed/workers:100/queue:200", "mutex", "vs weft",
     "pool/seed/workers:100/queue:200/mutex", "items_per_second",
     "pool/seed/workers:100/queue:200/weft"),
    ("pool", "seed/workers:100/queue:200", "weft", "ctx sw/job",
     "pool/seed/workers:100/queue:200/weft", "ctx_switches_per_item", "median"),
    ("pool", "latency/workers:100/gap_us:100", "mutex", "p90 ns",
     "pool/latency/workers:100/gap_us:100/mutex", "p90_ns", "median"),
    ("pool", "latency/workers:100/gap_us:100", "mutex", "p99.99 ns",
     "pool/latency/workers:100/gap_us:100/mutex", "p9999_ns", "median"),
    ("pool", "latency/workers:100/gap_us:100", "mutex", "max ns",
     "pool/latency/workers:100/gap_us:100/mutex", "max_ns", "max"),
]
PLOTS = ("throughput.png", "scaling.png")  # sample.json has spsc and mpmc
PLOTS2 = ("throughput.png", "latency.png", "scale.png")
PLOTS3 = ("throughput.png",)  # with the sync and pool families


def medians_match():
    """the figures are the input's: the median items/s of one benchmark,
    computed here from the JSON, is what the report shows"""
    import json
    import statistics
    with open(os.path.join(HERE, "testdata", "sample2.json")) as f:
        data = json.load(f)
    v = [b["items_per_second"] for b in data["benchmarks"]
         if b.get("run_type") == "iteration" and b["run_name"].startswith("chan/spsc/cap:1024/tbb/")]
    want = "| cap:1024 | tbb | %.2fM |" % (statistics.median(v) / 1e6)
    if len(v) != 3 or want not in "\n".join(EXPECTED2):
        print("FAIL: the median of %s is not in the expected row (%s)" % (v, want))
        return 1
    return 0


def md_cells(md):
    """{(section, case, strategy): {column: cell}} from report.md's tables"""
    out, section, header = {}, None, None
    for line in md.splitlines():
        if line.startswith("## "):
            section, header = line[3:], None
        elif line.startswith("| "):
            cells = [c.strip() for c in line.strip()[1:-1].split(" | ")]
            if header is None:
                header = cells
            elif not set(line) <= set("|-: ") and len(cells) == len(header):
                out[(section, cells[0], cells[1])] = dict(zip(header, cells))
        else:
            header = None
    return out


def json_values(sample):
    """{benchmark name: {counter: [the repetitions' values]}} of a recording"""
    import json
    with open(os.path.join(HERE, "testdata", sample)) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        name = b["run_name"].split("/iterations:")[0]
        for k, v in b.items():
            if isinstance(v, (int, float)):
                out.setdefault(name, {}).setdefault(k, []).append(float(v))
    return out


def cells_match(sample, md, checks):
    """each check's cell holds the figure computed here from the JSON,
    written as report.py writes that column"""
    import statistics
    sys.path.insert(0, HERE)
    import report as rp
    fmt = {"ctx sw/item": rp.f3, "ctx sw/op": rp.f3, "ctx sw/job": rp.f3, "peak RSS": rp.mb,
           "vs weft": rp.x, "vs mutex": rp.x, "p90 ns": rp.ns, "p99.99 ns": rp.ns,
           "max ns": rp.ns}
    values, cells, bad = json_values(sample), md_cells(md), 0
    for section, case, strategy, column, bench, counter, how in checks:
        v = values.get(bench, {}).get(counter)
        if not v:
            print("FAIL: %s: no %s of %s in the JSON" % (sample, counter, bench))
            bad += 1
            continue
        if how == "max":
            want = max(v)
        elif how == "median":
            want = statistics.median(v)
        else:
            want = statistics.median(v) / statistics.median(values[how][counter])
        got = cells.get((section, case, strategy), {}).get(column)
        if got != fmt[column](want):
            print("FAIL: %s: %s %s %s %s: report %r, JSON %r (%s of %s)" %
                  (sample, section, case, strategy, column, got, fmt[column](want), how, v))
            bad += 1
    if not bad:
        print("ok: %s: %d cells hold the JSON's figures" % (sample, len(checks)))
    return bad


def report(sample, expected, plots=(), cells=()):
    """run report.py on testdata/<sample>; 0 if report.md holds every
    expected line and cell and every plot file was written (non-empty)"""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, os.path.join(HERE, "report.py"),
               os.path.join(HERE, "testdata", sample), "--out", out]
        if not plots:
            cmd.append("--no-plot")
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(run.stdout)
        if run.returncode != 0:
            print("FAIL: report.py %s exited with %d" % (sample, run.returncode))
            return 1
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        bad = 0
        for p in plots:
            path = os.path.join(out, p)
            if not os.path.exists(path) or os.path.getsize(path) < 1000:
                print("FAIL: %s: no plot %s" % (sample, p))
                bad += 1
            elif "](%s)" % p not in md:
                print("FAIL: %s: report.md does not show %s" % (sample, p))
                bad += 1
    missing = [line for line in expected if line not in md]
    for line in missing:
        print("FAIL: %s: report.md lacks: %s" % (sample, line))
    bad += cells_match(sample, md, cells) if cells else 0
    if missing or bad:
        print("---- report.md ----\n" + md)
    if missing or bad:
        return 1
    print("ok: %s: %d expected lines found, %d plots" % (sample, len(expected), len(plots)))
    return 0


# breaker.json: the breaker family, 3 repetitions, weft, mutex and go
RECORD_BREAKER = """weft-bench --weft_items=20000 --benchmark_repetitions=3 \\
  --benchmark_filter='breaker/execute_(closed|open)/threads:(1|2)/' \\
  --benchmark_out=breaker.json --benchmark_out_format=json"""
EXPECTED_BREAKER = [
    "## breaker",
    # its own table: calls as the unit, the latency block, vs weft / vs mutex
    "| case | strategy | calls | calls/s | ns/call | spread | CPU ns/call | cores busy | p50 ns | "
    "p90 ns | p99 ns | p99.9 ns | p99.99 ns | max ns | peak RSS | ctx sw/call | vs weft | vs mutex |",
    # cases in reading order (closed before open), weft, mutex, then go
    "| execute_closed/threads:1 | weft | 20.00k | 10.85M | 92.2 | ±43.9% | 24.4 | 0.21 | 20.0 | "
    "20.0 | 21.0 | 732 | 732 | 1793 | 5.8 MB | 0.000 | 1.00x | 2.98x |",
    "| execute_open/threads:2 | go | 20.00k | 11.92M | 83.9 | ±73.3% | 84.9 | 1.00 | - | - | - | "
    "- | - | - | 1.7 MB | 0.000 | 0.19x | 3.39x |",
    "breaker: a call is one execute of a function that only counts its calls",
]


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def compare():
    """compare.py on the two recordings (their common benchmarks): runs, and
    a run compared with itself changes nothing"""
    base = os.path.join(HERE, "testdata")
    cmd = [sys.executable, os.path.join(HERE, "compare.py"), os.path.join(base, "sample2.json"),
           os.path.join(base, "sample2.json"), "--all"]
    run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout)
    if run.returncode != 0 or "\n0 faster, 0 slower" not in "\n" + run.stdout:
        print("FAIL: compare.py on one run twice")
        return 1
    cmd[3] = os.path.join(base, "sample.json")
    run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout)
    if run.returncode != 0 or "spsc/cap:1024/weft" not in run.stdout:
        print("FAIL: compare.py sample.json sample2.json")
        return 1
    print("ok: compare")
    return 0


def main():
    mpl = have_matplotlib()
    fails = report("sample.json", EXPECTED, PLOTS if mpl else ())
    fails += report("sample2.json", EXPECTED2, PLOTS2 if mpl else ())
    fails += report("sample3.json", EXPECTED3, PLOTS3 if mpl else (), CELLS3)
    fails += report("breaker.json", EXPECTED_BREAKER)
    fails += medians_match()
    fails += compare()
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())

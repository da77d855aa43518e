#!/usr/bin/python3
"""Turn a weft-bench JSON file into tables, report.md and a PNG chart.

usage: /usr/bin/python3 bench/report/report.py BENCH.json [--out DIR]
                        [--machine FILE] [--no-plot]

BENCH.json is Google Benchmark's output of weft-bench
(--benchmark_out=BENCH.json --benchmark_out_format=json). Benchmark names
are chan/<family>/<param:value>.../<strategy>, e.g.
chan/mpmc/cap:1024/threads:4x4/weft, and sync/<scenario>/<param:value>.../<impl>
for the sync family (semaphore, errgroup, context: one table, "sync"), e.g.
sync/sem_contended/threads:4/mutex, and pool/<scenario>/<param:value>.../<strategy>
for the pool family (its own table), e.g. pool/seed/workers:100/queue:200/weft.
Repetitions of one benchmark are
reduced to their median (max_ns: the worst); Google Benchmark's own
aggregate rows are ignored, so any --benchmark_repetitions works.

Per scenario family it prints a table (strategy, items/s, ns/item, CPU
ns/item, cores busy, latency percentiles where present, and "vs mutex":
that strategy's items/s over the mutex baseline's in the same case, so the
weft row holds the weft/mutex speed ratio; the sync table counts ops:
acquire+release pairs, tasks or contexts), writes the same as DIR/report.md
with a summary matrix on top, and, when matplotlib imports, draws
DIR/throughput.png (items/s per case by strategy, log scale). Uses only
the standard library otherwise.
"""
import argparse
import json
import math
import os
import re
import statistics
import sys

BASELINE = "mutex"
# what Google Benchmark appends to a registered name
GB_SUFFIX = re.compile(r"(/(iterations|repeats|min_time|min_warmup_time|threads):[^/]+"
                       r"|/process_time|/real_time|/manual_time)+$")
METRICS = ("items_per_second", "ns_per_item", "cpu_ns_per_item", "cpu_util",
           "p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns", "max_ns", "clock_ns",
           "idle_cpu_ns", "release_ns", "items", "threads", "threads_created")
# the pool family's extra counters (bench/pool.h)
METRICS += ("futex_wakes_per_item", "ctx_switches_per_item", "peak_rss_kb")
# the channel family's: weft's futex syscalls per item (weft rows only)
METRICS += ("futex_per_item",)
FAMILY_ORDER = ("floor", "seq", "spsc", "mpsc", "spmc", "mpmc", "select_rx", "select_both",
                "pingpong", "idle", "scale", "sync", "pool")
REFERENCE = "weft"  # the "vs weft" column: a strategy's speed over weft's
FLOOR = "hw_floor"
# the latency columns, in order: (counter, header)
LATENCY = (("p50_ns", "p50"), ("p90_ns", "p90"), ("p99_ns", "p99"), ("p999_ns", "p99.9"),
           ("p9999_ns", "p99.99"), ("max_ns", "max"))
# the sync family's scenarios, in reading order
SYNC_ORDER = ("sem_uncontended", "sem_contended", "errgroup", "ctx_with_cancel",
              "ctx_cancel_tree")


class Row:
    """One strategy in one case, reduced over repetitions."""

    def __init__(self, family, case, strategy):
        self.family, self.case, self.strategy = family, case, strategy
        self.samples = {}  # metric -> [values]
        self.error = None  # the first failure's message
        self.failed = 0
        self.reps = 0

    def add(self, bench):
        if bench.get("error_occurred"):
            self.error = self.error or bench.get("error_message", "error")
            self.failed += 1
            return
        self.reps += 1
        for m in METRICS:
            if m in bench:
                self.samples.setdefault(m, []).append(float(bench[m]))

    def get(self, metric):
        v = self.samples.get(metric)
        if not v:
            return None
        return max(v) if metric == "max_ns" else statistics.median(v)

    def spread(self, metric="ns_per_item"):
        """half the min-max range over the median, or None (one sample)"""
        v = self.samples.get(metric)
        if not v or len(v) < 2:
            return None
        m = statistics.median(v)
        return (max(v) - min(v)) / 2 / m if m else None


def parse_name(name):
    """chan/mpmc/cap:1024/threads:4x4/weft -> (mpmc, cap:1024/threads:4x4, weft)"""
    parts = GB_SUFFIX.sub("", name).split("/")
    if len(parts) >= 3 and parts[0] == "sync":
        # sync/sem_contended/threads:4/mutex -> (sync, sem_contended/threads:4, mutex)
        return "sync", "/".join(parts[1:-1]), parts[-1]
    if len(parts) >= 3 and parts[0] == "pool":
        # pool/seed/workers:100/queue:200/weft -> (pool, seed/workers:100/queue:200, weft)
        return "pool", "/".join(parts[1:-1]), parts[-1]
    if len(parts) < 3 or parts[0] != "chan":
        return None
    return parts[1], "/".join(parts[2:-1]), parts[-1]


def case_key(case):
    """sort cases by threads then capacity, numerically"""
    params = dict(p.split(":", 1) for p in case.split("/") if ":" in p)
    threads = [int(x) for x in re.findall(r"\d+", params.get("threads", "1"))]
    return (threads, int(params.get("cap", "0")))


def sync_case_key(case):
    """sync cases: by scenario (SYNC_ORDER), then threads and the other params"""
    parts = case.split("/")
    scenario = parts[0]
    rank = SYNC_ORDER.index(scenario) if scenario in SYNC_ORDER else len(SYNC_ORDER)
    return (rank, scenario, case_key("/".join(parts[1:])), case)


def load(path):
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        parsed = parse_name(b.get("run_name", b["name"]))
        if not parsed:
            continue
        row = rows.get(parsed)
        if row is None:
            row = rows[parsed] = Row(*parsed)
        row.add(b)
    return data.get("context", {}), list(rows.values())


def group(rows):
    """{family: {case: {strategy: Row}}}, in a stable, readable order"""
    fam = {}
    for r in rows:
        fam.setdefault(r.family, {}).setdefault(r.case, {})[r.strategy] = r
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    out = {}
    for f in sorted(fam, key=lambda f: (order.get(f, len(order)), f)):
        cases = fam[f]
        out[f] = {}
        for c in sorted(cases, key=sync_case_key if f == "sync" else case_key):
            strategies = cases[c]
            out[f][c] = dict(sorted(strategies.items(),
                                    key=lambda kv: (kv[0] != "weft", kv[0] != BASELINE, kv[0])))
    return out


def ratio(row, case_rows, against=BASELINE):
    """this strategy's speed over the baseline's (items/s), or None"""
    base = case_rows.get(against)
    if not base or row.error or base.error:
        return None
    a, b = row.get("items_per_second"), base.get("items_per_second")
    if not a or not b:
        return None
    return a / b


def si(v):
    if v is None:
        return "-"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return "%.2f%s" % (v / div, unit)
    return "%.0f" % v


def ns(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return "%.2f ms" % (v / 1e6)
    if v >= 1e4:
        return "%.1f us" % (v / 1e3)
    if v >= 100:
        return "%.0f" % v
    return "%.1f" % v


def x(v):
    return "-" if v is None else "%.2fx" % v


def pct(v):
    return "-" if v is None else "±%.1f%%" % (v * 100)


def mb(kb):
    return "-" if kb is None else "%.1f MB" % (kb / 1024)


def floor_rtt(groups):
    """the cache-line round trip (pingpong hw_floor p50), or None"""
    r = groups.get("pingpong", {}).get("", {}).get(FLOOR)
    return r.get("p50_ns") if r and not r.error else None


def failure(case, s, r, notes):
    """the note under the table for a failed row; returns the cell text"""
    runs = r.failed + r.reps
    notes.append("%s %s%s: %s" % (s, case or "-", "" if runs == 1 else
                                  " (%d of %d runs)" % (r.failed, runs), r.error))
    return "FAILED"


def sync_table(cases):
    """the sync family: ops, not items; the op count per row (the errgroup
    baseline runs fewer tasks), threads created where the case reports it"""
    notes = []
    header = ["case", "impl", "ops", "ops/s", "ns/op", "CPU ns/op", "cores busy", "threads made",
              "vs " + BASELINE]
    body = []
    for case, strategies in cases.items():
        for s, r in strategies.items():
            if r.error:
                body.append([case or "-", s, failure(case, s, r, notes)] +
                            [""] * (len(header) - 3))
                continue
            threads = r.get("threads_created")
            body.append([case or "-", s, si(r.get("items")), si(r.get("items_per_second")),
                         ns(r.get("ns_per_item")), ns(r.get("cpu_ns_per_item")),
                         "-" if r.get("cpu_util") is None else "%.2f" % r.get("cpu_util"),
                         "-" if threads is None else "%.0f" % threads,
                         x(ratio(r, strategies))])
    return header, body, notes


SYNC_NOTE = ("sync: an op is one acquire(1)+release(1) pair (sem_*), one task (errgroup) "
             "or one context (ctx_*); %s is the mutex + condition variable FIFO weighted "
             "semaphore (bench/baseline/sem_mutex.c), and for errgroup one detached pthread "
             "per task capped by it (fewer tasks: see ops; figures are per task). "
             "sem_contended: capacity 1. ctx_with_cancel: with_cancel + release; "
             "ctx_cancel_tree: the parent's cancel only, per child. "
             "threads made: threads created during the run." % BASELINE)


def pool_table(cases):
    """the pool family: jobs, futex wakes and context switches per job, peak
    RSS; submit-to-start percentiles (latency case); CPU burned (idle case)"""
    notes = []
    header = ["case", "strategy", "jobs", "jobs/s", "ns/job", "CPU ns/job", "cores busy",
              "futex wakes/job", "ctx sw/job", "peak RSS", "p50 ns", "p99 ns", "p99.9 ns",
              "max ns", "vs " + BASELINE]
    body = []
    f3 = lambda v: "-" if v is None else "%.3f" % v
    for case, strategies in cases.items():
        for s, r in strategies.items():
            if r.error:
                body.append([case or "-", s, failure(case, s, r, notes)] +
                            [""] * (len(header) - 3))
                continue
            rss = r.get("peak_rss_kb")
            util = r.get("cpu_util")
            idle = r.get("idle_cpu_ns") is not None
            body.append([case or "-", s, si(r.get("items")), si(r.get("items_per_second")),
                         ns(r.get("ns_per_item")),
                         ("idle %s" % ns(r.get("idle_cpu_ns"))) if idle
                         else ns(r.get("cpu_ns_per_item")),
                         "-" if util is None else "%.3f" % util,
                         f3(r.get("futex_wakes_per_item")), f3(r.get("ctx_switches_per_item")),
                         "-" if rss is None else "%.1f MB" % (rss / 1024)] +
                        [ns(r.get(m)) for m in ("p50_ns", "p99_ns", "p999_ns", "max_ns")] +
                        [x(ratio(r, strategies))])
    return header, body, notes


POOL_NOTE = ("pool: a job is one submit from a producer thread, a few ns of arithmetic "
             "(plus cost_ns of busy work or sleep_us of sleep) and a send of its result into "
             "a 200-slot weft channel the main thread drains; %s is the mutex + condition "
             "variable pool (bench/baseline/pool_mutex.c). futex wakes/job: worker wake-ups "
             "that needed a syscall, as the pool counts them (mutex: not_empty signals to a "
             "waiting worker; neither counts wakes of blocked submitters or of the results "
             "channel); ctx sw/job: the process's "
             "context switches; peak RSS: the process's during the run. latency: "
             "submit-to-start on an idle pool (one job at a time, gap_us apart); idle: CPU "
             "burned by parked workers over the idle window (cores busy = share of a core)."
             % BASELINE)


SCALE_NOTE = ("scale: spsc at capacity 1024 with 0.1x, 1x and 10x the base items; the "
              "largest only for weft, the mutex baseline and ck_ring_spsc (the others "
              "would take minutes). ns/item and peak RSS should stay flat as items grow.")


def table(family, cases):
    """(header, rows of strings, notes on failed rows) for one family"""
    if family == "sync":
        return sync_table(cases)
    if family == "pool":
        return pool_table(cases)
    notes = []
    if family == "idle":
        header = ["case", "strategy", "CPU burned", "CPU % of a core", "release (close to join)"]
        body = []
        for case, strategies in cases.items():
            for s, r in strategies.items():
                if r.error:
                    body.append([case, s, failure(case, s, r, notes), "", ""])
                    continue
                util = r.get("cpu_util")
                body.append([case, s, ns(r.get("idle_cpu_ns")),
                             "-" if util is None else "%.2f%%" % (util * 100),
                             ns(r.get("release_ns"))])
        return header, body, notes
    latency = any(r.get("p50_ns") is not None
                  for strategies in cases.values() for r in strategies.values())
    spread = any(r.spread() is not None
                 for strategies in cases.values() for r in strategies.values())
    rss = any(r.get("peak_rss_kb") is not None
              for strategies in cases.values() for r in strategies.values())
    header = ["case", "strategy", "items/s", "ns/item"]
    if spread:
        header.append("spread")
    header += ["CPU ns/item", "cores busy"]
    if latency:
        header += [h + " ns" for _, h in LATENCY] + ["p50 / floor"]
    if rss:
        header.append("peak RSS")
    futex = any(r.get("futex_per_item") is not None
                for strategies in cases.values() for r in strategies.values())
    if futex:
        header.append("futex/item")
    header += ["vs " + REFERENCE, "vs " + BASELINE]
    rtt = floor_rtt(groups_ctx.get("groups", {}))
    body = []
    for case, strategies in cases.items():
        for s, r in strategies.items():
            if r.error:
                body.append([case or "-", s, failure(case, s, r, notes)] +
                            [""] * (len(header) - 3))
                continue
            line = [case or "-", s, si(r.get("items_per_second")), ns(r.get("ns_per_item"))]
            if spread:
                line.append(pct(r.spread()))
            line += [ns(r.get("cpu_ns_per_item")),
                     "-" if r.get("cpu_util") is None else "%.2f" % r.get("cpu_util")]
            if latency:
                line += [ns(r.get(m)) for m, _ in LATENCY]
                p50 = r.get("p50_ns")
                line.append(x(p50 / rtt) if p50 is not None and rtt else "-")
            if rss:
                line.append(mb(r.get("peak_rss_kb")))
            if futex:
                f = r.get("futex_per_item")
                line.append("-" if f is None else "%.3f" % f)
            line += [x(ratio(r, strategies, REFERENCE)), x(ratio(r, strategies))]
            body.append(line)
    return header, body, notes


# report-wide state the tables read (the groups, for the floor)
groups_ctx = {}


def floor_table(groups):
    """the hardware floor: (header, body), or None when the run has none"""
    fl = groups.get("floor", {})
    pp = groups.get("pingpong", {}).get("", {}).get(FLOOR)
    rows = []

    def get(case):
        r = fl.get(case, {}).get(FLOOR)
        return r if r and not r.error else None

    c = get("clock")
    if c:
        rows.append(["clock read (CLOCK_MONOTONIC)", ns(c.get("p50_ns")), ns(c.get("p99_ns")),
                     "subtracted from every latency sample"])
    c = get("cas")
    if c:
        rows.append(["uncontended CAS", ns(c.get("ns_per_item")), "-",
                     "one thread, a line it owns"])
    if pp and not pp.error:
        rows.append(["cache-line round trip, 2 cores", ns(pp.get("p50_ns")), ns(pp.get("p99_ns")),
                     "one word each way, both spinning; the unit of 'p50 / floor'"])
    c = get("futex_wake")
    if c:
        rows.append(["futex wake to running", ns(c.get("p50_ns")), ns(c.get("p99_ns")),
                     "FUTEX_WAKE of a parked thread until it runs, one way"])
    if not rows:
        return None
    return ["measure", "p50 ns", "p99 ns", "what"], rows


def summary(groups):
    """weft/mutex speed per case: (header, body, geometric mean, cases)"""
    caps = set()
    lines = {}
    ratios = []
    for family, cases in groups.items():
        if family in ("idle", "sync", "pool", "floor", "scale"):  # sync, pool: their own column
            continue
        for case, strategies in cases.items():
            params = dict(p.split(":", 1) for p in case.split("/") if ":" in p)
            cap = params.pop("cap", "-")
            label = family + "".join(" " + k + ":" + v for k, v in params.items())
            w = strategies.get("weft")
            r = ratio(w, strategies) if w else None
            if r is None:
                continue
            caps.add(cap)
            lines.setdefault(label, {})[cap] = r
            ratios.append(r)
    caps = sorted(caps, key=lambda c: (c == "-", int(c) if c.isdigit() else 0))
    header = ["scenario"] + ["cap:" + c if c != "-" else "other" for c in caps]
    body = [[label] + [x(v.get(c)) for c in caps] for label, v in lines.items()]
    gmean = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
    return header, body, gmean, len(ratios)


def comparison(groups):
    """the terminal's closing table: one row per channel case, one column
    per strategy, ns per item (lower is better), and a last row with each
    strategy's geometric mean speed relative to weft over the cases both
    ran. (header, body)"""
    skip = ("idle", "sync", "pool", "floor")
    strategies = []
    for f, cases in groups.items():
        if f in skip:
            continue
        for c in cases.values():
            for s in c:
                if s not in strategies:
                    strategies.append(s)
    strategies.sort(key=lambda s: (s != REFERENCE, s != BASELINE, s == FLOOR, s))
    body, logs = [], {s: [] for s in strategies}
    for f, cases in groups.items():
        if f in skip:
            continue
        for case, rows in cases.items():
            line = [f + (" " + case if case else "")]
            for s in strategies:
                r = rows.get(s)
                if r is None:
                    line.append("")
                elif r.error:
                    line.append("FAILED")
                else:
                    line.append(ns(r.get("ns_per_item")))
                    q = ratio(r, rows, REFERENCE)
                    if q and s != FLOOR:
                        logs[s].append(math.log(q))
            body.append(line)
    gm = ["speed vs weft (geomean)"]
    for s in strategies:
        v = logs[s]
        gm.append(x(math.exp(sum(v) / len(v))) if v else "-")
    body.append(gm)
    return ["case (ns/item)"] + strategies, body


def text_table(header, body, ntext=2):
    """the first ntext columns left-aligned, the figures right-aligned"""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) if i < ntext else str(c).rjust(w)
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(b) for b in body])


def md_table(header, body, ntext=2):
    esc = lambda c: str(c).replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join(" --- " if i < ntext else " ---: " for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in b) + " |" for b in body]
    return "\n".join(lines)


def machine_lines(context, machine_file):
    out = []
    if machine_file and os.path.exists(machine_file):
        with open(machine_file) as f:
            out += [l.rstrip("\n") for l in f if l.strip()]
    keys = (("date", "date"), ("host_name", "host"), ("num_cpus", "cpus"),
            ("mhz_per_cpu", "mhz_per_cpu"), ("cpu_scaling_enabled", "cpu_scaling_enabled"),
            ("load_avg", "load_avg"), ("weft_base_items", "base items"),
            ("weft_idle_ms", "idle ms"),
            ("library_build_type", "google benchmark library build"))
    for k, label in keys:
        if k in context:
            out.append("%s: %s" % (label, context[k]))
    return out


def plot(groups, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: no chart", file=sys.stderr)
        return False
    fams = [f for f in groups if f != "idle"]
    if not fams:
        return False
    ncols = 2
    nrows = (len(fams) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(14, 3.6 * nrows), squeeze=False)
    strategies = sorted({s for f in fams for c in groups[f].values() for s in c},
                        key=lambda s: (s != "weft", s != BASELINE, s))
    width = 0.8 / max(len(strategies), 1)
    for ax, f in zip(axes.flat, fams):
        cases = list(groups[f])
        for i, s in enumerate(strategies):
            ys = []
            for c in cases:
                r = groups[f][c].get(s)
                ys.append((r.get("items_per_second") or 0) if r and not r.error else 0)
            ax.bar([j + (i - (len(strategies) - 1) / 2) * width for j in range(len(cases))],
                   ys, width, label=s)
        ax.set_title(f)
        ax.set_yscale("log")
        low = [r.get("items_per_second") for c in cases for r in groups[f][c].values()
               if not r.error and r.get("items_per_second")]
        if low:
            ax.set_ylim(bottom=min(low) / 4)  # bars start well below the shortest
        ax.set_ylabel({"pingpong": "round trips/s", "sync": "ops/s"}.get(f, "items/s"))
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels([c.replace("/", "\n") or f for c in cases], fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(fams):]:
        ax.axis("off")
    axes.flat[0].legend()
    fig.suptitle("weft channels: throughput by strategy (higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def threads_of(case):
    params = dict(p.split(":", 1) for p in case.split("/") if ":" in p)
    t = params.get("threads", "1x1")
    return sum(int(n) for n in re.findall(r"\d+", t)), params.get("cap")


def plot_scaling(groups, path):
    """items/s against total threads (producers + consumers) for spsc,
    mpsc, spmc, mpmc at each capacity; one line per strategy"""
    plt = _plt()
    if not plt:
        return False
    fams = [f for f in ("mpsc", "spmc", "mpmc") if f in groups]
    caps = sorted({threads_of(c)[1] for f in fams for c in groups[f]} - {None}, key=int)
    if not fams or not caps:
        return False
    fig, axes = plt.subplots(len(caps), len(fams), figsize=(5 * len(fams), 3.4 * len(caps)),
                             squeeze=False)
    for i, cap in enumerate(caps):
        for j, f in enumerate(fams):
            ax = axes[i][j]
            series = {}
            for fam in ("spsc", f):
                for case, rows in groups.get(fam, {}).items():
                    t, c = threads_of(case)
                    if c != cap:
                        continue
                    for s, r in rows.items():
                        if not r.error and r.get("items_per_second"):
                            series.setdefault(s, []).append((t, r.get("items_per_second")))
            for s in sorted(series, key=lambda s: (s != REFERENCE, s != BASELINE, s)):
                pts = sorted(series[s])
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s)
            ax.set_title("%s, cap %s" % (f, cap), fontsize=9)
            ax.set_xlabel("threads (producers + consumers)", fontsize=8)
            ax.set_ylabel("items/s", fontsize=8)
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            if series:
                ax.legend(fontsize=6)
    fig.suptitle("throughput against thread count (higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_latency(groups, path):
    """percentile curves: latency against percentile (log of 1/(1-q)) for
    every row with percentiles (pingpong per strategy, the floor)"""
    plt = _plt()
    if not plt:
        return False
    qs = [(50, "p50_ns"), (90, "p90_ns"), (99, "p99_ns"), (99.9, "p999_ns"),
          (99.99, "p9999_ns")]
    curves = []
    for f in ("pingpong", "floor"):
        for case, rows in groups.get(f, {}).items():
            for s, r in rows.items():
                pts = [(q, r.get(m)) for q, m in qs if not r.error and r.get(m) is not None]
                if len(pts) >= 2:
                    label = s if f == "pingpong" and s != FLOOR else \
                        ("floor: cache-line round trip" if f == "pingpong" else "floor: " + case)
                    curves.append((label, pts))
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(9, 5))
    for label, pts in curves:
        ax.plot([1 / (1 - q / 100) for q, _ in pts], [v for _, v in pts], marker="o",
                label=label, linestyle="--" if label.startswith("floor") else "-")
    ticks = [1 / (1 - q / 100) for q, _ in qs]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ticks)
    ax.set_xticklabels(["p%g" % q for q, _ in qs])
    ax.set_ylabel("ns (pingpong: round trip)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("latency percentiles (lower is better; log-linear histogram, clock cost subtracted)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_scale(groups, path):
    """the scale family: ns/item and peak RSS against items, per strategy"""
    plt = _plt()
    if not plt or "scale" not in groups:
        return False
    series = {}
    for case, rows in groups["scale"].items():
        params = dict(p.split(":", 1) for p in case.split("/") if ":" in p)
        n = int(params.get("items", "0"))
        for s, r in rows.items():
            if not r.error:
                series.setdefault(s, []).append((n, r.get("ns_per_item"), r.get("peak_rss_kb")))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for s in sorted(series, key=lambda s: (s != REFERENCE, s != BASELINE, s)):
        pts = sorted(series[s])
        a.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s)
        b.plot([p[0] for p in pts], [(p[2] or 0) / 1024 for p in pts], marker="o", label=s)
    for ax, t in ((a, "ns per item"), (b, "peak RSS, MB")):
        ax.set_xscale("log")
        ax.set_xlabel("items (spsc, capacity 1024)")
        ax.set_ylabel(t)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    a.legend(fontsize=7)
    fig.suptitle("scaling with item count: time per item and memory should stay flat")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", help="weft-bench --benchmark_out JSON")
    ap.add_argument("--out", help="directory for report.md and throughput.png "
                    "(default: the JSON's directory)")
    ap.add_argument("--machine", help="text file describing the machine, copied into report.md")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG chart")
    args = ap.parse_args(argv)

    context, rows = load(args.json)
    if not rows:
        print("%s: no chan/* or sync/* benchmarks found" % args.json, file=sys.stderr)
        return 1
    groups = group(rows)
    groups_ctx["groups"] = groups
    out = args.out or os.path.dirname(os.path.abspath(args.json))
    os.makedirs(out, exist_ok=True)

    chan_only = all(r.family != "sync" for r in rows)
    md = ["# weft channel benchmarks" if chan_only else "# weft benchmarks", ""]
    machine = machine_lines(context, args.machine)
    if machine:
        md += ["## Machine", "", "```"] + machine + ["```", ""]
    for k, label in (("weft_strategies", "Strategies"), ("weft_skipped", "Skipped")):
        if context.get(k):
            md += ["%s: %s." % (label, context[k]), ""]
    md += ["Ratios are speeds measured in the same run: \"vs %s\" is a strategy's items/s "
           "over weft's (below 1: slower than weft), \"vs %s\" over the mutex baseline's "
           "(above 1: faster than the baseline). CPU ns/item is the whole process's "
           "user + sys time (every thread) per item; cores busy = CPU time / wall time; "
           "peak RSS is the process's peak during that run (the kernel's mark reset "
           "before it). Latency percentiles come from a log-linear histogram (32 "
           "sub-buckets per power of two: within 3%%) with the cost of the clock read "
           "subtracted; \"p50 / floor\" is the p50 in multiples of the cache-line round "
           "trip below. Repetitions are reduced to their median (max: the worst); "
           "spread is half the min-max range of ns/item over the median. futex/item: "
           "weft's own count of its FUTEX_WAIT and FUTEX_WAKE syscalls per item (weft "
           "rows only; the others block in code weft cannot count)."
           % (REFERENCE, BASELINE)]
    base = context.get("weft_base_items")
    if base and base.isdigit():
        n = int(base)
        md += ["Items per run: %s at capacity >= 2, %s at capacity 0 and 1 (each item a "
               "hand-off), %s pingpong round trips; 8-byte items. With more than 2 "
               "threads, strategies other than weft and mutex move a tenth of that (the "
               "peers and spinning references take up to 10 us per item there; per-item "
               "figures compare all the same)." %
               (si(n), si(max(n // 100, 100)), si(max(n // 50, 100)))]
    md += [""]
    ft = floor_table(groups)
    if ft:
        md += ["## Hardware floor", "", md_table(ft[0], ft[1], 1), ""]
        print("== hardware floor")
        print(text_table(ft[0], ft[1], 1))
        print()
    sh, sb, gmean, n = summary(groups)
    if sb:
        md += ["## Summary: weft speed / %s speed" % BASELINE, "", md_table(sh, sb, 1), ""]
        md += ["Geometric mean over %d cases: %s" % (n, x(gmean)), ""]
        print("weft speed / %s speed" % BASELINE)
        print(text_table(sh, sb, 1))
        print("geometric mean: %s\n" % x(gmean))
    for family, cases in groups.items():
        if family == "floor":
            continue  # the table on top
        header, body, notes = table(family, cases)
        print("== %s" % family)
        print(text_table(header, body))
        for n in notes:
            print("FAILED: " + n)
        print()
        md += ["## %s" % family, "", md_table(header, body), ""]
        if family == "pool":
            print(POOL_NOTE)
            print()
            md += [POOL_NOTE, ""]
        if family == "sync":
            print(SYNC_NOTE)
            print()
            md += [SYNC_NOTE, ""]
        md += ["FAILED: " + n + "  " for n in notes] + ([""] if notes else [])
    if "scale" in groups:
        md += [SCALE_NOTE, ""]
    if not args.no_plot:
        for name, fn, title in (("throughput.png", plot, "throughput by strategy"),
                                ("scaling.png", plot_scaling, "throughput against threads"),
                                ("latency.png", plot_latency, "latency percentiles"),
                                ("scale.png", plot_scale, "scaling with items")):
            png = os.path.join(out, name)
            if fn(groups, png):
                md += ["![%s](%s)" % (title, name), ""]
                print("chart: %s" % png)
    ch, cb = comparison(groups)
    if len(ch) > 1:
        md += ["## Comparison: ns per item", "", md_table(ch, cb, 1), ""]
        print("== comparison: ns per item (lower is better); last row: speed relative to weft")
        print(text_table(ch, cb, 1))
        print()
    report = os.path.join(out, "report.md")
    with open(report, "w") as f:
        f.write("\n".join(md))
    print("report: %s" % report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

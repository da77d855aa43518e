#!/usr/bin/python3
"""Turn a weft-bench JSON file into tables, report.md and a PNG chart.

usage: /usr/bin/python3 bench/report/report.py BENCH.json [--out DIR]
                        [--machine FILE] [--no-plot]

BENCH.json is Google Benchmark's output of weft-bench
(--benchmark_out=BENCH.json --benchmark_out_format=json). Benchmark names
are chan/<family>/<param:value>.../<strategy>, e.g.
chan/mpmc/cap:1024/threads:4x4/weft, and sync/<scenario>/<param:value>.../<impl>
for the sync family (semaphore, errgroup, context, WaitGroup: one table,
"sync"), e.g.
sync/sem_contended/threads:4/mutex, and pool/<scenario>/<param:value>.../<strategy>
for the pool family (its own table), e.g. pool/seed/workers:100/queue:200/weft,
and breaker/<scenario>/threads:T/<impl> for the circuit breaker family (its
own table, one call an op), e.g. breaker/execute_closed/threads:2/weft.
Repetitions of one benchmark are
reduced to their median (max_ns: the worst); Google Benchmark's own
aggregate rows are ignored, so any --benchmark_repetitions works.

Per scenario family it prints a table, every family with the same columns
(table(): strategy, items/s, ns/item, CPU ns/item, cores busy, latency
percentiles, peak RSS, futex calls, context switches per item, each where
some row has it, and "vs weft" and "vs mutex": that strategy's items/s over
weft's and over the mutex baseline's in the same case; the sync table
counts ops, acquire+release pairs, tasks, contexts or fork-join rounds, the
pool table jobs), writes the same as DIR/report.md with the hardware floor
and a summary matrix on top, and, when matplotlib imports, draws the PNG
plots (throughput by strategy, against threads, latency percentiles,
scaling with items). Uses only the standard library otherwise.
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
# every family's context switches and peak RSS (bench/measure.h); the pool
# family's futex wakes as the pool counts them (bench/pool.h)
METRICS += ("ctx_switches_per_item", "peak_rss_kb", "futex_wakes_per_item")
# the channel family's: weft's futex syscalls per item (weft rows only)
METRICS += ("futex_per_item",)
# the pipeline and spill families (bench/pipeline.h): MB/s, dropped elements
METRICS += ("write_MBps", "read_MBps", "MBps", "dropped")
# their families in the report (their own panel, pipeline_panel())
PL_FAMILIES = ("stages", "spill")
# the map family's: RSS growth per key while filling, computes per key (herd)
METRICS += ("rss_bytes_per_key", "computes_per_key")
FAMILY_ORDER = ("floor", "seq", "spsc", "mpsc", "spmc", "mpmc", "select_rx", "select_both",
                "select_try", "pingpong", "pipeline", "fanout", "seedpool", "idle", "scale", "sync",
                "pool", "breaker", "map")
REFERENCE = "weft"  # the "vs weft" column: a strategy's speed over weft's
FLOOR = "hw_floor"
# the latency columns, in order: (counter, header)
LATENCY = (("p50_ns", "p50"), ("p90_ns", "p90"), ("p99_ns", "p99"), ("p999_ns", "p99.9"),
           ("p9999_ns", "p99.99"), ("max_ns", "max"))
# the sync family's scenarios, in reading order
SYNC_ORDER = ("sem_uncontended", "sem_contended", "errgroup", "ctx_with_cancel",
              "ctx_cancel_tree", "wg")
# the breaker family's scenarios, in reading order
BREAKER_ORDER = ("execute_closed", "execute_open", "execute_half_open")


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
    if len(parts) >= 3 and parts[0] == "breaker":
        # breaker/execute_closed/threads:2/weft -> (breaker, execute_closed/threads:2, weft)
        return "breaker", "/".join(parts[1:-1]), parts[-1]
    if len(parts) >= 3 and parts[0] == "map":
        # map/mix/read:99/dist:zipf/threads:2/weft -> (map, mix/read:99/dist:zipf/threads:2, weft)
        return "map", "/".join(parts[1:-1]), parts[-1]
    if len(parts) >= 3 and parts[0] == "pool":
        # pool/seed/workers:100/queue:200/weft -> (pool, seed/workers:100/queue:200, weft)
        return "pool", "/".join(parts[1:-1]), parts[-1]
    if len(parts) >= 3 and parts[0] in ("pipeline", "spill"):
        # pipeline/seed/cap:64/weft_tasks -> (stages, seed/cap:64, weft_tasks);
        # "stages": not chan/pipeline (the hand-written seed pipeline)
        return ("stages" if parts[0] == "pipeline" else "spill"), "/".join(parts[1:-1]), parts[-1]
    if len(parts) < 3 or parts[0] != "chan":
        return None
    return parts[1], "/".join(parts[2:-1]), parts[-1]


def case_key(case):
    """sort cases by threads then capacity, numerically"""
    params = dict(p.split(":", 1) for p in case.split("/") if ":" in p)
    threads = [int(x) for x in re.findall(r"\d+", params.get("threads", "1"))]
    return (threads, int(params.get("cap", "0")))


def sync_case_key(case, order=SYNC_ORDER):
    """sync (and breaker) cases: by scenario (the family's order), then
    threads and the other params"""
    parts = case.split("/")
    scenario = parts[0]
    rank = order.index(scenario) if scenario in order else len(order)
    return (rank, scenario, case_key("/".join(parts[1:])), case)


def breaker_case_key(case):
    return sync_case_key(case, BREAKER_ORDER)


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
        key = {"sync": sync_case_key, "breaker": breaker_case_key}.get(f, case_key)
        for c in sorted(cases, key=key):
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


# what a row of a family counts: (one, many)
UNITS = {"sync": ("op", "ops"), "pool": ("job", "jobs"), "select_try": ("call", "calls"),
         "breaker": ("call", "calls"), "map": ("op", "ops")}


def f2(v):
    return "-" if v is None else "%.2f" % v


def f3(v):
    return "-" if v is None else "%.3f" % v


def columns(family):
    """the columns of a family's table after case and strategy, in order:
    (header, cell(row, the case's rows), shown(rows)); a column is shown
    when shown() holds for the family's rows (a counter some row has)"""
    always = lambda rows: True
    has = lambda m: (lambda rows: any(r.get(m) is not None for r in rows))
    get = lambda m, fmt: (lambda r, case_rows: fmt(r.get(m)))
    if family == "idle":
        return [("CPU burned", get("idle_cpu_ns", ns), always),
                ("CPU % of a core", get("cpu_util", lambda v: "-" if v is None
                                        else "%.2f%%" % (v * 100)), always),
                ("release (close to join)", get("release_ns", ns), always)]
    one, many = UNITS.get(family, ("item", "items"))
    chan = family not in UNITS

    def cpu(r, case_rows):
        idle = r.get("idle_cpu_ns")  # the pool's idle case: CPU burned in the window
        return ns(r.get("cpu_ns_per_item")) if idle is None else "idle %s" % ns(idle)

    def p50_floor(r, case_rows):
        rtt, p50 = floor_rtt(groups_ctx.get("groups", {})), r.get("p50_ns")
        return x(p50 / rtt) if p50 is not None and rtt else "-"

    cols = [] if chan else [(many, get("items", si), always)]
    cols += [(many + "/s", get("items_per_second", si), always),
             ("ns/" + one, get("ns_per_item", ns), always),
             ("spread", lambda r, case_rows: pct(r.spread()),
              lambda rows: any(r.spread() is not None for r in rows)),
             ("CPU ns/" + one, cpu, always),
             ("cores busy", get("cpu_util", f2 if family != "pool" else f3), always),
             ("threads made", get("threads_created", lambda v: "-" if v is None else "%.0f" % v),
              has("threads_created"))]
    # the latency block: every percentile column once any row has a p50
    cols += [(h + " ns", get(m, ns), has("p50_ns")) for m, h in LATENCY]
    if chan:
        cols.append(("p50 / floor", p50_floor, has("p50_ns")))
    cols += [("peak RSS", get("peak_rss_kb", mb), has("peak_rss_kb")),
             ("futex/" + one, get("futex_per_item", f3), has("futex_per_item")),
             ("futex wakes/" + one, get("futex_wakes_per_item", f3), has("futex_wakes_per_item")),
             ("ctx sw/" + one, get("ctx_switches_per_item", f3), has("ctx_switches_per_item")),
             ("RSS B/key", get("rss_bytes_per_key", lambda v: "-" if v is None else "%.0f" % v),
              has("rss_bytes_per_key")),
             ("computes/key", get("computes_per_key", f2), has("computes_per_key")),
             ("vs " + REFERENCE, lambda r, case_rows: x(ratio(r, case_rows, REFERENCE)), always),
             ("vs " + BASELINE, lambda r, case_rows: x(ratio(r, case_rows)), always)]
    return cols


def table(family, cases):
    """(header, rows of strings, notes on failed rows) for one family: the
    same columns for every family (columns()), each shown where some row
    has its counter"""
    notes = []
    rows = [r for strategies in cases.values() for r in strategies.values() if not r.error]
    cols = [c for c in columns(family) if c[2](rows)]
    header = ["case", "impl" if family == "sync" else "strategy"] + [c[0] for c in cols]
    body = []
    for case, strategies in cases.items():
        for s, r in strategies.items():
            if r.error:
                body.append([case or "-", s, failure(case, s, r, notes)] +
                            [""] * (len(cols) - 1))
                continue
            body.append([case or "-", s] + [c[1](r, strategies) for c in cols])
    return header, body, notes


# the sync note: what each scenario present is, in SYNC_ORDER's order
SYNC_CASES = (
    ("sem_uncontended", "sem_uncontended: one thread, acquire(1) + release(1) on a free "
     "semaphore"),
    ("sem_contended", "sem_contended/threads:T: T threads share a semaphore of capacity 1, "
     "each pair around a plain increment (mutual exclusion checked); %s for both sem cases: "
     "the mutex + condition variable FIFO weighted semaphore (bench/baseline/sem_mutex.c)"
     % BASELINE),
    ("errgroup", "errgroup/limit:100: a weft_group of limit 100 whose tasks each add 1 to a "
     "counter (go each, then wait); %s: one detached pthread per task capped by the mutex "
     "semaphore, fewer tasks (see ops; figures are per task); threads made: threads created "
     "during the run" % BASELINE),
    ("ctx_with_cancel", "ctx_with_cancel: with_cancel + release, from background or as the "
     "child of a live parent (weft only: no baseline)"),
    ("ctx_cancel_tree", "ctx_cancel_tree/children:10000: the parent's cancel only (children "
     "built untimed), per child (weft only)"),
    ("wg", "wg/threads:N: WaitGroup fork-join rounds, an op one round (main adds N and opens "
     "a gate, the N threads each count and call done, main waits and checks the count); %s: "
     "the mutex + condition variable WaitGroup (bench/baseline/wg_mutex.c)" % BASELINE),
)


def sync_note(cases):
    """the note under the sync table: one sentence per scenario present"""
    present = {c.split("/")[0] for c in cases}
    parts = [text for scenario, text in SYNC_CASES if scenario in present]
    parts += ["%s: no description (add one to SYNC_CASES in bench/report/report.py)" % p
              for p in sorted(present - {scenario for scenario, _ in SYNC_CASES})]
    return ("sync: an op is one acquire(1)+release(1) pair (sem_*), one task (errgroup), one "
            "context (ctx_*) or one fork-join round (wg). " + ". ".join(parts) + ". "
            "ctx sw/op: the process's context switches per op; peak RSS: the process's "
            "during the run.")


POOL_NOTE = ("pool: a job is one submit from a producer thread, a few ns of arithmetic "
             "(plus cost_ns of busy work or sleep_us of sleep) and a send of its result into "
             "a 200-slot weft channel the main thread drains; %s is the mutex + condition "
             "variable pool (bench/baseline/pool_mutex.c). futex wakes/job: worker wake-ups "
             "that needed a syscall, as the pool counts them (mutex: not_empty signals to a "
             "waiting worker; neither counts wakes of blocked submitters or of the results "
             "channel); ctx sw/job: the process's "
             "context switches; peak RSS: the process's during the run. latency: "
             "submit-to-start on an idle pool (one job at a time, gap_us apart), percentiles "
             "from the log-linear histogram with the clock cost subtracted; idle: CPU "
             "burned by parked workers over the idle window (cores busy = share of a core). "
             "go (where golang-go is installed): the same streaming program in Go "
             "(bench/peers/go_peer.go: goroutines and channels, GOMAXPROCS = the cores) in a child "
             "process, measured by itself over the same span: its own CPU, switches and peak "
             "RSS (the others' peak RSS is the whole weft-bench process's)."
             % BASELINE)


BREAKER_NOTE = ("breaker: a call is one execute of a function that only counts its calls, "
                "so the figures are the breaker's own overhead; T threads share one breaker. "
                "execute_closed: default settings (gobreaker's: no interval; weft's lock-free "
                "path, one CAS to admit and one to count); execute_open: tripped, every call "
                "rejected; execute_half_open: max_requests 2^32-1, every call a probe (the "
                "locked path). Every implementation reads the real clock as gobreaker does "
                "(weft: none while closed, the coarse clock while open). %s: the mutex "
                "breaker written as gobreaker is (bench/baseline/breaker_mutex.c); go (where "
                "golang-go is installed): gobreaker's algorithm with one sync.Mutex "
                "(bench/peers/go_peer.go; gobreaker is not packaged), goroutines as the "
                "threads, in a child process measured by itself (no latency samples). "
                "Latency: one call in 64 timed alone, the clock cost subtracted. On 2 cores, "
                "threads beyond 2 take turns: ns/call is wall time over all calls, CPU "
                "ns/call the process's CPU." % BASELINE)


SCALE_NOTE = ("scale: spsc at capacity 1024 with 0.1x, 1x and 10x the base items; the "
              "largest only for weft, the mutex baseline and ck_ring_spsc (the others "
              "would take minutes). ns/item and peak RSS should stay flat as items grow.")


# report-wide state the tables read (the groups, for the floor)
groups_ctx = {}


PIPELINE_NOTE = ("stages: the weft_pipeline library (bench/pipeline.h). seed: generate -> "
                 "square -> keep even -> a drain sink, one worker each; fanout: source -> "
                 "fan_out 8 squaring workers -> fan_in -> drain; go: Go's runtime on the same "
                 "program in the same run; ordered: one stage of N workers, ~200 ns of "
                 "arithmetic per item, workers as tasks (the default). Ratios are of ns/item "
                 "measured in this run (lower is faster). spill: 64-byte elements sent by a "
                 "producer with nobody receiving, then drained: MB/s of the send phase against "
                 "pwrite of the same bytes in 256 KiB blocks to an unlinked file in the same "
                 "directory (raw_write), and a BLOCK channel with both sides running "
                 "(mem_chan). drop: one producer into a channel of 1024 with a consumer: ns per "
                 "send, DROP_* against the plain ring (block).")


def pipeline_panel(groups):
    """the pipeline and spill families: (header, body) rows with the
    within-run ratios the issue asks for, or None"""
    st, sp = groups.get("stages", {}), groups.get("spill", {})
    if not st and not sp:
        return None
    body = []

    def nsi(case, strat, fam=st):
        r = fam.get(case, {}).get(strat)
        return r.get("ns_per_item") if r and not r.error else None

    def rx(a, b):
        return "%.2fx" % (a / b) if a and b else "-"

    for case in [c for c in st if c.startswith("seed/") or c.startswith("fanout")]:
        t, k, g = nsi(case, "weft_threads"), nsi(case, "weft_tasks"), nsi(case, "go")
        body.append([case, "threads %s, tasks %s, go %s ns/item" % (ns(t), ns(k), ns(g)),
                     "tasks/go %s, threads/go %s" % (rx(k, g), rx(t, g))])
    for case in [c for c in st if c.startswith("ordered/")]:
        u, o = nsi(case, "unordered"), nsi(case, "ordered")
        body.append([case, "unordered %s, ordered %s ns/item" % (ns(u), ns(o)),
                     "ordered/unordered %s" % rx(o, u)])
    for case, rows in sp.items():
        if case.startswith("producer_ahead"):
            def m(strat, k):
                r = rows.get(strat)
                return r.get(k) if r and not r.error else None
            w, raw = m("spill", "write_MBps"), m("raw_write", "write_MBps")
            body.append([case, "spill: write %s, read %s, overall %s MB/s; raw_write %s; "
                         "mem_chan %s MB/s" % (f2(w), f2(m("spill", "read_MBps")),
                                               f2(m("spill", "MBps")), f2(raw),
                                               f2(m("mem_chan", "MBps"))),
                         "spill write/raw write %s" % (rx(w, raw))])
        else:
            b, n, o = (nsi(case, v, sp) for v in ("block", "drop_newest", "drop_oldest"))
            body.append([case, "block %s, drop_newest %s, drop_oldest %s ns/send" %
                         (ns(b), ns(n), ns(o)),
                         "speed vs block: newest %s, oldest %s" % (rx(b, n), rx(b, o))])
    return ["case", "figures", "ratio (same run)"], body


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
        if family in ("idle", "sync", "pool", "floor", "scale", "breaker", "map"):  # their own tables
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
    skip = ("idle", "sync", "pool", "floor", "breaker", "map")  # map: its own panel
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


def by_strategy(names):
    """weft first, then the mutex baseline, then the rest by name"""
    return sorted(names, key=lambda s: (s != REFERENCE, s != BASELINE, s))


def save_plot(plt, fig, path, dpi=100, rect=None):
    if rect:
        fig.tight_layout(rect=rect)
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return True


# Every plot gives a strategy the same color: the known ones in this order
# (tab10, then the light half of tab20: 20 distinct colors), others after
# them by name. A floor curve is gray and dashed.
PALETTE_ORDER = ("weft", "mutex", "tasks", "go", "boost_fiber", "spin", "ck_ring_mpmc",
                 "ck_ring_spsc", "moodycamel", "tbb", "weft_batch", "weft_tasks", FLOOR)
FLOOR_GRAYS = ("0.25", "0.45", "0.6", "0.75")


def strategy_colors(plt, names):
    cm = plt.get_cmap
    palette = list(cm("tab10").colors) + list(cm("tab20").colors[1::2])
    order = list(PALETTE_ORDER) + sorted(set(names) - set(PALETTE_ORDER))
    return {s: palette[order.index(s) % len(palette)] for s in names}


# a family with more cases than this gets a whole row of the throughput
# chart, its case labels slanted; the others go two to a row
WIDE_CASES = 6


def plot(groups, path):
    plt = _plt()
    if not plt:
        print("matplotlib not available: no chart", file=sys.stderr)
        return False
    from matplotlib.patches import Patch
    fams = [f for f in groups if f not in ("idle", "map")]  # map: map.png
    if not fams:
        return False
    everyone = by_strategy({s for f in fams for c in groups[f].values() for s in c})
    colors = strategy_colors(plt, everyone)
    rows, half = [], None
    for f in fams:
        if len(groups[f]) > WIDE_CASES:
            rows.append([f])
        elif half is None:
            half = [f]
            rows.append(half)
        else:
            half.append(f)
            half = None
    top = 0.9  # inches for the title and the legend
    height = 3.7 * len(rows) + top
    fig = plt.figure(figsize=(14, height))
    gs = fig.add_gridspec(len(rows), 2)
    for i, row in enumerate(rows):
        for j, f in enumerate(row):
            wide = len(row) == 1 and len(groups[f]) > WIDE_CASES
            ax = fig.add_subplot(gs[i, :] if wide else gs[i, j])
            cases = list(groups[f])
            # only the strategies this family has: wider bars, no gaps
            present = [s for s in everyone if any(s in groups[f][c] for c in cases)]
            width = 0.8 / max(len(present), 1)
            for k, s in enumerate(present):
                ys = []
                for c in cases:
                    r = groups[f][c].get(s)
                    ys.append((r.get("items_per_second") or 0) if r and not r.error else 0)
                ax.bar([x + (k - (len(present) - 1) / 2) * width for x in range(len(cases))],
                       ys, width, color=colors[s])
            ax.set_title(f)
            ax.set_yscale("log")
            low = [r.get("items_per_second") for c in cases for r in groups[f][c].values()
                   if not r.error and r.get("items_per_second")]
            if low:
                ax.set_ylim(bottom=min(low) / 4)  # bars start well below the shortest
            ax.set_ylabel({"pingpong": "round trips/s", "sync": "ops/s",
                           "pool": "jobs/s", "breaker": "calls/s"}.get(f, "items/s"))
            ax.set_xticks(range(len(cases)))
            if wide:
                ax.set_xticklabels([c.replace("/", " ") or f for c in cases], fontsize=7,
                                   rotation=25, ha="right", rotation_mode="anchor")
            else:
                ax.set_xticklabels([c.replace("/", "\n") or f for c in cases], fontsize=7)
            ax.set_xlim(-0.6, len(cases) - 0.4)
            ax.grid(axis="y", alpha=0.3)
    fig.suptitle("weft channels: throughput by strategy (higher is better)",
                 y=1 - 0.15 / height)
    fig.legend(handles=[Patch(color=colors[s], label=s) for s in everyone],
               loc="upper center", ncol=min(len(everyone), 9), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.45 / height))
    return save_plot(plt, fig, path, dpi=110, rect=(0, 0, 1, 1 - top / height))


MAP_NOTE = ("map: an op is one map call on a map of 1M 8-byte keys (filled untimed); "
            "read:R is the percentage of loads, the rest stores over existing keys; "
            "dist: uniform keys or Zipf (s = 0.99, ranks scrambled); threads:T share the "
            "ops. herd: 64 threads (weft_tasks: 64 weft tasks) ask for the same 64 fresh keys, compute sleeps 200 us; "
            "computes/key 1 means the waiters shared it (go: the seed's getOrCompute, "
            "Load + compute + LoadOrStore; go_sf: with x/sync singleflight). RSS B/key: RSS "
            "growth while a fresh process fills the keys. %s: one pthread mutex over a "
            "chained table; rwlock: the same under a pthread rwlock "
            "(bench/baseline/map_mutex.c); ck_ht: loads lock-free, stores under one writer "
            "mutex; tbb, cuckoo and the Go peer take integer keys (no key copy)." % BASELINE)


def map_panel(cases):
    """the map family at a glance: ns/op per implementation, one row per mix
    and thread count, then the herd; (header, body)"""
    order = ("weft", "weft_tasks", "mutex", "rwlock", "ck_ht", "tbb", "cuckoo", "go", "go_sf")
    impls = sorted({s for strategies in cases.values() for s in strategies},
                   key=lambda s: (order.index(s) if s in order else len(order), s))
    header = ["case"] + impls + ["weft vs mutex", "weft vs rwlock"]
    body = []
    for case, strategies in cases.items():
        row = [case]
        for s in impls:
            r = strategies.get(s)
            cell = "-" if not r else ("FAILED" if r.error else ns(r.get("ns_per_item")))
            if r and not r.error and r.get("computes_per_key") is not None:
                cell += " (%s)" % f2(r.get("computes_per_key"))
            row.append(cell)
        w = strategies.get("weft")
        row += [x(ratio(w, strategies, "mutex")) if w else "-",
                x(ratio(w, strategies, "rwlock")) if w else "-"]
        body.append(row)
    return header, body


def plot_map(groups, path):
    """the map family: ns/op against threads per implementation, one panel
    per mix (uniform keys), and the herd's CPU per op"""
    cases = groups.get("map")
    if not cases:
        return False
    plt = _plt()
    if not plt:
        return False
    mixes = [m for m in ("read:100", "read:99", "read:90", "read:50")
             if any(c.startswith("mix/" + m + "/dist:uniform") for c in cases)]
    if not mixes:
        return False
    fig, axes = plt.subplots(1, len(mixes), figsize=(4.2 * len(mixes), 3.6), squeeze=False)
    impls = sorted({s for c in cases.values() for s in c},
                   key=lambda s: (s != "weft", s != BASELINE, s))
    for ax, m in zip(axes.flat, mixes):
        for s in impls:
            pts = []
            for c, strategies in cases.items():
                if not c.startswith("mix/" + m + "/dist:uniform"):
                    continue
                r = strategies.get(s)
                if r and not r.error and r.get("ns_per_item"):
                    pts.append((threads_of(c)[0], r.get("ns_per_item")))
            if pts:
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s)
        ax.set_title("map " + m + " (uniform)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("threads")
        ax.set_ylabel("ns/op (lower is better)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    return save_plot(plt, fig, path, dpi=110)


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
    colors = strategy_colors(plt, {s for f in ("spsc",) + tuple(fams)
                                   for rows in groups.get(f, {}).values() for s in rows})
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
            for s in by_strategy(series):
                pts = sorted(series[s])
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s,
                        color=colors[s])
            ax.set_title("%s, cap %s" % (f, cap), fontsize=9)
            ax.set_xlabel("threads (producers + consumers)", fontsize=8)
            ax.set_ylabel("items/s", fontsize=8)
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            if series:
                ax.legend(fontsize=6)
    fig.suptitle("throughput against thread count (higher is better)")
    return save_plot(plt, fig, path)


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
                    curves.append((label, pts, s))
    if not curves:
        return False
    colors = strategy_colors(plt, {c[2] for c in curves})
    floors = 0
    fig, ax = plt.subplots(figsize=(9, 5))
    for label, pts, s in curves:
        floor = label.startswith("floor")
        color = FLOOR_GRAYS[floors % len(FLOOR_GRAYS)] if floor else colors[s]
        floors += floor
        ax.plot([1 / (1 - q / 100) for q, _ in pts], [v for _, v in pts], marker="o",
                label=label, linestyle="--" if floor else "-", color=color)
    ticks = [1 / (1 - q / 100) for q, _ in qs]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ticks)
    ax.set_xticklabels(["p%g" % q for q, _ in qs])
    ax.set_ylabel("ns (pingpong: round trip)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("latency percentiles (lower is better; log-linear histogram, clock cost subtracted)")
    return save_plot(plt, fig, path)


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
    colors = strategy_colors(plt, series)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for s in by_strategy(series):
        pts = sorted(series[s])
        a.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s, color=colors[s])
        b.plot([p[0] for p in pts], [(p[2] or 0) / 1024 for p in pts], marker="o", label=s,
               color=colors[s])
    for ax, t in ((a, "ns per item"), (b, "peak RSS, MB")):
        ax.set_xscale("log")
        ax.set_xlabel("items (spsc, capacity 1024)")
        ax.set_ylabel(t)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    a.legend(fontsize=7)
    fig.suptitle("scaling with item count: time per item and memory should stay flat")
    return save_plot(plt, fig, path)


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

    chan_only = all(r.family not in ("sync", "breaker") for r in rows)
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
           "rows only; the others block in code weft cannot count). ctx sw/item: the "
           "whole process's context switches (voluntary + involuntary, getrusage) per item."
           % (REFERENCE, BASELINE)]
    base = context.get("weft_base_items")
    if base and base.isdigit():
        n = int(base)
        md += ["Items per run: %s at capacity >= 2, %s at capacity 0 and 1 (each item a "
               "hand-off), %s pingpong round trips; 8-byte items. With more than 2 "
               "threads, strategies other than weft, mutex and go move a tenth of that (the "
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
    # the pipeline families have their own panel, not the matrices and plots
    pl_groups = groups
    groups = {f: c for f, c in groups.items() if f not in PL_FAMILIES}
    sh, sb, gmean, n = summary(groups)
    if sb:
        md += ["## Summary: weft speed / %s speed" % BASELINE, "", md_table(sh, sb, 1), ""]
        md += ["Geometric mean over %d cases: %s" % (n, x(gmean)), ""]
        print("weft speed / %s speed" % BASELINE)
        print(text_table(sh, sb, 1))
        print("geometric mean: %s\n" % x(gmean))
    for family, cases in groups.items():
        if family == "floor" or family in PL_FAMILIES:
            continue  # the table on top; the pipeline panel below
        header, body, notes = table(family, cases)
        print("== %s" % family)
        print(text_table(header, body))
        for n in notes:
            print("FAILED: " + n)
        print()
        md += ["## %s" % family, "", md_table(header, body), ""]
        if family == "map":
            ph, pb = map_panel(cases)
            print("== map at a glance: ns/op (herd: computes per key)")
            print(text_table(ph, pb, 1))
            print(MAP_NOTE)
            print()
            md += ["### map at a glance: ns/op (herd: computes per key)", "",
                   md_table(ph, pb, 1), "", MAP_NOTE, ""]
        if family == "pool":
            print(POOL_NOTE)
            print()
            md += [POOL_NOTE, ""]
        if family == "breaker":
            print(BREAKER_NOTE)
            print()
            md += [BREAKER_NOTE, ""]
        if family == "sync":
            note = sync_note(cases)
            print(note)
            print()
            md += [note, ""]
        md += ["FAILED: " + n + "  " for n in notes] + ([""] if notes else [])
    if "scale" in groups:
        md += [SCALE_NOTE, ""]
    pp = pipeline_panel(pl_groups)
    if pp and pp[1]:
        md += ["## Pipelines, overflow policies", "", md_table(pp[0], pp[1], 3), "",
               PIPELINE_NOTE, ""]
        print("== pipelines, overflow policies")
        print(text_table(pp[0], pp[1], 3))
        print(PIPELINE_NOTE)
        print()
    if not args.no_plot:
        for name, fn, title in (("throughput.png", plot, "throughput by strategy"),
                                ("scaling.png", plot_scaling, "throughput against threads"),
                                ("latency.png", plot_latency, "latency percentiles"),
                                ("scale.png", plot_scale, "scaling with items"),
                                ("map.png", plot_map, "map: ns/op against threads")):
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

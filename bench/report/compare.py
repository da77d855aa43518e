#!/usr/bin/python3
"""Before/after table of two weft-bench runs: the same benchmark (case and
strategy) in OLD.json and NEW.json, its ns/item in each and the change.

usage: /usr/bin/python3 bench/report/compare.py OLD.json NEW.json
                        [--threshold PCT] [--all] [--md FILE]
       (or scripts/bench.sh compare OLD.json NEW.json ...)

A change is flagged ("faster" / "slower") when it lies outside the noise:
with repetitions in both runs (--repetitions N), outside the larger of the
two runs' spreads (half the min-max range over the median) and, with at
least 3 repetitions on each side and scipy importable, a Mann-Whitney U
test below p = 0.05 (what Google Benchmark's compare.py uses); with a
single run on either side, outside --threshold percent (default 5). Rows
within the noise are shown as "~" (all rows with --all; by default only the
flagged ones and a count of the rest). Latency rows compare p99 as well.
Exit status 0 either way: benchmarks never assert timings.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

try:
    from scipy.stats import mannwhitneyu
except ImportError:  # the test still runs without it
    mannwhitneyu = None


def index(path):
    _, rows = report.load(path)
    return {(r.family, r.case, r.strategy): r for r in rows}


def verdict(old, new, metric, threshold):
    """(change, noise, p, flag) for one metric, or None when missing"""
    a, b = old.get(metric), new.get(metric)
    if not a or not b:
        return None
    change = b / a - 1
    sa, sb = old.spread(metric), new.spread(metric)
    noise = max(sa or 0, sb or 0) if sa is not None and sb is not None else threshold
    noise = max(noise, 0.01)  # never flag a change below 1%
    p = None
    va, vb = old.samples.get(metric, []), new.samples.get(metric, [])
    if mannwhitneyu and len(va) >= 3 and len(vb) >= 3:
        p = mannwhitneyu(va, vb, alternative="two-sided").pvalue
    flagged = abs(change) > noise and (p is None or p < 0.05)
    flag = ("slower" if change > 0 else "faster") if flagged else "~"
    return change, noise, p, flag


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=5.0,
                    help="percent change flagged when a run has no repetitions (default 5)")
    ap.add_argument("--all", action="store_true", help="show the rows within the noise too")
    ap.add_argument("--md", help="also write the table as markdown to this file")
    args = ap.parse_args(argv)

    old, new = index(args.old), index(args.new)
    common = [k for k in new if k in old]
    if not common:
        print("compare: no benchmark in both runs", file=sys.stderr)
        return 1
    order = {f: i for i, f in enumerate(report.FAMILY_ORDER)}
    common.sort(key=lambda k: (order.get(k[0], len(order)), k[0], report.case_key(k[1])
                               if k[0] not in ("sync", "pool") else (k[1],), k[2]))
    header = ["benchmark", "old ns/item", "new ns/item", "change", "noise", "p", "verdict"]
    body, quiet, counts = [], 0, {"faster": 0, "slower": 0, "~": 0}
    for k in common:
        o, n = old[k], new[k]
        name = "/".join(x for x in (k[0], k[1], k[2]) if x)
        if o.error or n.error:
            body.append([name, "FAILED" if o.error else report.ns(o.get("ns_per_item")),
                         "FAILED" if n.error else report.ns(n.get("ns_per_item")), "", "", "",
                         "failed"])
            continue
        for metric, label in (("ns_per_item", ""), ("p99_ns", " p99")):
            v = verdict(o, n, metric, args.threshold / 100)
            if v is None:
                continue
            change, noise, p, flag = v
            counts[flag] += 1
            if flag == "~" and not args.all:
                quiet += 1
                continue
            body.append([name + label, report.ns(o.get(metric)), report.ns(n.get(metric)),
                         "%+.1f%%" % (change * 100), "±%.1f%%" % (noise * 100),
                         "-" if p is None else "%.3f" % p, flag])
    print("compare: %s -> %s" % (args.old, args.new))
    if body:
        print(report.text_table(header, body, 1))
    print("%d faster, %d slower, %d within the noise%s; %d only in one run" %
          (counts["faster"], counts["slower"], counts["~"],
           " (not shown; --all shows them)" if quiet else "",
           len(set(old) ^ set(new))))
    if args.md:
        with open(args.md, "w") as f:
            f.write(report.md_table(header, body, 1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

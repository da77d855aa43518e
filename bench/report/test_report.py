#!/usr/bin/python3
"""bench-smoke test of report.py: run it on testdata/sample.json (a recorded
quick run of weft-bench) and check report.md holds the expected figures.

sample.json was made with (quick, tiny, 3 repetitions so the median is used):
  weft-bench --weft_items=20000 --weft_idle_ms=50 --benchmark_repetitions=3 \
    --benchmark_filter='spsc|mpmc/cap:1024/threads:2x2|select_rx/cap:1024|pingpong|idle' \
    --benchmark_out=sample.json --benchmark_out_format=json
If it is re-recorded, update EXPECTED from the new report.md.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# lines report.md must contain (medians of the 3 repetitions, ratios against mutex)
EXPECTED = [
    # summary: weft items/s over mutex items/s, and their geometric mean
    "| spsc | 5.81x | 14.61x | 4.06x | - |",
    "| pingpong | - | - | - | 31.66x |",
    "Geometric mean over 6 cases: 6.66x",
    # median of 18.09M, 16.55M, 19.56M items/s; 4.06x = 18.09M / 4.46M
    "| cap:1024 | weft | 18.09M | 55.3 | 91.3 | 1.62 | 4.06x |",
    "| cap:1024 | mutex | 4.46M | 224 | 309 | 1.38 | 1.00x |",
    # percentiles: medians of the repetitions, max the worst
    "| - | weft | 426.48k | 2345 | 3432 | 1.46 | 1035 | 1245 | 71.1 us | 103.5 us | 31.66x |",
    "| - | hw_floor | 1.14M | 876 | 1460 | 1.67 | 371 | 431 | 34.5 us | 76.0 us | 84.71x |",
    "| cap:1/threads:64 | weft | 564.0 us | 1.12% | 2.26 ms |",
    "| cap:1024/threads:4x1 | weft | 3.89M | 257 | 460 | 1.67 | 3.57x |",
]


def main():
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, os.path.join(HERE, "report.py"),
               os.path.join(HERE, "testdata", "sample.json"), "--out", out, "--no-plot"]
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(run.stdout)
        if run.returncode != 0:
            print("FAIL: report.py exited with %d" % run.returncode)
            return 1
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
    missing = [line for line in EXPECTED if line not in md]
    for line in missing:
        print("FAIL: report.md lacks: %s" % line)
    if missing:
        print("---- report.md ----\n" + md)
        return 1
    print("ok: %d expected lines found" % len(EXPECTED))
    return 0


if __name__ == "__main__":
    sys.exit(main())

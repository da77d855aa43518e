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

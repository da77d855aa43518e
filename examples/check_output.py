"""Run an example and check its output.

usage: check_output.py PROGRAM --expect REGEX [--expect REGEX ...]

Passes when PROGRAM exits 0 and every REGEX matches a whole line of its
standard output, the REGEXes matching lines in the order given. The output
is echoed so `meson test -v` shows it.
"""
import argparse
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('program')
    ap.add_argument('--expect', action='append', default=[], metavar='REGEX')
    ap.add_argument('--timeout', type=float, default=50.0)
    a = ap.parse_args()

    try:
        p = subprocess.run([a.program], stdout=subprocess.PIPE,
                           universal_newlines=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        print('FAIL: %s timed out after %g s' % (a.program, a.timeout))
        return 1
    sys.stdout.write(p.stdout)
    lines = p.stdout.splitlines()
    ok = True
    if p.returncode != 0:
        print('FAIL: exit status %d' % p.returncode)
        ok = False
    pos = 0
    for rx in a.expect:
        r = re.compile(rx)
        for i in range(pos, len(lines)):
            if r.fullmatch(lines[i]):
                pos = i + 1
                break
        else:
            print('FAIL: no line (in order) matches %r' % rx)
            ok = False
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

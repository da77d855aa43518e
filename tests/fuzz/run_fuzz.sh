#!/usr/bin/env bash
# One harness's meson test: replay its regressions, then fuzz a while.
# Usage: run_fuzz.sh EXE NAME SRCDIR WORKROOT SECONDS
#   EXE       the harness (libFuzzer)
#   NAME      chan, select, ...: corpus/NAME and regress/NAME under SRCDIR
#   WORKROOT  <builddir>/fuzz-work: NAME/ is the fresh working corpus;
#             crashes go to <builddir>/fuzz-crashes/NAME/
# Exit status: nonzero on any crash, leak, timeout or failed check.
set -uo pipefail
exe=$1 name=$2 src=$3 workroot=$4 secs=$5
work=$workroot/$name
crashes=$(dirname "$workroot")/fuzz-crashes/$name
rm -rf "$work"
mkdir -p "$work" "$crashes"
opts=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$crashes/" -print_final_stats=1)

shopt -s nullglob
regress=("$src/regress/$name"/*)
if ((${#regress[@]})); then
	echo "== $name: replaying ${#regress[@]} regression input(s)"
	"$exe" "${opts[@]}" "${regress[@]}" || exit 1
fi
echo "== $name: fuzzing ${secs}s from corpus/$name"
"$exe" "${opts[@]}" -max_total_time="$secs" "$work" "$src/corpus/$name" 2>&1 |
	grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' # keep the log short: stats, errors
rc=${PIPESTATUS[0]}
if ((rc != 0)); then
	echo "== $name: FAILED (exit $rc); the input is in $crashes/:" \
		"reproduce with $exe <file>, then keep it in tests/fuzz/regress/$name/"
fi
exit "$rc"

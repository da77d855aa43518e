#!/usr/bin/env bash
# Longer fuzzing campaigns with the libFuzzer harnesses of tests/fuzz, one
# harness at a time (one process, one core), and a line per harness:
# executions, coverage (cov: edges, ft: features), corpus size, crashes.
# Usage: scripts/fuzz.sh [minutes] [harness]
#   minutes  per harness (default 10)
#   harness  chan, select, sync, map, breaker or opts (default: all, in turn)
# Outside the source tree, under $WEFT_FUZZ_DIR (default $TMPDIR/weft-fuzz
# or /tmp/weft-fuzz):
#   corpus/<harness>/   the working corpus: new inputs go here and stay, so
#                       the next campaign starts where this one ended
#   crashes/<harness>/  crash, leak and timeout inputs
#   <harness>.log       libFuzzer's output
# Each run starts from the working corpus, the seed corpus
# (tests/fuzz/corpus/<harness>) and the regressions (tests/fuzz/regress).
# A crash ends that harness's run (the next harness runs); reproduce with
# build-fuzz/tests/fuzz/fuzz_<harness> <file>, fix, and keep the input in
# tests/fuzz/regress/<harness>/. Exit status: 1 if any harness crashed.
set -uo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
only=${2:-}
root=${WEFT_FUZZ_DIR:-${TMPDIR:-/tmp}/weft-fuzz}
all=(chan select sync map breaker opts)
harnesses=("${all[@]}")
if [[ -n $only ]]; then
	[[ " ${all[*]} " == *" $only "* ]] || { echo "fuzz.sh: no harness '$only' (${all[*]})"; exit 2; }
	harnesses=("$only")
fi
[[ $minutes =~ ^[0-9]+$ && $minutes -gt 0 ]] || { echo "fuzz.sh: minutes must be a positive integer"; exit 2; }
scripts/setup.sh --fuzz || exit 1

if [[ ! -d build-fuzz ]]; then
	CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dallocator=system -Dbenchmarks=disabled -Dbuildtype=debugoptimized \
		>build-fuzz.setup.log 2>&1 || { cat build-fuzz.setup.log; exit 1; }
fi
ninja -C build-fuzz -j2 >build-fuzz.build.log 2>&1 || { tail -50 build-fuzz.build.log; exit 1; }

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=0
printf '%-8s %12s %8s %8s %8s %8s %8s\n' harness execs exec/s cov ft corpus crashes
for h in "${harnesses[@]}"; do
	mkdir -p "$root/corpus/$h" "$root/crashes/$h"
	dirs=("$root/corpus/$h" "tests/fuzz/corpus/$h")
	[[ -d tests/fuzz/regress/$h ]] && dirs+=("tests/fuzz/regress/$h")
	before=$(find "$root/crashes/$h" -type f | wc -l)
	log=$root/$h.log
	build-fuzz/tests/fuzz/fuzz_"$h" -max_total_time=$((minutes * 60)) -timeout=15 \
		-print_final_stats=1 -artifact_prefix="$root/crashes/$h/" "${dirs[@]}" >"$log" 2>&1
	rc=$?
	crashes=$(($(find "$root/crashes/$h" -type f | wc -l) - before))
	# the last status line: "#N ... cov: C ft: F corp: K/..."
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	[[ -z $execs ]] && execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | cut -d' ' -f2)
	ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | cut -d' ' -f2)
	corp=$(find "$root/corpus/$h" -type f | wc -l)
	printf '%-8s %12s %8s %8s %8s %8s %8s\n' "$h" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
		"${ft:-?}" "$corp" "$crashes"
	if ((rc != 0 || crashes > 0)); then
		failed=1
		grep -m3 -E 'ERROR|CHECK|runtime error' "$log" | sed 's/^/    /'
		ls -t "$root/crashes/$h" | head -"$((crashes > 0 ? crashes : 1))" | sed "s|^|    $root/crashes/$h/|"
		echo "    log: $log"
	fi
done
exit "$failed"

#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs
#   1. the default build: suites unit, stress, headers, examples, bench-smoke
#   2. ThreadSanitizer build: unit and stress
#   3. ASan+UBSan build: unit and stress
#   4. the fuzz build (clang, libFuzzer, ASan+UBSan): suite fuzz, each
#      harness replays its regressions and fuzzes 30 s (tests/fuzz)
#   5. failure injection: ASan+UBSan with -Dfault_injection=true, suite
#      faults (tests/unit/test_faults.c: every resource call of lib/ failed
#      in turn, a fresh process per failure point, leaks checked in each)
# and ends with one line "N passed, N failed".
# Usage: scripts/test.sh [--quick]   (--quick: default build only)
set -uo pipefail
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
export ASAN_OPTIONS=detect_leaks=1
cd "$(dirname "$0")/.."
# --bench: the report test draws its plots (matplotlib) and the peers run
# their conformance tests when the archive has them; --fuzz: clang
setup_args=(--bench)
[[ "${1:-}" != "--quick" ]] && setup_args+=(--fuzz)
scripts/setup.sh "${setup_args[@]}" || exit 1

passed=0
failed=0
run_suite() { # builddir, setup args..., -- , meson test args...
	local dir=$1
	shift
	local setup=()
	while [[ $1 != -- ]]; do setup+=("$1"); shift; done
	shift
	if [[ ! -d $dir ]]; then
		meson setup "$dir" "${setup[@]}" >"$dir.setup.log" 2>&1 ||
			{ cat "$dir.setup.log"; failed=$((failed + 1)); return; }
	fi
	if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
		tail -50 "$dir.build.log"
		failed=$((failed + 1))
		return
	fi
	meson test -C "$dir" --print-errorlogs "$@" 2>&1 | tee "$dir.test.log" | grep -vE '^ *[0-9]+/[0-9]+ .* OK ' || true
	local ok fail
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$dir.test.log" | tail -1)
	fail=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $2} END {print s + 0}' "$dir.test.log")
	[[ -z $ok ]] && { ok=0; fail=$((fail + 1)); }
	passed=$((passed + ok))
	failed=$((failed + fail))
	echo "== $dir: $ok passed, $fail failed"
}

run_suite build -Dallocator=jemalloc -- --num-processes 2
if [[ "${1:-}" != "--quick" ]]; then
	run_suite build-tsan -Db_sanitize=thread -Dallocator=system -Dbenchmarks=disabled \
		-Dbuildtype=debugoptimized -- --suite unit --suite stress --num-processes 1 --timeout-multiplier 3
	run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dallocator=system \
		-Dbenchmarks=disabled -Dbuildtype=debugoptimized -- --suite unit --suite stress --num-processes 2 --timeout-multiplier 2
	# one harness at a time (each is one fuzzing process)
	CC=clang CXX=clang++ run_suite build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dallocator=system -Dbenchmarks=disabled -Dbuildtype=debugoptimized \
		-- --suite fuzz --num-processes 1
	# --verbose: the walk's figures (points per module, sites) in the log
	run_suite build-faults -Db_sanitize=address,undefined -Db_lundef=false -Dallocator=system \
		-Dbenchmarks=disabled -Dbuildtype=debugoptimized -Dfault_injection=true -- --suite faults --num-processes 1 --verbose
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

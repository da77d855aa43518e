#!/usr/bin/env bash
# Soak: the stress suites (the binaries built from tests/stress/*.c) in a
# loop for the given minutes, each run with a fresh seed, every item counted.
# Usage: scripts/soak.sh [minutes] [size]   (default: 10 minutes, size 1)
#        WEFT_SOAK_SUITES="stress_chan stress_task" scripts/soak.sh ...: only those
#
# Build: the default `build` dir, set up as scripts/test.sh sets it up
# (-Dallocator=jemalloc, the project's buildtype debugoptimized: assertions
# on), after scripts/setup.sh; only the stress binaries are (re)built. These
# are the binaries `meson test --suite stress` and CI run. A `build` dir that
# already exists is used as it is configured.
#
# A round runs every suite once, in the order of their file names, each
# with WEFT_STRESS_SEED set to a fresh random number (tests/common/stress.h:
# every random stream of the run derives from it) and the size as its first
# argument. A suite starts only while time is left, so the soak ends at the
# first suite boundary after the time is up (it may overrun by one suite;
# the last round may be partial). Ctrl-C stops the running suite and prints
# the totals of the runs that finished.
#
# Each suite's last line is "<suite>: items moved N lost M" (N: items its
# checks verified delivered exactly once, or its own unit: calls, jobs,
# tasks; M: items found missing or duplicated). A run fails if it exits
# nonzero (every check aborts: its lost items are then unknown, and said
# so), prints no summary line, or loses anything. A failing run's seed,
# replay command and whole output are kept in soak-out/.
#
# Prints a progress line per round and at the end the per-suite totals,
# items moved and lost, rounds, and items moved per hour. Exit status 0
# only if nothing was lost and no run failed.
set -uo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
size=${2:-1}
if ! [[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v m="$minutes" 'BEGIN { exit !(m > 0) }'; then
	echo "usage: scripts/soak.sh [minutes > 0] [size > 0]" >&2
	exit 2
fi
if ! [[ $size =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v s="$size" 'BEGIN { exit !(s > 0) }'; then
	echo "usage: scripts/soak.sh [minutes > 0] [size > 0]" >&2
	exit 2
fi

scripts/setup.sh || exit 1
suites=()
for f in tests/stress/stress_*.c; do
	s=$(basename "$f" .c)
	# WEFT_SOAK_SUITES="stress_chan stress_task": only those
	if [[ -z ${WEFT_SOAK_SUITES:-} || " $WEFT_SOAK_SUITES " == *" $s "* ]]; then
		suites+=("$s")
	fi
done
if ((${#suites[@]} == 0)); then
	echo "soak: no suite matches WEFT_SOAK_SUITES=$WEFT_SOAK_SUITES" >&2
	exit 2
fi
if [[ ! -d build ]]; then
	meson setup build -Dallocator=jemalloc >build.setup.log 2>&1 ||
		{ cat build.setup.log; exit 1; }
fi
targets=()
for s in "${suites[@]}"; do
	targets+=("tests/$s")
done
if ! ninja -C build -j2 "${targets[@]}" >build.soak.log 2>&1; then
	tail -50 build.soak.log
	echo "soak: build failed (build.soak.log)" >&2
	exit 1
fi

outdir=soak-out
mkdir -p "$outdir"
stamp=$(date +%Y%m%d-%H%M%S)
log="$outdir/soak-$stamp.log"
tmp="$outdir/.run-$stamp.$$"
say() { echo "$*" | tee -a "$log"; }

declare -A runs=() fails=() moved=() secs=()
for s in "${suites[@]}"; do
	runs[$s]=0 fails[$s]=0 moved[$s]=0 secs[$s]=0
done
total_moved=0 total_lost=0 lost_unknown=0 nfail=0 rounds=0 partial=0
interrupted=0 pid=
on_signal() {
	interrupted=1
	[[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
}
trap on_signal INT TERM

say "soak: $minutes min, size $size, ${#suites[@]} suites (${suites[*]}), $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
say "soak: log $log; failing runs' output kept in $outdir/"
t_start=$(date +%s.%N)
deadline=$(awk -v t="$t_start" -v m="$minutes" 'BEGIN { printf "%.3f", t + m * 60 }')
# well above every suite's watchdog (300-400 s x size, x3 under sanitizers)
limit=$(awk -v s="$size" 'BEGIN { printf "%d", 1200 * (s < 1 ? 1 : s) + 60 }')
time_left() { awk -v d="$deadline" -v n="$(date +%s.%N)" 'BEGIN { exit !(n < d) }'; }

while ((!interrupted)) && time_left; do
	round=$((rounds + 1)) r_runs=0 r_fail=0 r_moved=0 r_lost=0
	for s in "${suites[@]}"; do
		if ((interrupted)) || ! time_left; then
			break
		fi
		seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
		t0=$(date +%s.%N)
		# the watchdogs inside end a hung suite; timeout is a last resort
		WEFT_STRESS_SEED=$seed timeout -k 10 "$limit" "build/tests/$s" "$size" >"$tmp" 2>&1 &
		pid=$!
		wait "$pid"
		rc=$?
		while kill -0 "$pid" 2>/dev/null; do # wait returned early for a signal
			wait "$pid"
			rc=$?
		done
		pid=
		t1=$(date +%s.%N)
		if ((interrupted)); then
			say "soak: interrupted during $s (seed $seed): that run is not counted"
			break
		fi
		sec=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
		line=$(grep -E "^$s: items moved [0-9]+ lost [0-9]+\$" "$tmp" | tail -1)
		m=0 l=
		if [[ -n $line ]]; then
			m=$(awk '{ print $4 }' <<<"$line")
			l=$(awk '{ print $6 }' <<<"$line")
		fi
		why=
		if ((rc != 0)); then
			case $rc in
			124) why="hung: killed by its watchdog or the soak's timeout (exit 124)" ;;
			134) why="aborted (SIGABRT: a check failed)" ;;
			137) why="killed (SIGKILL)" ;;
			139) why="crashed (SIGSEGV)" ;;
			*) why="exit status $rc" ;;
			esac
		elif [[ -z $line ]]; then
			why="exit 0 but no summary line"
		elif ((l > 0)); then
			why="lost $l items"
		fi
		runs[$s]=$((runs[$s] + 1))
		secs[$s]=$(awk -v a="${secs[$s]}" -v b="$sec" 'BEGIN { printf "%.1f", a + b }')
		r_runs=$((r_runs + 1))
		if [[ -n $why ]]; then
			fails[$s]=$((fails[$s] + 1))
			nfail=$((nfail + 1)) r_fail=$((r_fail + 1))
			if [[ -n $line ]]; then
				total_lost=$((total_lost + l)) r_lost=$((r_lost + l))
			else
				lost_unknown=$((lost_unknown + 1))
			fi
			keep="$outdir/FAIL-$stamp-$s-seed$seed.log"
			{
				echo "suite: $s"
				echo "seed: $seed"
				echo "replay: WEFT_STRESS_SEED=$seed build/tests/$s $size"
				echo "result: $why after ${sec}s"
				echo "commit: $(git rev-parse HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
				echo "----- output"
				cat "$tmp"
			} >"$keep"
			say "FAIL round $round $s seed $seed: $why; lost ${l:-unknown}; output in $keep"
			grep -E "FAIL|CHECK|failed|watchdog|aborted|ERROR|invented|duplicate" "$tmp" | head -5 | sed 's/^/    /' | tee -a "$log"
		fi
		# a run that failed after printing its line still moved what it counted
		moved[$s]=$((moved[$s] + m))
		total_moved=$((total_moved + m)) r_moved=$((r_moved + m))
	done
	if ((r_runs == 0)); then
		break
	fi
	if ((r_runs == ${#suites[@]})); then
		rounds=$((rounds + 1))
	else
		partial=$r_runs
	fi
	elapsed=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { s = b - a; printf "%dm%02ds", s / 60, s % 60 }')
	say "round $round$( ((r_runs < ${#suites[@]})) && echo " (partial: $r_runs of ${#suites[@]} suites)"): $r_runs runs, $r_fail failed, items moved $r_moved, lost $r_lost; total moved $total_moved, lost $total_lost; $elapsed elapsed"
done
rm -f "$tmp"
t_end=$(date +%s.%N)

say ""
say "soak: per suite (runs, failed, items moved, seconds):"
for s in "${suites[@]}"; do
	say "$(printf '  %-22s runs %3d  failed %d  moved %15d  %8.1f s' "$s" "${runs[$s]}" "${fails[$s]}" "${moved[$s]}" "${secs[$s]}")"
done
wall=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')
per_hour=$(awk -v m="$total_moved" -v w="$wall" 'BEGIN { printf "%.0f (%.1f million)", (w > 0 ? m * 3600 / w : 0), (w > 0 ? m * 3600 / w / 1e6 : 0) }')
lost_txt=$total_lost
((lost_unknown > 0)) && lost_txt="$total_lost, plus unknown in $lost_unknown failed run(s) that printed no summary"
nruns=0
for s in "${suites[@]}"; do
	nruns=$((nruns + runs[$s]))
done
say "soak: rounds $rounds$( ((partial > 0)) && echo " (+ $partial of ${#suites[@]} suites of one more)"), runs $nruns, failed $nfail"
say "soak: items moved $total_moved"
say "soak: items lost $lost_txt"
say "soak: $(awk -v w="$wall" 'BEGIN { printf "%.1f", w / 60 }') min wall, items moved per hour $per_hour"
if ((interrupted)); then
	say "soak: interrupted"
	exit 130
fi
if ((nfail > 0 || total_lost > 0)); then
	say "soak: FAILED (kept: $outdir/FAIL-$stamp-*.log)"
	exit 1
fi
say "soak: ok, nothing lost"
exit 0

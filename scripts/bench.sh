#!/bin/bash
# scripts/bench.sh: build weft in release mode and run the benchmark suite,
# every strategy in the same run, then write the report.
#
#   scripts/bench.sh [--quick] [--filter REGEX] [--repetitions N] [--out DIR]
#                    [--items N] [--no-install] [-- EXTRA weft-bench ARGS]
#   scripts/bench.sh compare OLD.json NEW.json [--threshold PCT]
#
#   compare          before/after table per benchmark of two runs' bench.json
#                    (bench/report/compare.py): the change in ns/item, flagged
#                    when it is outside the noise (the repetitions' spread, or
#                    --threshold percent, default 5, without repetitions)
#
#   --quick          1 million base items instead of 10 million (and 200 ms idle)
#   --filter REGEX   only benchmarks whose name matches (Google Benchmark
#                    --benchmark_filter), e.g. 'spsc|pingpong' or '/weft$'
#   --repetitions N  run each benchmark N times; the report takes medians and
#                    shows the spread (min-max around the median)
#   --out DIR        where bench.json, machine.txt, report.md and the PNG
#                    plots go (default: bench-out)
#   --items N        base items per run (default 10 million; capacity >= 2
#                    moves N, capacity 0 and 1 N/100, pingpong N/50 round trips)
#   --no-install     do not try to install missing Debian packages
#
# Installs what is missing of meson ninja-build pkg-config libck-dev
# libjemalloc-dev libbenchmark-dev python3-matplotlib python3-scipy
# libbenchmark-tools and the peers libconcurrentqueue-dev libtbb-dev
# libboost-fiber-dev golang-go
# (apt-get, with sudo when not root; a peer the archive lacks is skipped and
# reported), configures build-release (release, LTO), builds weft-bench,
# prints the machine, runs with a progress line per benchmark (the time
# left is estimated from the previous run with the same items), and calls
# bench/report/report.py under /usr/bin/python3, which prints the comparison
# table and writes report.md and the plots. The default run takes about
# 11 minutes on 2 cores (10.5 at stop 18), --quick about a minute and a half.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${1:-}" = compare ]; then
	shift
	exec /usr/bin/python3 bench/report/compare.py "$@"
fi

quick=0
filter=
reps=1
out=bench-out
items=
install=1
extra=()

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--filter) filter=${2:?--filter needs a regex}; shift ;;
	--filter=*) filter=${1#*=} ;;
	--repetitions) reps=${2:?--repetitions needs a count}; shift ;;
	--repetitions=*) reps=${1#*=} ;;
	--out) out=${2:?--out needs a directory}; shift ;;
	--out=*) out=${1#*=} ;;
	--items) items=${2:?--items needs a count}; shift ;;
	--items=*) items=${1#*=} ;;
	--no-install) install=0 ;;
	-h | --help) usage 0 ;;
	--) shift; extra=("$@"); break ;;
	*) echo "bench.sh: unknown option $1" >&2; usage 2 ;;
	esac
	shift
done

# ---- packages --------------------------------------------------------------
packages=(meson ninja-build pkg-config libck-dev libjemalloc-dev libbenchmark-dev python3-matplotlib
	python3-scipy libbenchmark-tools)
peers=(libconcurrentqueue-dev libtbb-dev libboost-fiber-dev golang-go) # optional: skipped when the archive lacks them
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${packages[@]}" "${peers[@]}"; do
	installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ $install -eq 0 ] || ! command -v apt-get >/dev/null; then
		echo "bench.sh: missing packages: ${missing[*]} (not installing)" >&2
	else
		sudo=
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		echo "bench.sh: installing ${missing[*]}"
		$sudo apt-get update -qq || true
		for p in "${missing[@]}"; do
			$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null ||
				echo "bench.sh: could not install $p (a peer's benchmarks are then skipped)" >&2
		done
	fi
fi

# ---- build -----------------------------------------------------------------
build=build-release
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" --buildtype=release -Db_lto=true -Dbenchmarks=enabled -Dpeers=auto
else
	# --reconfigure: a peer installed since the last run is found now
	meson setup --reconfigure "$build" --buildtype=release -Db_lto=true -Dbenchmarks=enabled \
		-Dpeers=auto >/dev/null
fi
ninja -C "$build" bench/weft-bench

# ---- machine ---------------------------------------------------------------
mkdir -p "$out"
{
	model=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
	echo "cpu: ${model:-$(uname -m)}"
	echo "cores: $(nproc) online ($(getconf _NPROCESSORS_CONF) configured)"
	echo "kernel: $(uname -sr)"
	echo "compiler: $(cc --version | head -1)"
	echo "build: $build (release, LTO), allocator $(meson introspect --buildoptions "$build" 2>/dev/null |
		/usr/bin/python3 -c 'import json,sys; print(next((o["value"] for o in json.load(sys.stdin) if o["name"] == "allocator"), "?"))' 2>/dev/null || echo '?')"
	echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty)')"
} >"$out/machine.txt"
echo "== machine"
cat "$out/machine.txt"

# ---- run -------------------------------------------------------------------
args=(--benchmark_out="$out/bench.json" --benchmark_out_format=json)
if [ $quick -eq 1 ]; then
	items=${items:-1000000}
	args+=(--weft_items="$items" --weft_idle_ms=200 --weft_timeout=30)
elif [ -n "$items" ]; then
	args+=(--weft_items="$items")
fi
# seconds per benchmark of the last run with these items: the time-left estimate
times="$build/bench-times-${items:-10000000}.txt"
args+=(--weft_estimates="$times" --weft_times_out="$times.new")
[ -n "$filter" ] && args+=(--benchmark_filter="$filter")
if [ "$reps" -gt 1 ]; then
	args+=(--benchmark_repetitions="$reps" --benchmark_display_aggregates_only=true)
fi
echo "== $build/bench/weft-bench ${args[*]} ${extra[*]}"
status=0
start=$(date +%s)
"$build/bench/weft-bench" "${args[@]}" "${extra[@]}" || status=$?
[ -s "$times.new" ] && mv "$times.new" "$times"
echo "== benchmarks took $(($(date +%s) - start)) s"
echo "took: $(($(date +%s) - start)) s" >>"$out/machine.txt"
if [ $status -ne 0 ]; then
	echo "bench.sh: weft-bench exited with $status (a run failed; see above)" >&2
	[ -s "$out/bench.json" ] || exit $status
fi

# ---- report ----------------------------------------------------------------
echo "== report"
/usr/bin/python3 bench/report/report.py "$out/bench.json" --out "$out" --machine "$out/machine.txt"
exit $status

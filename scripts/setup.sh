#!/usr/bin/env bash
# Install the Debian packages weft needs, only those missing.
# Usage: scripts/setup.sh [--bench] [--fuzz]   (--bench adds the report and
# peer packages; --fuzz adds clang, whose runtimes hold libFuzzer and the
# sanitizers, for the fuzz build)
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc g++ libck-dev libjemalloc-dev libbenchmark-dev spin)
if [[ " $* " == *" --fuzz "* ]]; then
	pkgs+=(clang)
fi
if [[ "${1:-}" == "--bench" ]]; then
	pkgs+=(python3 python3-matplotlib python3-scipy libbenchmark-tools)
	# optional peers: installed when the archive has them, skipped otherwise
	optional=(libconcurrentqueue-dev libtbb-dev libboost-fiber-dev libcuckoo-dev
		golang-golang-x-sync-dev)
else
	optional=()
fi
missing=()
for p in "${pkgs[@]}" "${optional[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	echo "setup: installing ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
	for p in "${optional[@]}"; do
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$p" >/dev/null 2>&1 ||
			echo "setup: optional peer $p not available, its benchmarks will be skipped"
	done
fi

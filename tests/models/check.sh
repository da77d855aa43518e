#!/usr/bin/env bash
# tests/models/check.sh: model-check the Promela models of weft's protocols
# (tests/models/*.pml, see README "Models checked") with SPIN.
#
# For each model: a safety run (assertions and invalid end states: pan
# built with -DSAFETY) and a liveness run (the model's ltl property under
# weak fairness: pan -a -f) must both find no error. For each broken
# variant (the model built with -D<VARIANT>, which removes a fence or a
# re-check), a run must find a counter-example: the model is known to be
# able to fail. Everything is built and run in a temporary directory.
#
# Usage: tests/models/check.sh [--both] [model...]   (default: every model)
#   --both: a broken variant must fail both runs, safety and liveness (by
#           default the first run that finds a counter-example settles it)
# Prints one line per model and per broken variant; exits 1 if a model has
# an error, a broken variant has none, or a search did not complete.
# Environment: CC (default cc), PAN_OPT (default -O0: how the verifiers
# are compiled), KEEP=1 keeps the temporary directory.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v spin >/dev/null 2>&1; then
	echo "models: FAIL: spin (the SPIN model checker) is not installed;" \
		"install the Debian package spin (scripts/setup.sh does)" >&2
	exit 1
fi
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "models: FAIL: no C compiler ($cc) to build SPIN's verifiers" >&2
	exit 1
fi

# name, broken variants
models=(
	"park BROKEN"
	"ring BROKEN"
	"sem BROKEN"
	"wg BROKEN"
	"sched BROKEN BROKEN_COMMIT"
	"idle BEFORE_8007D2B NO_PASS_ON_NET"
	"rv NO_CONVERT UNQUEUE_EARLY EARLY_PUBLISH COUNT_LATE"
	"runnext NO_HEAVY NO_STEALING_CHECK NO_RELOAD PLAIN_PUT_ALWAYS"
)
# Models that find a real bug in this tree's C (written up in the model's
# header): the counter-example is expected, and reported, as long as the
# C still holds the code the model stands for (the fixed string below);
# once that changes the model must be brought to the new code and must
# pass. name|file|string
known=(
)
root=$(cd "$here/../.." && pwd)
# the verifiers are built unoptimised: at these sizes -O1 costs more to
# compile than it saves in the search
pan_opt=${PAN_OPT:--O0}
# -DCOLLAPSE: compressed state vectors; MEMLIM (MB) bounds a runaway model;
# NFAIR: room for weak fairness over all of a model's processes
pan_cflags=(-w -DCOLLAPSE -DMEMLIM=1024 -DNFAIR=3)
pan_args=(-m200000 -w22)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-models.XXXXXX") || exit 1
if [[ "${KEEP:-0}" == 1 ]]; then
	echo "models: keeping $tmp"
else
	trap 'rm -rf "$tmp"' EXIT
fi

failed=0
start=$SECONDS

# spin_gen dir model defines...: spin -a into dir
spin_gen() {
	local dir=$1 model=$2
	shift 2
	mkdir -p "$dir"
	(cd "$dir" && spin "$@" -a "$here/$model.pml" >spin.log 2>&1) || {
		echo "  spin -a failed:"
		sed 's/^/    /' "$dir/spin.log"
		return 1
	}
}

# pan_run dir kind opt: build and run one verifier; sets r_errors,
# r_states, r_what (the first error pan reported) and r_bad (a reason the
# search is not to be trusted, or empty)
pan_run() {
	local dir=$1 kind=$2 opt=$3 out
	local -a flags=("${pan_cflags[@]}") args=("${pan_args[@]}")
	if [[ $kind == safety ]]; then
		flags+=(-DSAFETY -DNOCLAIM)
	else
		args+=(-a -f)
	fi
	r_errors=0 r_states=0 r_what="" r_bad=""
	if ! (cd "$dir" && "$cc" "$opt" "${flags[@]}" -o "pan_$kind" pan.c >"cc_$kind.log" 2>&1); then
		r_bad="the verifier did not build: $(head -3 "$dir/cc_$kind.log" | tr '\n' ' ')"
		return
	fi
	out="$dir/pan_$kind.log"
	(cd "$dir" && "./pan_$kind" "${args[@]}" >"$out" 2>&1)
	r_errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | tail -1)
	r_states=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' "$out" | tail -1)
	r_what=$(sed -n 's/^pan:[0-9]*: \(.*\) (at depth \([0-9]*\)).*/\1, at depth \2/p' "$out" | head -1)
	if [[ -z $r_errors || -z $r_states ]]; then
		r_bad="no result: $(grep -m1 -iE 'error|pan:' "$out")"
	elif grep -qE 'max search depth too small|reached -DMEMLIM|Search not completed|out of memory' "$out"; then
		r_bad="incomplete search: $(grep -m1 -E 'max search depth|MEMLIM|not completed|out of memory' "$out")"
	fi
}

# show what went wrong: pan's report and the counter-example, if any
explain() {
	local dir=$1 kind=$2 model=$3
	shift 3
	echo "  --- pan ($kind) ---"
	sed 's/^/  /' "$dir/pan_$kind.log" | head -40
	if [[ -f "$dir/$model.pml.trail" ]]; then
		echo "  --- counter-example (spin -t -p, last steps) ---"
		(cd "$dir" && cp "$here/$model.pml" "$here/common.pml" . &&
			spin "$@" -t -p "$model.pml" 2>&1 | tail -60 | sed 's/^/  /')
	fi
}

both=0
selected=()
for a in "$@"; do
	case $a in
	--both) both=1 ;;
	-*)
		echo "usage: $0 [--both] [model...]" >&2
		exit 2
		;;
	*) selected+=("$a") ;;
	esac
done
for entry in "${models[@]}"; do
	read -r name variants <<<"$entry"
	if ((${#selected[@]})) && [[ " ${selected[*]} " != *" $name "* ]]; then
		continue
	fi

	dir="$tmp/$name"
	kinfo=""
	for k in "${known[@]}"; do
		[[ ${k%%|*} == "$name" ]] && kinfo=$k
	done
	if [[ -n $kinfo ]]; then
		IFS='|' read -r _ kfile kstr <<<"$kinfo"
		if ! grep -qF -- "$kstr" "$root/$kfile"; then
			echo "$name: FAIL: $kfile no longer has the code tests/models/$name.pml" \
				"stands for ('$kstr'): bring the model to the new code (it must then pass)"
			failed=$((failed + 1))
		elif ! spin_gen "$dir" "$name"; then
			echo "$name: FAIL (spin -a)"
			failed=$((failed + 1))
		else
			pan_run "$dir" safety "$pan_opt"
			if [[ -n $r_errors ]] && ((r_errors > 0)); then
				echo "$name: KNOWN BUG in $kfile, counter-example found as expected" \
					"(safety: $r_what; see tests/models/$name.pml)"
			else
				echo "$name: FAIL: the known bug's counter-example is gone" \
					"(${r_bad:-$r_states states}): if $kfile is fixed, make it a model that must pass"
				failed=$((failed + 1))
			fi
		fi
		continue
	fi

	# the model itself: no error in either run
	if ! spin_gen "$dir" "$name"; then
		echo "$name: FAIL (spin -a)"
		failed=$((failed + 1))
		continue
	fi
	line="$name:"
	ok=1
	for kind in safety liveness; do
		pan_run "$dir" "$kind" "$pan_opt"
		if [[ -n $r_errors ]] && ((r_errors != 0)); then
			line+=" $kind FAIL ($r_what),"
			ok=0
		elif [[ -n $r_bad ]]; then
			line+=" $kind FAIL ($r_bad),"
			ok=0
		else
			line+=" $kind ok ($r_states states),"
		fi
		if ((!ok)); then
			echo "${line%,}"
			explain "$dir" "$kind" "$name"
			failed=$((failed + 1))
			break
		fi
	done
	((ok)) && echo "${line%,}"

	# each broken variant: some run finds a counter-example
	for v in $variants; do
		dir="$tmp/$name-$v"
		if ! spin_gen "$dir" "$name" "-D$v"; then
			echo "$name $v: FAIL (spin -a)"
			failed=$((failed + 1))
			continue
		fi
		found="" missed=""
		for kind in safety liveness; do
			pan_run "$dir" "$kind" "$pan_opt"
			# (a search that stops at its first error says "Search
			# not completed": an error found is found all the same)
			if [[ -n $r_errors ]] && ((r_errors > 0)); then
				found+="${found:+; }$kind: $r_what"
				((both)) || break
			else
				missed+="${missed:+; }$kind: ${r_bad:-$r_states states}"
			fi
		done
		if [[ -n $found && -z $missed ]] || [[ -n $found && $both == 0 ]]; then
			echo "$name $v: counter-example found (ok) ($found)"
		else
			echo "$name $v: FAIL: not caught ($missed): the model cannot fail"
			failed=$((failed + 1))
		fi
	done
done

echo "models: $((SECONDS - start))s, $failed failed"
((failed == 0))

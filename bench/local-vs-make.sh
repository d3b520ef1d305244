#!/usr/bin/env bash
# bmc's local backend beside make -j2 on the same DAGs, tasks running
# `true`, 2 slots each:
#   W1  1,000 independent tasks
#   W2  a chain of 500
#   W3  1 -> 1,000 -> 1 (fan-out, fan-in)
# Also the floor under bmc, for its per-task overhead: bench/rawexec, a
# loop of syscall.ForkExec and wait4 (the calls bmc makes for a task and
# nothing else) with as many in flight, bare and with each task's files;
# and snakemake on W1 when it is installed.
# Usage: bench/local-vs-make.sh [rounds]   (default 11; prints medians and ratios)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps=${1:-11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Built as the README installs it: a static binary (CGO_ENABLED=0), which
# starts a few milliseconds sooner than one linked against the C library.
CGO_ENABLED=0 go build -o "$work/bmc" "$root/cmd/bmc"
CGO_ENABLED=0 go build -o "$work/rawexec" "$root/bench/rawexec"

spec() { # name, tasks yaml
	printf 'apiVersion: bmc/v1\nkind: Workload\nname: %s\ntasks:\n%s' "$1" "$2"
}
gen() {
	local w=$1 t="" m=""
	case $w in
	W1)
		t+="  - id: t\n    matrix: {i: [$(seq -s, 1 1000)]}\n    command: [\"true\"]\n"
		m+="all: $(for i in $(seq 1 1000); do printf 't%d ' "$i"; done)\n"
		for i in $(seq 1 1000); do m+="t$i:\n\t@true\n"; done
		;;
	W2)
		t+="  - {id: t1, command: [\"true\"]}\n"
		m+="all: t500\nt1:\n\t@true\n"
		for i in $(seq 2 500); do
			t+="  - {id: t$i, dependsOn: [t$((i - 1))], command: [\"true\"]}\n"
			m+="t$i: t$((i - 1))\n\t@true\n"
		done
		;;
	W3)
		t+="  - {id: src, command: [\"true\"]}\n"
		t+="  - id: mid\n    matrix: {i: [$(seq -s, 1 1000)]}\n    dependsOn: [src]\n    command: [\"true\"]\n"
		t+="  - {id: sink, dependsOn: [mid], command: [\"true\"]}\n"
		m+="all: sink\nsrc:\n\t@true\n"
		m+="sink: $(for i in $(seq 1 1000); do printf 'mid%d ' "$i"; done)\n\t@true\n"
		for i in $(seq 1 1000); do m+="mid$i: src\n\t@true\n"; done
		;;
	esac
	spec "$(echo "$w" | tr 'A-Z' 'a-z')" "$(printf "$t")" >"$work/$w.yaml"
	printf "$m" | sed 's/^all:/.PHONY: all\nall:/' >"$work/$w.mk"
	# every target is phony: make runs them all, as bmc does
	printf '.PHONY: %s\n' "$(grep -o '^[a-z0-9]*:' "$work/$w.mk" | tr -d : | tr '\n' ' ')" >>"$work/$w.mk"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
quartiles() { sort -n | awk '{a[NR]=$1} END {printf "%.3f %.3f %.3f\n", a[int((NR+3)/4)], a[int((NR+1)/2)], a[int((3*NR+1)/4)]}'; }
timeit() { # command...: seconds
	local s e
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}

# Four ways to start the same tasks, each round in a rotated order:
#   bmc    the local backend
#   make   make -j2 on the generated Makefile
#   raw    bench/rawexec: fork/exec and wait4 alone, same count and slots
#   files  bench/rawexec -files: the same, plus each task's directories
#          and log files as bmc lays them out
# This kind of machine drifts by ±10% over minutes: what is reported for
# each is the median of its per-round ratios to make, with quartiles, so
# that every ratio compares runs made seconds apart.
printf '%-4s %-6s %9s %8s %15s %10s\n' DAG how "wall (s)" "× make" "(q25-q75)" "µs/task"
for w in W1 W2 W3; do
	gen "$w"
	n=$(grep -c $'^\t@true' "$work/$w.mk")
	p=2
	[ "$w" = W2 ] && p=1 # a chain runs one task at a time
	declare -A t=() q=()
	for r in $(seq "$reps"); do
		# A fresh state directory each time, removed only at the end:
		# deleting thousands of files right before a timed run would make
		# the file system's inode allocation slower for it.
		mkdir -p "$work/raw-$w-$r"
		ways=(bmc make raw files)
		for k in 0 1 2 3; do
			how=${ways[$(((k + r) % 4))]}
			case $how in
			bmc) v=$(timeit "$work/bmc" run "$work/$w.yaml" --slots 2 --progress none --state-dir "$work/state-$w-$r") ;;
			make) v=$(timeit make -j2 -f "$work/$w.mk" -C "$work") ;;
			raw) v=$(timeit "$work/rawexec" -n "$n" -p "$p" true) ;;
			files) v=$(timeit "$work/rawexec" -n "$n" -p "$p" -files "$work/raw-$w-$r" true) ;;
			esac
			t[$how]+="$v "
		done
		for how in bmc raw files; do
			read -ra a <<<"${t[$how]}"
			read -ra m <<<"${t[make]}"
			q[$how]+="$(echo "${a[-1]} / ${m[-1]}" | bc -l) "
		done
	done
	for how in make raw files bmc; do
		wall=$(printf '%s\n' ${t[$how]} | median)
		if [ "$how" = make ]; then
			printf '%-4s %-6s %9.3f %8s %15s %10.0f\n' "$w" "$how" "$wall" 1 "" "$(echo "$wall * 1000000 / $n" | bc -l)"
		else
			read -r q1 q2 q3 < <(printf '%s\n' ${q[$how]} | quartiles)
			printf '%-4s %-6s %9.3f %8.3f %15s %10.0f\n' "$w" "$how" "$wall" "$q2" "($q1-$q3)" "$(echo "$wall * 1000000 / $n" | bc -l)"
		fi
		eval "wall_$how=$wall"
	done
	printf '%-4s bmc over raw: %.0f µs/task; over raw with task files: %.0f µs/task\n' "$w" \
		"$(echo "($wall_bmc - $wall_raw) * 1000000 / $n" | bc -l)" "$(echo "($wall_bmc - $wall_files) * 1000000 / $n" | bc -l)"
	[ "$w" = W1 ] && w1=$wall_bmc
	unset t q
done

# What bmc and make cost around the tasks, for the ratios above: a run of
# one `true` task, median of as many rounds, alternating.
printf 'apiVersion: bmc/v1\nkind: Workload\nname: one\ntasks:\n  - {id: t, command: ["true"]}\n' >"$work/one.yaml"
printf 'all:\n\t@true\n' >"$work/one.mk"
ob="" om=""
for r in $(seq "$reps"); do
	ob+="$(timeit "$work/bmc" run "$work/one.yaml" --progress none --state-dir "$work/state-one-$r") "
	om+="$(timeit make -f "$work/one.mk" -C "$work") "
done
printf 'one task: bmc %.1f ms, make %.1f ms (start-up and wind-down)\n' \
	"$(echo "$(printf '%s\n' $ob | median) * 1000" | bc -l)" "$(echo "$(printf '%s\n' $om | median) * 1000" | bc -l)"

if command -v snakemake >/dev/null; then
	{
		echo 'rule all:'
		echo '    input: expand("t{i}.done", i=range(1, 1001))'
		echo 'rule t:'
		echo '    output: temp("t{i}.done")'
		echo '    shell: "true && touch {output}"'
	} >"$work/Snakefile"
	s=$(timeit snakemake -s "$work/Snakefile" -d "$work/sm" -j2 --quiet)
	printf 'snakemake W1: %.3f s (%.2f× bmc)\n' "$s" "$(echo "$s / $w1" | bc -l)"
else
	echo "snakemake W1: not installed (apt-get install snakemake)"
fi

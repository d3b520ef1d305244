#!/usr/bin/env bash
# bmc's local backend beside make -j2 on the same DAGs, tasks running
# `true`, 2 slots each:
#   W1  1,000 independent tasks
#   W2  a chain of 500
#   W3  1 -> 1,000 -> 1 (fan-out, fan-in)
# Also a raw fork/exec loop for bmc's per-task overhead (bench/rawexec:
# syscall.ForkExec and wait4 with 2 in flight, the calls bmc makes for a
# task and nothing else), and snakemake on W1 when it is installed.
# Usage: bench/local-vs-make.sh [rounds]   (default 11; prints medians and ratios)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps=${1:-11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/bmc" "$root/cmd/bmc"
go build -o "$work/rawexec" "$root/bench/rawexec"

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
timeit() { # command...: seconds
	local s e
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}

# This kind of machine drifts by ±10% over minutes: each round runs bmc
# and make back to back, in alternating order, and the ratio reported is
# the median of the rounds' own ratios, with its quartiles.
quartiles() { sort -n | awk '{a[NR]=$1} END {printf "%.3f %.3f %.3f\n", a[int((NR+3)/4)], a[int((NR+1)/2)], a[int((3*NR+1)/4)]}'; }
printf '%-4s %10s %10s %8s %15s %12s\n' DAG "bmc (s)" "make (s)" ratio "(q25-q75)" "bmc µs/task"
for w in W1 W2 W3; do
	gen "$w"
	n=$(grep -c $'^\t@true' "$work/$w.mk")
	b=() m=() q=()
	for r in $(seq "$reps"); do
		# A fresh state directory each time, removed only at the end:
		# deleting thousands of files right before a timed run would make
		# the file system's inode allocation slower for it.
		if ((r % 2)); then
			tb=$(timeit "$work/bmc" run "$work/$w.yaml" --slots 2 --progress none --state-dir "$work/state-$w-$r")
			tm=$(timeit make -j2 -f "$work/$w.mk" -C "$work")
		else
			tm=$(timeit make -j2 -f "$work/$w.mk" -C "$work")
			tb=$(timeit "$work/bmc" run "$work/$w.yaml" --slots 2 --progress none --state-dir "$work/state-$w-$r")
		fi
		b+=("$tb") m+=("$tm") q+=("$(echo "$tb / $tm" | bc -l)")
	done
	bm=$(printf '%s\n' "${b[@]}" | median)
	mm=$(printf '%s\n' "${m[@]}" | median)
	read -r q1 q2 q3 < <(printf '%s\n' "${q[@]}" | quartiles)
	printf '%-4s %10.3f %10.3f %8.3f %15s %12.0f\n' "$w" "$bm" "$mm" "$q2" "($q1-$q3)" "$(echo "$bm * 1000000 / $n" | bc -l)"
	[ "$w" = W1 ] && w1=$bm
done

# Raw fork/exec of 1,000 `true` with 2 in parallel, beside make once more:
# the floor under bmc.
r=() m=()
for _ in $(seq "$reps"); do
	r+=("$(timeit "$work/rawexec" -n 1000 -p 2 true)")
	m+=("$(timeit make -j2 -f "$work/W1.mk" -C "$work")")
done
rm=$(printf '%s\n' "${r[@]}" | median)
mm=$(printf '%s\n' "${m[@]}" | median)
printf 'raw fork/exec W1: %.3f s (%.0f µs/task, %.2f× make -j2); bmc W1 overhead over it: %.0f µs/task\n' "$rm" "$(echo "$rm * 1000" | bc -l)" "$(echo "$rm / $mm" | bc -l)" "$(echo "($w1 - $rm) * 1000" | bc -l)"

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

#!/usr/bin/env bash
# Compile-and-check time and peak memory of `bmc validate` (the whole
# compiler: parse, schema, expansion, dependsOn, cycle check) on matrix
# sweeps of 10k, 100k and 1M tasks with a fan-in over the whole group, and
# on a spec of 2,000 explicitly written tasks. Also `bmc compile` (which
# adds writing the JSON) at 100k.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/bmc" "$root/cmd/bmc"
measure() { # label, command...
	local label=$1
	shift
	/usr/bin/time -f '%e %M' -o "$work/t" "$@" >/dev/null
	read -r wall rss <"$work/t"
	printf '%-34s %8.2f s %8.0f MB\n' "$label" "$wall" "$(echo "$rss / 1024" | bc -l)"
}
for dims in "25 20 20" "50 40 50" "100 100 100"; do
	read -r a b c <<<"$dims"
	n=$((a * b * c))
	"$root/bench/gen-sweep.sh" "$a" "$b" "$c" >"$work/sweep-$n.yaml"
	measure "validate sweep $n tasks" "$work/bmc" validate "$work/sweep-$n.yaml"
done
measure "compile -o json sweep 100000" "$work/bmc" compile "$work/sweep-100000.yaml"
{
	printf 'apiVersion: bmc/v1\nkind: Workload\nname: explicit\ntasks:\n'
	for i in $(seq 0 1999); do
		printf '  - id: task-%d\n    run: echo %d > out.txt\n    env: {N: "%d"}\n    outputs:\n      - {path: out.txt, to: "az://out/${{ run.id }}/%d.txt"}\n' "$i" "$i" "$i" "$i"
		[ "$i" -gt 0 ] && printf '    dependsOn: [task-%d]\n' $((i - 1))
	done
} >"$work/explicit.yaml"
measure "validate 2000 explicit tasks" "$work/bmc" validate "$work/explicit.yaml"

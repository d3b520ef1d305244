#!/usr/bin/env bash
# A sweep of `true` tasks on the local backend at 1,000 and 100,000 tasks
# (2 slots): wall time, per-task overhead and peak RSS, to show that the
# per-task cost does not grow with the run.
# Usage: bench/local-sweep.sh [sizes...]   (default: 1000 100000)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/bmc" "$root/cmd/bmc" # static, as the README installs it
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 100000)
printf '%8s %10s %12s %12s\n' tasks "wall (s)" "µs/task" "peak RSS MB"
for n in "${sizes[@]}"; do
	a=$((n / 100))
	cat >"$work/sweep.yaml" <<SPEC
apiVersion: bmc/v1
kind: Workload
name: sweep
params:
  a: {default: [$(seq -s, 1 "$a")]}
  b: {default: [$(seq -s, 1 100)]}
tasks:
  - id: t
    matrix: {a: "\${{ params.a }}", b: "\${{ params.b }}"}
    command: ["true"]
SPEC
	# A state directory per size, all removed at the end: deleting one
	# run's files right before the next would slow its inode allocation.
	/usr/bin/time -f '%e %M' -o "$work/time" "$work/bmc" run "$work/sweep.yaml" --slots 2 --progress none --state-dir "$work/state-$n" >/dev/null 2>&1
	read -r wall rss <"$work/time"
	printf '%8d %10.2f %12.0f %12.0f\n' "$n" "$wall" "$(echo "$wall * 1000000 / $n" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
done

#!/usr/bin/env bash
# The azurebatch backend against the Batch emulator (in process, on
# loopback), two measurements:
#
#  1. submission: a 100,000-task fan-in (a matrix group of 100,000 and the
#     tasks waiting for it, behind barrier tasks) submitted to an emulator
#     in instant mode with 8 add-collection requests in flight, then
#     followed to the end. Reports tasks/s (goal >= 10,000), add requests,
#     bytes sent, and the list requests following it took.
#  2. following: 5,000 tasks that really run (0.2 s each, 128 slots), so
#     that they complete over many polls. Reports polls, list requests and
#     tasks listed, against the requests a full listing per poll would
#     have taken (polls x ceil(tasks / 1000)).
#
#   bench/azurebatch.sh
#   BENCHTIME=3x bench/azurebatch.sh             # several submissions
#   BMC_BENCH_WATCH_TASKS=20000 bench/azurebatch.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

go test -run '^$' -bench '^BenchmarkEmulatorSubmit100k$' -benchtime "${BENCHTIME:-1x}" ./backends/azurebatch/ | tee "$tmp/submit"
go test -run '^$' -bench '^BenchmarkEmulatorWatch$' -benchtime 1x ./backends/azurebatch/ | tee "$tmp/watch"

echo
awk '
function metric(name,   i) { for (i = 3; i <= NF; i++) if ($i == name) return $(i - 1); return "" }
/^BenchmarkEmulatorSubmit100k/ {
	printf "submission of 100,000 tasks (+ barriers), instant mode\n"
	printf "  tasks/s            %10.0f   (goal >= 10000)\n", metric("tasks/s")
	printf "  add requests       %10.0f   (up to %d in flight; goal >= 4)\n", metric("add-requests"), metric("max-in-flight")
	printf "  bytes sent         %10.0f\n", metric("bytes-sent")
	printf "  following: %d poll(s), %d list requests, %d tasks listed, %.2f s\n", metric("polls"), metric("list-requests"), metric("tasks-listed"), metric("watch-s")
}
/^BenchmarkEmulatorWatch/ {
	printf "following %d tasks that complete over time\n", metric("tasks")
	printf "  polls              %10.0f\n", metric("polls")
	printf "  list requests      %10.0f   (a full listing per poll: %d)\n", metric("list-requests"), metric("full-listing-requests")
	printf "  tasks listed       %10.0f   (each task shows when it starts and when it ends, and again while in the 1 s overlap of successive listings)\n", metric("tasks-listed")
}' "$tmp/submit" "$tmp/watch"

#!/usr/bin/env bash
# Control-plane load on the Batch emulator: starts `bmc emulator --instant`
# as its own process, adds 100,000 tasks through add-collection requests of
# 100 from 8 connections (BenchmarkLoad in emulator/load_test.go, pointed at
# the process by the AZURE_BATCH_* lines it prints), lists them all, and
# reports tasks/s, requests/s and the emulator process's peak RSS.
# Goals: at least 20,000 tasks/s accepted, peak RSS under 1 GB.
#
#   bench/emulator.sh                 # one run of 100,000 tasks
#   BENCHTIME=3x bench/emulator.sh    # several runs against the same process
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tmp="$(mktemp -d)"
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/bmc" ./cmd/bmc
"$tmp/bmc" emulator --instant --log-level warn >"$tmp/env" 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do
	[ "$(wc -l <"$tmp/env")" -ge 3 ] && break
	sleep 0.05
done
if [ "$(wc -l <"$tmp/env")" -lt 3 ]; then
	echo "the emulator did not start:" >&2
	cat "$tmp/log" >&2
	exit 1
fi
set -a
# shellcheck disable=SC1091
. "$tmp/env"
set +a

BMC_BENCH_EXTERNAL=1 go test -run '^$' -bench '^BenchmarkLoad$' -benchtime "${BENCHTIME:-1x}" ./emulator/ | tee "$tmp/out"

rss_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")"
echo
awk -v rss="$rss_kb" '
/^BenchmarkLoad/ {
	for (i = 3; i <= NF; i++) {
		if ($i == "tasks/s") tps = $(i - 1)
		if ($i == "requests/s") rps = $(i - 1)
		if ($i == "listed-tasks/s") lps = $(i - 1)
	}
}
END {
	if (tps == "") { print "no benchmark result" > "/dev/stderr"; exit 1 }
	printf "tasks accepted/s   %10.0f   (goal >= 20000)\n", tps
	printf "add requests/s     %10.0f\n", rps
	printf "tasks listed/s     %10.0f\n", lps
	printf "emulator peak RSS  %10.0f MB (goal <= 1024)\n", rss / 1024
}' "$tmp/out"

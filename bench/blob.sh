#!/usr/bin/env bash
# Runs the blob store benchmarks and prints bmc's Azure store against a
# plain sequential azblob loop (one UploadBuffer/DownloadFile per file).
# The benchmarks start their own Azurite through internal/azurite, so it
# must be installed (bash .ci/install-azurite.sh); this script starts
# nothing itself.
#
#   BENCHTIME=5x bench/blob.sh          # iterations per benchmark (default 3x)
#   BMC_BENCH_LARGE=1 bench/blob.sh     # add the 1 GiB file
#   BMC_BENCH_RTT=10ms bench/blob.sh    # add a round trip to every request,
#                                       # as to an account in a region
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="$(mktemp)"
trap 'rm -f "$out"' EXIT

go test -run '^$' -bench '^Benchmark(SmallFiles|LargeFile)$' -benchtime "${BENCHTIME:-3x}" \
	./internal/blobstage/ | tee "$out"

echo
awk '
/^Benchmark/ {
	name = $1
	sub(/^Benchmark/, "", name)
	sub(/-[0-9]+$/, "", name)
	for (i = 3; i <= NF; i++) {
		if ($i == "MB/s") mbs[name] = $(i - 1)
		if ($i == "files/s") fps[name] = $(i - 1)
	}
	if (name ~ /\/bmc$/) order[n++] = name
}
END {
	if (n == 0) { print "no benchmark results (is azurite installed?)" > "/dev/stderr"; exit 1 }
	printf "%-22s %12s %12s %8s %12s %12s %8s\n", "case", "bmc MB/s", "base MB/s", "ratio", "bmc files/s", "base files/s", "ratio"
	for (i = 0; i < n; i++) {
		b = order[i]
		base = b
		sub(/\/bmc$/, "/baseline", base)
		c = b
		sub(/\/bmc$/, "", c)
		if (!(base in mbs) || mbs[base] == 0 || fps[base] == 0) { printf "%-22s (no baseline)\n", c; continue }
		printf "%-22s %12.2f %12.2f %7.2fx %12.4g %12.4g %7.2fx\n", c, mbs[b], mbs[base], mbs[b] / mbs[base], fps[b], fps[base], fps[b] / fps[base]
	}
}' "$out"

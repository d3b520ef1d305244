#!/usr/bin/env bash
# Writes a sweep spec whose matrix expands to A*B*C tasks, plus one fan-in
# task depending on the whole group: bench/gen-sweep.sh 50 40 50 > big.yaml
set -euo pipefail
a=${1:-50} b=${2:-40} c=${3:-50}
seq_list() { local n=$1 out="" i; for ((i = 0; i < n; i++)); do out+="${out:+, }$i"; done; echo "[$out]"; }
cat <<SPEC
apiVersion: bmc/v1
kind: Workload
name: big-sweep
params:
  a: {default: $(seq_list "$a")}
  b: {default: $(seq_list "$b")}
  c: {default: $(seq_list "$c")}
tasks:
  - id: t
    matrix: {a: "\${{ params.a }}", b: "\${{ params.b }}", c: "\${{ params.c }}"}
    env: {A: "\${{ matrix.a }}", B: "\${{ matrix.b }}", C: "\${{ matrix.c }}"}
    command: ["true", "\${{ matrix.a }}"]
    outputs:
      - {path: out.txt, to: "az://sweep/\${{ run.id }}/\${{ task.id }}.txt"}
  - id: fan-in
    dependsOn: [t]
    command: ["true"]
SPEC

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
)

// TestAzureBatchFinalizeInputs: the finalize step runs a script kept
// beside the spec, brought in as an input with a folder of its own,
// wherever it runs: on the pool (staged at submit, brought to the job
// manager task's step directory, the folder moved into place there) and
// on the client. It sees the run summary either way, and the folder's
// empty folder (the script tests both).
func TestAzureBatchFinalizeInputs(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	spec := filepath.Join(f.dir, "w.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: fin-inputs
tasks:
  - {id: a, run: echo hi}
finalize:
  run: ./summarize.sh
  inputs:
    - {from: summarize.sh}
    - {from: lib, path: tools/lib}
`), 0o644)
	os.WriteFile(filepath.Join(f.dir, "summarize.sh"), []byte("#!/bin/sh\ntest -s \"$BMC_RUN_SUMMARY\"\ntest -d tools/lib/empty\necho \"summary of $BMC_RUN_ID: $(cat tools/lib/deep/words.txt)\"\n"), 0o755)
	os.MkdirAll(filepath.Join(f.dir, "lib", "deep"), 0o755)
	os.MkdirAll(filepath.Join(f.dir, "lib", "empty"), 0o755)
	os.WriteFile(filepath.Join(f.dir, "lib", "deep", "words.txt"), []byte("from the spec's folder\n"), 0o644)

	state := filepath.Join(f.dir, "pool")
	code, out := f.batchRun(t, context.Background(), state, "--finalize-on", "pool", spec)
	if code != 0 {
		t.Fatalf("on the pool: exit %d\n%s", code, out)
	}
	id, _ := onlyRun(t, state)
	nr, err := azurebatch.ReadNodeResult(t.Context(), f.client, id)
	if err != nil || nr.Finalize == nil || nr.Finalize.State != executor.Succeeded {
		t.Fatalf("the finalize step on the pool: %+v, %v", nr, err)
	}
	rc, err := f.client.GetTaskFile(t.Context(), id, azurebatch.FinalizeTaskID, azurebatch.NodeStepLog("stdout"), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if want := "summary of " + id + ": from the spec's folder\n"; string(b) != want {
		t.Errorf("the step's stdout on the pool: %q, want %q", b, want)
	}

	state = filepath.Join(f.dir, "client")
	code, out = f.batchRun(t, context.Background(), state, "--finalize-on", "client", spec)
	if code != 0 {
		t.Fatalf("on the client: exit %d\n%s", code, out)
	}
	_, dir := onlyRun(t, state)
	got, err := os.ReadFile(filepath.Join(dir, "tasks", "finalize", "stdout.txt"))
	if err != nil || !strings.HasSuffix(string(got), ": from the spec's folder\n") {
		t.Errorf("the step's stdout on the client: %q, %v", got, err)
	}
}

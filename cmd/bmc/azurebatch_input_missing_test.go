package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

// TestAzureBatchInputPrefixMissing: a blob prefix input with no blobs
// fails its task with the input error and no exit code on Batch, as on
// the local backend, though Batch itself downloads nothing for it.
func TestAzureBatchInputPrefixMissing(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	spec := filepath.Join(f.dir, "missing.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: missing
tasks:
  - id: missing-prefix
    inputs: [{from: "az://qaio/nosuch/"}]
    run: ls -la
    outputs: [{path: "*.log", to: "az://qaio/dbg/", when: failure}]
`), 0o644)
	// The container exists; only the prefix is empty.
	os.WriteFile(filepath.Join(f.dir, "x"), []byte("x"), 0o644)
	loc, _ := blobstage.ParseURL("az://qaio/other/x")
	if _, err := f.store.Upload(t.Context(), f.dir, "x", loc); err != nil {
		t.Fatal(err)
	}
	failed := func(state string) executor.CallbackFailedTask {
		_, dir := onlyRun(t, state)
		var body executor.CallbackBody
		b, err := os.ReadFile(filepath.Join(dir, executor.SummaryFile))
		if err == nil {
			err = json.Unmarshal(b, &body)
		}
		if err != nil || len(body.Failed) != 1 || len(body.Outputs) != 0 {
			t.Fatalf("summary %s %v", b, err)
		}
		return body.Failed[0]
	}
	lstate := filepath.Join(f.dir, "local")
	bmcRun(t, "run", "--state-dir", lstate, "--progress", "none", spec)
	bstate := filepath.Join(f.dir, "batch")
	_, out := f.batchRun(t, context.Background(), bstate, spec)
	for name, ft := range map[string]executor.CallbackFailedTask{"local": failed(lstate), "azurebatch": failed(bstate)} {
		if ft.ExitCode != nil || ft.Attempts != 1 || !strings.HasPrefix(ft.Reason, "input az://qaio/nosuch/: ") || !strings.Contains(ft.Reason, "not found") {
			t.Errorf("%s: %+v\n%s", name, ft, out)
		}
	}
}

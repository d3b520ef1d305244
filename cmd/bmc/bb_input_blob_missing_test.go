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
)

// TestBbInputBlobMissing: a blob input that is not there fails its task
// naming the input as the spec wrote it (its az:// location), on Batch as
// on the local backend, and never the storage URL Batch downloads from,
// nor a SAS.
func TestBbInputBlobMissing(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	spec := filepath.Join(f.dir, "nope.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: nope
tasks:
  - id: read
    inputs: [{from: "az://obs/nope/missing.csv", path: data/missing.csv}]
    run: cat data/missing.csv
`), 0o644)
	failed := func(state string) executor.CallbackFailedTask {
		_, dir := onlyRun(t, state)
		var body executor.CallbackBody
		b, err := os.ReadFile(filepath.Join(dir, executor.SummaryFile))
		if err == nil {
			err = json.Unmarshal(b, &body)
		}
		if err != nil || len(body.Failed) != 1 {
			t.Fatalf("summary %s %v", b, err)
		}
		return body.Failed[0]
	}
	lstate := filepath.Join(f.dir, "local")
	bmcRun(t, "run", "--state-dir", lstate, "--progress", "none", spec)
	for _, identity := range []string{"", f.identity} {
		// With the pool identity, plain URLs; without, SAS URLs.
		f.identity = identity
		bstate := filepath.Join(f.dir, "batch"+map[bool]string{true: "-id", false: "-sas"}[identity != ""])
		_, out := f.batchRun(t, context.Background(), bstate, "--finalize-on", "client", spec)
		ft := failed(bstate)
		if !strings.HasPrefix(ft.Reason, "input az://obs/nope/missing.csv: ") || strings.Contains(ft.Reason, "http") || !strings.Contains(ft.Reason, "not found") {
			t.Errorf("azurebatch (identity %q): %+v\n%s", identity, ft, out)
		}
		noSecrets(t, "the reason", ft.Reason)
		_, dir := onlyRun(t, bstate)
		noSecretsInDir(t, dir)
	}
	if ft := failed(lstate); !strings.HasPrefix(ft.Reason, "input az://obs/nope/missing.csv: ") {
		t.Errorf("local: %+v", ft)
	} else {
		t.Logf("local: %s", ft.Reason)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bmc run with a state directory it cannot write exits 1, naming the
// path, and leaves no half-made run behind.
func TestLocalRunStateUnwritable(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte("apiVersion: bmc/v1\nkind: Workload\nname: w\ntasks:\n  - {id: a, run: \"true\"}\n"), 0o644)
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	// runs is a file: the run directory cannot be made, by root either.
	runs := filepath.Join(state, "runs")
	if err := os.WriteFile(runs, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "none", spec)
	if code != exitFailed {
		t.Errorf("exit %d, want %d\n%s", code, exitFailed, stderr)
	}
	if !strings.Contains(stderr, runs) {
		t.Errorf("the message does not name %s:\n%s", runs, stderr)
	}
}

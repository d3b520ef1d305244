package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/executor"
)

// TestRsResumeMovedProject: a project copied, its state directory with
// it, is resumed from the copy: its spec and the inputs beside it are
// read in the copy, which is said in one line, not where the run
// started, where the original still is; outputs go to the copy's store.
// With the spec in neither place, the resume fails, naming both.
func TestRsResumeMovedProject(t *testing.T) {
	noStorageEnv(t)
	root := t.TempDir()
	proj := filepath.Join(root, "proj")
	os.MkdirAll(proj, 0o755)
	os.WriteFile(filepath.Join(proj, "spec.yaml"), []byte(`apiVersion: bmc/v1
kind: Workload
name: moving
tasks:
  - id: a
    inputs: [{from: step.sh, path: step.sh}]
    run: bash step.sh
    outputs: [{path: out.txt, to: "az://out/${{ run.id }}/"}]
`), 0o644)
	os.WriteFile(filepath.Join(proj, "step.sh"), []byte("echo original > out.txt; exit 1\n"), 0o644)
	state := filepath.Join(proj, ".bmc")
	if code, _, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "none", filepath.Join(proj, "spec.yaml")); code != 1 {
		t.Fatalf("run: exit %d, want 1\n%s", code, stderr)
	}
	ids, _ := executor.ListRunIDs(state)
	if len(ids) != 1 {
		t.Fatalf("runs %v", ids)
	}
	id := ids[0]

	cp := filepath.Join(root, "copy")
	if err := os.CopyFS(cp, os.DirFS(proj)); err != nil {
		t.Fatal(err)
	}
	// The copy's script is fixed; the original's is not.
	os.WriteFile(filepath.Join(cp, "step.sh"), []byte("echo copy > out.txt\n"), 0o644)
	cstate := filepath.Join(cp, ".bmc")
	code, _, stderr := bmcRun(t, "resume", "--state-dir", cstate, "--progress", "none", id)
	if code != 0 {
		t.Fatalf("resume of the copy: exit %d, want 0\n%s", code, stderr)
	}
	note := "bmc: run " + id + " moved from " + state + " to " + cstate + ": its spec, and the inputs beside it, are read at " + filepath.Join(cp, "spec.yaml") + "\n"
	if strings.Count(stderr, note) != 1 {
		t.Errorf("resume of the copy does not say, once, %q:\n%s", note, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(cstate, "storage", "out", id, "out.txt")); err != nil || string(b) != "copy\n" {
		t.Errorf("out.txt in the copy's store: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(state, "storage", "out", id)); err == nil {
		t.Error("the resume of the copy wrote into the original's store")
	}

	// Moved, with no spec where the move puts it: read where the run
	// started, and said so.
	moved := filepath.Join(root, "moved")
	if err := os.CopyFS(moved, os.DirFS(proj)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(moved, "spec.yaml"))
	mstate := filepath.Join(moved, ".bmc")
	code, _, stderr = bmcRun(t, "resume", "--state-dir", mstate, "--progress", "none", id)
	if code != 1 || !strings.Contains(stderr, "bmc: run "+id+" moved from "+state+" to "+mstate+", but its spec is not at "+filepath.Join(moved, "spec.yaml")+": it is read where the run started, at "+filepath.Join(proj, "spec.yaml")+"\n") {
		t.Errorf("resume with the spec where the run started only: exit %d, want 1\n%s", code, stderr)
	}

	// In neither place: an error naming both.
	os.RemoveAll(proj)
	code, _, stderr = bmcRun(t, "resume", "--state-dir", mstate, "--progress", "none", id)
	want := "run " + id + " moved from " + state + " to " + mstate + ", and its spec is neither at " + filepath.Join(moved, "spec.yaml") + ", where the move puts it, nor at " + filepath.Join(proj, "spec.yaml") + ", where the run started"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("resume with the spec nowhere: exit %d, want 1 and %q\n%s", code, want, stderr)
	}
}

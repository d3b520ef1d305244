package azurebatch

import (
	"os/exec"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/planner"
)

// TestMoveFailureRetried: the step that moves a task's inputs into place
// is the first lines of the task's command, so Batch retries its failure
// as it retries the task's own: maxTaskRetryCount covers every non-zero
// exit, and exitConditions choose only what happens to the job and to
// the dependents once the task has completed (ExitOptions holds jobAction
// and dependencyAction, nothing about retries). Each attempt fails in
// the move again, before the task's command runs; after the last one the
// client reports the move's own reason, not its exit code.
func TestMoveFailureRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	st, err := StorageFromConnectionString(azurite.Start(t), StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	specDir := t.TempDir()
	clashTree(t, specDir)
	prog := compile(t, `apiVersion: bmc/v1
kind: Workload
name: clash
pool: {id: p}
tasks:
  - id: folders
    retries: 2
    inputs: [{from: data/dirA, path: cfg}, {from: data/dirB, path: cfg}]
    run: "echo ran >> ../ran.txt"
`, nil)
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 4)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "movefail-run", Workload: prog.Name, SpecDir: specDir}
	be := NewBackend(BackendOptions{Client: e.c, Storage: st, Staging: testStaging})
	o, err := executor.RunNative(t.Context(), plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := o.Tasks[0]
	if want := clashWant["folders"][len(InputNotFoundPrefix):]; got.State != executor.Failed || got.Reason != want {
		t.Errorf("%s (%q), want failed: %s", got.State, got.Reason, want)
	}
	bt, err := e.c.GetTask(t.Context(), run.ID, "folders")
	if err != nil {
		t.Fatal(err)
	}
	if ei := bt.ExecutionInfo; ei == nil || ei.RetryCount != 2 || ei.ExitCode == nil || *ei.ExitCode != InputNotFoundExit || got.Attempts != 3 {
		t.Errorf("execution %+v, %d attempts; want Batch's 2 retries of the move, each exiting %d", bt.ExecutionInfo, got.Attempts, InputNotFoundExit)
	}
	if _, err := e.c.GetTaskFile(t.Context(), run.ID, "folders", "ran.txt", 0, -1); err == nil {
		t.Error("the task's command ran after its move failed")
	}
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bmc-dev/bmc/executor"
)

// TestCancelKilledEmptiesWorkdirs: bmc cancel of a run whose bmc was
// killed empties the working directories of the tasks that succeeded, as
// the end of any run does.
func TestCancelKilledEmptiesWorkdirs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	pidFile := filepath.Join(dir, "wait.pid")
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: wds
tasks:
  - {id: mk, run: "head -c 100000 /dev/zero > big.bin"}
  - id: wait
    dependsOn: [mk]
    run: |
      sleep 300 &
      echo $! > %s
      wait
`, pidFile)), 0o644)
	run := bmcProcess(t, dir, "run", "spec.yaml", "--state-dir", state, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	childPID(t, pidFile)
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()
	id, _ := onlyRun(t, state)
	wd := filepath.Join(executor.RunsDir(state), id, "tasks", "mk", "wd")
	if _, err := os.Stat(filepath.Join(wd, "big.bin")); err != nil {
		t.Fatalf("the succeeded task's file is not there before the cancel: %v", err)
	}
	if out, err := bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput(); err != nil {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	if ents, err := os.ReadDir(wd); err != nil || len(ents) != 0 {
		t.Errorf("working directory of mk after the cancel: %v %v", ents, err)
	}
}

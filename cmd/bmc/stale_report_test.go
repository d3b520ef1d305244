package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// reportedThenKilled makes a run whose first session ended with its
// finalize step and a callback telling of a failure, and whose second,
// a resume, made every task succeed and was killed while its finalize
// step ran: the owner was told "failed" and nothing since. The state
// directory is given relative to dir, as a user's default .bmc is. It
// returns the test dir and the callback bodies received so far.
func reportedThenKilled(t *testing.T) (dir string, received func() []map[string]any) {
	t.Helper()
	srv, received := callbackBodies(t)
	dir = t.TempDir()
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: stale
tasks:
  - id: work
    run: test -e %[1]s/ok
finalize:
  run: |
    n=$(ls %[1]s | grep -c '^fin-' || true)
    cp "$BMC_RUN_SUMMARY" %[1]s/fin-$n.json
    if [ -e %[1]s/block ]; then
      sleep 300 &
      echo $! > %[1]s/fin.pid
      wait
    fi
  callback:
    url: %[2]s
    retries: 0
`, dir, srv.URL)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	if out, err := bmcProcess(t, dir, "run", "spec.yaml", "--state-dir", "state", "--progress", "none").CombinedOutput(); err == nil {
		t.Fatalf("the first session succeeded:\n%s", out)
	}
	if got := received(); len(got) != 1 || got[0]["status"] != "failed" {
		t.Fatalf("first session's callbacks: %v", got)
	}
	os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "block"), nil, 0o644)
	resume := bmcProcess(t, dir, "resume", "latest", "--state-dir", "state", "--progress", "none")
	if err := resume.Start(); err != nil {
		t.Fatal(err)
	}
	fin := childPID(t, filepath.Join(dir, "fin.pid"))
	resume.Process.Signal(syscall.SIGKILL)
	resume.Wait()
	syscall.Kill(fin, syscall.SIGKILL)
	os.Remove(filepath.Join(dir, "block"))
	if _, err := os.Stat(filepath.Join(dir, "fin-1.json")); err != nil {
		t.Fatalf("the second session's finalize step did not start: %v", err)
	}
	if got := received(); len(got) != 1 {
		t.Fatalf("callbacks before the second session's was due: %v", got)
	}
	return dir, received
}

// A resume after a resume that was killed before reporting runs the
// finalize step and sends the callback, though it has no task left to
// run: what the first session reported is no longer the run's outcome.
func TestResumeReportsWhatAKilledSessionDidNot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir, received := reportedThenKilled(t)
	out, err := bmcProcess(t, dir, "resume", "latest", "--state-dir", "state", "--progress", "none").CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "fin-2.json")); err != nil {
		t.Errorf("the finalize step did not run again: %v\n%s", err, out)
	}
	if got := received(); len(got) != 2 || got[1]["status"] != "succeeded" {
		t.Errorf("callbacks %v, want the first session's failed and now succeeded\n%s", got, out)
	}
	// Reported now: a further resume does neither again.
	out, err = bmcProcess(t, dir, "resume", "latest", "--state-dir", "state", "--progress", "none").CombinedOutput()
	if err != nil {
		t.Fatalf("second resume: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "fin-3.json")); err == nil {
		t.Errorf("the finalize step ran again with nothing new to tell\n%s", out)
	}
	if got := received(); len(got) != 2 {
		t.Errorf("%d callbacks, want 2: nothing new to tell\n%s", len(got), out)
	}
}

// bmc cancel of such a run does the same, and its finalize step gets
// paths it can use from its own directory, with the state directory given
// relative.
func TestCancelReportsWhatAKilledSessionDidNot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir, received := reportedThenKilled(t)
	out, err := bmcProcess(t, dir, "cancel", "latest", "--state-dir", "state").CombinedOutput()
	if err != nil {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "fin-2.json")); err != nil {
		t.Errorf("the finalize step did not run, or not with the summary: %v\n%s", err, out)
	}
	// Every task had ended when the second session was killed: the cancel
	// leaves its outcome as it stands, as a cancel reaching a live bmc then
	// would.
	if got := received(); len(got) != 2 || got[1]["status"] != "succeeded" || got[1]["tasks"].(map[string]any)["succeeded"] != 1.0 {
		t.Errorf("callbacks %v, want the first session's failed and then succeeded, with work succeeded\n%s", got, out)
	}
}

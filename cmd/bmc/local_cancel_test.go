package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bmc-dev/bmc/executor"
)

// bmc cancel of a run whose bmc was killed in its finalize step, after
// every task had succeeded, leaves the outcome as it is: the finalize
// step and the callback run again and report the run succeeded, as a
// cancel that reaches a live bmc then would.
func TestLocalCancelAfterTasksEnded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bodies := make(chan map[string]any, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		bodies <- m
	}))
	defer srv.Close()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	pidFile := filepath.Join(dir, "finalize.pid")
	// The first finalize step waits, to be killed with its bmc; the one
	// bmc cancel runs ends at once.
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: over
tasks:
  - {id: a, run: "true"}
  - {id: b, dependsOn: [a], run: "true"}
finalize:
  run: |
    if [ ! -e %[1]s ]; then
      sleep 300 &
      echo $! > %[1]s
      wait
    fi
  callback:
    url: %[2]s
    retries: 0
`, pidFile, srv.URL)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	run := bmcProcess(t, dir, "run", "spec.yaml", "--state-dir", state, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	child := childPID(t, pidFile)
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()

	out, err := bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput()
	if err != nil {
		t.Fatalf("bmc cancel: %v\n%s", err, out)
	}
	select {
	case body := <-bodies:
		if body["status"] != "succeeded" {
			t.Errorf("callback status %v, want succeeded\n%s", body["status"], out)
		}
	default:
		t.Errorf("no callback sent:\n%s", out)
	}
	runDir, _ := journalOf(t, state)
	st, err := executor.LoadState(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "succeeded" {
		t.Errorf("run status %q after cancel, want succeeded", st.Status)
	}
	for _, id := range []string{"a", "b"} {
		if ts := st.Tasks[id]; ts == nil || ts.State != executor.Succeeded {
			t.Errorf("%s: %+v, want succeeded", id, ts)
		}
	}
}

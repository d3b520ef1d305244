package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/executor"
)

// bmc cancel of a local run whose bmc was killed ends the run as a Ctrl-C
// would have: its unfinished tasks are cancelled, and the finalize step
// and the callback (status cancelled) run.
func TestCancelInterruptedRunFinishesIt(t *testing.T) {
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
	pidFile := filepath.Join(dir, "child.pid")
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: cut
tasks:
  - id: first
    run: "true"
  - id: slow
    dependsOn: [first]
    run: |
      sleep 300 &
      echo $! > %[1]s
      wait
  - id: later
    dependsOn: [slow]
    run: "true"
finalize:
  run: cp "$BMC_RUN_SUMMARY" %[2]s/finalize-saw.json
  callback:
    url: %[3]s
    retries: 0
`, pidFile, dir, srv.URL)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	run := bmcProcess(t, dir, "run", "spec.yaml", "--state-dir", state, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the task's child to start", 30*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
	var child int
	b, _ := os.ReadFile(pidFile)
	fmt.Sscan(string(b), &child)
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()

	out, err := bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput()
	if err != nil {
		t.Fatalf("bmc cancel: %v\n%s", err, out)
	}
	if running(child) {
		t.Errorf("the task's child %d still runs after cancel", child)
	}
	select {
	case body := <-bodies:
		if body["status"] != "cancelled" {
			t.Errorf("callback status %v, want cancelled", body["status"])
		}
	default:
		t.Errorf("no callback sent:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "finalize-saw.json")); err != nil {
		t.Errorf("the finalize step did not run: %v\n%s", err, out)
	}
	runDir, _ := journalOf(t, state)
	st, err := executor.LoadState(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "cancelled" {
		t.Errorf("run status %q after cancel, want cancelled", st.Status)
	}
	want := map[string]executor.State{"first": executor.Succeeded, "slow": executor.Canceled, "later": executor.Canceled}
	for id, w := range want {
		if ts := st.Tasks[id]; ts == nil || ts.State != w {
			t.Errorf("%s: %+v, want %s", id, ts, w)
		}
	}
	// It is over now.
	out, err = bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not in progress") {
		t.Errorf("second cancel: %v\n%s", err, out)
	}
}

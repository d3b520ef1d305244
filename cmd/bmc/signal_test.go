package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/executor"
)

// TestQuit: Ctrl-\ (SIGQUIT) stops a run as Ctrl-C does, rather than
// dumping goroutines and leaving the tasks running.
func TestQuit(t *testing.T) { testStopSignal(t, syscall.SIGQUIT) }

// TestClosedOutput: a reader of bmc's output that goes away (bmc run
// --events - | head -1) stops the run as a closed terminal does: the
// tasks are cancelled, the finalize step and the callback run, and bmc
// exits 130, rather than dying of SIGPIPE with its run left interrupted.
func TestClosedOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	srv, received := callbackBodies(t)
	gate := filepath.Join(dir, "gate")
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: pipe
params:
  cb: {}
tasks:
  - id: wait
    run: while [ ! -e %s ]; do sleep 0.05; done
  - id: long
    dependsOn: [wait]
    run: sleep 300
finalize:
  run: cp "$BMC_RUN_SUMMARY" %s
  callback: {url: "${{ params.cb }}", retries: 0}
`, gate, filepath.Join(dir, "summary.json"))
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	state := filepath.Join(dir, "state")
	cmd := bmcProcess(t, dir, "run", "spec.yaml", "--set", "cb="+srv.URL, "--state-dir", state, "--progress", "plain", "--events", "-")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read one event, as head -1 would, and go away.
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("first event: %v", err)
	}
	out.Close()
	// The next event bmc writes finds the pipe closed.
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("bmc went on after its output closed\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want status 130\n%s", err, stderr.String())
	}
	sum, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatalf("the finalize step did not run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(string(sum), `"status": "cancelled"`) {
		t.Errorf("summary: %s", sum)
	}
	if bodies := received(); len(bodies) != 1 || bodies[0]["status"] != "cancelled" {
		t.Errorf("callback bodies: %v", bodies)
	}
	runDir, _ := journalOf(t, state)
	st, err := executor.LoadState(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "cancelled" {
		t.Errorf("run journaled %s, want cancelled", st.Status)
	}
}

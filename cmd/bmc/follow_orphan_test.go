package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/internal/syncbuf"
)

// bmc logs --follow of a task whose bmc was killed while it ran goes on
// while the task's processes do, printing what they write, and ends once
// they are gone.
func TestFollowTaskOfKilledBmc(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: orphan
tasks:
  - id: long
    run: |
      echo before
      touch %[1]s/started
      while [ ! -e %[1]s/go ]; do sleep 0.05; done
      echo after
`, dir)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	run := bmcProcess(t, dir, "run", "spec.yaml", "--state-dir", state, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the task to start", 30*time.Second, func() bool { _, err := os.Stat(filepath.Join(dir, "started")); return err == nil })
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()

	follow := bmcProcess(t, dir, "logs", "latest", "long", "--follow", "--state-dir", state)
	var out, errOut syncbuf.Buffer
	follow.Stdout, follow.Stderr = &out, &errOut
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- follow.Wait() }()
	// It follows, rather than ending at once: the task still runs.
	waitFor(t, "bmc logs to follow the task", 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("bmc logs --follow ended while the task ran: %v\n%s%s", err, out.String(), errOut.String())
		default:
		}
		return strings.Contains(errOut.String(), "following what task long left running")
	})
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		follow.Process.Kill()
		t.Fatal("bmc logs --follow did not end once the task was gone")
	}
	if out.String() != "before\nafter\n" {
		t.Errorf("followed %q, want before and after", out.String())
	}
}

package executor

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestSummaryExitCodes pins what docs/spec.md says of exitCode in the run
// summary and the callback body: a timed-out task reports the code of its
// stopped process (as Batch gives a task it stops at maxWallClockTime a
// code too), and null is kept for a task no process ran for.
func TestSummaryExitCodes(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: slow, run: "sleep 9", timeout: 2h}
  - {id: killed, run: "sleep 9", timeout: 2h}
  - {id: unstaged, run: "true"}
`)
	now := time.Now()
	const timeout = 2 * time.Hour
	outcome := func(r Result) TaskOutcome {
		return TaskOutcome{State: r.State, Attempts: 1, ExitCode: r.ExitCode, Reason: r.Reason}
	}
	byID := map[string]TaskOutcome{
		"slow":     outcome(ProcessResult(context.Background(), ProcessEnd{ExitCode: 143, TimedOut: true, Timeout: timeout, Start: now})),
		"killed":   outcome(ProcessResult(context.Background(), ProcessEnd{ExitCode: 137, Signal: "SIGKILL", TimedOut: true, Timeout: timeout, Start: now})),
		"unstaged": {State: Failed, Attempts: 1, Reason: "input az://raw/x: not found"},
	}
	o := &Outcome{Started: now, Finished: now}
	for _, tk := range p.Program.Tasks {
		o.Tasks = append(o.Tasks, byID[tk.ID])
	}
	b, err := json.Marshal(Summarize(p, testRun(t), o))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Failed []struct {
			ID       string
			ExitCode *int
			Reason   string
		}
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	// -1 stands for null.
	want := map[string]struct {
		code   int
		reason string
	}{
		"slow":     {143, "timed out after 2h: process group killed"},
		"killed":   {137, "timed out after 2h: process group killed"},
		"unstaged": {-1, "input az://raw/x: not found"},
	}
	if len(body.Failed) != len(want) {
		t.Fatalf("failed: %s", b)
	}
	for _, f := range body.Failed {
		code := -1
		if f.ExitCode != nil {
			code = *f.ExitCode
		}
		if w := want[f.ID]; code != w.code || f.Reason != w.reason {
			t.Errorf("%s: exitCode %d, reason %q; want %d, %q", f.ID, code, f.Reason, w.code, w.reason)
		}
	}
}

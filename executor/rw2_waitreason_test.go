package executor

// bmc status of a task waiting for its retry says which attempt failed,
// and why when the backend told: Batch tells nothing of why, and its
// placeholder reason is not repeated.

import (
	"path/filepath"
	"testing"
	"time"
)

func TestRw2WaitReason(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: batch, run: "exit 3", retries: 2}
  - {id: local, run: "exit 3", retries: 2}
  - {id: bare, run: "exit 3", retries: 2}
`)
	dir := t.TempDir()
	j := mustOpen(t, filepath.Join(dir, JournalFile))
	// The Batch run loop journals a wait as it learns of it from a poll.
	tr := NewTracker(p)
	tr.j = j
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	tr.Apply(TaskUpdate{ID: "batch", State: Running, Attempts: 1, Start: start})
	tr.Apply(TaskUpdate{ID: "batch", State: Pending, Attempts: 1, Start: start, End: start.Add(time.Second)})
	for _, r := range []Record{
		// The local run loop's.
		{Type: RecordTaskStarted, Task: "local", Attempt: 1},
		{Type: RecordTaskFinished, Task: "local", Attempt: 1, State: string(Failed), ExitCode: codePtr(3), Reason: "exit code 3", Retry: true},
		// One that says nothing of why.
		{Type: RecordTaskStarted, Task: "bare", Attempt: 1},
		{Type: RecordTaskFinished, Task: "bare", Attempt: 1, State: string(Failed), Retry: true},
	} {
		if err := j.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"batch": "attempt 1 failed; runs again",
		"local": "attempt 1 failed (exit code 3); runs again",
		"bare":  "attempt 1 failed; runs again",
	} {
		ts := st.Tasks[id]
		if ts == nil {
			t.Errorf("%s: not in the journal", id)
			continue
		}
		if ts.State != Pending || ts.Attempts != 1 || ts.Reason != want {
			t.Errorf("%s: %s after %d attempts, %q; want pending after 1, %q", id, ts.State, ts.Attempts, ts.Reason, want)
		}
	}
}

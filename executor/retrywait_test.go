package executor

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRetryWaitIsPending: a failed attempt after which the task runs
// again is journaled as such, and bmc status (LoadState) shows the task
// pending, waiting for its next attempt, not failed; the attempt that
// ends its retries is a failure.
func TestRetryWaitIsPending(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: flaky, retries: 1, run: "false"}
`)
	run := testRun(t)
	j := mustOpen(t, filepath.Join(run.Dir, JournalFile))
	var attempts atomic.Int32
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		attempts.Add(1)
		return failed(1)
	}}
	if _, err := RunTasks(context.Background(), p, be, run, j, Options{Slots: 1}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	recs, err := ReadJournal(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	var retry []bool
	cut := -1 // the journal as it stood between the two attempts
	for k, r := range recs {
		if r.Type == RecordTaskFinished {
			retry = append(retry, r.Retry)
			if cut < 0 {
				cut = k + 1
			}
		}
	}
	if len(retry) != 2 || !retry[0] || retry[1] || attempts.Load() != 2 {
		t.Fatalf("task-finished records' retry marks %v after %d attempts, want [true false] after 2", retry, attempts.Load())
	}
	// bmc status between the attempts, while the run goes on (its lock
	// held): the task waits, pending.
	mid := t.TempDir()
	jm := mustOpen(t, filepath.Join(mid, JournalFile))
	for _, r := range recs[:cut] {
		if err := jm.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	jm.Close()
	unlock, err := Lock(mid)
	if err != nil {
		t.Fatal(err)
	}
	during, err := LoadState(mid)
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if ts := during.Tasks["flaky"]; ts == nil || ts.State != Pending || !strings.Contains(ts.Reason, "attempt 1 failed (exit code 1); runs again") {
		t.Errorf("between attempts: %+v, want pending, waiting for its next attempt", ts)
	}
	st, err := LoadState(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if ts := st.Tasks["flaky"]; ts.State != Failed || ts.Attempts != 2 {
		t.Errorf("at the end: %s after %d attempts, want failed after 2", ts.State, ts.Attempts)
	}
}

package executor

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestResumeKeepsEarlierOutputs: a task run again by a resume keeps, in
// the outcome the summary and the callback are made of, what its earlier
// sessions' attempts uploaded (a when: failure log), beside what this one
// uploads.
func TestResumeKeepsEarlierOutputs(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - id: b
    run: "true"
    outputs:
      - {path: run.log, to: "az://res/debug-${{ task.attempt }}.log", when: failure}
      - {path: run.log, to: "az://res/final.log"}
`)
	prev := &RunState{Tasks: map[string]*TaskState{
		"b": {ID: "b", State: Failed, Attempts: 1, Outputs: []string{"az://res/debug-1.log"}},
	}}
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		r := succeeded()
		r.Outputs = []string{"az://res/final.log"}
		return r
	}}
	o := runTasks(t, p, be, Options{Slots: 1, Previous: prev})
	got := outcomeOf(t, p, o, "b").Outputs
	if want := []string{"az://res/debug-1.log", "az://res/final.log"}; !slices.Equal(got, want) {
		t.Errorf("outputs %q, want %q", got, want)
	}
}

// TestCancelledDuringUploadJournaled: an attempt that fails because the
// run was cancelled under it (its upload cut off) is journaled cancelled,
// as the outcome, the summary and the callback have it: bmc status reads
// the journal.
func TestCancelledDuringUploadJournaled(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: mk, run: "true"}
`)
	run := testRun(t)
	j, err := OpenJournal(filepath.Join(run.Dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
		cancel()
		<-ctx.Done()
		code := 0
		return Result{State: Failed, ExitCode: &code, Reason: "output a.bin -> az://c/a.bin: context canceled", Start: time.Now(), End: time.Now()}
	}}
	o, err := RunTasks(ctx, p, be, run, j, Options{Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if got := outcomeOf(t, p, o, "mk").State; got != Canceled {
		t.Errorf("outcome %s, want cancelled", got)
	}
	st, err := LoadState(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if ts := st.Tasks["mk"]; ts == nil || ts.State != Canceled {
		t.Errorf("journal says %+v, want cancelled", ts)
	}
}

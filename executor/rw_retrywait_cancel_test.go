package executor

// A task whose attempt failed and that waits for its next attempt has
// run: cancelled then, it ends cancelled with that attempt counted, its
// exit code kept and a reason that says so, in the outcome, the events,
// the journal and bmc status alike. Only a task that never ran is
// "cancelled before it started".

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/planner"
)

// rwWaitSpec: flaky fails its first attempt; wide, released by a, needs
// both slots and has the longer chain, so it takes the slots flaky's
// failure frees, and flaky waits for its second attempt behind it.
const rwWaitSpec = `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
  - {id: wide, run: "true", slots: 2, dependsOn: [a]}
  - {id: tail, run: "true", dependsOn: [wide]}
  - {id: flaky, run: "exit 3", retries: 2}
`

const rwWaitReason = "cancelled while waiting for attempt 2 (attempt 1 failed: exit code 3)"

// rwCancelInRetryWait runs rwWaitSpec on a mock backend and cancels the
// run once wide runs and flaky waits for its retry, synchronized on the
// run's events. It returns the plan, the outcome, the events and the
// failed attempt's start and end.
func rwCancelInRetryWait(t *testing.T, run *RunInfo) (*planner.Plan, *Outcome, []Event, time.Time, time.Time) {
	t.Helper()
	p := planSpec(t, rwWaitSpec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	aDone := make(chan struct{})
	var once sync.Once
	events := &eventLog{notify: func(e Event) {
		switch {
		case e.Type == EventTaskFinished && e.Task == "a":
			once.Do(func() { close(aDone) })
		case e.Type == EventTaskStarted && e.Task == "wide":
			cancel() // flaky has failed: wide took the slots it freed
		}
	}}
	now := time.Now()
	failStart, failEnd := now.Add(-2*time.Second), now.Add(-500*time.Millisecond)
	be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
		switch a.Task.ID {
		case "a":
			return succeeded()
		case "flaky":
			if a.Number != 1 {
				t.Errorf("flaky's attempt %d ran; the run was cancelled while it waited for it", a.Number)
				return succeeded()
			}
			select {
			case <-aDone: // wide waits at the head of the queue
			case <-ctx.Done():
				t.Error("cancelled before flaky failed")
			}
			r := failed(3)
			r.Start, r.End = failStart, failEnd
			return r
		case "wide":
			<-ctx.Done()
			return Result{State: Canceled, Reason: "cancelled: process group killed", ExitCode: codePtr(143), Start: time.Now(), End: time.Now()}
		}
		t.Errorf("%s ran", a.Task.ID)
		return succeeded()
	}}
	j := mustOpen(t, filepath.Join(run.Dir, JournalFile))
	o, err := RunTasks(ctx, p, be, run, j, Options{Slots: 2, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, o)
	return p, o, events.all(), failStart, failEnd
}

// TestRwCancelInRetryWaitLocal: the outcome and the events of a task
// cancelled while it waited for its retry say that it ran; a task that
// never started is still cancelled before it started.
func TestRwCancelInRetryWaitLocal(t *testing.T) {
	run := testRun(t)
	p, o, evs, failStart, failEnd := rwCancelInRetryWait(t, run)
	if !o.Canceled {
		t.Fatal("the run is not cancelled")
	}
	f := outcomeOf(t, p, o, "flaky")
	if f.State != Canceled || f.Attempts != 1 || f.ExitCode == nil || *f.ExitCode != 3 || f.Reason != rwWaitReason {
		t.Errorf("flaky: %s after %d attempts, exit code %v, %q; want cancelled after 1, exit code 3, %q", f.State, f.Attempts, f.ExitCode, f.Reason, rwWaitReason)
	}
	if !f.End.Equal(failEnd) {
		t.Errorf("flaky ends at %s, want its failed attempt's end %s", f.End, failEnd)
	}
	if tl := outcomeOf(t, p, o, "tail"); tl.State != Canceled || tl.Attempts != 0 || tl.ExitCode != nil || tl.Reason != "cancelled before it started" {
		t.Errorf("tail: %s after %d attempts, exit code %v, %q; want cancelled before it started", tl.State, tl.Attempts, tl.ExitCode, tl.Reason)
	}
	if w := outcomeOf(t, p, o, "wide"); w.State != Canceled || w.Attempts != 1 {
		t.Errorf("wide: %s after %d attempts", w.State, w.Attempts)
	}
	var fin []Event
	for _, e := range evs {
		if e.Task == "flaky" || e.Task == "tail" {
			e.Time, e.RunID, e.Counts = time.Time{}, "", Counts{}
			fin = append(fin, e)
		}
	}
	elapsed := failEnd.Sub(failStart)
	want := []Event{
		{Type: EventTaskStarted, Task: "flaky", Attempt: 1, State: Running},
		{Type: EventTaskRetrying, Task: "flaky", Attempt: 1, State: Failed, ExitCode: codePtr(3), Reason: "exit code 3", Elapsed: elapsed},
		{Type: EventTaskFinished, Task: "flaky", Attempt: 1, State: Canceled, ExitCode: codePtr(3), Reason: rwWaitReason, Elapsed: elapsed},
		{Type: EventTaskFinished, Task: "tail", State: Canceled, Reason: "cancelled before it started"},
	}
	if d := cmp.Diff(want, fin); d != "" {
		t.Errorf("flaky's and tail's events (-want +got):\n%s", d)
	}
}

// TestRwCancelInRetryWaitStatus: bmc status (LoadState) after the run
// tells each task as the run's outcome did, whichever way the journal is
// read; bmc resume runs flaky again, numbering on from its attempt.
func TestRwCancelInRetryWaitStatus(t *testing.T) {
	run := testRun(t)
	p, o, _, _, _ := rwCancelInRetryWait(t, run)
	path := filepath.Join(run.Dir, JournalFile)
	decoded, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	var scanned []Record
	if err := ScanJournal(path, "", func(r *Record) error { scanned = append(scanned, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(decoded, scanned); d != "" {
		t.Errorf("the journal read by the decoder and by the fast reader (-decoder +fast):\n%s", d)
	}
	st, err := LoadState(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, tk := range p.Program.Tasks {
		ts, to := st.Tasks[tk.ID], o.Tasks[i]
		if ts == nil {
			t.Errorf("%s: not in the journal", tk.ID)
			continue
		}
		got := TaskOutcome{State: ts.State, Attempts: ts.Attempts, ExitCode: ts.ExitCode, Reason: ts.Reason}
		want := TaskOutcome{State: to.State, Attempts: to.Attempts, ExitCode: to.ExitCode, Reason: to.Reason}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: bmc status (-outcome +status):\n%s", tk.ID, d)
		}
		if tk.ID == "flaky" && !ts.End.Equal(to.End) {
			t.Errorf("flaky: bmc status ends it at %s, the outcome at %s", ts.End, to.End)
		}
	}

	// bmc resume: flaky did not succeed and runs again, as attempt 2.
	p2 := planner.New(p.Program, planner.Capabilities{Name: "mock", Slots: 64}, st.Done())
	if p2.Done[3] {
		t.Fatal("flaky is done")
	}
	var mu sync.Mutex
	ran := map[string][]int{}
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		mu.Lock()
		ran[a.Task.ID] = append(ran[a.Task.ID], a.Number)
		mu.Unlock()
		return succeeded()
	}}
	j := mustOpen(t, path)
	o2, err := RunTasks(context.Background(), p2, be, run, j, Options{Slots: 2, Previous: st})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if d := cmp.Diff(map[string][]int{"flaky": {2}, "wide": {2}, "tail": {1}}, ran); d != "" {
		t.Errorf("attempts run by the resume (-want +got):\n%s", d)
	}
	if f := outcomeOf(t, p2, o2, "flaky"); f.State != Succeeded || f.Attempts != 2 {
		t.Errorf("flaky after the resume: %s after %d attempts, want succeeded after 2", f.State, f.Attempts)
	}
}

// TestRwCancelInterruptedInRetryWait: bmc cancel of a run whose bmc went
// away while a task waited for its retry ends that task as a cancel in
// the live run would have, and bmc status then says the same.
func TestRwCancelInterruptedInRetryWait(t *testing.T) {
	p := planSpec(t, rwWaitSpec)
	dir := t.TempDir()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	writeJournal(t, dir, base,
		Record{Type: RecordRunStarted, Data: []byte(`{"tasks":4}`)},
		Record{Type: RecordTaskStarted, Task: "a", Attempt: 1},
		Record{Type: RecordTaskStarted, Task: "flaky", Attempt: 1},
		Record{Type: RecordTaskFinished, Task: "a", Attempt: 1, State: string(Succeeded), ExitCode: codePtr(0)},
		Record{Type: RecordTaskFinished, Task: "flaky", Attempt: 1, State: string(Failed), ExitCode: codePtr(3), Reason: "exit code 3", Retry: true},
		Record{Type: RecordTaskStarted, Task: "wide", Attempt: 1},
	)
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	j := mustOpen(t, filepath.Join(dir, JournalFile))
	o, err := CancelInterrupted(p, j, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	f := outcomeOf(t, p, o, "flaky")
	if f.State != Canceled || f.Attempts != 1 || f.ExitCode == nil || *f.ExitCode != 3 || f.Reason != rwWaitReason {
		t.Errorf("flaky: %s after %d attempts, exit code %v, %q; want cancelled after 1, exit code 3, %q", f.State, f.Attempts, f.ExitCode, f.Reason, rwWaitReason)
	}
	if tl := outcomeOf(t, p, o, "tail"); tl.State != Canceled || tl.Attempts != 0 || tl.Reason != "cancelled before it started" {
		t.Errorf("tail: %s after %d attempts, %q; want cancelled before it started", tl.State, tl.Attempts, tl.Reason)
	}
	after, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, tk := range p.Program.Tasks {
		ts, to := after.Tasks[tk.ID], o.Tasks[i]
		if ts == nil {
			t.Errorf("%s: not in the journal", tk.ID)
			continue
		}
		got := TaskOutcome{State: ts.State, Attempts: ts.Attempts, ExitCode: ts.ExitCode, Reason: ts.Reason}
		want := TaskOutcome{State: to.State, Attempts: to.Attempts, ExitCode: to.ExitCode, Reason: to.Reason}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: bmc status after bmc cancel (-outcome +status):\n%s", tk.ID, d)
		}
	}
}

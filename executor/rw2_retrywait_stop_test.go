package executor

// A task whose attempt failed and that waits for its next attempt when
// the run stops after another task's failure (no --keep-going) has run
// and failed: it ends failed, with its attempt and exit code, and a
// reason that says it was not retried, as a task whose attempt fails
// while the run stops does; not skipped as a task that never ran.

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/planner"
)

// rw2StopSpec: a, flaky and bad start in the three slots. a releases
// wide, which needs all three and has the longest chain, so it waits at
// the head of the queue; flaky fails its first attempt and waits behind
// it; then bad fails, and the run stops.
const rw2StopSpec = `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
  - {id: wide, run: "true", slots: 3, dependsOn: [a]}
  - {id: tail, run: "true", dependsOn: [wide]}
  - {id: end, run: "true", dependsOn: [tail]}
  - {id: flaky, run: "exit 3", retries: 2}
  - {id: after, run: "true", dependsOn: [flaky]}
  - {id: bad, run: "exit 1"}
`

const rw2StopCause = "run stopped after bad failed (use --keep-going to run independent tasks)"

// rw2StopInRetryWait runs rw2StopSpec on a mock backend, synchronized on
// the run's events, and returns the plan, the outcome, the events and
// flaky's failed attempt's start and end.
func rw2StopInRetryWait(t *testing.T, run *RunInfo) (*planner.Plan, *Outcome, []Event, time.Time, time.Time) {
	t.Helper()
	p := planSpec(t, rw2StopSpec)
	aDone, waiting := make(chan struct{}), make(chan struct{})
	var onceA, onceW sync.Once
	events := &eventLog{notify: func(e Event) {
		switch {
		case e.Type == EventTaskFinished && e.Task == "a":
			onceA.Do(func() { close(aDone) })
		case e.Type == EventTaskRetrying && e.Task == "flaky":
			onceW.Do(func() { close(waiting) })
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
				t.Errorf("flaky's attempt %d ran; the run stopped while it waited for it", a.Number)
				return succeeded()
			}
			<-aDone // wide waits at the head of the queue
			r := failed(3)
			r.Start, r.End = failStart, failEnd
			return r
		case "bad":
			<-waiting
			return failed(1)
		}
		t.Errorf("%s ran", a.Task.ID)
		return succeeded()
	}}
	j := mustOpen(t, filepath.Join(run.Dir, JournalFile))
	o, err := RunTasks(context.Background(), p, be, run, j, Options{Slots: 3, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, o)
	return p, o, events.all(), failStart, failEnd
}

// TestRw2StopInRetryWaitLocal: the outcome and the events of a task that
// waited for its retry when the run stopped say that it ran and failed;
// its dependent is skipped behind it, the tasks that never ran are
// skipped for the stop.
func TestRw2StopInRetryWaitLocal(t *testing.T) {
	run := testRun(t)
	p, o, evs, failStart, failEnd := rw2StopInRetryWait(t, run)
	if o.Canceled {
		t.Fatal("the run is cancelled")
	}
	want := map[string]TaskOutcome{
		"a":     {State: Succeeded, Attempts: 1, ExitCode: codePtr(0)},
		"bad":   {State: Failed, Attempts: 1, ExitCode: codePtr(1), Reason: "exit code 1"},
		"flaky": {State: Failed, Attempts: 1, ExitCode: codePtr(3), Reason: "exit code 3; not retried: " + rw2StopCause},
		"after": {State: Skipped, Reason: "skipped: upstream flaky failed"},
		"wide":  {State: Skipped, Reason: "skipped: " + rw2StopCause},
		"tail":  {State: Skipped, Reason: "skipped: " + rw2StopCause},
		"end":   {State: Skipped, Reason: "skipped: " + rw2StopCause},
	}
	for id, w := range want {
		g := outcomeOf(t, p, o, id)
		got := TaskOutcome{State: g.State, Attempts: g.Attempts, ExitCode: g.ExitCode, Reason: g.Reason}
		if d := cmp.Diff(w, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", id, d)
		}
	}
	if f := outcomeOf(t, p, o, "flaky"); !f.End.Equal(failEnd) {
		t.Errorf("flaky ends at %s, want its failed attempt's end %s", f.End, failEnd)
	}
	var fin []Event
	for _, e := range evs {
		if e.Task == "flaky" || e.Task == "after" {
			e.Time, e.RunID, e.Counts = time.Time{}, "", Counts{}
			fin = append(fin, e)
		}
	}
	elapsed := failEnd.Sub(failStart)
	wantEvs := []Event{
		{Type: EventTaskStarted, Task: "flaky", Attempt: 1, State: Running},
		{Type: EventTaskRetrying, Task: "flaky", Attempt: 1, State: Failed, ExitCode: codePtr(3), Reason: "exit code 3", Elapsed: elapsed},
		{Type: EventTaskFinished, Task: "flaky", Attempt: 1, State: Failed, ExitCode: codePtr(3), Reason: "exit code 3; not retried: " + rw2StopCause, Elapsed: elapsed},
		{Type: EventTaskSkipped, Task: "after", State: Skipped, Reason: "skipped: upstream flaky failed"},
	}
	if d := cmp.Diff(wantEvs, fin); d != "" {
		t.Errorf("flaky's and after's events (-want +got):\n%s", d)
	}
}

// TestRw2StopInRetryWaitStatus: bmc status (LoadState) after the run
// tells each task as the outcome did, whichever way the journal is read;
// bmc resume runs flaky again, numbering on from its attempt.
func TestRw2StopInRetryWaitStatus(t *testing.T) {
	run := testRun(t)
	p, o, _, _, _ := rw2StopInRetryWait(t, run)
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

	// bmc resume: everything but a runs again; flaky as attempt 2.
	p2 := planner.New(p.Program, planner.Capabilities{Name: "mock", Slots: 64}, st.Done())
	var mu sync.Mutex
	ran := map[string][]int{}
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		mu.Lock()
		ran[a.Task.ID] = append(ran[a.Task.ID], a.Number)
		mu.Unlock()
		return succeeded()
	}}
	j := mustOpen(t, path)
	o2, err := RunTasks(context.Background(), p2, be, run, j, Options{Slots: 3, Previous: st})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	want := map[string][]int{"flaky": {2}, "bad": {2}, "after": {1}, "wide": {1}, "tail": {1}, "end": {1}}
	if d := cmp.Diff(want, ran); d != "" {
		t.Errorf("attempts run by the resume (-want +got):\n%s", d)
	}
	if f := outcomeOf(t, p2, o2, "flaky"); f.State != Succeeded || f.Attempts != 2 {
		t.Errorf("flaky after the resume: %s after %d attempts, want succeeded after 2", f.State, f.Attempts)
	}
}

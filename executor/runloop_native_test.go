package executor

// The run loop for native backends, held to the local backend's meaning
// of events and states: a task-finished's elapsedNs is its last attempt's,
// and a task waiting for its retry counts as pending.

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

// twoTasks is a plan of two independent tasks, a and e.
func twoTasks() *planner.Plan {
	prog := &compiler.Program{Name: "n", Tasks: []compiler.Task{{ID: "a", Run: "true", Retries: 2}, {ID: "e", Run: "true"}}}
	return planner.New(prog, planner.Capabilities{Name: "native", NativeDependencies: true}, nil)
}

// eventsOf are the events of one task, in order.
func eventsOf(log *eventLog, task string) []Event {
	var out []Event
	for _, e := range log.all() {
		if e.Task == task {
			out = append(out, e)
		}
	}
	return out
}

// TestRunloopNativeElapsedIsLastAttempt: task-finished's elapsedNs is the
// last attempt's duration, as on the local backend, not the time since
// the first attempt started; the outcome still spans every attempt.
func TestRunloopNativeElapsedIsLastAttempt(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	code1 := 1
	for _, tc := range []struct {
		name  string
		polls []func() (PollResult, error)
		want  time.Duration
	}{
		{"second attempt seen running", []func() (PollResult, error){
			updates(TaskUpdate{ID: "a", State: Running, Attempts: 1, Start: t0}, TaskUpdate{ID: "e", State: Succeeded, Attempts: 1, Start: t0, End: t0}),
			updates(TaskUpdate{ID: "a", State: Running, Attempts: 2, Start: t0.Add(10 * time.Second)}),
			updates(TaskUpdate{ID: "a", State: Failed, Attempts: 2, ExitCode: &code1, Reason: "exit code 1", Start: t0.Add(10 * time.Second), End: t0.Add(13 * time.Second)}),
		}, 3 * time.Second},
		{"second attempt never seen running", []func() (PollResult, error){
			updates(TaskUpdate{ID: "a", State: Running, Attempts: 1, Start: t0}, TaskUpdate{ID: "e", State: Succeeded, Attempts: 1, Start: t0, End: t0}),
			updates(TaskUpdate{ID: "a", State: Succeeded, Attempts: 2, Start: t0.Add(10 * time.Second), End: t0.Add(12 * time.Second)}),
		}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, o, log := runNativeJournaled(t, twoTasks(), &scriptedNative{polls: tc.polls})
			evs := eventsOf(log, "a")
			last := evs[len(evs)-1]
			if last.Type != EventTaskFinished || last.Attempt != 2 || last.Elapsed != tc.want {
				t.Errorf("last event of a: %s attempt %d, elapsed %s; want task-finished of attempt 2, elapsed %s", last.Type, last.Attempt, last.Elapsed, tc.want)
			}
			if a := o.Tasks[0]; !a.Start.Equal(t0) {
				t.Errorf("a started %s, want its first attempt's start %s", a.Start, t0)
			}
		})
	}
}

// TestRunloopNativeRetryWaitIsPending: a backend that reports a task
// waiting for its retry (State Pending, with the attempt that failed)
// makes task-retrying then, with the task counted pending, as the local
// backend does; the next attempt's start makes no second task-retrying.
func TestRunloopNativeRetryWaitIsPending(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	be := &scriptedNative{polls: []func() (PollResult, error){
		updates(TaskUpdate{ID: "a", State: Running, Attempts: 1, Start: at(0)}, TaskUpdate{ID: "e", State: Running, Attempts: 1, Start: at(0)}),
		updates(TaskUpdate{ID: "a", State: Pending, Attempts: 1, Start: at(0), End: at(4)}),
		updates(TaskUpdate{ID: "a", State: Pending, Attempts: 1, Start: at(0), End: at(4)}), // again: nothing new
		updates(TaskUpdate{ID: "a", State: Running, Attempts: 2, Start: at(6)}),
		updates(TaskUpdate{ID: "a", State: Succeeded, Attempts: 2, Start: at(6), End: at(7)}, TaskUpdate{ID: "e", State: Succeeded, Attempts: 1, Start: at(0), End: at(7)}),
	}}
	dir, o, log := runNativeJournaled(t, twoTasks(), be)
	type ev struct {
		Type    EventType
		Attempt int
		State   State
		Elapsed time.Duration
		Counts  Counts
	}
	var got []ev
	for _, e := range eventsOf(log, "a") {
		got = append(got, ev{e.Type, e.Attempt, e.State, e.Elapsed, e.Counts})
	}
	want := []ev{
		{EventTaskStarted, 1, Running, 0, Counts{Total: 2, Running: 1, Pending: 1}},
		{EventTaskRetrying, 1, Failed, 4 * time.Second, Counts{Total: 2, Running: 1, Pending: 1}},
		{EventTaskStarted, 2, Running, 0, Counts{Total: 2, Running: 2}},
		{EventTaskFinished, 2, Succeeded, time.Second, Counts{Total: 2, Succeeded: 1, Running: 1}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a's events (-want +got):\n%s", diff)
	}
	if a := o.Tasks[0]; a.State != Succeeded || a.Attempts != 2 {
		t.Errorf("a: %+v", a)
	}
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a := st.Tasks["a"]; a == nil || a.State != Succeeded || a.Attempts != 2 {
		t.Errorf("journal: a %+v", a)
	}
}

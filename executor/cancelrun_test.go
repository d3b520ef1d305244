package executor

import (
	"testing"
	"time"
)

// TestCancelInterruptedOutcome: a cancel of a run whose bmc went away
// ends as cancelled only a run it cut short. One whose tasks had all
// ended (its bmc was killed in the finalize step or the callback) keeps
// its outcome, as a cancel that reaches a live bmc then would.
func TestCancelInterruptedOutcome(t *testing.T) {
	const spec = `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
  - {id: b, run: "true", dependsOn: [a]}
`
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	code0, code1 := 0, 1
	ended := func(s State, code *int) *TaskState {
		return &TaskState{State: s, Attempts: 1, ExitCode: code, Start: start, End: start.Add(time.Second)}
	}
	for _, tt := range []struct {
		name      string
		a, b      *TaskState
		canceled  bool
		cancelled int
		status    CallbackStatus
	}{
		{name: "all succeeded", a: ended(Succeeded, &code0), b: ended(Succeeded, &code0), status: CallbackSucceeded},
		{name: "one failed", a: ended(Failed, &code1), b: &TaskState{State: Skipped, Reason: "skipped: upstream a failed"}, status: CallbackFailed},
		{name: "one cancelled before", a: ended(Succeeded, &code0), b: ended(Canceled, nil), canceled: true, cancelled: 1, status: CallbackCancelled},
		{name: "one running", a: ended(Succeeded, &code0), b: &TaskState{State: Canceled, Attempts: 1, Interrupted: true}, canceled: true, cancelled: 1, status: CallbackCancelled},
		{name: "one not started", a: ended(Succeeded, &code0), canceled: true, cancelled: 1, status: CallbackCancelled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := planSpec(t, spec)
			st := &RunState{Tasks: map[string]*TaskState{}, Started: start, Status: "interrupted"}
			if tt.a != nil {
				st.Tasks["a"] = tt.a
			}
			if tt.b != nil {
				st.Tasks["b"] = tt.b
			}
			o, err := CancelInterrupted(p, nil, st, func() time.Time { return start.Add(time.Minute) })
			if err != nil {
				t.Fatal(err)
			}
			checkCounts(t, o)
			if o.Canceled != tt.canceled {
				t.Errorf("Canceled = %v, want %v", o.Canceled, tt.canceled)
			}
			if o.Counts.Cancelled != tt.cancelled {
				t.Errorf("%d tasks cancelled, want %d", o.Counts.Cancelled, tt.cancelled)
			}
			if got := Summarize(p, testRun(t), o).Status; got != tt.status {
				t.Errorf("callback status %s, want %s", got, tt.status)
			}
		})
	}
}

package executor

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestCancelAfterTasksEnded: a cancellation that arrives once every task
// has ended leaves the run's outcome as it is. The sink runs on the
// scheduler's goroutine, so cancelling there, as the last result is taken,
// orders the cancellation after it.
func TestCancelAfterTasksEnded(t *testing.T) {
	const spec = `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
  - {id: b, run: "true", dependsOn: [a]}
`
	for _, tt := range []struct {
		name     string
		last     string // the task whose end is the last
		fail     bool   // a fails, which stops the run
		a, b     State
		bReason  string
		canceled bool
	}{
		{name: "all succeeded", last: "b", a: Succeeded, b: Succeeded},
		{name: "run stopped on a failure", last: "a", fail: true, a: Failed, b: Skipped, bReason: "skipped: upstream a failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := planSpec(t, spec)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
				if tt.fail && a.Task.ID == "a" {
					return failed(1)
				}
				return succeeded()
			}}
			events := &eventLog{notify: func(e Event) {
				if e.Type == EventTaskFinished && e.Task == tt.last {
					cancel()
				}
			}}
			o, err := RunTasks(ctx, p, be, testRun(t), nil, Options{Slots: 1, Events: events})
			if err != nil {
				t.Fatal(err)
			}
			checkCounts(t, o)
			if o.Canceled {
				t.Error("the run counts as cancelled, though the cancellation came after every task had ended")
			}
			if got := outcomeOf(t, p, o, "a"); got.State != tt.a {
				t.Errorf("a: %s, want %s", got.State, tt.a)
			}
			if got := outcomeOf(t, p, o, "b"); got.State != tt.b || got.Reason != tt.bReason {
				t.Errorf("b: %s (%q), want %s (%q)", got.State, got.Reason, tt.b, tt.bReason)
			}
		})
	}
}

// TestFinishCancelledStepReason: the reason of a finalize step that was
// cut short does not repeat its state, which is shown before it
// ("finalize cancelled: process group killed").
func TestFinishCancelledStepReason(t *testing.T) {
	for _, tt := range []struct {
		name   string
		result func(ctx context.Context) Result
		want   string
	}{
		{"process killed", func(ctx context.Context) Result {
			return ProcessResult(ctx, ProcessEnd{ExitCode: 143, Canceled: true, Start: time.Now()})
		}, "process group killed"},
		{"no more said", func(context.Context) Result { return Result{State: Canceled, Reason: "cancelled"} }, ""},
		{"another reason", func(context.Context) Result {
			return Result{State: Canceled, Reason: "cancelled while staging inputs"}
		}, "cancelled while staging inputs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hook := newHookServer(t, http.StatusOK)
			c := runPhase(t, hook.srv.URL, true, false)
			ctx, cut := context.WithCancel(context.Background())
			be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
				cut() // a second cancel, while the step runs
				return tt.result(ctx)
			}}
			events := &eventLog{}
			res, err := Finish(ctx, c.plan, be, c.run, c.j, c.out, FinishOptions{Events: events})
			if err != nil {
				t.Fatal(err)
			}
			if res.Finalize.State != Canceled || res.Finalize.Reason != tt.want {
				t.Errorf("finalize %s (%q), want cancelled (%q)", res.Finalize.State, res.Finalize.Reason, tt.want)
			}
			// The tasks all succeeded; the step did not.
			if res.Status != CallbackFailed {
				t.Errorf("status %s, want failed", res.Status)
			}
			for _, e := range events.all() {
				if e.Type == EventFinalizeFinished && e.Reason != tt.want {
					t.Errorf("finalize-finished event reason %q, want %q", e.Reason, tt.want)
				}
			}
			if ff := journalRecords(t, c)[RecordFinalizeFinished]; len(ff) != 1 || ff[0].Reason != tt.want {
				t.Errorf("finalize-finished records %+v", ff)
			}
		})
	}
}

package executor

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSummaryOutputsOncePerLocation: a when: failure output of a task
// that failed on each of its attempts was uploaded by every attempt, yet
// the run summary (and so the callback) lists each location once, in the
// order the attempts first wrote them.
func TestSummaryOutputsOncePerLocation(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - id: bad
    run: exit 1
    retries: 1
    outputs:
      - {path: dbg.log, to: "az://debug/dbg.log", when: failure}
      - {path: "*.txt", to: "az://debug/txt/", when: failure}
`)
	var attempts atomic.Int32
	be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
		r := failed(1)
		r.Outputs = []string{"az://debug/dbg.log"}
		if attempts.Add(1) == 2 {
			r.Outputs = append(r.Outputs, "az://debug/txt/")
		}
		return r
	}}
	o, err := RunTasks(t.Context(), p, be, testRun(t), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomeOf(t, p, o, "bad"); got.Attempts != 2 || len(got.Outputs) != 3 {
		t.Fatalf("the task's outcome: %+v; want 2 attempts and every upload of each", got)
	}
	body := Summarize(p, testRun(t), o)
	want := []CallbackOutput{{Task: "bad", Location: "az://debug/dbg.log"}, {Task: "bad", Location: "az://debug/txt/"}}
	if diff := cmp.Diff(want, body.Outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
}

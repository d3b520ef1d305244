package executor

import (
	"context"
	"net/http"
	"testing"

	"github.com/bmc-dev/bmc/planner"
)

// TestFinishFillsCallbackHeaders: run-time expressions in the callback's
// header values are filled in, as in its URL, both when a run finishes
// and when bmc resume sends the callback again (no finalize step then).
func TestFinishFillsCallbackHeaders(t *testing.T) {
	const spec = `apiVersion: bmc/v1
kind: Workload
name: w
params:
  cb: {default: ""}
tasks:
  - {id: t, run: "true"}
finalize:
  callback:
    url: "${{ params.cb }}/hook/${{ run.id }}"
    retries: 0
    headers:
      X-Run: "${{ run.id }}"
      X-Where: "${{ run.name }} at ${{ run.storage }}"
      X-Team: "${{ params.cb }}"
`
	for _, tt := range []struct {
		name string
		opts FinishOptions
	}{
		{"run", FinishOptions{}},
		{"resume", FinishOptions{SkipStep: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hook := newHookServer(t, http.StatusOK)
			prog := compileSpec(t, spec, map[string]any{"cb": hook.srv.URL})
			p := planner.New(prog, planner.Capabilities{Name: "mock"}, nil)
			run := testRun(t)
			be := &mockBackend{RunTaskFn: func(context.Context, *Attempt) Result { return succeeded() }}
			o, err := RunTasks(context.Background(), p, be, run, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Finish(context.Background(), p, be, run, nil, o, tt.opts)
			if err != nil || res.CallbackErr != nil {
				t.Fatalf("Finish: %v, callback: %v", err, res.CallbackErr)
			}
			reqs := hook.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d callback requests, want 1", len(reqs))
			}
			for k, want := range map[string]string{
				"X-Run":   "w-run-1",
				"X-Where": "w at file:///store",
				"X-Team":  hook.srv.URL,
			} {
				if got := reqs[0].header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			// The program keeps its expressions: a resume fills them in again.
			if got := prog.Finalize.Callback.Headers["X-Run"]; got != "${{ run.id }}" {
				t.Errorf("the program's header became %q", got)
			}
		})
	}
}

// TestTaskLogs: a task's logs go under the logs prefix, with the prefix's
// run-time expressions filled in and the run id in the path once.
func TestTaskLogs(t *testing.T) {
	run := testRun(t)
	for _, tt := range []struct{ logs, want string }{
		{"az://logs/", "az://logs/w-run-1/t/"},
		{"az://logs/bmc", "az://logs/bmc/w-run-1/t/"},
		{"az://logs/${{ run.name }}/", "az://logs/w/w-run-1/t/"},
		{"az://logs/${{ run.id }}/", "az://logs/w-run-1/t/"},
		{"az://logs/${{ run.name }}/${{ run.id }}/", "az://logs/w/w-run-1/t/"},
		{"az://logs/run-${{ run.id }}", "az://logs/run-w-run-1/t/"},
	} {
		if got := TaskLogs(tt.logs, run, "t"); got != tt.want {
			t.Errorf("TaskLogs(%q) = %q, want %q", tt.logs, got, tt.want)
		}
	}
}

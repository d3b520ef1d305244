package executor

import (
	"context"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
	"github.com/google/go-cmp/cmp"
)

// The finalize step is given its inputs, with the run-time expressions
// in them filled in, for the backend to stage before it runs.
func TestFinishGivesInputs(t *testing.T) {
	prog := compileSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
finalize:
  run: ./summarize.sh
  inputs:
    - {from: summarize.sh}
    - {from: "az://res/${{ run.id }}/", path: results}
`, nil)
	p := planner.New(prog, planner.Capabilities{Name: "mock"}, nil)
	run := testRun(t)
	o, err := RunTasks(context.Background(), p, &mockBackend{RunTaskFn: func(context.Context, *Attempt) Result { return succeeded() }}, run, nil, Options{Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []compiler.Input
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		got = a.Task.Inputs
		return succeeded()
	}}
	if _, err := Finish(context.Background(), p, be, run, nil, o, FinishOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []compiler.Input{
		{From: "summarize.sh", Kind: compiler.InputFile, Path: "summarize.sh"},
		{From: "az://res/" + run.ID + "/", Kind: compiler.InputBlobPrefix, Path: "results"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("finalize inputs (-want +got):\n%s", d)
	}
}

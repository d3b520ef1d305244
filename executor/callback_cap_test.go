package executor

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/planner"
)

// TestCallbackListsCapped: a sweep's callback carries at most
// CallbackListMax failed tasks and outputs, says how many it left out, and
// stays small enough for a receiver's body limit, keeping the finalize
// step's own entry; summary.json keeps them all.
func TestCallbackListsCapped(t *testing.T) {
	const n = CallbackListMax + 200
	hook := newHookServer(t, http.StatusOK)
	var b strings.Builder
	b.WriteString("apiVersion: bmc/v1\nkind: Workload\nname: sweep\ntasks:\n  - id: t\n    matrix: {i: [")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(i))
	}
	b.WriteString("]}\n    run: \"false\"\n    outputs: [{path: log.txt, to: \"az://logs/${{ task.id }}.txt\", when: always}]\n")
	b.WriteString("finalize:\n  run: \"false\"\n  callback: {url: \"" + hook.srv.URL + "/hook\", retries: 0}\n")
	prog := compileSpec(t, b.String(), nil)
	p := planner.New(prog, planner.Capabilities{Name: "mock"}, nil)
	run := testRun(t)
	j, err := OpenJournal(filepath.Join(run.Dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		r := failed(1)
		if len(a.Task.Outputs) > 0 {
			r.Outputs = []string{a.Task.Outputs[0].To}
		}
		return r
	}}
	o, err := RunTasks(context.Background(), p, be, run, j, Options{Slots: 4, KeepGoing: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Finish(context.Background(), p, be, run, j, o, FinishOptions{})
	if err != nil || res.CallbackErr != nil {
		t.Fatalf("Finish: %v, callback %v", err, res.CallbackErr)
	}
	reqs := hook.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d callbacks", len(reqs))
	}
	var sent CallbackBody
	if err := json.Unmarshal(reqs[0].body, &sent); err != nil {
		t.Fatal(err)
	}
	if len(sent.Failed) != CallbackListMax || sent.FailedOmitted != 201 || !slices.ContainsFunc(sent.Failed, func(f CallbackFailedTask) bool { return f.ID == "finalize" }) || len(sent.Outputs) != CallbackListMax || sent.OutputsOmitted != 200 || sent.Tasks.Failed != n {
		t.Errorf("callback: %d failed (+%d), %d outputs (+%d), counts %+v", len(sent.Failed), sent.FailedOmitted, len(sent.Outputs), sent.OutputsOmitted, sent.Tasks)
	}
	if sum := readSummary(t, run); len(sum.Failed) != n+1 || len(sum.Outputs) != n || sum.FailedOmitted != 0 {
		t.Errorf("summary.json: %d failed, %d outputs, want %d of each", len(sum.Failed), len(sum.Outputs), n)
	}
}

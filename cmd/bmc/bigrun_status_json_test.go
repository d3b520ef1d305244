package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/executor"
	"github.com/google/go-cmp/cmp"
)

// TestBigrunStatusJSON: bmc status -o json, written a task at a time, is
// the text the whole value encodes to.
func TestBigrunStatusJSON(t *testing.T) {
	code := func(n int) *int { return &n }
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	tasks := []executor.TaskState{
		{ID: "a", State: executor.Succeeded, Attempts: 1, ExitCode: code(0), Outputs: []string{"az://c/a?x=1&y=<2>"}, Start: at, End: at.Add(time.Second), LastStart: at},
		{ID: "b", State: executor.Failed, Attempts: 3, ExitCode: code(-9), Reason: "killed \"hard\" \u2028 <now>", Start: at, End: at, LastStart: at},
		{ID: "c", State: executor.Pending},
		{ID: "d", State: executor.Canceled, Reason: "interrupted: bmc stopped while it ran", Interrupted: true},
	}
	fin := &executor.TaskState{ID: "finalize", State: executor.Succeeded, Attempts: 1, ExitCode: code(0), Start: at, End: at}
	row := runRow{ID: "r-1", Workload: "w", Backend: "local", Status: "failed", Created: at, Counts: executor.Counts{Total: 4, Succeeded: 1}}
	st := &executor.RunState{Status: "failed", Started: at, Finished: at, Sessions: 2, Finalize: fin, Callback: &executor.CallbackResult{Attempts: 2, Status: 500, Err: "HTTP 500 <x>"}}
	for _, tc := range []struct {
		name  string
		v     statusJSON
		tasks []executor.TaskState
	}{
		{"tasks", statusJSON{row, st, nil, fin, nil, false}, tasks},
		{"no tasks", statusJSON{row, st, nil, nil, nil, false}, nil},
		{"one task, leftovers, journal only", statusJSON{row, st, nil, fin, []local.Leftover{{PID: 7, Task: "d"}}, true}, tasks[3:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole := tc.v
			whole.Tasks = slices.Clip(append([]executor.TaskState{}, tc.tasks...))
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(whole); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := writeStatusJSON(&got, tc.v, slices.Values(tc.tasks)); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want.String(), got.String()); d != "" {
				t.Errorf("(-encoded whole +written a task at a time):\n%s", d)
			}
		})
	}
}

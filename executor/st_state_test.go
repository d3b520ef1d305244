package executor

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/google/go-cmp/cmp"
)

// TestStLoadStateFinalizeOutputs: the finalize step's state carries the
// outputs its finalize-finished record lists, as the run summary and the
// callback do: bmc status -o json is where a user finds them to remove
// them. A later finalize step's record says what that step uploaded.
func TestStLoadStateFinalizeOutputs(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fin := func(state string, outputs ...string) Record {
		d, err := json.Marshal(FinalizeData{Start: base, Outputs: outputs})
		if err != nil {
			t.Fatal(err)
		}
		return Record{Type: RecordFinalizeFinished, Task: compiler.FinalizeID, Attempt: 1, State: state, ExitCode: codePtr(0), Data: d}
	}
	session := []Record{
		{Type: RecordRunStarted},
		{Type: RecordTaskStarted, Task: "a", Attempt: 1},
		{Type: RecordTaskFinished, Task: "a", Attempt: 1, State: "failed", ExitCode: codePtr(3), Reason: "exit code 3"},
	}
	for _, tc := range []struct {
		name string
		recs []Record
		want []string
	}{
		{"one step", []Record{fin("succeeded", "az://demo/r/summary.json", "az://demo/r/report/")}, []string{"az://demo/r/summary.json", "az://demo/r/report/"}},
		{"no outputs", []Record{fin("failed")}, nil},
		{"the last step's", []Record{fin("succeeded", "az://demo/r/summary.json"), fin("succeeded", "az://demo/r/again.json")}, []string{"az://demo/r/again.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			recs := append(append([]Record{}, session...), tc.recs...)
			writeJournal(t, dir, base, append(recs, Record{Type: RecordRunFinished, State: "failed"})...)
			for name, load := range map[string]func() (*RunState, error){
				"LoadState":     func() (*RunState, error) { return LoadState(dir) },
				"LoadTaskState": func() (*RunState, error) { return LoadTaskState(dir, compiler.FinalizeID) },
			} {
				st, err := load()
				if err != nil {
					t.Fatal(err)
				}
				if st.Finalize == nil {
					t.Fatalf("%s: no finalize step", name)
				}
				if d := cmp.Diff(tc.want, st.Finalize.Outputs); d != "" {
					t.Errorf("%s: finalize outputs (-want +got):\n%s", name, d)
				}
			}
		})
	}
}

// TestStStanding: a task interrupted with the bmc process that drove its
// run is running while a process of it still runs, and otherwise pending,
// to run again on resume: nothing cancelled it. What ended on its own, or
// by bmc cancel, stands as the journal has it.
func TestStStanding(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	code := codePtr(3)
	interrupted := TaskState{ID: "long", State: Canceled, Attempts: 2, Reason: "interrupted: bmc stopped while it ran", Start: at, LastStart: at.Add(time.Minute), Interrupted: true}
	for _, tc := range []struct {
		name      string
		t         TaskState
		stillRuns bool
		want      TaskState
	}{
		{"interrupted, its process runs", interrupted, true,
			TaskState{ID: "long", State: Running, Attempts: 2, Reason: "interrupted: bmc stopped while it ran", Start: at, LastStart: at.Add(time.Minute), Interrupted: true}},
		{"interrupted, nothing of it runs", interrupted, false,
			TaskState{ID: "long", State: Pending, Attempts: 2, Reason: "interrupted: bmc stopped while it ran; runs again on resume", Start: at, LastStart: at.Add(time.Minute), Interrupted: true}},
		{"cancelled by bmc cancel", TaskState{ID: "c", State: Canceled, Attempts: 1, Reason: "cancelled: bmc stopped while it ran, then the run was cancelled"}, false,
			TaskState{ID: "c", State: Canceled, Attempts: 1, Reason: "cancelled: bmc stopped while it ran, then the run was cancelled"}},
		{"failed, a process it left runs", TaskState{ID: "f", State: Failed, Attempts: 1, ExitCode: code, Reason: "exit code 3"}, true,
			TaskState{ID: "f", State: Failed, Attempts: 1, ExitCode: code, Reason: "exit code 3"}},
		{"pending", TaskState{ID: "p", State: Pending}, false, TaskState{ID: "p", State: Pending}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, tc.t.Standing(tc.stillRuns)); d != "" {
				t.Errorf("Standing(%v) (-want +got):\n%s", tc.stillRuns, d)
			}
		})
	}
}

// TestStStandingOfLoadState: what LoadState makes of a task running when
// the bmc driving its run went away is what Standing turns into running
// or pending; cancelled stays what bmc cancel goes by.
func TestStStandingOfLoadState(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	writeJournal(t, dir, base,
		Record{Type: RecordRunStarted},
		Record{Type: RecordTaskStarted, Task: "long", Attempt: 1},
	)
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := st.Tasks["long"]
	if l == nil || l.State != Canceled || !l.Interrupted || !st.WasRunning("long") {
		t.Fatalf("long %+v: want cancelled and interrupted, as bmc cancel and bmc resume go by", l)
	}
	if s := l.Standing(true); s.State != Running {
		t.Errorf("with a process of it running: %s, want running", s.State)
	}
	if s := l.Standing(false); s.State != Pending || s.Reason != "interrupted: bmc stopped while it ran; runs again on resume" {
		t.Errorf("with nothing of it running: %s (%s), want pending", s.State, s.Reason)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/emulator"
)

// TestBbDetachStatusKeepsTimesAndOutputs: bmc status of a detached run
// tells each task's start, last start, end and outputs as Batch timed
// them and as an attached run's journal has them: the first time, read
// from the pool's report, and every time after, from the journal it
// wrote. None ends when bmc status ran.
func TestBbDetachStatusKeepsTimesAndOutputs(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	d := filepath.Join(f.dir, "times")
	os.MkdirAll(d, 0o755)
	spec := filepath.Join(d, "spec.yaml")
	tried := filepath.Join(d, "tried")
	os.WriteFile(spec, []byte(fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: times
tasks:
  - id: one
    run: "sleep 0.2; echo one > one.txt"
    outputs:
      - {path: one.txt, to: "az://bbtimes/${{ run.id }}/one.txt"}
  - id: flaky
    retries: 1
    dependsOn: [one]
    run: "if [ ! -e %s ]; then touch %s; exit 1; fi; echo two > two.txt"
    outputs:
      - {path: two.txt, to: "az://bbtimes/${{ run.id }}/two.txt"}
finalize:
  run: echo finalized
`, tried, tried)), 0o644)
	state := filepath.Join(f.dir, "state")
	if code, out := f.batchRun(t, context.Background(), state, "--detach", spec); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, _ := onlyRun(t, state)
	if _, err := azurebatch.WaitJobDone(t.Context(), f.client, id, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"one":   {"az://bbtimes/" + id + "/one.txt"},
		"flaky": {"az://bbtimes/" + id + "/two.txt"},
	}
	for _, when := range []string{"read from Batch", "read from the journal"} {
		code, sout, serr := bmcRun(t, "status", "--state-dir", state, "-o", "json", id)
		var st statusJSON
		if code != 0 || json.Unmarshal([]byte(sout), &st) != nil {
			t.Fatalf("status %s: exit %d\n%s%s", when, code, sout, serr)
		}
		for _, ts := range st.Tasks {
			bt, err := f.client.GetTask(t.Context(), id, ts.ID)
			if err != nil {
				t.Fatal(err)
			}
			ei := bt.ExecutionInfo
			last := ts.LastStart
			if last.IsZero() {
				last = ts.Start
			}
			if !last.Equal(ei.StartTime) || !ts.End.Equal(ei.EndTime) || ts.Start.IsZero() || ts.Start.After(last) {
				t.Errorf("status %s: task %s start %s, last start %s, end %s; want its last attempt from %s to %s, as Batch timed it",
					when, ts.ID, ts.Start, ts.LastStart, ts.End, ei.StartTime, ei.EndTime)
			}
			if !slices.Equal(ts.Outputs, want[ts.ID]) {
				t.Errorf("status %s: task %s outputs %q, want %q", when, ts.ID, ts.Outputs, want[ts.ID])
			}
			if ts.ID == "flaky" && ts.Attempts != 2 {
				t.Errorf("status %s: task flaky ran %d attempts, want 2", when, ts.Attempts)
			}
		}
		if len(st.Tasks) != 2 {
			t.Errorf("status %s: tasks %+v", when, st.Tasks)
		}
	}
}

package azurebatch

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// TestBbRetriedStartsOnBatchClock: a task whose attempts Batch ran
// before bmc saw any of them (it failed, was retried, and ended between
// two polls) is journaled with starts from Batch's times, so that bmc
// status has its start no later than its last attempt's, nor than its
// end; not with this client's clock at the poll that saw it, later than
// both.
func TestBbRetriedStartsOnBatchClock(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 1)
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "retried", Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{
		{ID: "flaky", Slots: 1, Retries: 2, Run: "exit 3"},
		{ID: "once", Slots: 1, Run: "true"},
	}}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "retried-run", Workload: prog.Name, Dir: t.TempDir()}
	ctx := guard(t)
	if err := NewBackend(BackendOptions{Client: e.c}).Submit(ctx, plan, run); err != nil {
		t.Fatal(err)
	}
	// Every attempt over before bmc looks.
	for {
		j, err := e.c.GetJob(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == JobStateCompleted {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the job never ended")
		case <-time.After(20 * time.Millisecond): // polling Batch, as bmc does
		}
	}
	j, err := executor.OpenJournal(filepath.Join(run.Dir, executor.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	o, err := executor.RunNative(ctx, plan, NewAttached(BackendOptions{Client: e.c}), run, j, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := executor.LoadState(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, pt := range prog.Tasks {
		bt, err := e.c.GetTask(ctx, run.ID, pt.ID)
		if err != nil {
			t.Fatal(err)
		}
		ei := bt.ExecutionInfo
		ts := st.Tasks[pt.ID]
		if ts == nil {
			t.Fatalf("no state for %s", pt.ID)
		}
		if ts.Start.After(ts.LastStart) || ts.LastStart.After(ts.End) || !ts.LastStart.Equal(ei.StartTime) || !ts.End.Equal(ei.EndTime) {
			t.Errorf("%s: journaled start %s, last start %s, end %s; want start <= last start %s (Batch's) <= end %s",
				pt.ID, ts.Start, ts.LastStart, ts.End, ei.StartTime, ei.EndTime)
		}
		if oc := o.Tasks[i]; oc.Start.After(oc.End) || !oc.Start.Equal(ts.Start) {
			t.Errorf("%s: outcome from %s to %s, journal from %s", pt.ID, oc.Start, oc.End, ts.Start)
		}
	}
	if ts := st.Tasks["flaky"]; ts.Attempts != 3 || ts.State != executor.Failed {
		t.Errorf("flaky: %+v, want failed after 3 attempts", ts)
	}
}

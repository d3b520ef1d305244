package azurebatch

import (
	"errors"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// attachRun follows prog's run with a backend that takes it up.
func attachRun(t *testing.T, e *emu, prog *compiler.Program, run *executor.RunInfo) (*executor.Outcome, *Backend, error) {
	t.Helper()
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	be := NewAttached(BackendOptions{Client: e.c})
	o, err := executor.RunNative(t.Context(), plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
	return o, be, err
}

// TestAttachFollows: a run submitted by another backend is followed to
// its end by one that takes it up, which adds nothing.
func TestAttachFollows(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 2)
	prog := fanIn(5)
	prog.Name = "up"
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "up-run", Workload: "up"}
	if err := NewBackend(BackendOptions{Client: e.c}).Submit(t.Context(), plan, run); err != nil {
		t.Fatal(err)
	}
	adds := e.count("POST addtaskcollection")
	o, be, err := attachRun(t, e, prog, run)
	if err != nil {
		t.Fatal(err)
	}
	if o.Counts.Succeeded != len(prog.Tasks) || o.Canceled || be.SubmitFailure() != nil {
		t.Errorf("counts %+v, cancelled %v, failure %v", o.Counts, o.Canceled, be.SubmitFailure())
	}
	if n := e.count("POST addtaskcollection"); n != adds || e.count("POST jobs") != 1 {
		t.Errorf("taking up added tasks (%d add calls, %d before) or made a job (%d)", n, adds, e.count("POST jobs"))
	}
}

// TestAttachUnfinishedSubmission: a job whose submitter stopped before
// it added every task (no submitted mark) would never end: taking it up
// gives the submission up, the run failed, its missing tasks named.
func TestAttachUnfinishedSubmission(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 2)
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "cut", Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{
		{ID: "first", Run: "true", Slots: 1},
		{ID: "second", Run: "true", Slots: 1, DependsOn: []string{"first"}},
	}}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "cut-run", Workload: "cut"}
	m, err := Map(plan, run, fakeLocator{}, MapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.CreateJob(t.Context(), m.Job); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.AddTasks(t.Context(), run.ID, m.Tasks[:1], 4); err != nil {
		t.Fatal(err)
	}
	o, be, err := attachRun(t, e, prog, run)
	if err != nil {
		t.Fatal(err)
	}
	f := be.SubmitFailure()
	if f == nil || len(f.Missing) != 1 || f.Missing[0] != "second" {
		t.Fatalf("failure %+v", f)
	}
	if o.Tasks[1].State == executor.Succeeded || o.Counts.Succeeded > 1 {
		t.Errorf("outcome %+v", o.Tasks)
	}
	j, err := e.c.GetJob(t.Context(), run.ID)
	if err != nil || metaValue(j.Metadata, MetaSubmitted) != SubmittedFailed {
		t.Errorf("job %+v %v", j, err)
	}
}

// TestAttachJobGone: a run whose job is not on Batch cannot be taken up.
func TestAttachJobGone(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	prog := fanIn(1)
	_, _, err := attachRun(t, e, prog, &executor.RunInfo{ID: "nowhere", Workload: "fan"})
	if !errors.Is(err, ErrJobGone) {
		t.Errorf("err %v, want ErrJobGone", err)
	}
}

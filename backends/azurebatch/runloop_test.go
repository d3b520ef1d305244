package azurebatch

// Following a run on the emulator, held to the local backend's meaning of
// events and states: elapsedNs of a task-finished is the last attempt's, a
// task waiting for its retry is pending, and a failed barrier skips what
// waits behind it, naming it, while the rest of the run goes on, as
// --keep-going does on the local backend.

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// waitFile is a script that waits until the file at path exists.
func waitFile(path string) string {
	return "while [ ! -e '" + path + "' ]; do sleep 0.01; done"
}

// touch makes the file a task waits for.
func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// failOnce is a script that fails its first attempt, once the file at
// gate exists, and succeeds after.
func failOnce(dir, gate string) string {
	tried := filepath.Join(dir, "tried")
	return "if [ ! -e '" + tried + "' ]; then touch '" + tried + "'; " + waitFile(gate) + "; exit 1; fi"
}

// followRun runs RunNative in the background, its events on a channel;
// the outcome comes on the other.
func followRun(t *testing.T, ctx context.Context, plan *planner.Plan, be executor.NativeBackend, run *executor.RunInfo) (<-chan executor.Event, <-chan *executor.Outcome) {
	events := make(chan executor.Event, 4096)
	done := make(chan *executor.Outcome, 1)
	go func() {
		o, err := executor.RunNative(ctx, plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond,
			Events: executor.SinkFunc(func(ev executor.Event) { events <- ev })})
		if err != nil {
			t.Error(err)
		}
		done <- o
	}()
	return events, done
}

// TestRunloopEmulatorElapsedIsLastAttempt: a task that fails its first
// attempt and succeeds its second ends with a task-finished whose
// elapsedNs is the second attempt's, as Batch times it.
func TestRunloopEmulatorElapsedIsLastAttempt(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 1)
	dir := t.TempDir()
	gate := filepath.Join(dir, "go")
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "elapsed", Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{
		{ID: "flaky", Slots: 1, Retries: 1, Run: failOnce(dir, gate)},
	}}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "elapsed-run", Workload: prog.Name}
	events, done := followRun(t, guard(t), plan, NewBackend(BackendOptions{Client: e.c}), run)
	var fin executor.Event
	take := func(ev executor.Event) {
		switch {
		case ev.Task != "flaky":
		case ev.Type == executor.EventTaskStarted && ev.Attempt == 1:
			// Seen running: the first attempt's start is known.
			touch(t, gate)
		case ev.Type == executor.EventTaskFinished:
			fin = ev
		}
	}
	var o *executor.Outcome
	for over := false; !over; {
		select {
		case ev := <-events:
			take(ev)
		case o = <-done:
			over = true
		}
	}
	for len(events) > 0 { // RunNative returns once its sink has them all
		take(<-events)
	}
	if o == nil || o.Tasks[0].State != executor.Succeeded || o.Tasks[0].Attempts != 2 {
		t.Fatalf("outcome %+v", o)
	}
	tk, err := e.c.GetTask(t.Context(), run.ID, "flaky")
	if err != nil {
		t.Fatal(err)
	}
	ei := tk.ExecutionInfo
	want := ei.EndTime.Sub(ei.StartTime)
	if fin.Attempt != 2 || fin.Elapsed != want {
		t.Errorf("task-finished of attempt %d, elapsed %s; want attempt 2, elapsed %s (the last attempt's)", fin.Attempt, fin.Elapsed, want)
	}
	if first := o.Tasks[0].Start; !first.Before(ei.StartTime) {
		t.Errorf("the outcome starts at %s, not at the first attempt, before the last one's %s", first, ei.StartTime)
	}
}

// TestRunloopEmulatorRetryWaitIsPending: a task whose attempt failed
// waits for its retry behind another task (the pool has one slot): polls
// then count it pending, not running, as the local backend does.
func TestRunloopEmulatorRetryWaitIsPending(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 1)
	dir := t.TempDir()
	gate1, gate2 := filepath.Join(dir, "go1"), filepath.Join(dir, "go2")
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "retry-wait", Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{
		{ID: "flaky", Slots: 1, Retries: 1, Run: failOnce(dir, gate1)},
		{ID: "hold", Slots: 1, Run: waitFile(gate2)},
	}}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "retry-wait-run", Workload: prog.Name}
	ctx := guard(t)
	be := NewBackend(BackendOptions{Client: e.c})
	if err := be.Submit(ctx, plan, run); err != nil {
		t.Fatal(err)
	}
	tr := executor.NewTracker(plan)
	until := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			res, err := be.Poll(ctx)
			if err != nil {
				t.Fatalf("waiting until %s: %v", what, err)
			}
			for _, u := range res.Updates {
				tr.Apply(u)
			}
			if ok() {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("never %s: %+v", what, tr.Tasks())
			case <-time.After(20 * time.Millisecond): // the poll interval
			}
		}
	}
	until("flaky runs", func() bool { return tr.Tasks()[0].State == executor.Running })
	touch(t, gate1)
	// The emulator, as Batch, starts hold in the slot flaky's failed
	// attempt left, in the same step as it puts flaky back to wait.
	until("hold runs", func() bool { return tr.Tasks()[1].State == executor.Running })
	if diff := cmp.Diff(executor.Counts{Total: 2, Running: 1, Pending: 1}, tr.Counts()); diff != "" {
		t.Errorf("counts while flaky waits for its retry (-want +got):\n%s", diff)
	}
	if f := tr.Tasks()[0]; f.State != executor.Pending || f.Attempts != 1 {
		t.Errorf("flaky, waiting for its retry: %s after %d attempts", f.State, f.Attempts)
	}
	touch(t, gate2)
	until("every task is over", tr.Done)
	for i, o := range tr.Tasks() {
		if o.State != executor.Succeeded {
			t.Errorf("%s: %s %q", prog.Tasks[i].ID, o.State, o.Reason)
		}
	}
	if f := tr.Tasks()[0]; f.Attempts != 2 {
		t.Errorf("flaky: %d attempts", f.Attempts)
	}
}

// TestRunloopBarrierKeepsGoing: a barrier that fails on its own account
// skips the tasks waiting behind it and theirs, naming it, as a failed
// task skips its dependents; the tasks that do not wait for it go on and
// succeed, as Batch's always-on --keep-going has it. The run is failed,
// not cancelled, and the finalize step on the pool reports the same.
func TestRunloopBarrierKeepsGoing(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 2, 4)
	dir := t.TempDir()
	gate := filepath.Join(dir, "go")
	prog := barrierProg("barrier-goes-on", 30)
	prog.Tasks = append(prog.Tasks, compiler.Task{ID: "solo", Run: waitFile(gate), Slots: 1})
	bar := barrierID("g-work", 0, 1)
	c, rewritten := rewritingClient(t, e, bar, `/bin/sh -c "exit 3"`)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "barrier-goes-on-run", Workload: prog.Name, Dir: t.TempDir()}
	events, done := followRun(t, guard(t), plan, NewBackend(BackendOptions{Client: c, DependencyChars: 100}), run)
	ended := map[string][]executor.Event{}
	var o *executor.Outcome
	for over := false; !over; {
		select {
		case ev := <-events:
			if ev.Type == executor.EventTaskFinished || ev.Type == executor.EventTaskSkipped {
				ended[ev.Task] = append(ended[ev.Task], ev)
				if ev.Task == "gather" {
					// Settled: solo, which waits for nothing, may end.
					touch(t, gate)
				}
			}
		case o = <-done:
			over = true
		}
	}
	for len(events) > 0 {
		ev := <-events
		if ev.Type == executor.EventTaskFinished || ev.Type == executor.EventTaskSkipped {
			ended[ev.Task] = append(ended[ev.Task], ev)
		}
	}
	if o == nil {
		t.Fatal("the run was not followed to its end")
	}
	if rewritten.Load() != 1 {
		t.Fatalf("barrier %s was not among the tasks added (%d rewritten)", bar, rewritten.Load())
	}
	why := "skipped: upstream barrier task " + bar + " failed: exit code 3"
	checkGoesOn(t, prog, o.Canceled, executor.Summarize(plan, run, o), outcomes(prog, o), why)
	for _, id := range []string{"gather", "tail"} {
		if evs := ended[id]; len(evs) != 1 || evs[0].Type != executor.EventTaskSkipped || evs[0].Reason != why {
			t.Errorf("%s: events %+v, want one task-skipped", id, evs)
		}
	}
	j, err := e.c.GetJob(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m := metaValue(j.Metadata, MetaBarrierFailed); m != "" || j.State != JobStateActive {
		t.Errorf("job %s, %s = %q: the run was stopped", j.State, MetaBarrierFailed, m)
	}

	// The finalize step on the pool, following the same job, reports the
	// same.
	wd := t.TempDir()
	nr, err := RunNode(guard(t), NodeRun{
		Config: &NodeConfig{RunID: run.ID, Workload: run.Workload, Program: prog, PollInterval: compiler.Duration(20 * time.Millisecond)},
		Client: e.c, WorkDir: wd, TaskDir: wd,
	})
	if err != nil {
		t.Fatal(err)
	}
	nodeTasks := map[string]executor.TaskOutcome{}
	for _, nt := range nr.Tasks {
		nodeTasks[nt.ID] = executor.TaskOutcome{State: nt.State, Attempts: nt.Attempts, ExitCode: nt.ExitCode, Reason: nt.Reason}
	}
	checkGoesOn(t, prog, false, nr.Body, nodeTasks, why)
}

// checkGoesOn checks the outcome of a run whose barrier failed: failed,
// not cancelled; gather and tail skipped, naming the barrier; every other
// task succeeded.
func checkGoesOn(t *testing.T, prog *compiler.Program, cancelled bool, body executor.CallbackBody, tasks map[string]executor.TaskOutcome, why string) {
	t.Helper()
	if cancelled || body.Status != executor.CallbackFailed || len(body.Failed) != 0 {
		t.Errorf("cancelled %v, status %s, counts %+v, failed %+v", cancelled, body.Status, body.Tasks, body.Failed)
	}
	for _, pt := range prog.Tasks {
		o := tasks[pt.ID]
		switch pt.ID {
		case "gather", "tail":
			if o.State != executor.Skipped || o.Attempts != 0 || o.Reason != why {
				t.Errorf("%s: %s after %d attempts, %q; want skipped, %q", pt.ID, o.State, o.Attempts, o.Reason, why)
			}
		default:
			if o.State != executor.Succeeded {
				t.Errorf("%s: %s, %q", pt.ID, o.State, o.Reason)
			}
		}
	}
}

// TestRunloopBarrierStatus: bmc status of a run no bmc follows reads its
// tasks from Batch: those a failed barrier blocks show skipped, naming
// it, not pending; and the job is left alone.
func TestRunloopBarrierStatus(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 2, 4)
	prog := barrierProg("barrier-look", 30)
	prog.Tasks[0].Run = "sleep 60"
	bar := barrierID("g-work", 0, 0)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "barrier-look-run", Workload: prog.Name, Dir: t.TempDir()}
	ctx := t.Context()
	if err := NewBackend(BackendOptions{Client: e.c, DependencyChars: 100}).Submit(ctx, plan, run); err != nil {
		t.Fatal(err)
	}
	if err := e.c.TerminateTask(ctx, run.ID, bar); err != nil {
		t.Fatal(err)
	}
	tasks, err := lookTasks(ctx, e.c, plan, run)
	if err != nil {
		t.Fatal(err)
	}
	why := "skipped: upstream barrier task " + bar + " failed: TaskEnded: The task was terminated at the user's request."
	for _, id := range []string{"gather", "tail"} {
		if o := tasks[id]; o.State != executor.Skipped || o.Reason != why {
			t.Errorf("%s: %s %q; want skipped, %q", id, o.State, o.Reason, why)
		}
	}
	if w := tasks["work-0"]; w.State != executor.Running {
		t.Errorf("work-0: %s", w.State)
	}
	j, err := e.c.GetJob(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m := metaValue(j.Metadata, MetaBarrierFailed); m != "" || j.State != JobStateActive {
		t.Errorf("job %s, %s = %q: status changed the job", j.State, MetaBarrierFailed, m)
	}
}

// lookTasks is what bmc status reads of a run from Batch, by task id.
func lookTasks(ctx context.Context, c *Client, plan *planner.Plan, run *executor.RunInfo) (map[string]executor.TaskOutcome, error) {
	tr, err := Look(ctx, c, plan, run)
	if err != nil {
		return nil, err
	}
	m := map[string]executor.TaskOutcome{}
	for i, o := range tr.Tasks() {
		m[plan.Program.Tasks[i].ID] = o
	}
	return m, nil
}

// TestRunloopBarrierStoppedEarlier: a job an earlier bmc (a bmc for the
// pool from an older package) stopped for a failed barrier, marking it,
// reads as that bmc left it: the run stopped for the barrier, failed, not
// cancelled; the tasks behind the barrier are skipped, naming it.
func TestRunloopBarrierStoppedEarlier(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 2, 4)
	prog := barrierProg("barrier-marked", 30)
	prog.Tasks[0].Run = "sleep 60"
	bar := barrierID("g-work", 0, 0)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "barrier-marked-run", Workload: prog.Name, Dir: t.TempDir()}
	ctx := t.Context()
	if err := NewBackend(BackendOptions{Client: e.c, DependencyChars: 100}).Submit(ctx, plan, run); err != nil {
		t.Fatal(err)
	}
	j, err := e.c.GetJob(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	const reason = "TaskEnded: The task was terminated at the user's request."
	meta := append(j.Metadata, BatchMetadataItem{Name: MetaBarrierFailed, Value: bar + ": " + reason})
	if err := e.c.PatchJob(ctx, run.ID, BatchJobUpdateOptions{Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.TerminateTask(ctx, run.ID, bar); err != nil {
		t.Fatal(err)
	}
	if err := e.c.DisableJob(ctx, run.ID, DisableWait); err != nil {
		t.Fatal(err)
	}
	be := NewAttached(BackendOptions{Client: e.c})
	if err := be.Submit(ctx, plan, run); err != nil {
		t.Fatal(err)
	}
	res, err := be.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	why := "barrier task " + bar + " failed: " + reason
	if rs := res.Stopped; rs == nil || rs.Why != ": the run stopped because "+why || len(rs.Failed) != 0 || res.Cancelled {
		t.Errorf("stopped %+v, cancelled %v", res.Stopped, res.Cancelled)
	}
	if diff := cmp.Diff(map[string]string{"gather": "skipped: upstream " + why}, res.Blocked); diff != "" {
		t.Errorf("blocked (-want +got):\n%s", diff)
	}
}

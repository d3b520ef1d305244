package azurebatch

// A barrier task that fails: Batch blocks what waits behind it for ever,
// and the plan knows nothing of barriers, so the backend must end the run
// itself. The tasks behind the barrier fail without running, naming it,
// their dependents are skipped, and the run, stopped, reads failed, for
// the client that follows it and for the finalize step on the pool.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// barrierProg is a group of n tasks, a task behind the whole group, and
// one behind that: with a small dependency limit, the group's members
// reach gather through barriers.
func barrierProg(name string, n int) *compiler.Program {
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: name, Pool: &compiler.Pool{ID: "p"}}
	g := compiler.Group{ID: "work"}
	for i := range n {
		id := "work-" + strconv.Itoa(i)
		prog.Tasks = append(prog.Tasks, compiler.Task{ID: id, Group: "work", Run: "true", Slots: 1})
		g.Members = append(g.Members, id)
	}
	prog.Tasks = append(prog.Tasks,
		compiler.Task{ID: "gather", Run: "true", Slots: 1, DependsOnGroups: []string{"work"}},
		compiler.Task{ID: "tail", Run: "true", Slots: 1, DependsOn: []string{"gather"}},
	)
	prog.Groups = []compiler.Group{g}
	return prog
}

// rewritingClient is a client of the emulator whose add-collection
// requests have the command line of task id replaced by cmd, as a pool
// whose image cannot run the barrier's command would have it fail; the
// request is signed again. rewritten counts the replacements.
func rewritingClient(t *testing.T, e *emu, id, cmd string) (*Client, *atomic.Int32) {
	t.Helper()
	cred, err := NewSharedKeyCredential(e.s.Account(), e.s.Key())
	if err != nil {
		t.Fatal(err)
	}
	var rewritten atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/addtaskcollection") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var group struct {
				Value []map[string]any `json:"value"`
			}
			if err := json.Unmarshal(body, &group); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			for _, tk := range group.Value {
				if tk["id"] == id {
					tk["commandLine"] = cmd
					rewritten.Add(1)
				}
			}
			if body, err = json.Marshal(group); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.Header.Set("Content-Length", strconv.Itoa(len(body)))
			cred.Sign(r, time.Now())
		}
		e.srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	c, err := New(front.URL, cred, Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 20 * time.Millisecond, MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	return c, &rewritten
}

// guard bounds a run that would otherwise wait for ever: it is cancelled,
// and the test fails on its outcome rather than by the test binary's
// timeout.
func guard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// checkBlocked checks the outcome of a run stopped by a failed barrier:
// failed, not cancelled; gather failed without running, naming the
// barrier and why; tail skipped behind it; every other task succeeded or
// was cancelled by the stop, saying why.
func checkBlocked(t *testing.T, prog *compiler.Program, cancelled bool, body executor.CallbackBody, tasks map[string]executor.TaskOutcome, why string) {
	t.Helper()
	if cancelled || body.Status != executor.CallbackFailed {
		t.Errorf("cancelled %v, status %s, counts %+v", cancelled, body.Status, body.Tasks)
	}
	g := tasks["gather"]
	if g.State != executor.Failed || g.Attempts != 0 || g.ExitCode != nil || g.Reason != "blocked: "+why {
		t.Errorf("gather: %s after %d attempts, exit code %v, %q; want failed without running, %q", g.State, g.Attempts, g.ExitCode, g.Reason, "blocked: "+why)
	}
	if tl := tasks["tail"]; tl.State != executor.Skipped || tl.Reason != "skipped: upstream gather failed" {
		t.Errorf("tail: %s, %q", tl.State, tl.Reason)
	}
	if len(body.Failed) != 1 || body.Failed[0].ID != "gather" || body.Failed[0].Reason != "blocked: "+why || body.Failed[0].Attempts != 0 {
		t.Errorf("failed tasks %+v", body.Failed)
	}
	for _, pt := range prog.Tasks {
		if pt.ID == "gather" || pt.ID == "tail" {
			continue
		}
		o := tasks[pt.ID]
		switch {
		case o.State == executor.Succeeded:
		case o.State == executor.Canceled && strings.HasSuffix(o.Reason, ": the run stopped because "+why):
		default:
			t.Errorf("%s: %s, %q", pt.ID, o.State, o.Reason)
		}
	}
}

func outcomes(prog *compiler.Program, o *executor.Outcome) map[string]executor.TaskOutcome {
	m := map[string]executor.TaskOutcome{}
	for i, pt := range prog.Tasks {
		m[pt.ID] = o.Tasks[i]
	}
	return m
}

// TestBarrierFails: a barrier's command fails (exit code 3). The run ends,
// failed, and the job is ended; the finalize step on the pool, following
// the same job, reports the same.
func TestBarrierFails(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 2, 4)
	prog := barrierProg("barrier-fails", 30)
	bar := barrierID("g-work", 0, 1)
	c, rewritten := rewritingClient(t, e, bar, `/bin/sh -c "exit 3"`)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "barrier-fails-run", Workload: prog.Name, Dir: t.TempDir()}
	be := NewBackend(BackendOptions{Client: c, DependencyChars: 100})
	o, err := executor.RunNative(guard(t), plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rewritten.Load() != 1 {
		t.Fatalf("barrier %s was not among the tasks added (%d rewritten)", bar, rewritten.Load())
	}
	why := "barrier task " + bar + " failed: exit code 3"
	checkBlocked(t, prog, o.Canceled, executor.Summarize(plan, run, o), outcomes(prog, o), why)

	j, err := e.c.GetJob(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != JobStateCompleted && j.State != JobStateTerminating {
		t.Errorf("job %s after the run stopped", j.State)
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
	checkBlocked(t, prog, false, nr.Body, nodeTasks, why)
}

// TestBarrierTerminated: a barrier waiting for a task that still runs is
// terminated (az batch task terminate). Batch completes it failed, and
// blocks what waits behind it: the run stops as for a barrier that
// failed, and the task still running is cancelled, saying why.
func TestBarrierTerminated(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 2, 4)
	prog := barrierProg("barrier-ended", 30)
	prog.Tasks[0].Run = "sleep 60"
	bar := barrierID("g-work", 0, 0)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "barrier-ended-run", Workload: prog.Name, Dir: t.TempDir()}
	be := NewBackend(BackendOptions{Client: e.c, DependencyChars: 100})
	events := make(chan executor.Event, 1024)
	done := make(chan *executor.Outcome, 1)
	go func() {
		o, err := executor.RunNative(guard(t), plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond,
			Events: executor.SinkFunc(func(ev executor.Event) { events <- ev })})
		if err != nil {
			t.Error(err)
		}
		done <- o
	}()
	// Once work-0 runs, every task is added, and the barrier waits for it.
wait:
	for {
		select {
		case ev := <-events:
			if ev.Type == executor.EventTaskStarted && ev.Task == "work-0" {
				break wait
			}
		case o := <-done:
			t.Fatalf("the run ended before work-0 started: %+v", o)
		}
	}
	if err := e.c.TerminateTask(t.Context(), run.ID, bar); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		for range events {
		}
		close(drained)
	}()
	o := <-done
	close(events)
	<-drained
	if o == nil {
		return
	}
	tasks := outcomes(prog, o)
	why := "barrier task " + bar + " failed: TaskEnded: The task was terminated at the user's request."
	checkBlocked(t, prog, o.Canceled, executor.Summarize(plan, run, o), tasks, why)
	if w := tasks["work-0"]; w.State != executor.Canceled {
		t.Errorf("work-0, still running when the run stopped: %s, %q", w.State, w.Reason)
	}

	// The finalize step on the pool finds the job ended and the barrier
	// terminated, as a cancellation would leave them: the job says the
	// run was stopped for the barrier, and it reports the same.
	j, err := e.c.GetJob(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := metaValue(j.Metadata, MetaBarrierFailed); got != bar+": TaskEnded: The task was terminated at the user's request." {
		t.Errorf("job metadata %s = %q", MetaBarrierFailed, got)
	}
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
	checkBlocked(t, prog, false, nr.Body, nodeTasks, why)
}

// TestBarrierEndedByCancel: a barrier terminated by a cancellation (the
// job disabled, its running tasks terminated) is not a failure: the poll
// reports the run cancelled, and stops nothing itself.
func TestBarrierEndedByCancel(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 2, 4)
	prog := barrierProg("barrier-cancel", 30)
	prog.Tasks[0].Run = "sleep 60"
	bar := barrierID("g-work", 0, 0)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "barrier-cancel-run", Workload: prog.Name, Dir: t.TempDir()}
	be := NewBackend(BackendOptions{Client: e.c, DependencyChars: 100})
	ctx := t.Context()
	if err := be.Submit(ctx, plan, run); err != nil {
		t.Fatal(err)
	}
	// The barrier waits for work-0, which sleeps.
	if err := e.c.DisableJob(ctx, run.ID, DisableWait); err != nil {
		t.Fatal(err)
	}
	if err := e.c.TerminateTask(ctx, run.ID, bar); err != nil {
		t.Fatal(err)
	}
	res, err := be.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != nil || !res.Cancelled {
		t.Errorf("stopped %+v, cancelled %v: want the run cancelled", res.Stopped, res.Cancelled)
	}
	j, err := e.c.GetJob(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m := metaValue(j.Metadata, MetaBarrierFailed); m != "" || j.State != JobStateDisabled && j.State != JobStateDisabling {
		t.Errorf("job %s, %s = %q", j.State, MetaBarrierFailed, m)
	}
	if err := be.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestBarrierStatus: a backend that only looks at the run (bmc status)
// reports the tasks a failed barrier blocks, and leaves the job alone.
func TestBarrierStatus(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 2, 4)
	prog := barrierProg("barrier-status", 30)
	prog.Tasks[0].Run = "sleep 60"
	bar := barrierID("g-work", 0, 0)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "barrier-status-run", Workload: prog.Name, Dir: t.TempDir()}
	ctx := t.Context()
	if err := NewBackend(BackendOptions{Client: e.c, DependencyChars: 100}).Submit(ctx, plan, run); err != nil {
		t.Fatal(err)
	}
	if err := e.c.TerminateTask(ctx, run.ID, bar); err != nil {
		t.Fatal(err)
	}
	look := NewBackend(BackendOptions{Client: e.c})
	look.Follow(plan, run)
	res, err := look.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	why := "barrier task " + bar + " failed: TaskEnded: The task was terminated at the user's request."
	if rs := res.Stopped; rs == nil || len(rs.Failed) != 1 || rs.Failed["gather"] != "blocked: "+why || rs.Why != ": the run stopped because "+why {
		t.Errorf("stopped %+v", res.Stopped)
	}
	j, err := e.c.GetJob(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m := metaValue(j.Metadata, MetaBarrierFailed); m != "" || j.State != JobStateActive {
		t.Errorf("job %s, %s = %q: status changed the job", j.State, MetaBarrierFailed, m)
	}
}

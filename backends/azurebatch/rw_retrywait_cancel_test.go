package azurebatch

// A run on the emulator cancelled while a task waits for its retry: the
// task ran, and ends cancelled with its attempt counted, as on the local
// backend, in the outcome, the events and bmc status (the journal).

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// TestRwEmulatorCancelInRetryWait: flaky fails its first attempt and
// waits for its retry behind hold (the pool has one slot); the run is
// cancelled then. Batch keeps no exit code between attempts, so none is
// told; after, behind hold, never started.
func TestRwEmulatorCancelInRetryWait(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 1)
	dir := t.TempDir()
	gate1, gate2 := filepath.Join(dir, "go1"), filepath.Join(dir, "go2")
	tried := filepath.Join(dir, "tried")
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "retry-cancel", Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{
		{ID: "flaky", Slots: 1, Retries: 2, Run: "if [ ! -e '" + tried + "' ]; then touch '" + tried + "'; " + waitFile(gate1) + "; exit 3; fi; echo ran again >&2; exit 9"},
		{ID: "hold", Slots: 1, Run: waitFile(gate2)},
		{ID: "after", Slots: 1, Run: "true", DependsOn: []string{"hold"}},
	}}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "retry-cancel-run", Workload: prog.Name, Dir: t.TempDir()}
	j, err := executor.OpenJournal(filepath.Join(run.Dir, executor.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(guard(t))
	defer cancel()
	events := make(chan executor.Event, 4096)
	done := make(chan *executor.Outcome, 1)
	go func() {
		o, err := executor.RunNative(ctx, plan, NewBackend(BackendOptions{Client: e.c}), run, j, executor.NativeOptions{PollInterval: 20 * time.Millisecond,
			Events: executor.SinkFunc(func(ev executor.Event) { events <- ev })})
		if err != nil {
			t.Error(err)
		}
		done <- o
	}()
	var evs []executor.Event
	waiting, holding := false, false
	var o *executor.Outcome
	for over := false; !over; {
		select {
		case ev := <-events:
			evs = append(evs, ev)
			switch {
			case ev.Type == executor.EventTaskStarted && ev.Task == "flaky" && ev.Attempt == 1:
				touch(t, gate1)
			case ev.Type == executor.EventTaskRetrying && ev.Task == "flaky":
				waiting = true
			case ev.Type == executor.EventTaskStarted && ev.Task == "hold":
				holding = true
			case ev.Type == executor.EventTaskStarted && ev.Task == "flaky":
				t.Errorf("flaky's attempt %d started: it took the slot before hold", ev.Attempt)
			}
			if waiting && holding {
				// flaky waits for its retry, hold runs in its slot.
				cancel()
				waiting = false
			}
		case o = <-done:
			over = true
		}
	}
	for len(events) > 0 { // RunNative returns once its sink has them all
		evs = append(evs, <-events)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if o == nil {
		t.Fatal("no outcome")
	}
	if !o.Canceled {
		t.Error("the run is not cancelled")
	}
	const reason = "cancelled while waiting for attempt 2 (attempt 1 failed)"
	got := outcomes(prog, o)
	if f := got["flaky"]; f.State != executor.Canceled || f.Attempts != 1 || f.ExitCode != nil || f.Reason != reason {
		t.Errorf("flaky: %s after %d attempts, exit code %v, %q; want cancelled after 1, %q", f.State, f.Attempts, f.ExitCode, f.Reason, reason)
	}
	if a := got["after"]; a.State != executor.Canceled || a.Attempts != 0 || a.Reason != "cancelled before it started" {
		t.Errorf("after: %s after %d attempts, %q; want cancelled before it started", a.State, a.Attempts, a.Reason)
	}
	if h := got["hold"]; h.State != executor.Canceled || h.Attempts != 1 {
		t.Errorf("hold: %s after %d attempts, %q", h.State, h.Attempts, h.Reason)
	}
	var retrying, finished *executor.Event
	for i, ev := range evs {
		if ev.Task != "flaky" {
			continue
		}
		switch ev.Type {
		case executor.EventTaskRetrying:
			retrying = &evs[i]
		case executor.EventTaskFinished:
			finished = &evs[i]
		}
	}
	if retrying == nil || finished == nil {
		t.Fatalf("flaky's task-retrying %v, task-finished %v", retrying, finished)
	}
	if finished.State != executor.Canceled || finished.Attempt != 1 || finished.ExitCode != nil || finished.Reason != reason || finished.Elapsed != retrying.Elapsed {
		t.Errorf("flaky's task-finished: %+v; want cancelled, attempt 1, %q, elapsed %s (its failed attempt's)", *finished, reason, retrying.Elapsed)
	}

	// bmc status reads the journal: each task as the outcome has it.
	st, err := executor.LoadState(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range prog.Tasks {
		ts, to := st.Tasks[pt.ID], got[pt.ID]
		if ts == nil {
			t.Errorf("%s: not in the journal", pt.ID)
			continue
		}
		g := executor.TaskOutcome{State: ts.State, Attempts: ts.Attempts, ExitCode: ts.ExitCode, Reason: ts.Reason}
		w := executor.TaskOutcome{State: to.State, Attempts: to.Attempts, ExitCode: to.ExitCode, Reason: to.Reason}
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("%s: bmc status (-outcome +status):\n%s", pt.ID, d)
		}
	}
	if ts, to := st.Tasks["flaky"], got["flaky"]; ts != nil && !to.End.IsZero() && !ts.End.Equal(to.End) {
		t.Errorf("flaky: bmc status ends it at %s, the outcome at %s", ts.End, to.End)
	}
}

package azurebatch

// bmc status of a Batch run that no bmc follows (Look) tells a task that
// waits for its retry as bmc status tells it from a journal, and, once
// the run was cancelled, as the bmc that followed the run would have
// ended it: cancelled while waiting for its next attempt, its attempt
// counted; the tasks that never started cancelled before they started.

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// rw2LookWaiting submits a run on a one-slot pool and waits until flaky,
// whose first attempt failed, waits for its retry behind hold, which
// runs; after waits for hold. It returns the client, the plan and the
// run, and the gate that ends hold.
func rw2LookWaiting(t *testing.T, name string) (*Client, *planner.Plan, *executor.RunInfo, string) {
	t.Helper()
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 1)
	dir := t.TempDir()
	gate1, gate2 := filepath.Join(dir, "go1"), filepath.Join(dir, "go2")
	t.Cleanup(func() { touch(t, gate2) })
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: name, Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{
		{ID: "flaky", Slots: 1, Retries: 2, Run: failOnce(dir, gate1)},
		{ID: "hold", Slots: 1, Run: waitFile(gate2)},
		{ID: "after", Slots: 1, Run: "true", DependsOn: []string{"hold"}},
	}}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: name + "-run", Workload: prog.Name}
	ctx := guard(t)
	if err := NewBackend(BackendOptions{Client: e.c}).Submit(ctx, plan, run); err != nil {
		t.Fatal(err)
	}
	until := func(what string, ok func(map[string]executor.TaskOutcome) bool) {
		t.Helper()
		for {
			tasks, err := lookTasks(ctx, e.c, plan, run)
			if err != nil {
				t.Fatalf("waiting until %s: %v", what, err)
			}
			if ok(tasks) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("never %s: %+v", what, tasks)
			case <-time.After(20 * time.Millisecond): // the poll interval
			}
		}
	}
	until("flaky runs", func(m map[string]executor.TaskOutcome) bool { return m["flaky"].State == executor.Running })
	touch(t, gate1)
	until("flaky waits behind hold", func(m map[string]executor.TaskOutcome) bool {
		return m["flaky"].State == executor.Pending && m["flaky"].Attempts == 1 && m["hold"].State == executor.Running
	})
	return e.c, plan, run, gate2
}

// TestRw2LookRetryWait: a task waiting for its retry in a run going on
// says so as LoadState does; cancelled (the job disabled, as bmc cancel
// does with the finalize step on the pool, or terminated, as it does
// without), it is cancelled while waiting, with its attempt; in a run
// stopped because its tasks could not all be added, it says so too. A
// run whose job has ended reads as a bmc that takes it up (bmc resume)
// ends it.
func TestRw2LookRetryWait(t *testing.T) {
	const (
		waitReason = "cancelled while waiting for attempt 2 (attempt 1 failed)"
		stopWhy    = ": the run stopped because 1 of its tasks could not be submitted"
	)
	for _, how := range []string{"active", "disabled", "terminated", "submit failed"} {
		t.Run(how, func(t *testing.T) {
			c, plan, run, _ := rw2LookWaiting(t, "look-"+strings.ReplaceAll(how, " ", "-"))
			ctx := guard(t)
			want := map[string]executor.TaskOutcome{
				"flaky": {State: executor.Pending, Attempts: 1, Reason: "attempt 1 failed; runs again"},
				"hold":  {State: executor.Running, Attempts: 1},
				"after": {State: executor.Pending},
			}
			ended := false
			switch how {
			case "disabled":
				if err := c.DisableJob(ctx, run.ID, DisableWait); err != nil {
					t.Fatal(err)
				}
				want["flaky"] = executor.TaskOutcome{State: executor.Canceled, Attempts: 1, Reason: waitReason}
				want["after"] = executor.TaskOutcome{State: executor.Canceled, Reason: "cancelled before it started"}
			case "terminated":
				if err := CancelJob(ctx, c, run.ID); err != nil {
					t.Fatal(err)
				}
				want["flaky"] = executor.TaskOutcome{State: executor.Canceled, Attempts: 1, Reason: waitReason}
				want["hold"] = executor.TaskOutcome{State: executor.Canceled, Attempts: 1, Reason: "cancelled"}
				want["after"] = executor.TaskOutcome{State: executor.Canceled, Reason: "cancelled before it started"}
				ended = true
			case "submit failed":
				// The plan has a task the job lacks; the submitter marked
				// the job so and ended it, as failSubmission does.
				prog := *plan.Program
				prog.Tasks = append(slices.Clone(prog.Tasks), compiler.Task{ID: "lost", Slots: 1, Run: "true"})
				plan = planner.New(&prog, Capabilities(prog.Pool), nil)
				j, err := c.GetJob(ctx, run.ID)
				if err != nil {
					t.Fatal(err)
				}
				meta := append(slices.DeleteFunc(j.Metadata, func(m BatchMetadataItem) bool { return m.Name == MetaSubmitted }),
					BatchMetadataItem{Name: MetaSubmitted, Value: SubmittedFailed}, BatchMetadataItem{Name: MetaSubmitError, Value: "InternalError: lost"})
				if err := c.PatchJob(ctx, run.ID, BatchJobUpdateOptions{Metadata: meta}); err != nil {
					t.Fatal(err)
				}
				if err := c.TerminateJob(ctx, run.ID, "bmc: the tasks could not all be added"); err != nil {
					t.Fatal(err)
				}
				want["flaky"] = executor.TaskOutcome{State: executor.Canceled, Attempts: 1, Reason: waitReason + stopWhy}
				want["hold"] = executor.TaskOutcome{State: executor.Canceled, Attempts: 1, Reason: "cancelled" + stopWhy}
				want["after"] = executor.TaskOutcome{State: executor.Canceled, Reason: "cancelled before it started" + stopWhy}
				want["lost"] = executor.TaskOutcome{State: executor.Failed, Reason: "not submitted: InternalError: lost"}
				ended = true
			}
			if ended {
				waitJobEnded(t, ctx, c, run.ID)
			}
			tasks, err := lookTasks(ctx, c, plan, run)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]executor.TaskOutcome{}
			for id, o := range tasks {
				got[id] = executor.TaskOutcome{State: o.State, Attempts: o.Attempts, ExitCode: o.ExitCode, Reason: o.Reason}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("bmc status of the run (-want +got):\n%s", d)
			}
			if !ended {
				return
			}
			// A bmc that takes the run up follows it to the same end.
			o, err := executor.RunNative(ctx, plan, NewAttached(BackendOptions{Client: c}), run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			live := map[string]executor.TaskOutcome{}
			for i, to := range o.Tasks {
				live[plan.Program.Tasks[i].ID] = executor.TaskOutcome{State: to.State, Attempts: to.Attempts, ExitCode: to.ExitCode, Reason: to.Reason}
			}
			if d := cmp.Diff(live, got); d != "" {
				t.Errorf("bmc status of the run (-resumed +status):\n%s", d)
			}
		})
	}
}

// waitJobEnded waits until the job has completed: its running tasks
// stopped.
func waitJobEnded(t *testing.T, ctx context.Context, c *Client, jobID string) {
	t.Helper()
	for {
		j, err := c.GetJob(ctx, jobID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == JobStateCompleted {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the job never ended: %s", j.State)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

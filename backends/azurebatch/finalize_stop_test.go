package azurebatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/emulator"
)

// jobWithManager creates a job on pool whose job manager task runs cmd.
func jobWithManager(t *testing.T, e *emu, id, pool, cmd string) {
	t.Helper()
	err := e.c.CreateJob(t.Context(), BatchJobCreateOptions{ID: id, PoolInfo: BatchPoolInfo{PoolID: pool},
		JobManagerTask: &BatchJobManagerTask{ID: FinalizeTaskID, CommandLine: cmd, KillJobOnCompletion: Ptr(true), RunExclusive: Ptr(false)}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCancelBeforeJobManagerStarts: a run cancelled while its job
// manager task waits for a node (a pool of no nodes) is not left
// disabled for ever: the job is ended, the cancel says the finalize step
// will not run on the pool, and the task does not start when a node
// comes.
func TestCancelBeforeJobManagerStarts(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "empty", 0, 1)
	jobWithManager(t, e, "j", "empty", "/bin/true")
	if err := CancelJob(t.Context(), e.c, "j"); !errors.Is(err, ErrFinalizeStopped) {
		t.Fatalf("CancelJob: %v, want ErrFinalizeStopped", err)
	}
	if err := e.c.ResizePool(t.Context(), "empty", BatchPoolResizeOptions{TargetDedicatedNodes: Ptr(int32(1))}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// The job ended without its finalize task: WaitJobDone says so.
	j, err := WaitJobDone(ctx, e.c, "j", 10*time.Millisecond)
	if !errors.Is(err, ErrFinalizeNotRunning) || j == nil || j.State != JobStateCompleted {
		t.Fatalf("the job did not end as expected: %v (job %+v)", err, j)
	}
	tk, err := e.c.GetTask(t.Context(), "j", FinalizeTaskID)
	if err != nil {
		t.Fatal(err)
	}
	if tk.ExecutionInfo != nil && !tk.ExecutionInfo.StartTime.IsZero() {
		t.Errorf("the job manager task ran after the cancel: %+v", tk.ExecutionInfo)
	}
}

// TestCancelWithJobManagerRunning: a job manager task that has started is
// left to run the finalize step: the job is only disabled.
func TestCancelWithJobManagerRunning(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 2)
	jobWithManager(t, e, "j", "p", "/bin/sleep 30")
	deadline := time.Now().Add(20 * time.Second)
	for {
		tk, err := e.c.GetTask(t.Context(), "j", FinalizeTaskID)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State == TaskStateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job manager task did not start: %s", tk.State)
		}
		time.Sleep(10 * time.Millisecond) // the poll interval
	}
	if err := CancelJob(t.Context(), e.c, "j"); err != nil {
		t.Fatalf("CancelJob: %v", err)
	}
	j, err := e.c.GetJob(t.Context(), "j")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := e.c.GetTask(t.Context(), "j", FinalizeTaskID)
	if err != nil {
		t.Fatal(err)
	}
	if (j.State != JobStateDisabled && j.State != JobStateDisabling) || tk.State != TaskStateRunning {
		t.Errorf("job %s, job manager task %s; want the job disabled and the task running", j.State, tk.State)
	}
	if err := e.c.TerminateJob(t.Context(), "j", "test over"); err != nil {
		t.Fatal(err)
	}
}

// TestWaitJobDoneDisabled: a job disabled (by anyone) while its job
// manager task waits to start never completes; WaitJobDone says so
// instead of waiting for ever.
func TestWaitJobDoneDisabled(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "empty", 0, 1)
	jobWithManager(t, e, "j", "empty", "/bin/true")
	if err := e.c.DisableJob(t.Context(), "j", DisableWait); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := WaitJobDone(ctx, e.c, "j", 10*time.Millisecond); !errors.Is(err, ErrFinalizeNotRunning) {
		t.Fatalf("WaitJobDone: %v, want ErrFinalizeNotRunning", err)
	}
}

// TestWaitJobDoneEndedBeforeFinalize: a job ended (terminated from
// elsewhere) before its job manager task ever started leaves no result
// on the pool; WaitJobDone says so, so that the client finalizes.
func TestWaitJobDoneEndedBeforeFinalize(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "empty", 0, 1)
	jobWithManager(t, e, "j", "empty", "/bin/true")
	if err := e.c.TerminateJob(t.Context(), "j", "from the portal"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := WaitJobDone(ctx, e.c, "j", 10*time.Millisecond); !errors.Is(err, ErrFinalizeNotRunning) {
		t.Fatalf("WaitJobDone: %v, want ErrFinalizeNotRunning", err)
	}
}

package azurebatch

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// TestBbCancelNearTimeout: a task that Batch ended (TaskEnded) is
// cancelled when the run's cancel ended it, however close to its timeout
// that came (within the last second of a 2s timeout, here), and timed
// out when its time ran out before the run was stopped, or with no stop
// at all. The job says, on Batch's clock, when it began to stop.
func TestBbCancelNearTimeout(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name string
		// cancel: this bmc cancels the run; else the job read says it was
		// stopped by someone (disabled), or not at all (stopAt zero).
		cancel bool
		stopAt time.Duration // since the task's start; 0 for no stop
		ended  time.Duration
		want   executor.State
		reason string
	}{
		{"cancelled 1.5s into 2s", true, 1500 * time.Millisecond, 1500 * time.Millisecond, executor.Canceled, "cancelled"},
		{"cancelled by another 1.5s into 2s", false, 1500 * time.Millisecond, 1500 * time.Millisecond, executor.Canceled, "cancelled"},
		{"timed out before the cancel", true, 5 * time.Second, 2 * time.Second, executor.Failed, "timed out after 2s"},
		{"timed out, no cancel", false, 0, 2 * time.Second, executor.Failed, "timed out after 2s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeBatch(t)
			task := sampleTask("slow", TaskStateCompleted, t0.Add(c.ended))
			task.ExecutionInfo = &BatchTaskExecutionInfo{StartTime: t0, EndTime: t0.Add(c.ended), ExitCode: Ptr[int32](-1073741510), Result: TaskResultFailure,
				FailureInfo: &BatchTaskFailureInfo{Category: ErrorCategoryServer, Code: "TaskEnded", Message: "The task was ended."}}
			job := sampleJob("run-1", t0)
			if c.stopAt > 0 {
				// Disabling, then disabled (a job with a job manager task),
				// or terminating, then completed (one without).
				job.State, job.StateTransitionTime = JobStateDisabled, t0.Add(c.stopAt+time.Second)
				job.PreviousState, job.PreviousStateTransitionTime = JobStateDisabling, t0.Add(c.stopAt)
				if c.cancel {
					job.State, job.PreviousState = JobStateCompleted, JobStateTerminating
					job.ExecutionInfo.EndTime, job.ExecutionInfo.TerminateReason = job.StateTransitionTime, cancelledReason
				}
			}
			f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
				path := r.URL.EscapedPath()
				switch {
				case r.Method == "POST" && strings.HasSuffix(path, "/terminate"):
					w.WriteHeader(http.StatusAccepted)
				case r.Method == "GET" && path == "/jobs/run-1":
					f.writeJSON(w, 200, "BatchJob", job)
				case path == "/jobs/run-1/taskcounts":
					f.writeJSON(w, 200, "BatchTaskCountsResult", BatchTaskCountsResult{TaskCounts: BatchTaskCounts{Completed: 1, Failed: 1}, TaskSlotCounts: BatchTaskSlotCounts{Completed: 1, Failed: 1}})
				case r.Method == "GET" && path == "/jobs/run-1/tasks":
					f.writeJSON(w, 200, "BatchTaskListResult", BatchTaskListResult{Value: []BatchTask{task}})
				default:
					t.Errorf("unexpected %s %s", r.Method, path)
					w.WriteHeader(500)
				}
			})
			cl, _ := f.client(Options{})
			prog := &compiler.Program{APIVersion: "bmc/v1", Name: "near", Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{
				{ID: "slow", Slots: 1, Run: "sleep 60", Timeout: compiler.Duration(2 * time.Second)},
			}}
			plan := planner.New(prog, Capabilities(prog.Pool), nil)
			b := newBackend(BackendOptions{Client: cl})
			b.Follow(plan, &executor.RunInfo{ID: "run-1", Workload: "near"})
			if c.cancel {
				if err := b.Cancel(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			res, err := b.Poll(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Updates) != 1 || res.Updates[0].State != c.want || res.Updates[0].Reason != c.reason {
				t.Errorf("updates %+v, want slow %s (%s)", res.Updates, c.want, c.reason)
			}
		})
	}
}

package main

// bmc status, logs and cancel for runs on Azure Batch: the journal holds
// what the client that followed the run saw; a run the client left
// (--detach) or that is still going is read from Batch itself.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// isBatchRun reports whether the run in dir ran on Azure Batch.
func isBatchRun(dir string) (executor.Meta, bool) {
	m, err := executor.ReadMeta(dir)
	return m, err == nil && m.Backend == azurebatch.Name
}

// batchRunState is a Batch run's state as Batch tells it: the job manager
// task's result once the job is over, else the tasks' states now.
func batchRunState(ctx context.Context, cmd *cobra.Command, dir string, meta executor.Meta, prog *compiler.Program, st *executor.RunState) (*executor.RunState, error) {
	c, err := inspectClient(cmd)
	if err != nil {
		return nil, err
	}
	j, err := c.GetJob(ctx, meta.ID)
	if err != nil {
		return nil, err
	}
	out := &executor.RunState{Tasks: map[string]*executor.TaskState{}, Started: st.Started, Sessions: st.Sessions, Status: "running"}
	if j.State == azurebatch.JobStateCompleted && j.JobManagerTask != nil {
		if nr, err := azurebatch.ReadNodeResult(ctx, c, meta.ID); err == nil && nr.Status != "" {
			redactNodeResult(nr)
			for _, t := range nr.Tasks {
				out.Tasks[t.ID] = &executor.TaskState{ID: t.ID, State: t.State, Attempts: t.Attempts, ExitCode: t.ExitCode, Reason: t.Reason,
					Outputs: t.Outputs, Start: t.Start, LastStart: t.LastStart, End: t.End}
			}
			if f := nr.Finalize; f != nil {
				out.Finalize = &executor.TaskState{ID: compiler.FinalizeID, State: f.State, Attempts: 1, ExitCode: f.ExitCode, Reason: f.Reason, Start: f.Start, End: f.End}
			}
			out.Callback = nr.Callback
			// The run's status as the journal then has it: a callback that
			// failed fails the run, whatever its tasks did.
			out.Status, out.Finished = string(nr.Result().Final()), nr.Body.FinishedAt
			if err := journalPoolOutcome(dir, nr); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "bmc: run %s: recording its outcome: %v\n", meta.ID, err)
			}
			return out, nil
		}
	}
	// Every task's state, once: a status is asked for now and then, not
	// polled. Tasks behind a failure, or a failed barrier, show skipped,
	// naming it, as the bmc following the run journals them.
	plan := planner.New(prog, azurebatch.Capabilities(prog.Pool), nil)
	tr, err := azurebatch.Look(ctx, c, plan, &executor.RunInfo{ID: meta.ID, Workload: meta.Workload, Storage: meta.Storage})
	if err != nil {
		return nil, err
	}
	for i, t := range tr.Tasks() {
		id := plan.Program.Tasks[i].ID
		out.Tasks[id] = &executor.TaskState{ID: id, State: t.State, Attempts: t.Attempts, ExitCode: t.ExitCode, Reason: t.Reason, Outputs: t.Outputs, Start: t.Start, End: t.End}
	}
	if j.State == azurebatch.JobStateCompleted {
		out.Status = "completed"
		if j.ExecutionInfo != nil {
			out.Finished = j.ExecutionInfo.EndTime
			out.Status = "completed (" + j.ExecutionInfo.TerminateReason + ")"
		}
	}
	return out, nil
}

// journalPoolOutcome journals the outcome the finalize step on the pool
// left, for a run no bmc here followed to its end (--detach): bmc runs
// then shows it, and bmc status reads it from the journal from then on.
// A run a bmc process drives, or whose end is journaled, is left alone.
func journalPoolOutcome(dir string, nr *azurebatch.NodeResult) error {
	unlock, err := executor.Lock(dir)
	if err != nil {
		return nil // a bmc process drives the run, and journals its end
	}
	defer unlock()
	st, err := executor.LoadState(dir)
	if err != nil || !st.Finished.IsZero() {
		return err
	}
	j, err := executor.OpenJournal(filepath.Join(dir, executor.JournalFile))
	if err != nil {
		return err
	}
	defer j.Close()
	for _, t := range nr.Tasks {
		// As the client that followed the run journals a task: its first
		// attempt's start and its last one's, then its end, at the times
		// the pool's report gives (none, from an older bmc there: then
		// the end is now).
		if !t.Start.IsZero() {
			if err := j.AppendAsync(executor.Record{Type: executor.RecordTaskStarted, Time: t.Start.UTC(), Task: t.ID, Attempt: 1}); err != nil {
				return err
			}
			if t.Attempts > 1 && t.LastStart.After(t.Start) {
				if err := j.AppendAsync(executor.Record{Type: executor.RecordTaskStarted, Time: t.LastStart.UTC(), Task: t.ID, Attempt: t.Attempts}); err != nil {
					return err
				}
			}
		}
		typ := executor.RecordTaskFinished
		if t.State == executor.Skipped {
			typ = executor.RecordTaskSkipped
		}
		rec := executor.Record{Type: typ, Time: t.End.UTC(), Task: t.ID, Attempt: t.Attempts, State: string(t.State), ExitCode: t.ExitCode, Reason: t.Reason}
		if len(t.Outputs) > 0 {
			rec.Data = rawJSON(map[string]any{"outputs": t.Outputs})
		}
		if err := j.AppendAsync(rec); err != nil {
			return err
		}
	}
	if f := nr.Finalize; f != nil {
		rec := executor.Record{Type: executor.RecordFinalizeFinished, Time: f.End, Task: compiler.FinalizeID, Attempt: 1, State: string(f.State), ExitCode: f.ExitCode, Reason: f.Reason, Data: rawJSON(executor.FinalizeData{Start: f.Start, Outputs: f.Outputs})}
		if err := j.AppendAsync(rec); err != nil {
			return err
		}
	}
	if cb := nr.Callback; cb != nil {
		if err := j.AppendAsync(executor.Record{Type: executor.RecordCallback, Data: rawJSON(cb)}); err != nil {
			return err
		}
	}
	// The run's status as the client that followed it would journal it.
	return j.Append(executor.Record{Type: executor.RecordRunFinished, Time: nr.Body.FinishedAt, State: string(nr.Result().Final()), Data: rawJSON(nr.Body.Tasks)})
}

// batchLogs prints a task's log from its node through the task file API.
func batchLogs(ctx context.Context, cmd *cobra.Command, dir string, meta executor.Meta, task, stream string, attempt int) error {
	if attempt > 0 {
		return &exitError{code: exitFailed, err: errors.New("--attempt: Batch keeps only the last attempt's logs")}
	}
	name := stream + ".txt"
	if task == compiler.FinalizeID {
		if meta.Extra["finalizeOn"] != "pool" {
			return nil // the finalize step ran here: its log is local
		}
		name = azurebatch.NodeStepLog(stream)
	}
	c, err := inspectClient(cmd)
	if err != nil {
		return err
	}
	rc, err := c.GetTaskFile(ctx, meta.ID, task, name, 0, -1)
	if err != nil {
		if azurebatch.IsNotFound(err) {
			// A task the journal says never ran (skipped behind a failure,
			// cancelled before it started) is told as the journal tells
			// it, as on the local backend.
			if task != compiler.FinalizeID {
				if st, jerr := executor.LoadTaskState(dir, task); jerr == nil {
					if ts := st.Tasks[task]; ts != nil && ts.Attempts == 0 && ts.State.Terminal() {
						return noLog(dir, task, stream, ts)
					}
				}
			}
			return &exitError{code: exitFailed, err: fmt.Errorf("task %s has no %s in run %s on Batch (it has not run, or its job was deleted)", task, name, filepath.Base(dir))}
		}
		return err
	}
	defer rc.Close()
	_, err = io.Copy(cmd.OutOrStdout(), rc)
	return err
}

// batchCancel cancels a Batch run no local bmc follows: the job is
// stopped, and its finalize step (on the pool) still runs. A run whose
// journal has its end, or whose job has ended or is gone, is not in
// progress, as on the local backend.
func batchCancel(ctx context.Context, cmd *cobra.Command, dir string, meta executor.Meta, set *setFlag) error {
	notRunning := &exitError{code: exitFailed, err: fmt.Errorf("run %s is not in progress", meta.ID)}
	st, err := executor.LoadState(dir)
	if err != nil {
		return err
	}
	if !st.Finished.IsZero() {
		return notRunning
	}
	if _, driven := executor.LockHolder(dir); meta.Extra["finalizeOn"] != "pool" && !driven {
		// The finalize step was the client's, and the bmc that ran the
		// run is gone: this one takes the run up, stops it, and ends it
		// as that bmc would have.
		return cancelHere(cmd, dir, meta, st, set)
	}
	c, err := batchClient(cmd)
	if err != nil {
		return err
	}
	if err := azurebatch.CancelJob(ctx, c, meta.ID); err != nil {
		switch {
		case errors.Is(err, azurebatch.ErrFinalizeStopped):
			fmt.Fprintf(cmd.OutOrStdout(), "cancelled run %s on Azure Batch before its finalize task started on the pool: its job was ended, and no finalize step and no callback will run for it\n", meta.ID)
			return nil
		case errors.Is(err, azurebatch.ErrJobEnded):
			return notRunning
		case azurebatch.IsNotFound(err):
			return &exitError{code: exitFailed, err: fmt.Errorf("run %s is not in progress: its job is not on Azure Batch", meta.ID)}
		}
		return fmt.Errorf("cancel run %s: %w", meta.ID, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "cancelling run %s on Azure Batch; its finalize step and callback still run\n", meta.ID)
	return nil
}

// batchRow is row with the state read from Batch.
func batchRow(row runRow, prog *compiler.Program, st *executor.RunState) runRow {
	row.State, row.Status = st, st.Status
	row.Counts = executor.Counts{Total: len(prog.Tasks)}
	for _, t := range prog.Tasks {
		if ts := st.Tasks[t.ID]; ts != nil {
			countState(&row.Counts, ts.State)
		} else {
			row.Counts.Pending++
		}
	}
	return row
}

// cancelHere cancels a run on Azure Batch whose finalize step is the
// client's and whose bmc process is gone: the run is taken up as bmc
// resume would, its tasks are stopped on Batch, and its finalize step and
// callback (status cancelled) run here. A run whose tasks were over by
// then keeps its outcome. The run's secrets are taken as bmc resume takes
// them.
func cancelHere(cmd *cobra.Command, dir string, meta executor.Meta, st *executor.RunState, set *setFlag) error {
	prog, err := executor.ReadProgram(dir)
	if err != nil {
		return err
	}
	if meta.Redacted {
		if prog, err = restoreSecrets(meta, prog, set, "ending it here"); err != nil {
			return err
		}
	}
	if err := resumableBatch(meta, prog, st); err != nil {
		return err
	}
	o := &runOptions{progress: "none", transfers: 8, cancelNow: true}
	fmt.Fprintf(cmd.OutOrStdout(), "cancelling run %s on Azure Batch, whose bmc process is gone: its tasks are stopped, then its finalize step and callback run here\n", meta.ID)
	err = driveBatch(cmd, prog, meta, o, st)
	var ee *exitError
	switch {
	case !errors.As(err, &ee):
	case ee.err == nil && (ee.code == exitCanceled || ee.code == exitFailed):
		return nil // cancelled, or failed before the cancel: as the report says
	case ee.code == exitCanceled:
		return &exitError{code: exitFailed, err: ee.err} // the callback failed
	}
	return err
}

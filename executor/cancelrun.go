package executor

import (
	"fmt"
	"time"

	"github.com/bmc-dev/bmc/planner"
)

// CancelInterrupted ends the task phase of a run whose bmc process went
// away before the run was over (its status is interrupted), as a Ctrl-C
// would have ended it: every task that had not ended is journaled as
// cancelled, and the outcome returned is for Finish, which runs the
// finalize step and sends the callback with status cancelled. Tasks that
// ended keep their outcome. A run whose tasks had all ended (its bmc went
// away in the finalize step or the callback) is not cancelled: as with a
// cancel that reaches a live bmc then, its outcome stands, unless its own
// session had cancelled tasks already. The caller holds the run's lock,
// and has stopped what the tasks left running; st is the run's state,
// read once the lock was held: one read before may be of a run a resume
// has since finished.
func CancelInterrupted(plan *planner.Plan, j *Journal, st *RunState, now func() time.Time) (*Outcome, error) {
	if now == nil {
		now = time.Now
	}
	tasks := plan.Program.Tasks
	o := &Outcome{Tasks: make([]TaskOutcome, len(tasks)), Started: st.Started}
	if o.Started.IsZero() {
		o.Started = now()
	}
	o.Counts.Total = len(tasks)
	for i := range tasks {
		id := tasks[i].ID
		to := &o.Tasks[i]
		ts := st.Tasks[id]
		if ts != nil {
			to.State, to.Attempts, to.ExitCode, to.Reason = ts.State, ts.Attempts, ts.ExitCode, ts.Reason
			to.Outputs, to.Start, to.End = ts.Outputs, ts.Start, ts.End
		}
		why, waiting := st.waiting(id)
		switch {
		case ts != nil && ts.Interrupted:
			to.State, to.Reason, to.End = Canceled, "cancelled: bmc stopped while it ran, then the run was cancelled", now()
			if j != nil {
				if err := j.Hold(Record{Type: RecordTaskFinished, Task: id, Attempt: ts.Attempts, State: string(Canceled), Reason: to.Reason}); err != nil {
					return nil, fmt.Errorf("journal: %w", err)
				}
			}
		case ts != nil && ts.State == Pending && waiting:
			// It ran, and waited for its retry: it keeps that attempt's
			// exit code and end, as a cancel in the live run leaves it.
			to.State, to.Reason = Canceled, waitCancelled(ts.Attempts, why)
			if j != nil {
				if err := j.Hold(waitEndRecord(id, ts.Attempts, Canceled, ts.ExitCode, to.Reason, ts.End)); err != nil {
					return nil, fmt.Errorf("journal: %w", err)
				}
			}
		case ts == nil || !ts.State.Terminal():
			to.State, to.Reason = Canceled, "cancelled before it started"
			if j != nil {
				if err := j.Hold(Record{Type: RecordTaskSkipped, Task: id, State: string(Canceled), Reason: to.Reason}); err != nil {
					return nil, fmt.Errorf("journal: %w", err)
				}
			}
		}
		switch to.State {
		case Succeeded:
			o.Counts.Succeeded++
		case Failed:
			o.Counts.Failed++
		case Skipped:
			o.Counts.Skipped++
		default:
			o.Counts.Cancelled++
		}
	}
	// A task that ended cancelled, now or in the session that went away
	// (a Ctrl-C there, before its bmc was killed), makes the run
	// cancelled; with none, every task had ended on its own.
	o.Canceled = o.Counts.Cancelled > 0
	if j != nil {
		if err := j.Flush(); err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
	}
	o.Finished = now()
	return o, nil
}

// OutcomeOf is the outcome of a run's tasks as its journal tells it, for
// a run whose tasks are over and whose finalize step or callback is to be
// done (again) without running any task: each task keeps how it ended;
// one the journal does not tell ended is cancelled, as the run's end left
// it. The run counts as cancelled when the journal says it was, or a task
// was cancelled.
func OutcomeOf(plan *planner.Plan, st *RunState) *Outcome {
	tasks := plan.Program.Tasks
	o := &Outcome{Tasks: make([]TaskOutcome, len(tasks)), Started: st.Started, Finished: st.Finished}
	o.Counts.Total = len(tasks)
	for i := range tasks {
		to := &o.Tasks[i]
		if ts := st.Tasks[tasks[i].ID]; ts != nil && ts.State.Terminal() {
			to.State, to.Attempts, to.ExitCode, to.Reason = ts.State, ts.Attempts, ts.ExitCode, ts.Reason
			to.Outputs, to.Start, to.End = ts.Outputs, ts.Start, ts.End
		} else {
			to.State, to.Reason = Canceled, "cancelled: the run ended before it did"
		}
		switch to.State {
		case Succeeded:
			o.Counts.Succeeded++
		case Failed:
			o.Counts.Failed++
		case Skipped:
			o.Counts.Skipped++
		default:
			o.Counts.Cancelled++
		}
	}
	// Cancelled as the journal says, or as a task cancelled says: a run
	// whose bmc went away after a cancel stopped its tasks was cancelled.
	o.Canceled = st.Status == string(Canceled) || o.Counts.Cancelled > 0
	if o.Finished.IsZero() {
		o.Finished = time.Now()
	}
	return o
}

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/schema"
	"github.com/spf13/cobra"
)

func newLogsCmd() *cobra.Command {
	var stderr, follow bool
	var attempt int
	cmd := &cobra.Command{
		Use:   "logs RUN TASK",
		Short: "Print a task's stdout (or stderr)",
		Long: `Print a task's stdout, or its stderr with --stderr, from the run directory.
--follow keeps printing what the task writes, through its retries, until it
is over. --attempt N shows attempt N's log (1 for the first); without it,
the last attempt's. TASK may be "finalize".`,
		Example: `  bmc logs latest align-s1
  bmc logs latest broken --stderr
  bmc logs latest broken --stderr --attempt 1
  bmc logs latest train-0_1-32-1 --follow`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("attempt") && attempt < 1 {
				return usagef("--attempt must be 1 or more")
			}
			dir, err := executor.FindRun(stateDir(cmd), args[0])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			task := args[1]
			t, err := knownTask(cmd, dir, task)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			stream := "stdout"
			if stderr {
				stream = "stderr"
			}
			if meta, ok := isBatchRun(dir); ok && (task != "finalize" || meta.Extra["finalizeOn"] == "pool" && !ranHere(dir, task)) {
				return batchLogs(cmd.Context(), cmd, dir, meta, task, stream, attempt)
			}
			run := filepath.Base(dir)
			// A damaged journal leaves the logs to be read as they are.
			// Only the task's records are read: on a sweep, the journal
			// is mostly the other tasks'.
			st, _ := executor.LoadTaskState(dir, task)
			ts := taskState(st, task)
			// The last attempt's log is the one without a number.
			earlier := attempt > 0 && (ts == nil || attempt != ts.Attempts)
			follow = follow && !earlier // an earlier attempt's log is complete
			// Directories are made ahead of tasks; whether a task ran is
			// the journal's to say.
			if !follow && st != nil && task != compiler.FinalizeID && (ts == nil || ts.Attempts == 0) {
				return noLog(dir, task, stream, ts)
			}
			name := stream + ".txt"
			if earlier {
				if ts != nil && attempt > ts.Attempts {
					return &exitError{code: exitFailed, err: fmt.Errorf("task %s has no attempt %d log in run %s: it has made %d attempt%s", task, attempt, run, ts.Attempts, plural(ts.Attempts))}
				}
				name = fmt.Sprintf("%s.attempt-%d.txt", stream, attempt)
			}
			if follow {
				retries := 0
				if t != nil {
					retries = t.Retries
				}
				fl := &follower{cmd: cmd, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), dir: dir, task: task, stream: stream, retries: retries}
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				ctx := cmd.Context()
				err := fl.follow(func() bool {
					select {
					case <-ctx.Done():
						return false
					case <-tick.C:
						return true
					}
				})
				if err == nil && ctx.Err() != nil {
					return &exitError{code: exitCanceled} // Ctrl-C, as bmc run exits
				}
				return err
			}
			f, err := os.Open(filepath.Join(local.TaskDir(dir, task), name))
			if errors.Is(err, os.ErrNotExist) {
				if _, err := os.Stat(local.TaskDir(dir, task)); err != nil {
					if ts != nil && ts.Attempts > 0 {
						// The task ran: something removed its directory,
						// maybe the task itself.
						return &exitError{code: exitFailed, err: fmt.Errorf("task %s ran (%s), but its logs are gone: its directory %s was removed", task, ts.State, local.TaskDir(dir, task))}
					}
					return &exitError{code: exitFailed, err: fmt.Errorf("task %s has no logs in run %s: it has not run (see %s)", task, run, hint(cmd, "status", run))}
				}
				switch {
				case earlier:
					return &exitError{code: exitFailed, err: fmt.Errorf("task %s has no attempt %d log in run %s: that attempt wrote nothing", task, attempt, run)}
				case ts != nil && ts.State.Terminal():
					return noLog(dir, task, stream, ts)
				}
				return &exitError{code: exitFailed, err: fmt.Errorf("task %s: no %s yet", task, name)}
			}
			if err != nil {
				return err
			}
			defer f.Close()
			// An empty log of a task that is over is no log: made ahead, or
			// by an attempt that could not start its program. Told alike.
			if fi, err := f.Stat(); err == nil && fi.Size() == 0 && !earlier && ts != nil && ts.State.Terminal() && ts.State != executor.Succeeded {
				return noLog(dir, task, stream, ts)
			}
			_, err = io.Copy(cmd.OutOrStdout(), f)
			return err
		},
	}
	cmd.Flags().BoolVar(&stderr, "stderr", false, "print stderr instead of stdout")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the task is over")
	cmd.Flags().IntVar(&attempt, "attempt", 0, "print the log of attempt `N` (1 for the first) instead of the last one's")
	return cmd
}

// knownTask returns the run's task, so that a mistyped id is not reported
// as a task that has not run (or, with --follow, waited for until the run
// ends). The task is nil for the finalize step, and when the program
// cannot be read. Only that task of the program is decoded, and the
// others' ids only when it has no such task.
func knownTask(cmd *cobra.Command, dir, task string) (*compiler.Task, error) {
	if task == compiler.FinalizeID {
		return nil, nil
	}
	t, ok, err := executor.ReadTask(dir, task)
	if err != nil {
		return nil, nil // an unreadable plan: the logs may still be there
	}
	if ok {
		return t, nil
	}
	ids, err := executor.ReadTaskIDs(dir)
	if err != nil {
		return nil, nil
	}
	msg := fmt.Sprintf("run %s has no task %s", filepath.Base(dir), task)
	if s := schema.Suggest(task, ids); s != "" {
		msg += "; did you mean " + s + "?"
	} else {
		msg += fmt.Sprintf(" (see %s)", hint(cmd, "status", filepath.Base(dir)))
	}
	return nil, errors.New(msg)
}

// taskState is the task's (or the finalize step's) state in the journal,
// nil if the journal does not name it or cannot be read.
func taskState(st *executor.RunState, task string) *executor.TaskState {
	if st == nil {
		return nil
	}
	if task == compiler.FinalizeID {
		return st.Finalize
	}
	return st.Tasks[task]
}

// noLog is the error for a task without a log: it has not run, or it
// ended before its process could write one (while its inputs were
// staged, say). ts may be nil.
func noLog(dir, task, stream string, ts *executor.TaskState) error {
	run := filepath.Base(dir)
	if ts == nil || ts.Attempts == 0 {
		reason := "it has not run"
		if ts != nil && ts.Reason != "" {
			reason = ts.Reason
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("task %s has no logs in run %s: %s", task, run, reason)}
	}
	why := ts.Reason
	if why == "" {
		why = string(ts.State)
	}
	// Only a log with something in it is kept for an earlier attempt.
	if prev := ts.Attempts - 1; prev > 0 {
		if fi, err := os.Stat(filepath.Join(local.TaskDir(dir, task), fmt.Sprintf("%s.attempt-%d.txt", stream, prev))); err == nil && fi.Size() > 0 {
			why += fmt.Sprintf(" (--attempt %d shows the attempt before)", prev)
		}
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("task %s ended without writing any output in run %s: %s", task, run, why)}
}

// follower prints a task's log as it grows, and goes on with the log of
// each new attempt: before an attempt starts, the local backend renames
// the log of the one before to <stream>.attempt-N.txt (archiveLogs).
type follower struct {
	cmd    *cobra.Command
	out    io.Writer // the log
	errOut io.Writer // where a new attempt is announced
	dir    string
	task   string
	stream string
	// retries is how many attempts may follow a failed one in a session.
	retries int

	// orphaned says the task's bmc was found gone while its processes ran.
	orphaned bool

	f  *os.File // the log being read, nil until one exists
	fi os.FileInfo
	// opened says a log was opened: any later one is a new attempt's.
	opened bool
	// shown is the highest attempt number whose archived log was printed
	// or was there before the follow began.
	shown int
}

// follow prints the log until the task is over (its journal says so),
// no bmc process drives the run, or wait, called between two reads,
// returns false.
func (fl *follower) follow(wait func() bool) error {
	defer func() {
		if fl.f != nil {
			fl.f.Close()
		}
	}()
	for {
		// The state is read first, so that all the task wrote before it
		// was over is printed below. Only the task's: it is read again
		// and again, and on a sweep the journal is tens of megabytes.
		st, err := executor.LoadTaskState(fl.dir, fl.task)
		if err != nil {
			return err
		}
		over := fl.over(st)
		if err := fl.read(); err != nil {
			return err
		}
		if over {
			return fl.end(st)
		}
		if !wait() {
			return nil
		}
	}
}

// over reports whether following the task is over. A failed attempt
// ends it only when the run cannot retry it, for the journal records
// every failed attempt alike: the session's attempts are counted against
// the task's retries (a resumed run gives them afresh). A failure no retry
// can mend (a missing input) is followed until the run ends.
func (fl *follower) over(st *executor.RunState) bool {
	if st.Status == "interrupted" && st.WasRunning(fl.task) {
		// The bmc running the task is gone, but the task's processes may
		// not be: while they run, they may write, and are followed.
		if ls, _ := local.Leftovers(fl.dir, func(task string) bool { return task == fl.task }); len(ls) > 0 {
			if !fl.orphaned {
				fl.orphaned = true
				fmt.Fprintf(fl.errOut, "bmc: no bmc is running run %s any more; following what task %s left running\n", filepath.Base(fl.dir), fl.task)
			}
			return false
		}
	}
	if st.Status != "running" {
		return true
	}
	if fl.task == compiler.FinalizeID {
		return st.Finalize != nil
	}
	ts := st.Tasks[fl.task]
	if ts == nil || !ts.State.Terminal() {
		return false
	}
	return ts.State != executor.Failed || sessionAttempts(fl.dir, fl.task) > fl.retries
}

// sessionAttempts counts the attempts of the task journaled since the run
// was last started or resumed.
func sessionAttempts(dir, task string) int {
	n := 0
	err := executor.ScanJournal(filepath.Join(dir, executor.JournalFile), task, func(r *executor.Record) error {
		switch {
		case r.Type == executor.RecordRunStarted:
			n = 0
		case r.Type == executor.RecordTaskStarted && r.Task == task:
			n++
		}
		return nil
	})
	if err != nil {
		return 0
	}
	return n
}

// end says why a follow that is over printed nothing, or not all: the
// task left no log, or no bmc is left to run it.
func (fl *follower) end(st *executor.RunState) error {
	run := filepath.Base(fl.dir)
	ts := taskState(st, fl.task)
	if st.Status == "interrupted" && (ts == nil || !ts.State.Terminal() || ts.Interrupted) {
		// The journal has the finalize step only once it is over.
		ran := ts != nil && ts.Attempts > 0 || fl.task == compiler.FinalizeID && fl.opened
		if !ran {
			return &exitError{code: exitFailed, err: fmt.Errorf("task %s has not run, and no bmc is running run %s (%s would run it)", fl.task, run, hint(fl.cmd, "resume", run))}
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("task %s did not finish: no bmc is running run %s (%s would run it again)", fl.task, run, hint(fl.cmd, "resume", run))}
	}
	// A log made ahead for a task that then did not run is no log.
	if ts != nil && ts.State.Terminal() && (!fl.opened || ts.Attempts == 0) {
		return noLog(fl.dir, fl.task, fl.stream, ts)
	}
	return nil
}

// read prints what was written since the last read, going on to the
// new attempt's log if the one read was renamed away.
func (fl *follower) read() error {
	for {
		if fl.f == nil {
			if err := fl.open(); err != nil || fl.f == nil {
				return err
			}
		}
		// Checked before reading: a log renamed away is complete, so the
		// read finishes it.
		renamed := fl.renamed()
		if _, err := io.Copy(fl.out, fl.f); err != nil {
			return err
		}
		if !renamed {
			return nil
		}
		for _, a := range fl.archived() {
			if os.SameFile(a.info, fl.fi) {
				fl.shown = max(fl.shown, a.attempt)
			}
		}
		fl.f.Close()
		fl.f = nil
	}
}

func (fl *follower) path() string {
	return filepath.Join(local.TaskDir(fl.dir, fl.task), fl.stream+".txt")
}

// open opens the current log, if there is one. After the first, the logs
// of attempts that came and went between two reads are printed first.
func (fl *follower) open() error {
	f, err := os.Open(fl.path())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	next := fl.shown + 1
	for _, a := range fl.archived() {
		if a.attempt <= fl.shown {
			continue
		}
		if os.SameFile(a.info, fi) {
			next = a.attempt // the log just opened, renamed already
			break
		}
		if !fl.opened {
			fl.shown = a.attempt // an attempt before the follow
			continue
		}
		if err := fl.printArchived(a); err != nil {
			f.Close()
			return err
		}
		next = a.attempt + 1
	}
	if fl.opened {
		fmt.Fprintf(fl.errOut, "bmc: attempt %d\n", next)
	}
	fl.f, fl.fi, fl.opened = f, fi, true
	return nil
}

// renamed reports whether the log being read is no longer the current one.
func (fl *follower) renamed() bool {
	cur, err := os.Stat(fl.path())
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	return !os.SameFile(cur, fl.fi)
}

type archivedLog struct {
	attempt int
	path    string
	info    os.FileInfo
}

// archived lists the logs of the task's earlier attempts, by attempt.
func (fl *follower) archived() []archivedLog {
	prefix := fl.stream + ".attempt-"
	paths, _ := filepath.Glob(filepath.Join(local.TaskDir(fl.dir, fl.task), prefix+"*.txt"))
	var logs []archivedLog
	for _, p := range paths {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), prefix), ".txt"))
		if err != nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			logs = append(logs, archivedLog{n, p, fi})
		}
	}
	slices.SortFunc(logs, func(a, b archivedLog) int { return a.attempt - b.attempt })
	return logs
}

func (fl *follower) printArchived(a archivedLog) error {
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(fl.errOut, "bmc: attempt %d\n", a.attempt)
	_, err = io.Copy(fl.out, f)
	fl.shown = a.attempt
	return err
}

// ranHere reports whether a task of a Batch run ran on this machine: the
// finalize step of a run meant to finalize on the pool runs here when the
// run was stopped before its job manager task started.
func ranHere(dir, task string) bool {
	_, err := os.Stat(filepath.Join(local.TaskDir(dir, task), "stdout.txt"))
	return err == nil
}

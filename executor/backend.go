package executor

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

// Backend runs task attempts. Optional abilities are separate interfaces
// found by type assertion.
type Backend interface {
	// Capabilities are declared up front and checked at plan time.
	Capabilities() planner.Capabilities
	// RunTask runs one attempt to its end: stage inputs, run, collect
	// outputs. It returns when the attempt is over, also when ctx is
	// canceled (then with State Canceled). It does not retry; the
	// executor does.
	RunTask(ctx context.Context, a *Attempt) Result
}

// Preparer is a backend that sets up a run before its first task.
type Preparer interface {
	Prepare(ctx context.Context, run *RunInfo) error
}

// Prefetcher is a backend that can get a task ready before it starts,
// such as creating its directories. The executor calls Prefetch a few
// tasks ahead of those it starts, right after an attempt has started
// (Attempt.Started) and on that attempt's goroutine, so that this work
// overlaps with running tasks instead of adding to each one. Calls are
// never concurrent with each other, but may be with RunTask.
type Prefetcher interface {
	Prefetch(run *RunInfo, t *compiler.Task)
}

// Resumer is a backend told, when a run is resumed, which tasks
// succeeded in its earlier sessions (and are not run again), such as to
// clean up after them what a session killed before its end did not.
// RunTasks calls it once, before the first task starts.
type Resumer interface {
	Resumed(run *RunInfo, done []string)
}

// Cleaner is a backend with work to do once a run is over, such as
// removing the working directories of succeeded tasks.
type Cleaner interface {
	Cleanup(ctx context.Context) error
}

// RunInfo is what a backend knows of the run.
type RunInfo struct {
	ID       string // the run id, also the job id
	Workload string
	Dir      string // the run directory .bmc/runs/<id>
	SpecDir  string // inputs named by path are relative to it
	Storage  string // the blob store's URL, for ${{ run.storage }}
	Log      *slog.Logger
	// Started is when the run was made, for a finalize step run away
	// from its journal (on a Batch pool); zero if not known.
	Started time.Time

	// events is the run's last event queue: the next waits for it, so
	// that the sink gets the run's events one call at a time, in order.
	events *eventQueue
}

// Attempt is one try of a task. Task has the values only a run knows
// filled in (${{ run.id }}, ${{ task.attempt }}).
type Attempt struct {
	Run      *RunInfo
	Task     *compiler.Task
	Number   int  // 1 for the first attempt
	Finalize bool // the finalize step
	// Summary is the path of the run summary, for the finalize step.
	Summary string
	// Started, when set, is for the backend to call once the attempt's
	// process is running (or could not be started). The executor prepares
	// later tasks then, while this one runs, instead of while it starts:
	// work on another core at the moment of a fork delays the new process.
	// A backend that never calls it loses nothing but that timing.
	Started func()
}

// State is a task's state.
type State string

const (
	Pending   State = "pending"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Skipped   State = "skipped"
	Canceled  State = "cancelled"
)

// Terminal reports whether a task in state s is over.
func (s State) Terminal() bool {
	return s == Succeeded || s == Failed || s == Skipped || s == Canceled
}

// Result is the outcome of one attempt.
type Result struct {
	State    State
	ExitCode *int
	// Reason says why an attempt failed, for people: "exit code 3",
	// "timed out after 2h", "input az://raw/s1.fq: not found".
	Reason string
	// NoRetry marks failures a retry cannot mend, as Batch treats
	// pre-processing and upload errors.
	NoRetry    bool
	Outputs    []string // locations written
	Start, End time.Time
}

// ProcessEnd is how a task's process ended, as a backend that runs local
// processes (the local backend, a Batch node's finalize step) saw it.
type ProcessEnd struct {
	ExitCode int
	Signal   string // the signal that ended it, if any
	TimedOut bool
	Canceled bool
	StartErr error // the process could not be started
	Timeout  time.Duration
	Start    time.Time
}

// ProcessResult is the attempt result for how a process ended, with the
// reasons people read in status and callbacks ("exit code 3", "timed out
// after 2h: process group killed"). ctx is the attempt's context.
func ProcessResult(ctx context.Context, p ProcessEnd) Result {
	res := Result{Start: p.Start}
	code := p.ExitCode
	res.ExitCode = &code
	switch {
	case p.StartErr != nil && ctx.Err() != nil:
		res.State, res.Reason, res.ExitCode = Canceled, "cancelled", nil
	case p.StartErr != nil:
		res.State, res.Reason = Failed, p.StartErr.Error()
	case p.Canceled:
		res.State, res.Reason = Canceled, "cancelled: process group killed"
	case p.TimedOut:
		res.State, res.Reason = Failed, fmt.Sprintf("timed out after %s: process group killed", compiler.Duration(p.Timeout))
	case code != 0:
		res.State, res.Reason = Failed, "exit code "+strconv.Itoa(code)
		if p.Signal != "" {
			res.Reason = "killed by " + p.Signal
		}
	default:
		res.State = Succeeded
	}
	return res
}

// fill returns a copy of t with the run-time expressions resolved.
func fill(t *compiler.Task, runID, workload, storage string, attempt int) *compiler.Task {
	var r *strings.Replacer // made on first use: most tasks need none
	sub := func(s string) string {
		if !strings.Contains(s, "${{") {
			return s
		}
		if r == nil {
			r = strings.NewReplacer(
				"${{ run.id }}", runID,
				"${{ run.name }}", workload,
				"${{ run.storage }}", storage,
				"${{ task.attempt }}", strconv.Itoa(attempt),
			)
		}
		return r.Replace(s)
	}
	c := *t
	c.Run = sub(t.Run)
	if needs(t) {
		if t.Command != nil {
			c.Command = make([]string, len(t.Command))
			for i, a := range t.Command {
				c.Command[i] = sub(a)
			}
		}
		if t.Env != nil {
			c.Env = make(map[string]string, len(t.Env))
			for k, v := range t.Env {
				c.Env[k] = sub(v)
			}
		}
		c.Inputs = make([]compiler.Input, len(t.Inputs))
		for i, in := range t.Inputs {
			in.From, in.Path = sub(in.From), sub(in.Path)
			c.Inputs[i] = in
		}
		c.Outputs = make([]compiler.Output, len(t.Outputs))
		for i, o := range t.Outputs {
			o.Pattern, o.To = sub(o.Pattern), sub(o.To)
			c.Outputs[i] = o
		}
		if t.Container != nil {
			ct := *t.Container
			ct.Image = sub(ct.Image)
			c.Container = &ct
		}
	}
	return &c
}

// needs reports whether any of t's fields other than Run holds a run-time
// expression (most tasks have none, and are not copied).
func needs(t *compiler.Task) bool {
	has := func(s string) bool { return strings.Contains(s, "${{") }
	for _, a := range t.Command {
		if has(a) {
			return true
		}
	}
	for _, v := range t.Env {
		if has(v) {
			return true
		}
	}
	for _, in := range t.Inputs {
		if has(in.From) || has(in.Path) {
			return true
		}
	}
	for _, o := range t.Outputs {
		if has(o.Pattern) || has(o.To) {
			return true
		}
	}
	return t.Container != nil && has(t.Container.Image)
}

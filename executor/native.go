package executor

// The run loop for backends that schedule tasks themselves (Azure Batch
// with task dependencies): the executor hands over the whole plan at
// once, then follows what the backend reports, keeping the journal, the
// events and the counts exactly as RunTasks does for the tasks it
// schedules. What a native backend cannot report, the executor works out
// from the plan's graph: a task waiting behind a failure never runs (Batch
// leaves it active for ever) and is skipped, naming the root cause. Events
// and states mean what they mean on the local backend: a task waiting for
// its retry is pending, and a task-finished's elapsedNs is its last
// attempt's.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

// NativeBackend is a backend that resolves dependencies and retries
// itself (planner.Capabilities.NativeDependencies). Its methods are called
// from one goroutine.
type NativeBackend interface {
	Capabilities() planner.Capabilities
	// Submit hands every task of the plan to the backend, or, for a
	// watcher that did not submit, waits until the submitter has. On an
	// error nothing of the run keeps running.
	Submit(ctx context.Context, plan *planner.Plan, run *RunInfo) error
	// Poll reports the tasks whose state changed since the last call. A
	// task reported twice in the same state is reported once by the
	// executor; tasks the plan does not know (helpers the backend added)
	// are ignored.
	Poll(ctx context.Context) (PollResult, error)
	// Cancel stops the run's tasks: running ones are stopped, waiting
	// ones never start. Polls after it report the stopped tasks.
	Cancel(ctx context.Context) error
}

// PollResult is what one poll found.
type PollResult struct {
	Updates []TaskUpdate
	// Cancelled says the run was cancelled by someone else (bmc cancel
	// from another machine): the executor stops as after its own Cancel.
	Cancelled bool
	// Stopped, when set, says the backend stopped the run itself, for a
	// failure of the run rather than a cancellation (tasks it could not
	// take): the executor settles the tasks it names as failed, then
	// waits for the stopped tasks as after a cancellation, and the run
	// reads failed, not cancelled. Reported once is enough.
	Stopped *RunStop
	// Blocked are tasks that will never run though nothing they depend on
	// failed (Batch blocks them behind a helper task of the backend's own
	// that failed), by id, with why, as "skipped: upstream ...". The
	// executor skips them and everything behind them with that reason, as
	// behind a failed task; the rest of the run goes on. Reported once is
	// enough.
	Blocked map[string]string
}

// RunStop is why a backend stopped a run that failed as a whole.
type RunStop struct {
	// Why ends the reason of each task the stop cancels, after
	// "cancelled": ": the run stopped because ...".
	Why string
	// Failed are the tasks that failed without running, by id, with why
	// (for example "not submitted: ..."). Their dependents are skipped.
	Failed map[string]string
}

// TaskUpdate is a task's state as a native backend reports it.
type TaskUpdate struct {
	ID string
	// State is Running, Succeeded, Failed or Canceled; or Pending for a
	// task whose attempt failed and that waits to be run again.
	State State
	// Attempts is the number of the attempt reported, 1 for the first
	// (for Pending, the attempt that failed); the executor records an
	// attempt it never saw running as begun and failed.
	Attempts int
	ExitCode *int
	Reason   string
	Outputs  []string
	// Start and End are the reported attempt's, when known.
	Start, End time.Time
}

// NativeOptions tune RunNative.
type NativeOptions struct {
	// Events receives the run's events; nil for none.
	Events Sink
	// Progress is how often a progress event is sent; zero for never.
	Progress time.Duration
	// PollInterval is the time between polls; zero means 2s.
	PollInterval time.Duration
	// CancelGrace bounds the wait, after a cancellation, for the backend
	// to report the stopped tasks; zero means 2 minutes.
	CancelGrace time.Duration
	// Stop, when done, ends the wait after a cancellation at once (a
	// second Ctrl-C): tasks not reported stopped count as cancelled.
	Stop <-chan struct{}
	// MaxPollErrors is how many polls in a row may fail before the run
	// gives up with the last error; zero means 10.
	MaxPollErrors int
	// Now is the clock; nil for time.Now.
	Now func() time.Time
}

// FillTask returns t with the values only a run knows filled in
// (${{ run.id }}, ${{ run.name }}, ${{ run.storage }}, ${{ task.attempt }}),
// for backends that write a task's definition once for every attempt.
func FillTask(t *compiler.Task, run *RunInfo, attempt int) *compiler.Task {
	return fill(t, run.ID, run.Workload, run.Storage, attempt)
}

// SubmitNative journals the start of a run and submits it, for a client
// that leaves once the backend has the run (bmc run --detach).
func SubmitNative(ctx context.Context, plan *planner.Plan, be NativeBackend, run *RunInfo, j *Journal) error {
	if err := journalStart(plan, j); err != nil {
		return err
	}
	return be.Submit(ctx, plan, run)
}

func journalStart(plan *planner.Plan, j *Journal) error {
	if j == nil {
		return nil
	}
	err := j.AppendAsync(Record{Type: RecordRunStarted, Data: mustJSON(map[string]any{
		"backend": plan.Backend, "native": true, "tasks": len(plan.Program.Tasks), "toRun": plan.ToRun})})
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// RunNative submits the plan to a native backend and follows it until
// every task is over: succeeded, failed, skipped behind a failure, or
// cancelled. Cancelling ctx cancels the run through the backend; RunNative
// still waits (up to CancelGrace) for the backend to report its stopped
// tasks, and returns an Outcome with Canceled set. It does not run the
// finalize step.
func RunNative(ctx context.Context, plan *planner.Plan, be NativeBackend, run *RunInfo, j *Journal, opts NativeOptions) (*Outcome, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := run.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := opts.PollInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	grace := opts.CancelGrace
	if grace <= 0 {
		grace = 2 * time.Minute
	}
	maxErrs := opts.MaxPollErrors
	if maxErrs <= 0 {
		maxErrs = 10
	}
	tr := NewTracker(plan)
	tr.j, tr.now, tr.runID = j, now, run.ID
	o := &Outcome{Started: now()}
	if err := journalStart(plan, j); err != nil {
		return nil, err
	}
	// Queued: a consumer that does not read must not keep the loop from
	// following the run and hearing a cancel.
	if q := newEventQueue(run, opts.Events, now); q != nil {
		tr.events = q
		defer q.close()
	}
	tr.emit(Event{Type: EventRunStarted})

	// Calls to the backend outlive a cancelled ctx: after Ctrl-C the
	// run still has to be stopped and followed.
	bctx := context.WithoutCancel(ctx)
	var (
		stopping    bool // the run is being stopped: cancelled, or by the backend
		canceled    bool // the run is being stopped as cancelled
		cancelAt    time.Time
		polledSince bool // a poll completed after the stop began
	)
	cancel := func() {
		if canceled {
			return
		}
		canceled = true
		if !stopping {
			stopping, cancelAt, polledSince = true, now(), false
		}
		cctx, stop := context.WithTimeout(bctx, grace)
		defer stop()
		if err := be.Cancel(cctx); err != nil {
			log.Warn("cancelling the run failed", "run", run.ID, "err", err)
		}
	}
	stopped := func(rs *RunStop) {
		if stopping {
			return
		}
		stopping, cancelAt, polledSince = true, now(), false
		tr.stop(rs)
	}
	if err := be.Submit(ctx, plan, run); err != nil {
		if ctx.Err() == nil {
			return nil, err
		}
		log.Warn("run cancelled while it was being submitted", "run", run.ID, "err", err)
		cancel()
	}

	poll := time.NewTimer(0)
	defer poll.Stop()
	var tick <-chan time.Time
	if opts.Progress > 0 {
		t := time.NewTicker(opts.Progress)
		defer t.Stop()
		tick = t.C
	}
	done := ctx.Done()
	errs := 0
	for {
		select {
		case <-done:
			done = nil
			cancel()
			continue
		case <-opts.Stop:
			if stopping {
				tr.settleRest("cancelled: bmc stopped waiting for the backend")
				o.Canceled = canceled
				return tr.outcome(o, now()), nil
			}
		case <-tick:
			tr.emit(Event{Type: EventProgress})
			continue
		case <-poll.C:
		}
		// A cancellation that came with the timer goes first.
		if done != nil && ctx.Err() != nil {
			done = nil
			cancel()
		}
		pctx, stop := context.WithTimeout(bctx, max(4*interval, time.Minute))
		res, err := be.Poll(pctx)
		stop()
		switch {
		case err != nil:
			errs++
			log.Warn("polling the backend failed", "run", run.ID, "err", err, "failures in a row", errs)
			if errs >= maxErrs {
				if stopping {
					tr.settleRest("cancelled: the backend could not be reached to confirm")
					o.Canceled = canceled
					return tr.outcome(o, now()), nil
				}
				return nil, fmt.Errorf("following the run on the %s backend: %w", plan.Backend, err)
			}
		default:
			errs = 0
			if res.Stopped != nil {
				// Settled first: the updates of this poll may be the
				// tasks the stop ended.
				stopped(res.Stopped)
			}
			tr.Block(res.Blocked)
			for _, u := range res.Updates {
				tr.Apply(u)
			}
			if tr.Done() {
				// A cancel made elsewhere, heard in the poll that sees
				// the tasks it stopped end, cancels the run; one heard
				// once every task had ended otherwise keeps its outcome.
				o.Canceled = canceled || res.Cancelled && tr.counts.Cancelled > 0
				return tr.outcome(o, now()), nil
			}
			if stopping {
				polledSince = true
			}
			if res.Cancelled && !stopping {
				// Cancelled elsewhere: what the backend stopped shows in
				// the next poll.
				cancel()
			}
		}
		if stopping && (polledSince && tr.counts.Running == 0 || now().Sub(cancelAt) > grace) {
			tr.settleRest("cancelled")
			o.Canceled = canceled
			return tr.outcome(o, now()), nil
		}
		poll.Reset(interval)
	}
}

// Tracker follows a natively scheduled run from the backend's reports:
// task states and attempts, counts, and the tasks a failure leaves
// waiting for ever. RunNative journals and emits through it; bmc status
// uses one alone to make sense of a run no client followed.
type Tracker struct {
	plan *planner.Plan
	idx  map[string]int32
	out  []TaskOutcome
	// started is when each task's last attempt started, for its
	// duration; out's Start is its first attempt's.
	started   []time.Time
	counts    Counts
	groupDead []bool
	// stopWhy ends the reasons of the tasks a stop by the backend
	// cancels.
	stopWhy string
	// waitElapsed is, for each task that waits for its retry, the
	// duration of its attempt that failed, when known: a task-finished of
	// it told after a cancel repeats it.
	waitElapsed map[int32]time.Duration

	j      *Journal
	events Sink
	now    func() time.Time
	runID  string
}

// NewTracker starts following a plan: its tasks are pending, or succeeded
// when an earlier attempt of the run completed them.
func NewTracker(plan *planner.Plan) *Tracker {
	n := len(plan.Program.Tasks)
	tr := &Tracker{
		plan: plan, idx: make(map[string]int32, n), out: make([]TaskOutcome, n), started: make([]time.Time, n),
		groupDead: make([]bool, len(plan.Graph.Members)), now: time.Now,
	}
	tr.counts.Total = n
	for i, t := range plan.Program.Tasks {
		tr.idx[t.ID] = int32(i)
		if plan.Done[i] {
			tr.out[i].State = Succeeded
			tr.counts.Succeeded++
		} else {
			tr.out[i].State = Pending
			tr.counts.Pending++
		}
	}
	return tr
}

// Counts are the run's counts now.
func (tr *Tracker) Counts() Counts { return tr.counts }

// Tasks are the tasks' outcomes so far, by plan index.
func (tr *Tracker) Tasks() []TaskOutcome { return tr.out }

// Done reports whether every task is over.
func (tr *Tracker) Done() bool { return tr.counts.Done() == tr.counts.Total }

func (tr *Tracker) outcome(o *Outcome, at time.Time) *Outcome {
	o.Tasks, o.Counts, o.Finished = tr.out, tr.counts, at
	for i, t := range tr.out {
		if !tr.plan.Done[i] && t.Attempts > 0 {
			o.Ran++
		}
	}
	return o
}

func (tr *Tracker) journal(r Record) {
	if tr.j == nil {
		return
	}
	_ = tr.j.AppendAsync(r) // a failed commit shows on the next Append
}

func (tr *Tracker) emit(e Event) {
	if tr.events == nil {
		return
	}
	e.Time, e.RunID, e.Counts = tr.now(), tr.runID, tr.counts
	tr.events.Event(e)
}

// move changes a task's state, keeping the counts.
func (tr *Tracker) move(i int32, st State) {
	tr.count(tr.out[i].State, -1)
	tr.count(st, 1)
	tr.out[i].State = st
}

func (tr *Tracker) count(st State, d int) {
	c := &tr.counts
	switch st {
	case Pending:
		c.Pending += d
	case Running:
		c.Running += d
	case Succeeded:
		c.Succeeded += d
	case Failed:
		c.Failed += d
	case Skipped:
		c.Skipped += d
	case Canceled:
		c.Cancelled += d
	}
}

// Apply takes one report. Reports about tasks the plan does not know, or
// about tasks already over, change nothing.
func (tr *Tracker) Apply(u TaskUpdate) {
	i, ok := tr.idx[u.ID]
	if !ok {
		return
	}
	o := &tr.out[i]
	if o.State.Terminal() {
		return
	}
	att := max(u.Attempts, 1)
	if u.State == Pending && (att < o.Attempts || att == o.Attempts && o.State != Running) {
		// A wait for a retry told already, or older than the attempt
		// seen since (Batch put that one back to wait, as for a node
		// it lost: no attempt of the task's failed).
		return
	}
	// Attempts the backend ran without our seeing them start: each but
	// the one reported failed and was retried.
	for a := o.Attempts + 1; a <= att; a++ {
		if o.State == Running {
			tr.retrying(i, TaskUpdate{ID: u.ID, Attempts: o.Attempts})
		}
		o.Attempts = a
		o.ExitCode, o.Reason = nil, "" // the attempt before's
		st := startTime(u, a == att)
		if st.IsZero() {
			st = tr.now()
		}
		tr.started[i] = st
		if o.Start.IsZero() {
			// The first attempt's start, or the earliest known.
			o.Start = u.Start
			if o.Start.IsZero() {
				o.Start = st
			}
		}
		tr.move(i, Running)
		tr.journal(Record{Type: RecordTaskStarted, Task: u.ID, Attempt: a, Time: startTime(u, a == att)})
		tr.emit(Event{Type: EventTaskStarted, Task: u.ID, Attempt: a, State: Running})
	}
	switch u.State {
	case Running:
		return
	case Pending:
		tr.retrying(i, u)
		return
	case Succeeded, Failed, Canceled:
	default:
		return
	}
	if u.State == Canceled && tr.stopWhy != "" {
		u.Reason += tr.stopWhy
	}
	o.ExitCode, o.Reason, o.End = u.ExitCode, u.Reason, u.End
	if o.End.IsZero() {
		o.End = tr.now()
	}
	o.Outputs = append(o.Outputs, u.Outputs...)
	tr.move(i, u.State)
	rec := Record{Type: RecordTaskFinished, Task: u.ID, Attempt: o.Attempts, State: string(u.State), ExitCode: u.ExitCode, Reason: u.Reason}
	if !u.End.IsZero() {
		rec.Time = u.End.UTC()
	}
	if len(u.Outputs) > 0 {
		rec.Data = mustJSON(map[string]any{"outputs": u.Outputs})
	}
	tr.journal(rec)
	// The last attempt's duration, as on the local backend: the report's
	// start is the last attempt's (Batch keeps only that one's).
	start := u.Start
	if start.IsZero() {
		start = tr.started[i]
	}
	tr.emit(Event{Type: EventTaskFinished, Task: u.ID, Attempt: o.Attempts, State: u.State, ExitCode: u.ExitCode, Reason: u.Reason, Elapsed: o.End.Sub(start)})
	if u.State == Failed {
		tr.skipDependents(i)
	}
}

// retrying takes the failure of task i's attempt u.Attempts, which the
// backend runs again: the task waits, pending, as on the local backend.
// The attempt's duration is told when the report has its start and end.
func (tr *Tracker) retrying(i int32, u TaskUpdate) {
	o := &tr.out[i]
	reason := u.Reason
	if reason == "" {
		reason = retriedReason
	}
	o.ExitCode, o.Reason = u.ExitCode, reason
	if !u.End.IsZero() {
		o.End = u.End // the task's end, should it not run again
	}
	tr.move(i, Pending)
	rec := Record{Type: RecordTaskFinished, Task: u.ID, Attempt: u.Attempts, State: string(Failed), ExitCode: u.ExitCode, Reason: reason, Retry: true}
	var elapsed time.Duration
	if !u.End.IsZero() {
		rec.Time = u.End.UTC()
		start := u.Start
		if start.IsZero() {
			start = tr.started[i]
		}
		elapsed = u.End.Sub(start)
	}
	if tr.waitElapsed == nil {
		tr.waitElapsed = map[int32]time.Duration{}
	}
	tr.waitElapsed[i] = elapsed
	tr.journal(rec)
	tr.emit(Event{Type: EventTaskRetrying, Task: u.ID, Attempt: u.Attempts, State: Failed, ExitCode: u.ExitCode, Reason: reason, Elapsed: elapsed})
}

func startTime(u TaskUpdate, last bool) time.Time {
	if last && !u.Start.IsZero() {
		return u.Start.UTC()
	}
	return time.Time{}
}

// skipDependents settles everything downstream of a failed task as
// skipped, naming it: the backend leaves those tasks waiting for ever.
func (tr *Tracker) skipDependents(root int32) {
	tr.skipBehind(root, "skipped: upstream "+tr.plan.Program.Tasks[root].ID+" failed")
}

// Block settles the tasks a backend says will never run though nothing
// they depend on failed (PollResult.Blocked): each is skipped with the
// reason given, and so is everything behind it. A task that has run is
// left to the backend's reports.
func (tr *Tracker) Block(blocked map[string]string) {
	var is []int32
	for id := range blocked {
		if i, ok := tr.idx[id]; ok {
			is = append(is, i)
		}
	}
	slices.Sort(is) // the plan's order, not the map's
	for _, i := range is {
		if o := &tr.out[i]; o.State != Pending || o.Attempts != 0 {
			continue
		}
		reason := blocked[tr.plan.Program.Tasks[i].ID]
		tr.settle(i, Skipped, reason)
		tr.skipBehind(i, reason)
	}
}

// skipBehind settles everything downstream of task root as skipped, for
// reason, the root cause.
func (tr *Tracker) skipBehind(root int32, reason string) {
	g := tr.plan.Graph
	stack := []int32{root}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		visit := func(d int32) {
			if tr.out[d].State == Pending && tr.out[d].Attempts == 0 {
				tr.settle(d, Skipped, reason)
				stack = append(stack, d)
			}
		}
		for _, d := range g.Dependents[i] {
			visit(d)
		}
		if gi := g.Group[i]; gi >= 0 && !tr.groupDead[gi] {
			tr.groupDead[gi] = true
			for _, d := range g.GroupDependents[gi] {
				visit(d)
			}
		}
	}
}

func (tr *Tracker) settle(i int32, st State, reason string) {
	tr.move(i, st)
	tr.out[i].Reason = reason
	id := tr.plan.Program.Tasks[i].ID
	typ, ev := RecordTaskSkipped, EventTaskSkipped
	if st != Skipped {
		typ, ev = RecordTaskFinished, EventTaskFinished
	}
	tr.journal(Record{Type: typ, Task: id, State: string(st), Reason: reason})
	tr.emit(Event{Type: ev, Task: id, State: st, Reason: reason})
}

// settleRest ends every task not over yet as cancelled: those that never
// started, those waiting for a retry, and those the backend did not
// report stopped.
func (tr *Tracker) settleRest(reason string) {
	for i := range tr.out {
		switch tr.out[i].State {
		case Pending:
			tr.cancelPending(int32(i))
		case Running:
			tr.out[i].End = tr.now()
			tr.settle(int32(i), Canceled, reason+tr.stopWhy)
		}
	}
}

// cancelPending ends a pending task, which will not run now: cancelled
// while it waited for its retry, or before it started.
func (tr *Tracker) cancelPending(i int32) {
	if tr.out[i].Attempts > 0 {
		tr.cancelWaiting(i)
		return
	}
	tr.settle(i, Canceled, "cancelled before it started"+tr.stopWhy)
}

// Look takes the one poll bmc status makes of a run that no bmc follows,
// as RunNative takes a poll, and tells the tasks as bmc status tells them
// from a journal. Once the poll finds the run cancelled or stopped, the
// pending tasks will not run: they end as RunNative ends them, cancelled
// while they waited for their retry or before they started; a running
// task is left running, as the backend has it. A task still waiting for
// its retry says which attempt failed, as LoadState says it.
func (tr *Tracker) Look(res PollResult) {
	if res.Stopped != nil {
		tr.stop(res.Stopped)
	}
	tr.Block(res.Blocked)
	for _, u := range res.Updates {
		tr.Apply(u)
	}
	over := res.Cancelled || res.Stopped != nil
	for i := range tr.out {
		switch o := &tr.out[i]; {
		case o.State != Pending:
		case over:
			tr.cancelPending(int32(i))
		case o.Attempts > 0:
			o.Reason = waitReason(o.Attempts, o.Reason)
		}
	}
}

// cancelWaiting ends, cancelled, a task whose attempt failed and that
// waited for its retry, as the local backend does: with that attempt's
// number, exit code (Batch keeps none between attempts) and duration, and
// its end as the outcome's.
func (tr *Tracker) cancelWaiting(i int32) {
	o := &tr.out[i]
	tr.move(i, Canceled)
	o.Reason = waitCancelled(o.Attempts, o.Reason) + tr.stopWhy
	id := tr.plan.Program.Tasks[i].ID
	tr.journal(waitEndRecord(id, o.Attempts, Canceled, o.ExitCode, o.Reason, o.End))
	tr.emit(Event{Type: EventTaskFinished, Task: id, Attempt: o.Attempts, State: Canceled, ExitCode: o.ExitCode, Reason: o.Reason, Elapsed: tr.waitElapsed[i]})
}

// retriedReason is the reason of a failed attempt that Batch retried,
// which it tells nothing more of.
const retriedReason = "attempt failed; retried"

// stop takes the backend's stop of a run that failed: the tasks it names
// fail without an attempt, their dependents are skipped, and the tasks
// the stop cancels say why from then on.
func (tr *Tracker) stop(rs *RunStop) {
	tr.stopWhy = rs.Why
	var failed []int32
	for i, t := range tr.plan.Program.Tasks {
		reason, ok := rs.Failed[t.ID]
		if !ok || tr.out[i].State != Pending {
			continue // the backend has it after all: it reports it
		}
		tr.settle(int32(i), Failed, reason)
		failed = append(failed, int32(i))
	}
	for _, i := range failed {
		tr.skipDependents(i)
	}
}

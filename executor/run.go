package executor

import (
	"container/heap"
	"context"
	"encoding/json"

	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

// Options tune a run.
type Options struct {
	// Slots bounds the task slots in use at once (a task's slots count
	// against it). Zero means one.
	Slots int
	// KeepGoing runs every task that does not depend on a failure; by
	// default no new task starts after the first failure.
	KeepGoing bool
	// Events receives the run's events; nil for none.
	Events Sink
	// Progress is how often a progress event is sent while tasks run; zero
	// for never.
	Progress time.Duration
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Previous is the state of the run before a resume: the outcomes of
	// the tasks it completed (their outputs go into the summary).
	Previous *RunState
}

// TaskOutcome is a task's final state in a run.
type TaskOutcome struct {
	State    State
	Attempts int
	ExitCode *int
	Reason   string
	Outputs  []string
	Start    time.Time
	End      time.Time
}

// Outcome is what the task phase of a run produced.
type Outcome struct {
	Tasks    []TaskOutcome // by plan task index
	Counts   Counts
	Started  time.Time
	Finished time.Time
	Canceled bool
	// Ran is the number of tasks started in this run (not done before).
	Ran int
}

// readyQueue orders ready tasks: the longest remaining chain first, then
// program order.
type readyQueue struct {
	items []int32
	prio  []int32
}

func (q readyQueue) Len() int { return len(q.items) }
func (q readyQueue) Less(a, b int) bool {
	x, y := q.items[a], q.items[b]
	if q.prio[x] != q.prio[y] {
		return q.prio[x] > q.prio[y]
	}
	return x < y
}
func (q readyQueue) Swap(a, b int) { q.items[a], q.items[b] = q.items[b], q.items[a] }
func (q *readyQueue) Push(x any)   { q.items = append(q.items, x.(int32)) }
func (q *readyQueue) Pop() any {
	n := len(q.items)
	x := q.items[n-1]
	q.items = q.items[:n-1]
	return x
}
func (q *readyQueue) peek() int32 { return q.items[0] }

// scheduler holds the state of the task phase of one run.
type scheduler struct {
	plan  *planner.Plan
	g     *planner.Graph
	tasks []compiler.Task
	be    Backend
	run   *RunInfo
	j     *Journal
	opts  Options
	log   *slog.Logger
	now   func() time.Time

	out       []TaskOutcome
	waiting   []int32 // unmet dependencies per task
	groupLeft []int32 // members of each group not yet succeeded
	groupDead []bool  // a member failed: the group's dependents are skipped
	ready     readyQueue
	free      int
	running   int
	counts    Counts
	stopping  bool
	stopCause string
	// journalFailed is set once a journal write has failed and been told.
	journalFailed bool
	// initializing is set while the tasks done before a resume are
	// counted against their dependents.
	initializing bool
	// earlier are the attempts each task made in earlier sessions of the
	// run (nil when there were none). A resumed task's attempts go on
	// from there, so that an attempt number names one attempt of the run
	// (outputs named by ${{ task.attempt }} are not overwritten), while
	// its retries start afresh.
	earlier  []int
	canceled bool
	// waitElapsed is, for each task that waits for its retry, the
	// duration of its attempt that failed: a task-finished of it told
	// after a cancel repeats it, as it does that attempt's number.
	waitElapsed map[int32]time.Duration
	// events are those made this turn, sent once its journal records are
	// written: a consumer never hears of a success that a resume after
	// kill -9 would not know of.
	events []Event
	q      *eventQueue
	// mu guards everything above: the threads that run attempts take turns
	// at the scheduler's state as their attempts end.
	mu sync.Mutex
	// over is closed once no attempt runs and none will start.
	over     chan struct{}
	overDone bool

	pf       Prefetcher
	window   int64
	started  atomic.Int64 // attempts started, for the prefetcher
	pmu      sync.Mutex   // held by whoever is prefetching
	pnext    int          // the next task to prefetch, in program order
	prepared int64        // tasks prefetched so far
}

// job is an attempt about to run.
type job struct {
	i int32
	a *Attempt
}

// RunTasks runs the plan's tasks on a backend that needs the executor to
// schedule them, and returns when every task is over: succeeded, failed,
// skipped or cancelled. It does not run the finalize step.
func RunTasks(ctx context.Context, plan *planner.Plan, be Backend, run *RunInfo, j *Journal, opts Options) (*Outcome, error) {
	if opts.Slots < 1 {
		opts.Slots = 1
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := run.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := len(plan.Program.Tasks)
	s := &scheduler{
		plan: plan, g: plan.Graph, tasks: plan.Program.Tasks, be: be, run: run, j: j, opts: opts, log: log, now: now,
		out:       make([]TaskOutcome, n),
		waiting:   make([]int32, n),
		groupLeft: make([]int32, len(plan.Graph.Members)),
		groupDead: make([]bool, len(plan.Graph.Members)),
		ready:     readyQueue{prio: plan.Graph.Priority},
		free:      opts.Slots,
		over:      make(chan struct{}),
	}
	if pf, ok := be.(Prefetcher); ok {
		s.pf, s.window = pf, int64(2*opts.Slots+2)
		// The first few are made while bmc still sets the run up.
		var wg sync.WaitGroup
		defer wg.Wait() // none is made after the run
		wg.Go(func() { s.prefetch(ctx) })
	}
	s.counts.Total = n
	o := &Outcome{Started: now()}
	if err := s.journal(Record{Type: RecordRunStarted, Data: mustJSON(map[string]any{"backend": plan.Backend, "slots": opts.Slots, "tasks": n, "toRun": plan.ToRun})}); err != nil {
		return nil, err
	}
	s.q = newEventQueue(run, opts.Events, now)
	for gi, m := range s.g.Members {
		s.groupLeft[gi] = int32(len(m))
	}
	for i := range s.tasks {
		s.out[i].State = Pending
		s.waiting[i] = int32(len(s.g.Deps[i]) + len(s.g.GroupDeps[i]))
	}
	s.counts.Pending = n
	// Tasks done in an earlier attempt of this run count as succeeded.
	for i := range s.tasks {
		if plan.Done[i] {
			s.out[i].State = Succeeded
			s.counts.Pending--
			s.counts.Succeeded++
		}
	}
	// Count the done tasks against their dependents without queueing
	// anything; the scan below queues every task with nothing to wait
	// for, once.
	s.initializing = true
	prev := opts.Previous
	for i := range s.tasks {
		var ts *TaskState
		if prev != nil {
			ts = prev.Tasks[s.tasks[i].ID]
		}
		switch {
		case plan.Done[i]:
			s.release(int32(i))
			if ts != nil {
				s.out[i].Attempts, s.out[i].ExitCode, s.out[i].Outputs = ts.Attempts, ts.ExitCode, ts.Outputs
				s.out[i].Start, s.out[i].End = ts.Start, ts.End
			}
		case ts != nil && ts.Attempts > 0:
			// Run again: its attempts are numbered on from the last, and
			// what they uploaded (a when: failure log) stays in its
			// outputs, as a retry's does.
			if s.earlier == nil {
				s.earlier = make([]int, n)
			}
			s.earlier[i] = ts.Attempts
			s.out[i].Outputs = slices.Clone(ts.Outputs)
		}
	}
	s.initializing = false
	if r, ok := be.(Resumer); ok {
		var done []string
		for i := range s.tasks {
			if plan.Done[i] {
				done = append(done, s.tasks[i].ID)
			}
		}
		if len(done) > 0 {
			r.Resumed(run, done)
		}
	}
	for i := range s.tasks {
		if !plan.Done[i] && s.waiting[i] == 0 {
			heap.Push(&s.ready, int32(i))
		}
	}
	s.emit(Event{Type: EventRunStarted})

	var tick <-chan time.Time
	if opts.Progress > 0 {
		t := time.NewTicker(opts.Progress)
		defer t.Stop()
		tick = t.C
	}
	// Each attempt runs on its own goroutine, which then takes the
	// scheduler's state, records the outcome and goes on with the next
	// ready task itself: when one task ends and the next starts, no other
	// thread has to be woken, and nothing runs beside the tasks but what
	// their own threads do.
	s.mu.Lock()
	s.dispatch(ctx, nil)
	s.mu.Unlock()
	done := ctx.Done()
	for waiting := true; waiting; {
		select {
		case <-s.over:
			waiting = false
		case <-done:
			done = nil
			s.mu.Lock()
			if !s.overDone { // else every task had ended: the outcome stands
				s.cancel()
				s.checkOver()
			}
			s.mu.Unlock()
		case <-tick:
			s.mu.Lock()
			s.emit(Event{Type: EventProgress})
			s.sendEvents()
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	o.Canceled = s.canceled
	// What waited for its retry is over now: it ran, and is not run
	// again. Its dependents are skipped behind it, before the stop skips
	// whatever never started.
	for i := range s.out {
		if s.out[i].State == Pending && s.out[i].Attempts > 0 {
			if o.Canceled {
				s.cancelWaiting(int32(i))
			} else {
				s.failWaiting(int32(i))
			}
		}
	}
	for i := range s.out {
		if s.out[i].State == Pending {
			if o.Canceled {
				s.settle(int32(i), Canceled, "cancelled before it started")
			} else {
				s.settle(int32(i), Skipped, "skipped: "+s.stopCause)
			}
		}
	}
	s.flushJournal()
	s.sendEvents()
	o.Tasks, o.Counts, o.Finished = s.out, s.counts, now()
	for i, t := range s.out {
		if !plan.Done[i] && t.Attempts > 0 {
			o.Ran++
		}
	}
	// Reported, a task's attempts are those of the whole run.
	for i, e := range s.earlier {
		s.out[i].Attempts += e
	}
	s.mu.Unlock()
	s.q.close()
	return o, nil
}

// number is the number of task i's current attempt in the run.
func (s *scheduler) number(i int32) int {
	if s.earlier == nil {
		return s.out[i].Attempts
	}
	return s.earlier[i] + s.out[i].Attempts
}

// mustJSON encodes plain data for a journal record; it cannot fail for
// the maps and structs it is given, and a record without data is still
// better than no record.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// flushJournal writes the records held this turn. A failed write stops
// the run; the tasks' outcomes still reach the finalize step.
func (s *scheduler) flushJournal() {
	if s.j == nil {
		return
	}
	if err := s.j.Flush(); err != nil {
		s.journalFailure(err)
	}
}

// journalFailure stops the run after a failed journal write, saying so
// once: every later write fails the same way.
func (s *scheduler) journalFailure(err error) {
	if s.journalFailed {
		return
	}
	s.journalFailed = true
	s.log.Error("journal write failed; stopping the run", "err", err)
	s.stop("the journal could not be written")
}

func (s *scheduler) journal(r Record) error {
	if s.j == nil {
		return nil
	}
	if err := s.j.Hold(r); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// emit keeps an event of this turn for sendEvents; the caller holds s.mu.
func (s *scheduler) emit(e Event) {
	if s.q == nil {
		return
	}
	e.Time = s.now()
	e.RunID = s.run.ID
	e.Counts = s.counts
	s.events = append(s.events, e)
}

// sendEvents queues this turn's events for the sink, once the turn's
// journal records are written; the caller holds s.mu. Once the journal has
// failed, no record is written (every later write fails the same way): a
// task's success then goes unsaid, since a resume would run it again.
func (s *scheduler) sendEvents() {
	if s.journalFailed {
		s.events = slices.DeleteFunc(s.events, func(e Event) bool {
			return e.Type == EventTaskFinished && e.State == Succeeded
		})
	}
	if len(s.events) == 0 {
		return
	}
	s.q.putAll(s.events)
	clear(s.events)
	s.events = s.events[:0]
}

// stop starts no new task; the tasks waiting are settled at the end.
func (s *scheduler) stop(cause string) {
	if !s.stopping {
		s.stopping, s.stopCause = true, cause
	}
}

// cancel starts nothing more after a cancellation; the caller holds s.mu.
func (s *scheduler) cancel() {
	s.canceled = true
	s.stop("run cancelled")
}

// idle reports whether no attempt runs and none will start; the caller
// holds s.mu.
func (s *scheduler) idle() bool {
	return s.running == 0 && (s.stopping || s.ready.Len() == 0)
}

// checkOver tells RunTasks when it is idle; the caller holds s.mu.
func (s *scheduler) checkOver() {
	if !s.overDone && s.idle() {
		s.overDone = true
		close(s.over)
	}
}

// dispatch starts what is ready, journals this turn's records with one
// write and returns an attempt for the calling goroutine to run itself,
// if there is one; the others get goroutines of their own. The caller
// holds s.mu.
func (s *scheduler) dispatch(ctx context.Context, own *job) *job {
	// A result can be taken before a cancellation that came first: look
	// at the context before starting anything new. A cancellation once
	// nothing runs or will start came after every task had ended, and
	// leaves the run's outcome as it is.
	if !s.canceled && ctx.Err() != nil && !s.idle() {
		s.cancel()
	}
	var jobs []job
	if !s.stopping {
		jobs = s.startReady()
	}
	s.flushJournal()
	s.sendEvents()
	s.checkOver()
	var next *job
	for k := range jobs {
		if own != nil && next == nil {
			*own = jobs[k]
			next = own
			continue
		}
		go s.work(ctx, jobs[k])
	}
	return next
}

// work runs an attempt, then, with the scheduler's state, records its
// outcome and goes on with the next ready task, until none is left for it.
func (s *scheduler) work(ctx context.Context, j job) {
	for {
		var once sync.Once
		started := func() { once.Do(s.attemptStarted) }
		j.a.Started = started
		res := s.be.RunTask(ctx, j.a)
		started()
		s.mu.Lock()
		s.finish(ctx, j.i, res)
		next := s.dispatch(ctx, &j)
		s.mu.Unlock()
		if next == nil {
			return
		}
	}
}

// attemptStarted is called on an attempt's own goroutine once its task is
// running (or has failed to start): it keeps the prefetcher's window full
// from there, while the task runs, rather than waking another thread.
func (s *scheduler) attemptStarted() {
	if s.pf == nil {
		return
	}
	s.started.Add(1)
	if s.pmu.TryLock() { // else whoever holds it fills the window
		s.prefetchLocked()
		s.pmu.Unlock()
	}
}

// prefetch fills the prefetcher's first window.
func (s *scheduler) prefetch(ctx context.Context) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if ctx.Err() == nil {
		s.prefetchLocked()
	}
}

// prefetchLocked prepares tasks in program order (roughly the order they
// start in), up to window ahead of those started; the caller holds s.pmu.
func (s *scheduler) prefetchLocked() {
	for s.pnext < len(s.tasks) && s.prepared-s.started.Load() < s.window {
		i := s.pnext
		s.pnext++
		if s.plan.Done[i] {
			continue
		}
		s.pf.Prefetch(s.run, &s.tasks[i])
		s.prepared++
	}
}

// startReady takes ready tasks while slots are free, longest chain first,
// and returns their attempts. A task that needs more slots than are free
// waits at the head of the queue, so that wide tasks are not starved by
// narrow ones. The caller holds s.mu.
func (s *scheduler) startReady() []job {
	var jobs []job
	for s.ready.Len() > 0 {
		i := s.ready.peek()
		need := max(s.tasks[i].Slots, 1)
		if need > s.opts.Slots {
			heap.Pop(&s.ready)
			s.settle(i, Failed, fmt.Sprintf("task takes %d slots; only %d are available", need, s.opts.Slots))
			s.skipDependents(i)
			if !s.opts.KeepGoing {
				s.stop(fmt.Sprintf("run stopped after %s failed (use --keep-going to run independent tasks)", s.tasks[i].ID))
				return jobs
			}
			continue
		}
		if need > s.free {
			return jobs
		}
		heap.Pop(&s.ready)
		s.free -= need
		s.running++
		s.counts.Running++
		s.counts.Pending--
		s.out[i].Attempts++
		s.out[i].State = Running
		attempt := s.number(i)
		if s.out[i].Start.IsZero() {
			s.out[i].Start = s.now()
		}
		t := fill(&s.tasks[i], s.run.ID, s.run.Workload, s.run.Storage, attempt)
		s.journal(Record{Type: RecordTaskStarted, Task: t.ID, Attempt: attempt})
		s.emit(Event{Type: EventTaskStarted, Task: t.ID, Attempt: attempt, State: Running})
		jobs = append(jobs, job{i, &Attempt{Run: s.run, Task: t, Number: attempt}})
	}
	return jobs
}

// finish takes an attempt's result: success releases dependents, a failure
// is retried or skips everything downstream.
func (s *scheduler) finish(ctx context.Context, i int32, res Result) {
	t := &s.tasks[i]
	s.free += max(t.Slots, 1)
	s.running--
	s.counts.Running--
	o := &s.out[i]
	o.ExitCode, o.Reason, o.End = res.ExitCode, res.Reason, res.End
	o.Outputs = append(o.Outputs, res.Outputs...)
	if res.State == "" {
		res.State = Failed
	}
	if res.State == Failed && ctx.Err() != nil {
		// It failed because the run was cancelled under it (an upload
		// cut off): the journal says so, as the outcome does.
		res.State = Canceled
	}
	elapsed := res.End.Sub(res.Start)
	n := s.number(i)
	if res.State == Failed && ctx.Err() == nil && s.stopping && !res.NoRetry && o.Attempts <= t.Retries {
		// Its retries are left: say why it was not retried.
		res.Reason = notRetried(res.Reason, s.stopCause)
		o.Reason = res.Reason
	}
	retry := res.State == Failed && ctx.Err() == nil && o.Attempts <= t.Retries && !res.NoRetry && !s.stopping
	rec := Record{Type: RecordTaskFinished, Task: t.ID, Attempt: n, State: string(res.State), ExitCode: res.ExitCode, Reason: res.Reason, Retry: retry}
	if len(res.Outputs) > 0 {
		rec.Data = mustJSON(map[string]any{"outputs": res.Outputs})
	}
	if err := s.journal(rec); err != nil {
		s.journalFailure(err)
	}
	switch {
	case res.State == Succeeded:
		o.State = Succeeded
		s.counts.Succeeded++
		s.emit(Event{Type: EventTaskFinished, Task: t.ID, Attempt: n, State: Succeeded, ExitCode: res.ExitCode, Elapsed: elapsed})
		s.release(i)
	case res.State == Canceled || ctx.Err() != nil:
		if ctx.Err() != nil {
			s.cancel() // it reached the run before this task had ended
		}
		o.State = Canceled
		s.counts.Cancelled++
		if o.Reason == "" {
			o.Reason = "cancelled"
		}
		s.emit(Event{Type: EventTaskFinished, Task: t.ID, Attempt: n, State: Canceled, ExitCode: res.ExitCode, Reason: o.Reason, Elapsed: elapsed})
	case retry:
		o.State = Pending
		s.counts.Pending++
		s.emit(Event{Type: EventTaskRetrying, Task: t.ID, Attempt: n, State: Failed, ExitCode: res.ExitCode, Reason: res.Reason, Elapsed: elapsed})
		if s.waitElapsed == nil {
			s.waitElapsed = map[int32]time.Duration{}
		}
		s.waitElapsed[i] = elapsed
		heap.Push(&s.ready, i)
	default:
		o.State = Failed
		s.counts.Failed++
		s.emit(Event{Type: EventTaskFinished, Task: t.ID, Attempt: n, State: Failed, ExitCode: res.ExitCode, Reason: res.Reason, Elapsed: elapsed})
		s.skipDependents(i)
		if !s.opts.KeepGoing {
			s.stop(fmt.Sprintf("run stopped after %s failed (use --keep-going to run independent tasks)", t.ID))
		}
	}
}

// release counts a succeeded task against its dependents.
func (s *scheduler) release(i int32) {
	for _, d := range s.g.Dependents[i] {
		s.satisfy(d)
	}
	if gi := s.g.Group[i]; gi >= 0 {
		s.groupLeft[gi]--
		if s.groupLeft[gi] == 0 {
			for _, d := range s.g.GroupDependents[gi] {
				s.satisfy(d)
			}
		}
	}
}

func (s *scheduler) satisfy(d int32) {
	s.waiting[d]--
	if s.waiting[d] == 0 && s.out[d].State == Pending && !s.initializing {
		heap.Push(&s.ready, d)
	}
}

// settle ends a task that will not run (again).
func (s *scheduler) settle(i int32, st State, reason string) {
	o := &s.out[i]
	if o.State == Pending {
		s.counts.Pending--
	}
	o.State, o.Reason = st, reason
	switch st {
	case Skipped:
		s.counts.Skipped++
	case Canceled:
		s.counts.Cancelled++
	case Failed:
		s.counts.Failed++
	}
	id := s.tasks[i].ID
	typ := RecordTaskSkipped
	if st == Failed {
		typ = RecordTaskFinished
	}
	s.journal(Record{Type: typ, Task: id, State: string(st), Reason: reason})
	ev := EventTaskSkipped
	if st != Skipped {
		ev = EventTaskFinished
	}
	s.emit(Event{Type: ev, Task: id, State: st, Reason: reason})
}

// cancelWaiting ends, cancelled, a task whose attempt failed and that
// waited for its next one when the run was cancelled. It ran: it keeps
// that attempt's number and exit code, and its reason says so.
func (s *scheduler) cancelWaiting(i int32) {
	s.endWaiting(i, Canceled, waitCancelled(s.number(i), s.out[i].Reason))
}

// failWaiting ends, failed, a task whose attempt failed and that waited
// for its next one when the run stopped after a failure: as a task whose
// attempt fails while the run stops, its reason says why it was not
// retried, and its dependents are skipped behind it.
func (s *scheduler) failWaiting(i int32) {
	s.endWaiting(i, Failed, notRetried(s.out[i].Reason, s.stopCause))
	s.skipDependents(i)
}

// endWaiting ends a task that waited for its next attempt as st, for
// reason. It keeps its last attempt's number and exit code, and its
// journal record ends it where that attempt ended, so that bmc status
// tells it as the outcome does.
func (s *scheduler) endWaiting(i int32, st State, reason string) {
	o := &s.out[i]
	n := s.number(i)
	s.counts.Pending--
	if st == Canceled {
		s.counts.Cancelled++
	} else {
		s.counts.Failed++
	}
	o.State, o.Reason = st, reason
	id := s.tasks[i].ID
	if err := s.journal(waitEndRecord(id, n, st, o.ExitCode, o.Reason, o.End)); err != nil {
		s.journalFailure(err)
	}
	s.emit(Event{Type: EventTaskFinished, Task: id, Attempt: n, State: st, ExitCode: o.ExitCode, Reason: o.Reason, Elapsed: s.waitElapsed[i]})
}

// notRetried is the reason of a task whose attempt failed for why and
// that the run's stop, for cause, leaves not retried.
func notRetried(why, cause string) string {
	if why == "" {
		return "not retried: " + cause
	}
	return why + "; not retried: " + cause
}

// waitEndRecord is the journal record of a task ended as st, for
// reason, while it waited for its next attempt after attempt n failed:
// it keeps that attempt's exit code, and is dated at its end (zero: now),
// so that bmc status tells the task's end as the outcome does.
func waitEndRecord(id string, n int, st State, exit *int, reason string, end time.Time) Record {
	rec := Record{Type: RecordTaskFinished, Task: id, Attempt: n, State: string(st), ExitCode: exit, Reason: reason}
	if !end.IsZero() {
		rec.Time = end.UTC()
	}
	return rec
}

// toldWhy reports whether why, the reason of a failed attempt, tells
// more than that it failed (Batch's retriedReason does not).
func toldWhy(why string) bool { return why != "" && why != retriedReason }

// waitCancelled is the reason of a task cancelled while it waited for
// its next attempt after attempt n failed, for why.
func waitCancelled(n int, why string) string {
	if !toldWhy(why) {
		return fmt.Sprintf("cancelled while waiting for attempt %d (attempt %d failed)", n+1, n)
	}
	return fmt.Sprintf("cancelled while waiting for attempt %d (attempt %d failed: %s)", n+1, n, why)
}

// skipDependents marks everything downstream of a failed task skipped,
// naming the failure as the root cause.
func (s *scheduler) skipDependents(root int32) {
	reason := "skipped: upstream " + s.tasks[root].ID + " failed"
	stack := []int32{root}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		visit := func(d int32) {
			if s.out[d].State == Pending && s.out[d].Attempts == 0 {
				s.settle(d, Skipped, reason)
				stack = append(stack, d)
			}
		}
		for _, d := range s.g.Dependents[i] {
			visit(d)
		}
		if gi := s.g.Group[i]; gi >= 0 && !s.groupDead[gi] {
			s.groupDead[gi] = true
			for _, d := range s.g.GroupDependents[gi] {
				visit(d)
			}
		}
	}
}

package executor

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// EventType names what happened.
type EventType string

const (
	EventRunStarted       EventType = "run-started"
	EventTaskStarted      EventType = "task-started"
	EventTaskRetrying     EventType = "task-retrying"
	EventTaskFinished     EventType = "task-finished"
	EventTaskSkipped      EventType = "task-skipped"
	EventFinalizeStarted  EventType = "finalize-started"
	EventFinalizeFinished EventType = "finalize-finished"
	EventCallback         EventType = "callback"
	EventRunFinished      EventType = "run-finished"
	EventProgress         EventType = "progress"
)

// Counts are a run's task counts at one moment.
type Counts struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Running   int `json:"running"`
	Skipped   int `json:"skipped"`
	Cancelled int `json:"cancelled"`
	Pending   int `json:"pending"`
}

// Done is the number of tasks that are over.
func (c Counts) Done() int { return c.Succeeded + c.Failed + c.Skipped + c.Cancelled }

// Event is one thing that happened in a run, for progress displays and
// --events streams.
type Event struct {
	Time     time.Time `json:"time"`
	Type     EventType `json:"type"`
	RunID    string    `json:"runId"`
	Task     string    `json:"task,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	State    State     `json:"state,omitempty"`
	ExitCode *int      `json:"exitCode,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	// Elapsed is the attempt's or the run's duration when it ends.
	Elapsed time.Duration `json:"elapsedNs,omitempty"`
	Counts  Counts        `json:"counts"`
	// Dropped is how many events an events-dropped event stands for.
	Dropped int `json:"dropped,omitempty"`
	// HTTPStatus is, on a callback event, the last HTTP status the
	// receiver answered; Attempt is then the number of attempts made.
	HTTPStatus int `json:"httpStatus,omitempty"`
}

// Sink receives events. The executor calls it from one goroutine at a
// time, a goroutine of its own: a sink that blocks holds up its own
// events, never the run.
type Sink interface {
	Event(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

func (f SinkFunc) Event(e Event) { f(e) }

// Sinks fans events out to several sinks.
type Sinks []Sink

func (s Sinks) Event(e Event) {
	for _, k := range s {
		k.Event(e)
	}
}

// JSONSink writes one JSON object per line, until a write fails.
type JSONSink struct {
	mu  sync.Mutex // held while writing
	enc *json.Encoder
	// err is the first write error. It is read without mu: a write that
	// blocks (a pipe nobody reads) must not hold up whoever asks.
	err atomic.Pointer[error]
	// told: NewErr returned err once already.
	told atomic.Bool
}

// NewJSONSink writes events to w as JSON lines.
func NewJSONSink(w io.Writer) *JSONSink { return &JSONSink{enc: json.NewEncoder(w)} }

func (s *JSONSink) Event(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err.Load() != nil {
		return
	}
	if err := s.enc.Encode(e); err != nil {
		s.err.Store(&err)
	}
}

// Err is the first write error, after which the sink writes nothing more:
// a consumer that has gone (a closed pipe) or a full disk does not get
// the run's later events, and is not asked again for each of them. Err
// never waits, not even for a write that blocks.
func (s *JSONSink) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// NewErr is Err the first time it is asked for, and nil after: the run's
// events are queued apart for its tasks and its finalize step, and a
// stream that failed is told of once.
func (s *JSONSink) NewErr() error {
	if err := s.Err(); err != nil && s.told.CompareAndSwap(false, true) {
		return err
	}
	return nil
}

// NewErr is the first write error of the sinks that tell theirs and have
// not told it yet (see JSONSink.NewErr).
func (s Sinks) NewErr() error {
	for _, k := range s {
		if e, ok := k.(interface{ NewErr() error }); ok {
			if err := e.NewErr(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Err is the first write error of the sinks that tell theirs. A sink's Err
// must not wait for its writes: it is asked while one may be blocked.
func (s Sinks) Err() error {
	for _, k := range s {
		if e, ok := k.(interface{ Err() error }); ok {
			if err := e.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// EventDropped tells a consumer that fell behind how many events it did
// not get: the queue between the run and a sink is bounded, and a
// consumer that stops reading must not hold up the run.
const EventDropped EventType = "events-dropped"

// eventQueueSize bounds the events waiting for a sink. Beyond it a
// progress event is left out (the next one supersedes it) and any other
// is counted and reported as left out.
const eventQueueSize = 8192

// sinkStall is how long the end of a run's task phase, or of its finalize
// step, waits for a sink that takes no event at all, before it goes on
// without it. A sink that takes events, however slowly, is waited for.
var sinkStall = 5 * time.Second

// sinkProgress follows what a run's sink has taken, over the run's queues
// (that of its task phase, then that of its finalize step).
type sinkProgress struct {
	// taken counts the events handed to the sink, one at a time: a slow
	// consumer is told from a stuck one by the events it takes, not by
	// the batches it finishes.
	taken atomic.Int64
	// stuckAt is taken when a flush last gave up on the sink; -1 if none
	// has. The sink counts as stuck as long as it has taken nothing since.
	stuckAt atomic.Int64
}

func newSinkProgress() *sinkProgress {
	p := &sinkProgress{}
	p.stuckAt.Store(-1)
	return p
}

// eventQueue hands a run's events to its sink from a goroutine of its
// own. The scheduler, which makes its events with its lock held, only
// queues them: a consumer that stops reading (a pipe into a program that
// does not read, a FIFO) then holds up its own events and nothing else,
// and Ctrl-C, timeouts and the finalize step work as ever.
type eventQueue struct {
	sink  Sink
	runID string
	now   func() time.Time
	log   *slog.Logger
	// after is closed once the run's previous queue has stopped calling
	// the sink: one call at a time, in order.
	after <-chan struct{}
	prog  *sinkProgress // shared with the run's other queues

	mu      sync.Mutex
	q       []Event
	spare   []Event
	idle    bool   // the writer waits on wake
	busy    bool   // the writer is in the sink
	closed  bool   // no more events come
	dropped int    // left out and not yet told to the sink
	lost    int    // left out in all
	counts  Counts // of the last event queued
	wake    chan struct{}
	done    chan struct{} // closed once the writer has returned
}

// newEventQueue starts the writer of a run's events to sink; nil when
// sink is nil. The run's queues follow each other: a queue's writer
// starts once the one before it (of the task phase, say, for the
// finalize step's) is out of the sink.
func newEventQueue(run *RunInfo, sink Sink, now func() time.Time) *eventQueue {
	if ss, ok := sink.(Sinks); sink == nil || ok && len(ss) == 0 {
		return nil // nothing to write to: no queue, no writer
	}
	log := run.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &eventQueue{sink: sink, runID: run.ID, now: now, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if prev := run.events; prev != nil {
		q.after, q.prog = prev.done, prev.prog
	}
	if q.prog == nil {
		q.prog = newSinkProgress()
	}
	run.events = q
	go q.run()
	return q
}

// Event queues e, never waiting for the sink.
func (q *eventQueue) Event(e Event) {
	q.mu.Lock()
	q.putLocked(e, eventQueueSize)
	q.kickLocked()
	q.mu.Unlock()
}

// putAll queues es, the events of one turn of the run, in order, never
// waiting for the sink. They are queued whole when the sink has kept up
// so far (the queue is below its bound): a turn that cancels or skips
// every task left makes an event for each at once, tens of thousands in
// a sweep, which a reader that keeps up must get. What such a turn adds
// is bounded by the run's tasks; a reader behind by the bound already
// loses the turn's events.
func (q *eventQueue) putAll(es []Event) {
	q.mu.Lock()
	bound := eventQueueSize
	if len(q.q) < eventQueueSize {
		bound = max(bound, len(q.q)+len(es))
	}
	for _, e := range es {
		q.putLocked(e, bound)
	}
	q.kickLocked()
	q.mu.Unlock()
}

// putLocked queues e unless the queue holds bound events; the caller
// holds q.mu.
func (q *eventQueue) putLocked(e Event, bound int) {
	q.counts = e.Counts
	if e.Type == EventProgress {
		// A progress event is a snapshot: one still waiting is replaced.
		if n := len(q.q); n > 0 && q.q[n-1].Type == EventProgress {
			q.q[n-1] = e
			return
		}
		if len(q.q) >= bound {
			return
		}
	} else if len(q.q) >= bound {
		q.dropped++
		q.lost++
		return
	}
	q.q = append(q.q, e)
}

// kickLocked wakes the writer if it waits; the caller holds q.mu.
func (q *eventQueue) kickLocked() {
	if q.idle && (len(q.q) > 0 || q.dropped > 0 || q.closed) {
		q.idle = false
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// run is the writer: it hands the queued events to the sink, a batch at
// a time, until the queue is closed and empty.
func (q *eventQueue) run() {
	defer close(q.done)
	if q.after != nil {
		<-q.after
	}
	for {
		q.mu.Lock()
		for len(q.q) == 0 && q.dropped == 0 && !q.closed {
			q.idle = true
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		if len(q.q) == 0 && q.dropped == 0 {
			q.mu.Unlock()
			return
		}
		batch := q.q
		q.q, q.spare = q.spare[:0], nil
		if q.dropped > 0 {
			batch = append(batch, Event{Time: q.now(), Type: EventDropped, RunID: q.runID, Counts: q.counts, Dropped: q.dropped,
				Reason: fmt.Sprintf("%d events left out: the reader did not keep up", q.dropped)})
			q.dropped = 0
		}
		q.busy = true
		q.mu.Unlock()
		for _, e := range batch {
			q.sink.Event(e)
			q.prog.taken.Add(1)
		}
		q.mu.Lock()
		q.busy = false
		clear(batch)
		q.spare = batch[:0]
		q.mu.Unlock()
	}
}

// close waits until the sink has taken every event queued, or has taken
// none for sinkStall, and says what the sink did not get. The writer goes
// on with a sink that was stuck, should it ever take events again.
func (q *eventQueue) close() {
	if q == nil {
		return
	}
	q.mu.Lock()
	q.closed = true
	q.kickLocked()
	q.mu.Unlock()
	drained := q.flush()
	q.mu.Lock()
	left, lost := len(q.q)+q.dropped, q.lost
	if q.busy {
		left++
	}
	q.mu.Unlock()
	events := func(n int) string {
		if n == 1 {
			return "1 event"
		}
		return fmt.Sprintf("%d events", n)
	}
	if !drained {
		q.log.Warn(fmt.Sprintf("the progress display or --events reader has taken no event for %s: going on without it (%s not delivered)", sinkStall, events(left)))
	} else if lost > 0 {
		q.log.Warn(fmt.Sprintf("the progress display or --events reader did not keep up: %s left out", events(lost)))
	}
	// Asked even of a sink stuck in a write: NewErr does not wait for it.
	// Told once for the run, though its events have more than one queue.
	if e, ok := q.sink.(interface{ NewErr() error }); ok {
		if err := e.NewErr(); err != nil {
			q.log.Warn(fmt.Sprintf("events: %v; no more events were written there", err))
		}
	}
}

// flush waits until the writer of the closed queue has handed the sink
// every event and returned, or until the sink has taken no event for
// sinkStall; it reports whether the queue drained. A sink that has taken
// nothing since a flush of the run gave up on it is not waited for again;
// one that has taken events since, as the writer of an earlier queue
// catching up, is.
func (q *eventQueue) flush() bool {
	select {
	case <-q.done:
		return true
	default:
	}
	p := q.prog
	last := p.taken.Load()
	if p.stuckAt.Load() == last {
		return false
	}
	t := time.NewTimer(sinkStall)
	defer t.Stop()
	for {
		select {
		case <-q.done:
			return true
		case <-t.C:
			n := p.taken.Load()
			if n == last {
				p.stuckAt.Store(n)
				return false
			}
			last = n
			t.Reset(sinkStall)
		}
	}
}

// RunEvents hands a sink the events of a run that bmc makes outside the
// executor's loops (the outcome of a finalize step run on a Batch pool, as
// the client learns it) the way the executor hands its own: after the
// run's earlier events, one call at a time, from a goroutine of its own,
// through the bounded queue. A reader that does not keep up holds up
// nothing but its own events, and one that has gone is told of once.
type RunEvents struct {
	q     *eventQueue
	runID string
}

// QueueEvents starts a run's next queue of events for sink, after those
// the run queued before (its task phase's). With no sink, its events go
// nowhere. Close it before the run's next queue starts.
func QueueEvents(run *RunInfo, sink Sink) *RunEvents {
	return &RunEvents{q: newEventQueue(run, sink, time.Now), runID: run.ID}
}

// Event queues e, its time and run id filled in, never waiting for the
// sink.
func (r *RunEvents) Event(e Event) {
	if r.q == nil {
		return
	}
	e.Time, e.RunID = time.Now(), r.runID
	r.q.Event(e)
}

// Close waits, as the end of a run does, until the sink has taken every
// event queued or has taken none for a while, and says on the run's log
// what it did not get.
func (r *RunEvents) Close() { r.q.close() }

package executor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuckSink takes its first event and then blocks, as a consumer that
// stopped reading does, until the test ends.
type stuckSink struct {
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	got     []Event
}

func newStuckSink(t *testing.T) *stuckSink {
	s := &stuckSink{release: make(chan struct{})}
	t.Cleanup(func() { s.once.Do(func() { close(s.release) }) })
	return s
}

func (s *stuckSink) Event(e Event) {
	s.mu.Lock()
	s.got = append(s.got, e)
	s.mu.Unlock()
	<-s.release
}

// within fails the test if f does not return: a run held up by its event
// consumer never returns at all.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not return: held up by an event consumer that does not read", what)
	}
}

// A consumer that stops reading events holds up neither the tasks nor a
// cancel, nor the finalize step and the callback after it.
func TestStuckSinkDoesNotHoldUpTheRun(t *testing.T) {
	defer func(d time.Duration) { sinkStall = d }(sinkStall)
	sinkStall = time.Millisecond
	plan := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
  - {id: b, run: "true", dependsOn: [a]}
  - {id: c, run: "true", dependsOn: [b]}
finalize:
  run: "true"
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var ran []string
	be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
		mu.Lock()
		ran = append(ran, a.Task.ID)
		mu.Unlock()
		switch {
		case a.Finalize:
			return succeeded()
		case a.Task.ID == "c":
			cancel() // Ctrl-C while c runs
			<-ctx.Done()
			return Result{State: Canceled, Reason: "cancelled"}
		}
		return succeeded()
	}}
	run := testRun(t)
	sink := newStuckSink(t)
	var o *Outcome
	within(t, "RunTasks", func() {
		var err error
		if o, err = RunTasks(ctx, plan, be, run, nil, Options{Slots: 1, Events: sink, Progress: time.Millisecond}); err != nil {
			t.Error(err)
		}
	})
	if o == nil {
		t.FailNow()
	}
	if !o.Canceled || o.Counts.Succeeded != 2 || o.Counts.Cancelled != 1 {
		t.Errorf("outcome canceled=%v counts %+v, want a and b succeeded and c cancelled", o.Canceled, o.Counts)
	}
	var res *RunResult
	within(t, "Finish", func() {
		var err error
		if res, err = Finish(context.Background(), plan, be, run, nil, o, FinishOptions{Events: sink}); err != nil {
			t.Error(err)
		}
	})
	if res == nil || res.Finalize == nil || res.Finalize.State != Succeeded {
		t.Errorf("finalize step: %+v, want it run", res)
	}
	// Released, the consumer gets the run's events in order, once each.
	sink.once.Do(func() { close(sink.release) })
	sinkStall = time.Minute
	run.events.prog.stuckAt.Store(-1)
	if !run.events.flush() {
		t.Fatal("events not delivered once the consumer reads again")
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if last := sink.got[len(sink.got)-1]; last.Type != EventRunFinished {
		t.Errorf("last event %s, want %s", last.Type, EventRunFinished)
	}
	seen := map[string]bool{}
	for _, e := range sink.got {
		if e.Type == EventTaskFinished {
			if seen[e.Task] {
				t.Errorf("%s finished twice", e.Task)
			}
			seen[e.Task] = true
		}
	}
	if len(seen) != 3 {
		t.Errorf("task-finished events for %v, want a, b and c", seen)
	}
}

// An event that a task succeeded follows its journal record: a consumer
// never hears of a success that a resume after kill -9 would run again.
func TestTaskFinishedEventFollowsJournal(t *testing.T) {
	plan := planSpec(t, independentTasks(20, func(int) int { return 1 }))
	run := testRun(t)
	j := mustOpen(t, filepath.Join(run.Dir, JournalFile))
	defer j.Close()
	be := &mockBackend{RunTaskFn: func(context.Context, *Attempt) Result { return succeeded() }}
	checked := 0
	events := &eventLog{notify: func(e Event) {
		if e.Type != EventTaskFinished || e.State != Succeeded {
			return
		}
		checked++
		recs, err := ReadJournal(j.Path())
		if err != nil {
			t.Error(err)
			return
		}
		for _, r := range recs {
			if r.Type == RecordTaskFinished && r.Task == e.Task && r.State == string(Succeeded) {
				return
			}
		}
		t.Errorf("%s reported succeeded before its journal record was written", e.Task)
	}}
	if _, err := RunTasks(context.Background(), plan, be, run, j, Options{Slots: 4, Events: events}); err != nil {
		t.Fatal(err)
	}
	if checked != 20 {
		t.Errorf("%d task-finished events, want 20", checked)
	}
}

// Events beyond the queue's bound are left out, counted and told, never
// lost silently; progress events are merged.
func TestEventQueueOverflow(t *testing.T) {
	run := testRun(t)
	// The sink is still busy with the events of the run's task phase.
	busy := make(chan struct{})
	run.events = &eventQueue{done: busy}
	sink := &eventLog{}
	q := newEventQueue(run, sink, time.Now)
	const n = eventQueueSize + 100
	for i := range n {
		q.Event(Event{Type: EventTaskStarted, Task: fmt.Sprint("t", i)})
	}
	for range 100 {
		q.Event(Event{Type: EventProgress})
	}
	close(busy)
	q.close()
	var tasks, progress, dropped int
	for _, e := range sink.all() {
		switch e.Type {
		case EventTaskStarted:
			tasks++
		case EventProgress:
			progress++
		case EventDropped:
			var k int
			if _, err := fmt.Sscanf(e.Reason, "%d events left out", &k); err != nil || k != e.Dropped {
				t.Errorf("dropped event %q, dropped %d: %v", e.Reason, e.Dropped, err)
			}
			dropped += e.Dropped
		}
	}
	if tasks != eventQueueSize || dropped != n-eventQueueSize {
		t.Errorf("%d events delivered and %d told as left out, want %d and %d", tasks, dropped, eventQueueSize, n-eventQueueSize)
	}
	if progress != 0 {
		t.Errorf("%d progress events delivered beyond the bound", progress)
	}
}

type failingWriter struct{ writes int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	return 0, errors.New("broken pipe")
}

// After a write fails, a JSON sink writes nothing more, and says why.
func TestJSONSinkStopsAfterWriteError(t *testing.T) {
	w := &failingWriter{}
	s := NewJSONSink(w)
	for range 3 {
		s.Event(Event{Type: EventProgress})
	}
	if w.writes != 1 {
		t.Errorf("%d writes, want 1: the sink goes on writing after an error", w.writes)
	}
	if err := (Sinks{s}).Err(); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("Err() = %v, want the write error", err)
	}
}

// TestEventQueueTurnWhole: the events of one turn of the run (every task
// left, cancelled at once, in a sweep) are queued whole when the reader
// has kept up so far, however many: only a reader already behind by the
// queue's bound loses events.
func TestEventQueueTurnWhole(t *testing.T) {
	run := testRun(t)
	busy := make(chan struct{})
	run.events = &eventQueue{done: busy}
	sink := &eventLog{}
	q := newEventQueue(run, sink, time.Now)
	const n = 3 * eventQueueSize
	turn := make([]Event, n)
	for i := range turn {
		turn[i] = Event{Type: EventTaskFinished, Task: fmt.Sprint("t", i), State: Canceled}
	}
	q.putAll(turn)
	q.putAll(turn[:10]) // the reader is behind by the bound now: left out
	close(busy)
	q.close()
	var finished, dropped int
	for _, e := range sink.all() {
		switch e.Type {
		case EventTaskFinished:
			finished++
		case EventDropped:
			dropped += e.Dropped
		}
	}
	if finished != n || dropped != 10 {
		t.Errorf("%d task-finished delivered, %d told as left out; want %d and 10", finished, dropped, n)
	}
}

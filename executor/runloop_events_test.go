package executor

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

// heldSink takes no event until released, and records the order of the
// events and whether two calls ever overlapped.
type heldSink struct {
	release chan struct{}
	in      atomic.Int32
	mu      sync.Mutex
	types   []EventType
	overlap bool
	last    chan struct{} // closed once run-finished is taken
}

func (s *heldSink) Event(e Event) {
	if s.in.Add(1) > 1 {
		s.mu.Lock()
		s.overlap = true
		s.mu.Unlock()
	}
	defer s.in.Add(-1)
	<-s.release
	s.mu.Lock()
	s.types = append(s.types, e.Type)
	s.mu.Unlock()
	if e.Type == EventRunFinished {
		close(s.last)
	}
}

// TestRunloopQueueEventsAfterTheRun: events made outside the executor's
// loops (the outcome of the finalize step on a Batch pool) go to the
// sink after the task phase's, one call at a time, and making them never
// waits for a reader that takes nothing, even once the task phase has
// stopped waiting for it.
func TestRunloopQueueEventsAfterTheRun(t *testing.T) {
	defer func(d time.Duration) { sinkStall = d }(sinkStall)
	sinkStall = 20 * time.Millisecond
	prog := &compiler.Program{Name: "n", Tasks: []compiler.Task{{ID: "a", Run: "true"}}}
	plan := planner.New(prog, planner.Capabilities{Name: "native", NativeDependencies: true}, nil)
	be := &scriptedNative{polls: []func() (PollResult, error){updates(TaskUpdate{ID: "a", State: Succeeded, Attempts: 1})}}
	sink := &heldSink{release: make(chan struct{}), last: make(chan struct{})}
	run := &RunInfo{ID: "r"}
	// The task phase gives up waiting for the stuck sink.
	if _, err := RunNative(t.Context(), plan, be, run, nil, NativeOptions{PollInterval: time.Millisecond, Events: sink}); err != nil {
		t.Fatal(err)
	}
	q := QueueEvents(run, sink)
	for _, typ := range []EventType{EventFinalizeStarted, EventFinalizeFinished, EventRunFinished} {
		q.Event(Event{Type: typ, Task: compiler.FinalizeID})
	}
	close(sink.release)
	// Not waited for again: the sink took nothing since the task phase
	// gave up on it. Its writers go on all the same.
	q.Close()
	select {
	case <-sink.last:
	case <-time.After(time.Minute):
		t.Fatal("the sink never got run-finished")
	}
	want := []EventType{EventRunStarted, EventTaskStarted, EventTaskFinished, EventFinalizeStarted, EventFinalizeFinished, EventRunFinished}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if diff := cmp.Diff(want, sink.types); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if sink.overlap {
		t.Error("the sink was called by two goroutines at once")
	}
}

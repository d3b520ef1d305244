package executor

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A JSON sink whose reader never reads blocks in its write with its lock
// held: the end of the task phase and the finalize step go on without it
// all the same, and the finalize step runs.
func TestBlockedJSONSinkDoesNotHoldUpTheRun(t *testing.T) {
	defer func(d time.Duration) { sinkStall = d }(sinkStall)
	sinkStall = 10 * time.Millisecond
	plan := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
  - {id: b, run: "true", dependsOn: [a]}
finalize:
  run: "true"
`)
	be := &mockBackend{RunTaskFn: func(context.Context, *Attempt) Result { return succeeded() }}
	run := testRun(t)
	var logs strings.Builder
	var logMu sync.Mutex
	run.Log = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	// Nobody reads the pipe: the first write blocks until the test ends.
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	sink := Sinks{NewJSONSink(pw)}
	var o *Outcome
	within(t, "RunTasks", func() {
		var err error
		if o, err = RunTasks(context.Background(), plan, be, run, nil, Options{Slots: 1, Events: sink}); err != nil {
			t.Error(err)
		}
	})
	if o == nil {
		t.FailNow()
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
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "has taken no event") {
		t.Errorf("no warning that the consumer was left behind:\n%s", logs.String())
	}
}

// A consumer that takes events slowly but steadily is not taken for a
// stuck one: it gets every event of the run, in order, by the time Finish
// returns, however long the whole takes beside sinkStall.
func TestSlowSinkGetsEveryEvent(t *testing.T) {
	defer func(d time.Duration) { sinkStall = d }(sinkStall)
	// Far longer than the sink takes for one event, far shorter than it
	// takes for them all.
	sinkStall = 100 * time.Millisecond
	const n = 500
	plan := planSpec(t, independentTasks(n, func(int) int { return 1 })+"finalize:\n  run: \"true\"\n")
	be := &mockBackend{RunTaskFn: func(context.Context, *Attempt) Result { return succeeded() }}
	run := testRun(t)
	var logs strings.Builder
	var logMu sync.Mutex
	run.Log = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	sink := &eventLog{notify: func(Event) { time.Sleep(time.Millisecond) }} // a slow consumer
	o, err := RunTasks(context.Background(), plan, be, run, nil, Options{Slots: 8, Events: sink})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Finish(context.Background(), plan, be, run, nil, o, FinishOptions{Events: sink}); err != nil {
		t.Fatal(err)
	}
	got := sink.all()
	if want := 2*n + 4; len(got) != want {
		t.Errorf("%d events delivered by the time Finish returned, want %d", len(got), want)
	}
	if len(got) == 0 || got[0].Type != EventRunStarted {
		t.Fatalf("first event not %s", EventRunStarted)
	}
	if last := got[len(got)-1]; last.Type != EventRunFinished {
		t.Errorf("last event %s, want %s", last.Type, EventRunFinished)
	}
	started := map[string]bool{}
	finished := map[string]bool{}
	finalize := 0
	for _, e := range got {
		switch e.Type {
		case EventTaskStarted:
			started[e.Task] = true
		case EventTaskFinished:
			if !started[e.Task] || finished[e.Task] {
				t.Errorf("%s finished out of order", e.Task)
			}
			if finalize > 0 {
				t.Errorf("%s finished after the finalize step started", e.Task)
			}
			finished[e.Task] = true
		case EventFinalizeStarted, EventFinalizeFinished:
			finalize++
		}
	}
	if len(finished) != n || finalize != 2 {
		t.Errorf("%d tasks finished and %d finalize events, want %d and 2", len(finished), finalize, n)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), "has taken no event") {
		t.Errorf("a slow consumer was taken for a stuck one:\n%s", logs.String())
	}
}

// Once the journal cannot be written, no event says a task succeeded
// whose record is not in the journal.
func TestNoSuccessEventWithoutJournalRecord(t *testing.T) {
	plan := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, command: ["true"]}
  - {id: b, command: ["true"]}
  - {id: c, command: ["true"]}
`)
	run := testRun(t)
	j := mustOpen(t, filepath.Join(run.Dir, JournalFile))
	// The first task's run breaks the journal's file under it.
	be := journalBreaker(t, j)
	events := &eventLog{}
	o, err := RunTasks(context.Background(), plan, be, run, j, Options{Slots: 1, Events: events})
	if err != nil {
		t.Fatalf("RunTasks: %v", err)
	}
	if o.Counts.Skipped == 0 {
		t.Errorf("counts %+v: the run went on after the journal failed", o.Counts)
	}
	j.Close()
	recs, err := ReadJournal(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, r := range recs {
		if r.Type == RecordTaskFinished && r.State == string(Succeeded) {
			recorded[r.Task] = true
		}
	}
	for _, e := range events.all() {
		if e.Type == EventTaskFinished && e.State == Succeeded && !recorded[e.Task] {
			t.Errorf("%s reported succeeded, but the journal has no record of it", e.Task)
		}
	}
}

// TestJSONSinkNewErrOnce: a failed stream is told of once, though the
// run's events come through more than one queue.
func TestJSONSinkNewErrOnce(t *testing.T) {
	s := NewJSONSink(&failingWriter{})
	s.Event(Event{Type: EventRunStarted})
	if s.NewErr() == nil {
		t.Fatal("NewErr is nil after a failed write")
	}
	if err := s.NewErr(); err != nil {
		t.Errorf("NewErr told again: %v", err)
	}
	if s.Err() == nil {
		t.Errorf("Err forgot the error")
	}
	if err := (Sinks{s}).NewErr(); err != nil {
		t.Errorf("Sinks.NewErr told again: %v", err)
	}
}

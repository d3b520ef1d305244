package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
)

// fakeRun is a run directory that a test changes step by step, as the
// bmc driving it and the local backend would, while bmc logs --follow
// reads it. The follower reads only when the test lets it: between two
// reads it waits for the test, which changes the run meanwhile.
type fakeRun struct {
	t       *testing.T
	taskDir string
	unlock  func()
	journal *executor.Journal

	out    bytes.Buffer  // what the follower prints, log and notes together
	idle   chan struct{} // the follower is done reading and waits
	resume chan bool     // read again (true) or stop (false)
	done   chan struct{} // closed when the follow has ended, with err
	err    error
	ended  bool
}

// newFakeRun makes a run of one task, chatty, driven by this process (it
// holds the run's lock), and starts following chatty's stdout.
func newFakeRun(t *testing.T, retries int) *fakeRun {
	t.Helper()
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "follow", Tasks: []compiler.Task{{ID: "chatty", Run: "true", Retries: retries}}}
	dir, err := executor.CreateRun(t.TempDir(), executor.Meta{ID: "follow-1", Workload: "follow", Backend: "local", Created: time.Now()}, prog)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRun{t: t, taskDir: local.TaskDir(dir, "chatty"), idle: make(chan struct{}), resume: make(chan bool), done: make(chan struct{})}
	unlock, err := executor.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.unlock = sync.OnceFunc(unlock)
	t.Cleanup(r.unlock)
	if r.journal, err = executor.OpenJournal(filepath.Join(dir, executor.JournalFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.journal.Close() })
	r.record(executor.Record{Type: executor.RecordRunStarted})
	if err := os.MkdirAll(r.taskDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fl := &follower{out: &r.out, errOut: &r.out, dir: dir, task: "chatty", stream: "stdout", retries: retries}
	go func() {
		r.err = fl.follow(func() bool {
			r.idle <- struct{}{}
			return <-r.resume
		})
		close(r.done)
	}()
	t.Cleanup(func() {
		if !r.ended {
			r.resume <- false
			<-r.done
		}
	})
	r.wait()
	return r
}

// read has the follower read the run as the test changed it, and reports
// whether the follow goes on.
func (r *fakeRun) read() bool {
	select {
	case r.resume <- true:
	case <-r.done:
	}
	return r.wait()
}

// wait waits for the follower to be done with a read, and reports
// whether the follow goes on.
func (r *fakeRun) wait() bool {
	select {
	case <-r.idle:
		return true
	case <-r.done:
		r.ended = true
		return false
	}
}

func (r *fakeRun) record(rec executor.Record) {
	r.t.Helper()
	if err := r.journal.Append(rec); err != nil {
		r.t.Fatal(err)
	}
}

func (r *fakeRun) started(attempt int) {
	r.record(executor.Record{Type: executor.RecordTaskStarted, Task: "chatty", Attempt: attempt})
}

func (r *fakeRun) finished(attempt int, state executor.State) {
	r.record(executor.Record{Type: executor.RecordTaskFinished, Task: "chatty", Attempt: attempt, State: string(state)})
}

// write appends to the current attempt's stdout.txt, as the task does.
func (r *fakeRun) write(text string) {
	r.t.Helper()
	f, err := os.OpenFile(filepath.Join(r.taskDir, "stdout.txt"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		r.t.Fatal(err)
	}
}

// archive renames the log of an attempt that is over, as the local
// backend does before the next attempt.
func (r *fakeRun) archive(attempt int) {
	r.t.Helper()
	if err := os.Rename(filepath.Join(r.taskDir, "stdout.txt"), filepath.Join(r.taskDir, fmt.Sprintf("stdout.attempt-%d.txt", attempt))); err != nil {
		r.t.Fatal(err)
	}
}

// step has the follower read the run, and checks all it has printed.
func (r *fakeRun) step(want string) {
	r.t.Helper()
	if !r.read() {
		r.t.Fatalf("the follow ended (%v) after printing:\n%s", r.err, r.out.String())
	}
	if got := r.out.String(); got != want {
		r.t.Fatalf("printed:\n%s\nwant:\n%s", got, want)
	}
}

// end has the follower read the run, which it must end with, and returns
// the follow's error and all it printed.
func (r *fakeRun) end() (string, error) {
	r.t.Helper()
	if r.read() {
		r.t.Fatalf("the follow goes on after printing:\n%s", r.out.String())
	}
	return r.out.String(), r.err
}

func TestFollowAcrossRetries(t *testing.T) {
	r := newFakeRun(t, 3)
	r.step("") // the task has not started: the follower waits for it

	r.started(1)
	r.write("a1 line 1\n")
	want := "a1 line 1\n"
	r.step(want)

	// A failed attempt with retries left does not end the follow.
	r.write("a1 line 2\n")
	r.finished(1, executor.Failed)
	want += "a1 line 2\n"
	r.step(want)

	// What attempt 1 wrote before its log was renamed is printed too.
	r.write("a1 line 3\n")
	r.archive(1)
	r.started(2)
	want += "a1 line 3\n"
	r.step(want)

	r.write("a2 line 1\n")
	want += "bmc: attempt 2\na2 line 1\n"
	r.step(want)

	// Attempt 3 comes and goes between two reads: its log is printed
	// from where it was renamed to.
	r.write("a2 line 2\n")
	r.finished(2, executor.Failed)
	r.archive(2)
	r.started(3)
	r.write("a3 line 1\n")
	r.finished(3, executor.Failed)
	r.archive(3)
	r.started(4)
	r.write("a4 line 1\n")
	want += "a2 line 2\nbmc: attempt 3\na3 line 1\nbmc: attempt 4\na4 line 1\n"
	r.step(want)

	r.write("a4 line 2\n")
	r.finished(4, executor.Succeeded)
	want += "a4 line 2\n"
	got, err := r.end()
	if err != nil || got != want {
		t.Fatalf("the follow ended with %v after printing:\n%s\nwant:\n%s", err, got, want)
	}
}

func TestFollowEndsWhenRetriesAreSpent(t *testing.T) {
	r := newFakeRun(t, 1)
	r.started(1)
	r.write("a1\n")
	r.finished(1, executor.Failed)
	r.step("a1\n")

	r.archive(1)
	r.started(2)
	r.write("a2\n")
	r.finished(2, executor.Failed)
	got, err := r.end()
	if want := "a1\nbmc: attempt 2\na2\n"; err != nil || got != want {
		t.Fatalf("the follow ended with %v after printing:\n%s\nwant:\n%s", err, got, want)
	}
}

// A follow begins with the current attempt, and a resumed run retries
// its tasks afresh: attempt 3, the first of the second session, does not
// end the follow.
func TestFollowResumedRun(t *testing.T) {
	r := newFakeRun(t, 1)
	r.started(1)
	r.write("a1\n")
	r.finished(1, executor.Failed)
	r.archive(1)
	r.started(2)
	r.write("a2\n")
	r.finished(2, executor.Failed)
	r.record(executor.Record{Type: executor.RecordRunStarted})
	r.archive(2)
	r.started(3)
	r.write("a3\n")
	r.finished(3, executor.Failed)
	r.step("a3\n")

	r.archive(3)
	r.started(4)
	r.write("a4\n")
	r.finished(4, executor.Failed)
	got, err := r.end()
	if want := "a3\nbmc: attempt 4\na4\n"; err != nil || got != want {
		t.Fatalf("the follow ended with %v after printing:\n%s\nwant:\n%s", err, got, want)
	}
}

func TestFollowEndsWhenNoBmcDrivesTheRun(t *testing.T) {
	r := newFakeRun(t, 0)
	r.step("")
	r.unlock() // the bmc driving the run is gone, the task never started
	_, err := r.end()
	if err == nil || !strings.Contains(err.Error(), "task chatty has not run, and no bmc is running run follow-1 (bmc resume follow-1 would run it)") {
		t.Fatalf("the follow ended with %v", err)
	}
}

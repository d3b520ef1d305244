package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// poolDone is a stand-in for Batch holding a job whose job manager task
// has run the finalize step and left nr.
func poolDone(t *testing.T, jobID string, nr azurebatch.NodeResult) *azurebatch.Client {
	t.Helper()
	result, err := json.Marshal(nr)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(time.RFC3339Nano)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		switch {
		case p == "/jobs/"+jobID:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"`+jobID+`","state":"completed","jobManagerTask":{"id":"finalize","commandLine":"bmc"}}`)
		case p == "/jobs/"+jobID+"/tasks/finalize":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"finalize","state":"completed","executionInfo":{"startTime":"`+started+`","retryCount":0,"requeueCount":0}}`)
		case strings.HasPrefix(p, "/jobs/"+jobID+"/tasks/finalize/files/"):
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(result)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	cred, err := azurebatch.NewSharedKeyCredential("acct", "a2V5")
	if err != nil {
		t.Fatal(err)
	}
	c, err := azurebatch.New(srv.URL, cred, azurebatch.Options{MaxRetries: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// heldSink takes no event until released, then records them.
type heldSink struct {
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	events  []executor.Event
}

func (s *heldSink) Event(e executor.Event) {
	<-s.release
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *heldSink) let() { s.once.Do(func() { close(s.release) }) }

// TestRunloopFinishOnPoolQueuesEvents: the outcome of the finalize step
// on the pool reaches the events as the executor's own events do:
// queued, so that a reader that takes nothing holds up neither the
// journal nor bmc's end, in order, and with the secrets a text from the
// pool may hold taken out, of the journal too.
func TestRunloopFinishOnPoolQueuesEvents(t *testing.T) {
	const jobID = "pool-run"
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	zero := 0
	secret := "sig=c2VjcmV0LXNpZ25hdHVyZQ"
	nr := azurebatch.NodeResult{
		Status:   executor.CallbackSucceeded,
		Body:     executor.CallbackBody{Workload: "w", RunID: jobID, Backend: azurebatch.Name, Status: executor.CallbackSucceeded},
		Finalize: &executor.TaskOutcome{State: executor.Failed, Attempts: 1, ExitCode: &zero, Reason: "output https://acct.blob.core.windows.net/c/x?" + secret + " failed", Start: t0, End: t0.Add(2 * time.Second)},
		Callback: &executor.CallbackResult{Attempts: 3, Status: 500, Err: "callback https://hook.example/x?" + secret + ": HTTP 500"},
	}
	c := poolDone(t, jobID, nr)
	prog := &compiler.Program{Name: "w", Tasks: []compiler.Task{{ID: "a", Run: "true"}},
		Finalize: compiler.Finalize{Run: "echo done", Callback: &compiler.Callback{URL: "https://hook.example/x"}}}
	plan := planner.New(prog, azurebatch.Capabilities(nil), nil)
	dir := t.TempDir()
	jpath := filepath.Join(dir, executor.JournalFile)
	j, err := executor.OpenJournal(jpath)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	run := &executor.RunInfo{ID: jobID, Workload: "w", Dir: dir}
	o := &executor.Outcome{Tasks: []executor.TaskOutcome{{State: executor.Succeeded, Attempts: 1}}, Counts: executor.Counts{Total: 1, Succeeded: 1}, Started: t0}
	sink := &heldSink{release: make(chan struct{})}
	t.Cleanup(sink.let)
	done := make(chan error, 1)
	go func() {
		_, err := finishOnPool(t.Context(), io.Discard, c, plan, run, j, o, sink, time.Millisecond)
		done <- err
	}()
	// The run's end is journaled while the reader takes nothing.
	ended := func() bool {
		recs, _ := executor.ReadJournal(jpath)
		for _, r := range recs {
			if r.Type == executor.RecordRunFinished {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(20 * time.Second); !ended(); {
		select {
		case err := <-done:
			t.Fatalf("finishOnPool returned %v before journaling the run's end", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the run's end was not journaled while the events reader took nothing: the finalize step's outcome waited for it")
		}
	}
	sink.let()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var types []executor.EventType
	sink.mu.Lock()
	for _, e := range sink.events {
		types = append(types, e.Type)
		if strings.Contains(e.Reason, secret) {
			t.Errorf("%s event: %q", e.Type, e.Reason)
		}
	}
	sink.mu.Unlock()
	want := []executor.EventType{executor.EventFinalizeStarted, executor.EventFinalizeFinished, executor.EventCallback, executor.EventRunFinished}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the journal holds the secret:\n%s", b)
	}
}

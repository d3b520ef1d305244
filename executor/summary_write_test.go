package executor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// A run summary that cannot be written (the run directory removed, a full
// disk) fails the run, but the finalize step still runs, with the summary
// from elsewhere, the callback is still sent and the run's end journaled.
func TestFinishWhenSummaryCannotBeWritten(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	plan := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
finalize:
  run: "true"
  callback: {url: "`+srv.URL+`", retries: 0}
`)
	run := testRun(t)
	j := mustOpen(t, filepath.Join(t.TempDir(), JournalFile))
	defer j.Close()
	var sawSummary bool
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		if a.Finalize {
			_, err := os.Stat(a.Summary)
			sawSummary = err == nil
		}
		return succeeded()
	}}
	o, err := RunTasks(context.Background(), plan, be, run, j, Options{Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(run.Dir); err != nil {
		t.Fatal(err)
	}
	res, err := Finish(context.Background(), plan, be, run, j, o, FinishOptions{})
	if err != nil {
		t.Fatalf("Finish: %v; want the run finished despite the summary", err)
	}
	if !sawSummary {
		t.Error("the finalize step got no readable summary")
	}
	if calls.Load() != 1 {
		t.Errorf("%d callbacks sent, want 1", calls.Load())
	}
	if res.WriteErr == nil || res.Final() != CallbackFailed || res.Status != CallbackFailed {
		t.Errorf("WriteErr %v, final %s, status %s: want the write error and a failed run", res.WriteErr, res.Final(), res.Status)
	}
	recs, err := ReadJournal(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; last.Type != RecordRunFinished || last.State != string(CallbackFailed) {
		t.Errorf("last record %s %s, want run-finished failed", last.Type, last.State)
	}
}

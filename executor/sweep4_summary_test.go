package executor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// callbackBodies is a callback receiver that keeps the bodies it gets.
func callbackBodies(t *testing.T) (url string, bodies func() []CallbackBody) {
	var mu sync.Mutex
	var got []CallbackBody
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var b CallbackBody
		if err := json.Unmarshal(data, &b); err != nil {
			t.Errorf("callback body %s: %v", data, err)
		}
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []CallbackBody {
		mu.Lock()
		defer mu.Unlock()
		return append([]CallbackBody(nil), got...)
	}
}

// blockSummary makes summary.json in dir a folder with a file in it,
// which no rename can replace, root or not: the run summary cannot be
// written. It returns a function that removes the block.
func blockSummary(t *testing.T, dir string) (unblock func()) {
	p := filepath.Join(dir, SummaryFile)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.RemoveAll(p); err != nil {
			t.Error(err)
		}
	}
}

// TestSweep4SummaryLostIsNotSuccess: a run whose every task succeeded but
// whose run summary could not be written, or whose finalize step got no
// summary to read, is reported failed everywhere, its callback included,
// with a reason that names what was lost but no local path; one whose
// summary could be written by the end, after an earlier try failed, lost
// nothing and succeeds. The run directory keeps no temporary file.
func TestSweep4SummaryLostIsNotSuccess(t *testing.T) {
	for _, tt := range []struct {
		name string
		step bool
		// unblockInStep removes the block while the finalize step runs.
		unblockInStep bool
		// noTemp leaves the step no other place for its summary either.
		noTemp      bool
		wantStatus  CallbackStatus
		wantReason  string
		stepSummary bool // the step finds a summary to read
	}{
		{name: "no step", wantStatus: CallbackFailed, wantReason: "the run summary (summary.json) could not be written"},
		{name: "step", step: true, stepSummary: true, wantStatus: CallbackFailed, wantReason: "the run summary (summary.json) could not be written"},
		{name: "step, no summary anywhere", step: true, noTemp: true, wantStatus: CallbackFailed, wantReason: "the finalize step got no run summary"},
		{name: "written after all", step: true, unblockInStep: true, stepSummary: true, wantStatus: CallbackSucceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url, bodies := callbackBodies(t)
			spec := "apiVersion: bmc/v1\nkind: Workload\nname: w\ntasks:\n  - {id: a, run: \"true\"}\nfinalize:\n"
			if tt.step {
				spec += "  run: \"true\"\n"
			}
			spec += "  callback: {url: \"" + url + "\", retries: 0}\n"
			plan := planSpec(t, spec)
			run := testRun(t)
			j := mustOpen(t, filepath.Join(t.TempDir(), JournalFile))
			defer j.Close()
			if tt.noTemp {
				t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "gone"))
			}
			var unblock func()
			var stepSummary bool
			be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
				if a.Finalize {
					_, err := os.Stat(a.Summary)
					stepSummary = a.Summary != "" && err == nil
					if tt.unblockInStep {
						unblock()
					}
				}
				return succeeded()
			}}
			o, err := RunTasks(context.Background(), plan, be, run, j, Options{Slots: 1})
			if err != nil {
				t.Fatal(err)
			}
			unblock = blockSummary(t, run.Dir)
			res, err := Finish(context.Background(), plan, be, run, j, o, FinishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if stepSummary != tt.stepSummary {
				t.Errorf("the finalize step found a summary: %v, want %v", stepSummary, tt.stepSummary)
			}
			got := bodies()
			if len(got) != 1 {
				t.Fatalf("%d callbacks, want 1", len(got))
			}
			cb := got[0]
			if cb.Status != tt.wantStatus || res.Final() != tt.wantStatus || res.Status != tt.wantStatus {
				t.Errorf("callback says %s, the run %s (status %s): want %s", cb.Status, res.Final(), res.Status, tt.wantStatus)
			}
			if cb.Tasks.Succeeded != 1 || cb.Tasks.Total != 1 {
				t.Errorf("callback counts %+v: the task did succeed", cb.Tasks)
			}
			if !strings.Contains(cb.Reason, tt.wantReason) || (tt.wantReason == "") != (cb.Reason == "") {
				t.Errorf("callback reason %q, want one saying %q", cb.Reason, tt.wantReason)
			}
			if strings.Contains(cb.Reason, run.Dir) || strings.Contains(cb.Reason, os.TempDir()) {
				t.Errorf("callback reason %q shows a local path", cb.Reason)
			}
			recs, err := ReadJournal(j.Path())
			if err != nil {
				t.Fatal(err)
			}
			if last := recs[len(recs)-1]; last.Type != RecordRunFinished || last.State != string(tt.wantStatus) {
				t.Errorf("last record %s %s, want run-finished %s", last.Type, last.State, tt.wantStatus)
			}
			if tt.wantStatus == CallbackSucceeded {
				var sum CallbackBody
				data, err := os.ReadFile(filepath.Join(run.Dir, SummaryFile))
				if err == nil {
					err = json.Unmarshal(data, &sum)
				}
				if err != nil || sum.Status != CallbackSucceeded || sum.FinishedAt.IsZero() || !sum.FinishedAt.Equal(cb.FinishedAt) {
					t.Errorf("summary.json: %v, %+v: want the body sent", err, sum)
				}
			}
			left, _ := filepath.Glob(filepath.Join(run.Dir, ".tmp-*"))
			if len(left) > 0 {
				t.Errorf("temporary files left in the run directory: %v", left)
			}
		})
	}
}

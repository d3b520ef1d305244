package azurebatch

// A submission Batch does not take whole: the run is stopped and reported
// failed, not cancelled, with the tasks the job lacks failed as not
// submitted, by the client that submitted it and by the finalize step on
// the pool alike.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

func TestSubmitFailure(t *testing.T) {
	// Half the tasks of each add-collection request fail with
	// servererror, and the client gives a task up after one resubmission:
	// some are never added; some, added all the same, come back
	// TaskExists when resubmitted, and count as added.
	e := newEmu(t, emulator.Options{Faults: &emulator.Faults{Partial: 0.5, Seed: 3}})
	e.pool(t, "p", 1, 4)
	cred, err := NewSharedKeyCredential(e.s.Account(), e.s.Key())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		exists []string // tasks the service answered TaskExists for
	)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/addtaskcollection") {
			e.srv.Config.Handler.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		e.srv.Config.Handler.ServeHTTP(rec, r)
		var res BatchCreateTaskCollectionResult
		if json.Unmarshal(rec.Body.Bytes(), &res) == nil {
			mu.Lock()
			for _, v := range res.Value {
				if v.Error != nil && v.Error.Code == CodeTaskExists {
					exists = append(exists, v.TaskID)
				}
			}
			mu.Unlock()
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(front.Close)
	c, err := New(front.URL, cred, Options{MaxRetries: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	prog := fanIn(20)
	prog.Name = "partial"
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "partial-run", Workload: "partial", Dir: t.TempDir()}
	var stats SubmitStats
	be := NewBackend(BackendOptions{Client: c, OnSubmitted: func(s SubmitStats) { stats = s }})
	var events eventLog
	o, err := executor.RunNative(t.Context(), plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond, Events: &events})
	if err != nil {
		t.Fatal(err)
	}
	f := be.SubmitFailure()
	if f == nil || stats.Failure != f || f.Err == nil {
		t.Fatalf("submit failure %+v, reported %+v", f, stats.Failure)
	}

	// Missing is what the job lacks.
	have := map[string]bool{}
	for tk, err := range e.c.ListTasks(t.Context(), run.ID, ListOptions{Select: "id"}) {
		if err != nil {
			t.Fatal(err)
		}
		have[tk.ID] = true
	}
	var missing []string
	for _, pt := range prog.Tasks {
		if !have[pt.ID] {
			missing = append(missing, pt.ID)
		}
	}
	if len(missing) == 0 || len(missing) == len(prog.Tasks) {
		t.Fatalf("%d of %d tasks not added: the test needs some added and some not", len(missing), len(prog.Tasks))
	}
	if !slices.Equal(f.Missing, missing) || !strings.HasPrefix(f.Cause, "InternalError: ") {
		t.Errorf("missing %v, cause %q; the job lacks %v", f.Missing, f.Cause, missing)
	}
	// Tasks answered servererror but added were found there when
	// resubmitted: submitted, not given up.
	if len(exists) == 0 {
		t.Error("no task came back TaskExists when resubmitted")
	}
	var ae *AddTasksError
	if !errors.As(f.Err, &ae) {
		t.Fatalf("submit failure error %v", f.Err)
	}
	for _, id := range exists {
		if !have[id] || slices.Contains(f.Missing, id) || slices.ContainsFunc(ae.Failures, func(tf TaskFailure) bool { return tf.TaskID == id }) {
			t.Errorf("%s came back TaskExists but is reported not added", id)
		}
	}
	// The job says so, for the finalize step on the pool, and was ended.
	j, err := e.c.GetJob(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if metaValue(j.Metadata, MetaSubmitted) != SubmittedFailed || metaValue(j.Metadata, MetaSubmitError) != f.Cause ||
		j.ExecutionInfo == nil || j.ExecutionInfo.TerminateReason != "bmc: the tasks could not all be added" {
		t.Errorf("job metadata %+v, execution %+v", j.Metadata, j.ExecutionInfo)
	}
	t.Logf("%d of %d tasks not added; counts %+v", len(missing), len(prog.Tasks), o.Counts)
	checkSubmitFailed(t, plan, o.Canceled, executor.Summarize(plan, run, o), missing, f.Cause)
	for i, tk := range o.Tasks {
		if tk.State == executor.Canceled && !strings.HasSuffix(tk.Reason, fmt.Sprintf("the run stopped because %d of its tasks could not be submitted", len(missing))) {
			t.Errorf("%s cancelled: %q", prog.Tasks[i].ID, tk.Reason)
		}
	}

	// The events said so as it happened: each task ended once, the
	// missing ones failed, never cancelled first.
	ended := map[string][]executor.State{}
	for _, e := range events.list {
		if e.Type == executor.EventTaskFinished || e.Type == executor.EventTaskSkipped {
			ended[e.Task] = append(ended[e.Task], e.State)
		}
	}
	for i, tk := range o.Tasks {
		id := prog.Tasks[i].ID
		if got := ended[id]; tk.State != executor.Succeeded && !slices.Equal(got, []executor.State{tk.State}) {
			t.Errorf("%s: events %v, outcome %s", id, got, tk.State)
		}
	}

	// The finalize step on the pool, following the same job, reports the
	// same.
	wd := t.TempDir()
	nr, err := RunNode(t.Context(), NodeRun{
		Config: &NodeConfig{RunID: run.ID, Workload: run.Workload, Program: prog, PollInterval: compiler.Duration(20 * time.Millisecond)},
		Client: e.c, WorkDir: wd, TaskDir: wd,
	})
	if err != nil {
		t.Fatal(err)
	}
	if nr.Status != executor.CallbackFailed {
		t.Errorf("the finalize step reports the run %s", nr.Status)
	}
	checkSubmitFailed(t, plan, false, nr.Body, missing, f.Cause)
}

// checkSubmitFailed checks the summary of a run whose missing tasks were
// never added: it failed, they failed as not submitted with no exit code,
// and every other task succeeded, was skipped behind one of them, or was
// cancelled saying why.
func checkSubmitFailed(t *testing.T, plan *planner.Plan, cancelled bool, body executor.CallbackBody, missing []string, cause string) {
	t.Helper()
	if cancelled || body.Status != executor.CallbackFailed || body.Tasks.Failed != len(missing) {
		t.Errorf("cancelled %v, status %s, counts %+v; %d tasks missing", cancelled, body.Status, body.Tasks, len(missing))
	}
	var failed []string
	for _, ft := range body.Failed {
		failed = append(failed, ft.ID)
		if ft.ExitCode != nil || ft.Attempts != 0 || ft.Reason != "not submitted: "+cause {
			t.Errorf("failed %s: exit code %v, %d attempts, %q", ft.ID, ft.ExitCode, ft.Attempts, ft.Reason)
		}
	}
	slices.Sort(failed)
	want := slices.Sorted(slices.Values(missing))
	if !slices.Equal(failed, want) {
		t.Errorf("failed %v, want the missing tasks %v", failed, want)
	}
	if body.Tasks.Succeeded+body.Tasks.Cancelled+body.Tasks.Skipped+body.Tasks.Failed != len(plan.Program.Tasks) {
		t.Errorf("counts %+v", body.Tasks)
	}
}

// eventLog keeps the events of a run.
type eventLog struct {
	mu   sync.Mutex
	list []executor.Event
}

func (l *eventLog) Event(e executor.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, e)
}

// TestSubmitMarkFailure: every task was added but the job could not be
// marked submitted, so it would never end by itself. The run is stopped
// and reported failed for that reason, not for tasks not added.
func TestSubmitMarkFailure(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 4)
	// Updates of the job's metadata are refused once the job exists: the
	// mark, and the failed mark after it.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/jobs/") && !strings.Contains(strings.TrimPrefix(r.URL.Path, "/jobs/"), "/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"code":"InvalidPropertyValue","message":{"lang":"en-US","value":"refused by the test"}}`)
			return
		}
		e.srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	cred, err := NewSharedKeyCredential(e.s.Account(), e.s.Key())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(front.URL, cred, Options{MaxRetries: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	prog := fanIn(3)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "mark-run", Workload: "fan", Dir: t.TempDir()}
	be := NewBackend(BackendOptions{Client: c})
	o, err := executor.RunNative(t.Context(), plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := be.SubmitFailure()
	if f == nil || !f.Added || len(f.Missing) != 0 || !strings.Contains(f.Cause, "refused by the test") {
		t.Fatalf("submit failure %+v", f)
	}
	body := executor.Summarize(plan, run, o)
	if o.Canceled || body.Status != executor.CallbackFailed {
		t.Errorf("cancelled %v, status %s", o.Canceled, body.Status)
	}
	for i, tk := range o.Tasks {
		if tk.State != executor.Succeeded && !strings.HasSuffix(tk.Reason, "the run stopped because its job could not be marked submitted") {
			t.Errorf("%s %s: %q", prog.Tasks[i].ID, tk.State, tk.Reason)
		}
	}
}

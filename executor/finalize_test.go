package executor

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
	"github.com/google/go-cmp/cmp"
)

// finishSpec has a task with an output, a failing-prone task with a
// dependent, a finalize step and a callback whose URL is a param.
const finishSpec = `apiVersion: bmc/v1
kind: Workload
name: w
params:
  cb: {default: ""}
tasks:
  - id: ok
    run: "true"
    outputs:
      - {path: o.txt, to: "az://res/${{ run.id }}/o.txt"}
  - {id: bad, run: "true"}
  - {id: after, run: "true", dependsOn: [bad]}
finalize:
  run: summarize "$BMC_RUN_SUMMARY" ${{ run.id }}
  outputs:
    - {path: report.txt, to: "az://res/${{ run.id }}/report.txt", when: always}
  callback:
    url: "${{ params.cb }}/hook/${{ run.id }}"
    timeout: 10s
    retries: 0
`

// hookRequest is one request the callback endpoint got.
type hookRequest struct {
	path   string
	header http.Header
	body   []byte
}

// hookServer is a callback endpoint answering with code.
type hookServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
}

func newHookServer(t *testing.T, code int) *hookServer {
	t.Helper()
	h := &hookServer{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{r.URL.Path, r.Header.Clone(), b})
		h.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

// finishCase runs the task phase of finishSpec on a mock backend and
// returns what Finish needs.
type finishCase struct {
	plan *planner.Plan
	run  *RunInfo
	j    *Journal
	out  *Outcome
}

// runPhase runs the tasks: bad fails unless badOK or cancel; cancel
// cancels the run once after, the last task, has started.
func runPhase(t *testing.T, hookURL string, badOK, cancel bool) *finishCase {
	t.Helper()
	prog := compileSpec(t, finishSpec, map[string]any{"cb": hookURL})
	p := planner.New(prog, planner.Capabilities{Name: "mock"}, nil)
	run := testRun(t)
	j, err := OpenJournal(filepath.Join(run.Dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
		switch a.Task.ID {
		case "ok":
			r := succeeded()
			r.Outputs = []string{a.Task.Outputs[0].To}
			return r
		case "bad":
			if !badOK && !cancel {
				return failed(3)
			}
		case "after":
			if cancel {
				stop()
				<-ctx.Done()
				return Result{State: Canceled, Reason: "cancelled"}
			}
		}
		return succeeded()
	}}
	o, err := RunTasks(ctx, p, be, run, j, Options{Slots: 1, KeepGoing: true})
	if err != nil {
		t.Fatal(err)
	}
	return &finishCase{plan: p, run: run, j: j, out: o}
}

// finalizeBackend runs only the finalize step: it checks what it was given,
// reads the summary it points at, and returns result.
type finalizeBackend struct {
	t       *testing.T
	result  Result
	calls   int
	summary CallbackBody
	ctxErr  error
	attempt *Attempt
}

func (f *finalizeBackend) backend() *mockBackend {
	return &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
		f.calls++
		f.ctxErr = ctx.Err()
		f.attempt = a
		if !a.Finalize || a.Task.ID != compiler.FinalizeID || a.Number != 1 {
			f.t.Errorf("finalize attempt %+v", a)
		}
		b, err := os.ReadFile(a.Summary)
		if err != nil {
			f.t.Errorf("the summary is not there for the finalize step: %v", err)
			return failed(1)
		}
		if err := json.Unmarshal(b, &f.summary); err != nil {
			f.t.Errorf("summary: %v", err)
		}
		r := f.result
		if r.State == Succeeded {
			r.Outputs = []string{a.Task.Outputs[0].To}
		}
		return r
	}}
}

func readSummary(t *testing.T, run *RunInfo) CallbackBody {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(run.Dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var body CallbackBody
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	return body
}

func journalRecords(t *testing.T, c *finishCase) map[string][]Record {
	t.Helper()
	if err := c.j.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadJournal(c.j.Path())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]Record{}
	for _, r := range recs {
		m[r.Type] = append(m[r.Type], r)
	}
	return m
}

func hmacHex(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestFinishAfterFailure(t *testing.T) {
	hook := newHookServer(t, http.StatusNoContent)
	c := runPhase(t, hook.srv.URL, false, false)
	fb := &finalizeBackend{t: t, result: succeeded()}
	events := &eventLog{}
	secret := []byte("s3cret")
	res, err := Finish(context.Background(), c.plan, fb.backend(), c.run, c.j, c.out, FinishOptions{Secret: secret, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if fb.calls != 1 {
		t.Fatalf("finalize ran %d times", fb.calls)
	}
	// The finalize step had the run id filled in and saw the summary of
	// the tasks, before its own outcome.
	if want := `summarize "$BMC_RUN_SUMMARY" w-run-1`; fb.attempt.Task.Run != want {
		t.Errorf("finalize script %q, want %q", fb.attempt.Task.Run, want)
	}
	if fb.attempt.Summary != filepath.Join(c.run.Dir, SummaryFile) {
		t.Errorf("Summary = %q", fb.attempt.Summary)
	}
	wantCounts := CallbackTaskCounts{Total: 3, Succeeded: 1, Failed: 1, Skipped: 1}
	if fb.summary.Status != CallbackFailed || fb.summary.Tasks != wantCounts {
		t.Errorf("summary given to finalize: %s %+v", fb.summary.Status, fb.summary.Tasks)
	}

	if res.Status != CallbackFailed || res.Finalize == nil || res.Finalize.State != Succeeded || res.CallbackErr != nil {
		t.Errorf("result: status %s, finalize %+v, callback error %v", res.Status, res.Finalize, res.CallbackErr)
	}
	// summary.json is rewritten with the finalize step's outputs.
	sum := readSummary(t, c.run)
	wantOutputs := []CallbackOutput{
		{Task: compiler.FinalizeID, Location: "az://res/w-run-1/report.txt"},
		{Task: "ok", Location: "az://res/w-run-1/o.txt"},
	}
	wantFailed := []CallbackFailedTask{{ID: "bad", ExitCode: codePtr(3), Reason: "exit code 3", Attempts: 1}}
	if sum.Status != CallbackFailed || sum.Tasks != wantCounts || sum.RunID != "w-run-1" || sum.Workload != "w" || sum.Backend != "mock" {
		t.Errorf("summary.json: %+v", sum)
	}
	if diff := cmp.Diff(wantOutputs, sum.Outputs); diff != "" {
		t.Errorf("summary outputs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantFailed, sum.Failed); diff != "" {
		t.Errorf("summary failed (-want +got):\n%s", diff)
	}

	reqs := hook.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d callback requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.path != "/hook/w-run-1" {
		t.Errorf("callback path %q", r.path)
	}
	if got := r.header.Get("Idempotency-Key"); got != "w-run-1" {
		t.Errorf("Idempotency-Key %q", got)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if got, want := r.header.Get("X-Bmc-Signature"), hmacHex(secret, r.body); got != want {
		t.Errorf("X-Bmc-Signature %q, want %q", got, want)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"workload": "w", "runId": "w-run-1", "backend": "mock", "status": "failed"} {
		if body[k] != want {
			t.Errorf("body %s = %v, want %v", k, body[k], want)
		}
	}
	for _, k := range []string{"startedAt", "finishedAt"} {
		if ts, ok := body[k].(string); !ok || ts == "" || ts == (time.Time{}).Format(time.RFC3339) {
			t.Errorf("body %s = %v", k, body[k])
		}
	}
	if diff := cmp.Diff(map[string]any{"total": 3.0, "succeeded": 1.0, "failed": 1.0, "skipped": 1.0, "cancelled": 0.0}, body["tasks"]); diff != "" {
		t.Errorf("body tasks (-want +got):\n%s", diff)
	}
	wantFailedJSON := []any{map[string]any{"id": "bad", "exitCode": 3.0, "reason": "exit code 3", "attempts": 1.0}}
	if diff := cmp.Diff(wantFailedJSON, body["failed"]); diff != "" {
		t.Errorf("body failed (-want +got):\n%s", diff)
	}
	if outs, _ := body["outputs"].([]any); len(outs) != 2 {
		t.Errorf("body outputs %v", body["outputs"])
	}
	if res.Callback == nil || !res.Callback.Delivered || res.Callback.Status != http.StatusNoContent || res.Callback.Attempts != 1 {
		t.Errorf("callback result %+v", res.Callback)
	}

	recs := journalRecords(t, c)
	if ff := recs[RecordFinalizeFinished]; len(ff) != 1 || ff[0].State != "succeeded" {
		t.Errorf("finalize-finished records %+v", ff)
	}
	if cb := recs[RecordCallback]; len(cb) != 1 || !jsonHas(t, cb[0].Data, "delivered", true) {
		t.Errorf("callback records %+v", cb)
	}
	rf := recs[RecordRunFinished]
	if len(rf) != 1 || rf[0].State != "failed" {
		t.Fatalf("run-finished records %+v", rf)
	}
	var counts CallbackTaskCounts
	if err := json.Unmarshal(rf[0].Data, &counts); err != nil || counts != wantCounts {
		t.Errorf("run-finished data %s", rf[0].Data)
	}

	var kinds []EventType
	for _, e := range events.all() {
		kinds = append(kinds, e.Type)
	}
	want := []EventType{EventFinalizeStarted, EventFinalizeFinished, EventCallback, EventRunFinished}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if last := events.all()[len(kinds)-1]; last.State != "failed" {
		t.Errorf("run-finished event state %q", last.State)
	}
}

func jsonHas(t *testing.T, data json.RawMessage, key string, want any) bool {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Errorf("%s: %v", data, err)
		return false
	}
	return m[key] == want
}

func TestFinishAfterCancel(t *testing.T) {
	hook := newHookServer(t, http.StatusOK)
	c := runPhase(t, hook.srv.URL, false, true)
	if !c.out.Canceled {
		t.Fatal("the run was not cancelled")
	}
	fb := &finalizeBackend{t: t, result: succeeded()}
	// The CLI hands Finish a fresh context: the run's is cancelled.
	res, err := Finish(context.Background(), c.plan, fb.backend(), c.run, c.j, c.out, FinishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fb.calls != 1 {
		t.Fatalf("finalize ran %d times after cancel", fb.calls)
	}
	if fb.ctxErr != nil {
		t.Errorf("the finalize step got a done context: %v", fb.ctxErr)
	}
	if fb.summary.Status != CallbackCancelled {
		t.Errorf("summary given to finalize: %s", fb.summary.Status)
	}
	if res.Status != CallbackCancelled {
		t.Errorf("status %s, want cancelled", res.Status)
	}
	sum := readSummary(t, c.run)
	if sum.Status != CallbackCancelled || sum.Tasks.Cancelled != 1 || sum.Tasks.Succeeded != 2 {
		t.Errorf("summary.json %s %+v", sum.Status, sum.Tasks)
	}
	reqs := hook.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d callback requests", len(reqs))
	}
	if !jsonHas(t, reqs[0].body, "status", "cancelled") {
		t.Errorf("callback body %s", reqs[0].body)
	}
	if reqs[0].header.Get("X-Bmc-Signature") != "" {
		t.Error("signed without a secret")
	}
	if rf := journalRecords(t, c)[RecordRunFinished]; len(rf) != 1 || rf[0].State != "cancelled" {
		t.Errorf("run-finished %+v", rf)
	}
}

// TestFinishFinalizeFailure: a failing finalize step fails a run whose
// tasks all succeeded.
func TestFinishFinalizeFailure(t *testing.T) {
	hook := newHookServer(t, http.StatusOK)
	c := runPhase(t, hook.srv.URL, true, false)
	if c.out.Counts.Succeeded != 3 {
		t.Fatalf("counts %+v", c.out.Counts)
	}
	fb := &finalizeBackend{t: t, result: failed(9)}
	res, err := Finish(context.Background(), c.plan, fb.backend(), c.run, c.j, c.out, FinishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fb.summary.Status != CallbackSucceeded {
		t.Errorf("summary before finalize: %s", fb.summary.Status)
	}
	if res.Status != CallbackFailed || res.Finalize.State != Failed || *res.Finalize.ExitCode != 9 {
		t.Errorf("status %s, finalize %+v", res.Status, res.Finalize)
	}
	if sum := readSummary(t, c.run); sum.Status != CallbackFailed {
		t.Errorf("summary.json status %s", sum.Status)
	}
	if reqs := hook.requests(); len(reqs) != 1 || !jsonHas(t, reqs[0].body, "status", "failed") {
		t.Errorf("callback %+v", reqs)
	}
	recs := journalRecords(t, c)
	if ff := recs[RecordFinalizeFinished]; len(ff) != 1 || ff[0].State != "failed" || ff[0].ExitCode == nil || *ff[0].ExitCode != 9 {
		t.Errorf("finalize-finished %+v", ff)
	}
}

func TestFinishSkips(t *testing.T) {
	for _, tt := range []struct {
		name       string
		opts       FinishOptions
		step, call bool
	}{
		{"nothing skipped", FinishOptions{}, true, true},
		{"step", FinishOptions{SkipStep: true}, false, true},
		{"callback", FinishOptions{SkipCallback: true}, true, false},
		{"both", FinishOptions{SkipStep: true, SkipCallback: true}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hook := newHookServer(t, http.StatusOK)
			c := runPhase(t, hook.srv.URL, true, false)
			fb := &finalizeBackend{t: t, result: succeeded()}
			res, err := Finish(context.Background(), c.plan, fb.backend(), c.run, c.j, c.out, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if ran := fb.calls == 1; ran != tt.step {
				t.Errorf("finalize ran %d times, want step=%v", fb.calls, tt.step)
			}
			if (res.Finalize != nil) != tt.step {
				t.Errorf("Finalize = %+v", res.Finalize)
			}
			if sent := len(hook.requests()) == 1; sent != tt.call {
				t.Errorf("%d callback requests, want callback=%v", len(hook.requests()), tt.call)
			}
			if (res.Callback != nil) != tt.call {
				t.Errorf("Callback = %+v", res.Callback)
			}
			if res.Status != CallbackSucceeded {
				t.Errorf("status %s", res.Status)
			}
			recs := journalRecords(t, c)
			if got := len(recs[RecordFinalizeFinished]) == 1; got != tt.step {
				t.Errorf("finalize-finished records: %d", len(recs[RecordFinalizeFinished]))
			}
			if got := len(recs[RecordCallback]) == 1; got != tt.call {
				t.Errorf("callback records: %d", len(recs[RecordCallback]))
			}
			if rf := recs[RecordRunFinished]; len(rf) != 1 || rf[0].State != "succeeded" {
				t.Errorf("run-finished %+v", rf)
			}
			// The summary is written whatever is skipped.
			if sum := readSummary(t, c.run); sum.Status != CallbackSucceeded || sum.Tasks.Succeeded != 3 {
				t.Errorf("summary.json %+v", sum)
			}
		})
	}
}

// TestFinishCallbackFails: an undelivered callback is an error of its own,
// journaled with delivered=false, and fails the run as recorded.
func TestFinishCallbackFails(t *testing.T) {
	hook := newHookServer(t, http.StatusBadRequest)
	c := runPhase(t, hook.srv.URL, true, false)
	fb := &finalizeBackend{t: t, result: succeeded()}
	events := &eventLog{}
	res, err := Finish(context.Background(), c.plan, fb.backend(), c.run, c.j, c.out, FinishOptions{Events: events})
	if err != nil {
		t.Fatalf("Finish: %v (an undelivered callback is reported in RunResult)", err)
	}
	var cerr *CallbackError
	if !errors.As(res.CallbackErr, &cerr) || cerr.Status != http.StatusBadRequest {
		t.Fatalf("CallbackErr = %v", res.CallbackErr)
	}
	if res.Callback == nil || res.Callback.Delivered || res.Callback.Status != http.StatusBadRequest || res.Callback.Err == "" {
		t.Errorf("Callback = %+v", res.Callback)
	}
	if n := len(hook.requests()); n != 1 {
		t.Errorf("%d requests; a 400 is not retried", n)
	}
	recs := journalRecords(t, c)
	cb := recs[RecordCallback]
	if len(cb) != 1 || !jsonHas(t, cb[0].Data, "delivered", false) || !jsonHas(t, cb[0].Data, "status", 400.0) {
		t.Errorf("callback records %+v", cb)
	}
	if rf := recs[RecordRunFinished]; len(rf) != 1 || rf[0].State != "failed" {
		t.Errorf("run-finished %+v: an undelivered callback fails the run", rf)
	}
	var cbEvent *Event
	for _, e := range events.all() {
		if e.Type == EventCallback {
			cbEvent = &e
		}
	}
	if cbEvent == nil || cbEvent.State != Failed || cbEvent.Reason == "" || cbEvent.Attempt != 1 || cbEvent.HTTPStatus != http.StatusBadRequest {
		t.Errorf("callback event %+v: want the attempts made and the last HTTP status", cbEvent)
	}
	// Resume reads it back: the callback is owed.
	st, err := LoadState(c.run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Callback == nil || st.Callback.Delivered || st.Status != "failed" {
		t.Errorf("state: callback %+v, status %s", st.Callback, st.Status)
	}
	if st.Finalize == nil || st.Finalize.State != Succeeded {
		t.Errorf("state: finalize %+v", st.Finalize)
	}
}

// TestFinishWithoutStepOrCallback: a program with neither still gets its
// summary and run-finished record.
func TestFinishWithoutStepOrCallback(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
`)
	run := testRun(t)
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		if a.Finalize {
			t.Error("a finalize step ran though the program has none")
		}
		return succeeded()
	}}
	o, err := RunTasks(context.Background(), p, be, run, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Finish(context.Background(), p, be, run, nil, o, FinishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != CallbackSucceeded || res.Finalize != nil || res.Callback != nil {
		t.Errorf("result %+v", res)
	}
	if sum := readSummary(t, run); sum.Status != CallbackSucceeded || sum.Tasks.Total != 1 {
		t.Errorf("summary %+v", sum)
	}
}

package executor

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
	"github.com/google/go-cmp/cmp"
)

// A finalize step that did not succeed is listed in the body's failed,
// in the callback and in summary.json: when every task succeeded, it is
// why the run failed.
func TestFinishListsFinalizeStepThatDidNotSucceed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		result Result
		want   []CallbackFailedTask
	}{
		{
			name:   "failed",
			result: failed(9),
			want:   []CallbackFailedTask{{ID: compiler.FinalizeID, ExitCode: codePtr(9), Reason: "exit code 9", Attempts: 1}},
		},
		{
			name:   "cancelled",
			result: Result{State: Canceled, ExitCode: codePtr(143), Reason: "cancelled: process group killed"},
			want:   []CallbackFailedTask{{ID: compiler.FinalizeID, ExitCode: codePtr(143), Reason: "cancelled: process group killed", Attempts: 1}},
		},
		{
			name:   "no process",
			result: Result{State: Failed},
			want:   []CallbackFailedTask{{ID: compiler.FinalizeID, Reason: "failed", Attempts: 1}},
		},
		{name: "succeeded", result: succeeded(), want: []CallbackFailedTask{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hook := newHookServer(t, http.StatusOK)
			c := runPhase(t, hook.srv.URL, true, false)
			fb := &finalizeBackend{t: t, result: tt.result}
			res, err := Finish(context.Background(), c.plan, fb.backend(), c.run, c.j, c.out, FinishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The step itself saw the tasks' summary, not its own entry.
			if len(fb.summary.Failed) != 0 {
				t.Errorf("summary given to the step lists %+v", fb.summary.Failed)
			}
			wantCounts := CallbackTaskCounts{Total: 3, Succeeded: 3}
			reqs := hook.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d callbacks, want 1", len(reqs))
			}
			var sent CallbackBody
			if err := json.Unmarshal(reqs[0].body, &sent); err != nil {
				t.Fatal(err)
			}
			for where, b := range map[string]CallbackBody{"callback": sent, "summary.json": readSummary(t, c.run), "result": res.Body} {
				if diff := cmp.Diff(tt.want, b.Failed); diff != "" {
					t.Errorf("%s failed (-want +got):\n%s", where, diff)
				}
				// The counts are the tasks' alone.
				if b.Tasks != wantCounts {
					t.Errorf("%s tasks %+v, want %+v", where, b.Tasks, wantCounts)
				}
			}
			// exitCode is null when no process gave one.
			if tt.name == "no process" && !strings.Contains(string(reqs[0].body), `{"id":"finalize","exitCode":null,"reason":"failed","attempts":1}`) {
				t.Errorf("body %s", reqs[0].body)
			}
		})
	}
}

// The callback of a resumed run reports the run's first start, as the
// first session's callback did, and the resumed session's finish.
func TestFinishResumedReportsRunsFirstStart(t *testing.T) {
	hook := newHookServer(t, http.StatusOK)
	prog := compileSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
params:
  cb: {}
tasks:
  - {id: a, run: "true"}
  - {id: b, run: "true"}
finalize:
  callback: {url: "${{ params.cb }}/hook", retries: 0}
`, map[string]any{"cb": hook.srv.URL})
	caps := planner.Capabilities{Name: "mock"}
	run := testRun(t)
	be := func(bFails bool) *mockBackend {
		return &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
			if a.Task.ID == "b" && bFails {
				return failed(1)
			}
			return succeeded()
		}}
	}
	// session runs the tasks not done yet and finishes, with a clock that
	// is ahead of the real one by skew, and returns the body it sent.
	session := func(prev *RunState, bFails bool, skew time.Duration) CallbackBody {
		t.Helper()
		j, err := OpenJournal(filepath.Join(run.Dir, JournalFile))
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		var done map[string]bool
		if prev != nil {
			done = prev.Done()
		}
		now := func() time.Time { return time.Now().Add(skew) }
		p := planner.New(prog, caps, done)
		o, err := RunTasks(context.Background(), p, be(bFails), run, j, Options{KeepGoing: true, Previous: prev, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Finish(context.Background(), p, be(bFails), run, j, o, FinishOptions{Now: now}); err != nil {
			t.Fatal(err)
		}
		reqs := hook.requests()
		var b CallbackBody
		if err := json.Unmarshal(reqs[len(reqs)-1].body, &b); err != nil {
			t.Fatal(err)
		}
		if sum := readSummary(t, run); !sum.StartedAt.Equal(b.StartedAt) || !sum.FinishedAt.Equal(b.FinishedAt) {
			t.Errorf("summary.json %v to %v, callback %v to %v", sum.StartedAt, sum.FinishedAt, b.StartedAt, b.FinishedAt)
		}
		return b
	}

	first := session(nil, true, 0)
	st, err := LoadState(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	// Resumed an hour later.
	second := session(st, false, time.Hour)

	if first.Status != CallbackFailed || second.Status != CallbackSucceeded {
		t.Fatalf("statuses %s then %s", first.Status, second.Status)
	}
	if !second.StartedAt.Equal(first.StartedAt) {
		t.Errorf("resumed startedAt %v, want the run's first start %v", second.StartedAt, first.StartedAt)
	}
	// The start bmc runs and bmc status show.
	if !first.StartedAt.Equal(st.Started) {
		t.Errorf("startedAt %v, journal's start %v", first.StartedAt, st.Started)
	}
	if !second.FinishedAt.After(first.FinishedAt.Add(time.Hour - time.Minute)) {
		t.Errorf("resumed finishedAt %v is not the latest finish (first %v)", second.FinishedAt, first.FinishedAt)
	}
}

// messages records the messages of log records at a level.
type messages struct {
	mu    sync.Mutex
	level slog.Level
	msgs  []string
}

func (m *messages) Enabled(_ context.Context, l slog.Level) bool { return l >= m.level }
func (m *messages) Handle(_ context.Context, r slog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, r.Message)
	return nil
}
func (m *messages) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m *messages) WithGroup(string) slog.Handler      { return m }

func (m *messages) all() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.msgs...)
}

// A retry is told as one sentence, as bmc's other messages read, naming
// the URL safely: no userinfo, query or fragment, and a URL given through
// a variable by the variable's name.
func TestSendCallbackRetryMessages(t *testing.T) {
	refused := httptest.NewServer(http.NotFoundHandler())
	refused.Close()
	for _, tt := range []struct {
		name    string
		respond func(int, http.ResponseWriter, *http.Request)
		url     func(rc *receiver) string // the target, before userinfo and query are added
		cbName  string
		retries int
		want    func(shown string) []string
	}{
		{
			name:    "503 twice",
			respond: failFirst(2, status(503)),
			retries: 5,
			want: func(shown string) []string {
				return []string{
					"callback to " + shown + ": HTTP 503, retrying in 1ms (attempt 1 of 6)",
					"callback to " + shown + ": HTTP 503, retrying in 2ms (attempt 2 of 6)",
				}
			},
		},
		{
			name:    "URL from a variable",
			respond: failFirst(1, status(500)),
			cbName:  "$HOOK_URL",
			retries: 1,
			want: func(string) []string {
				return []string{"callback to $HOOK_URL: HTTP 500, retrying in 1ms (attempt 1 of 2)"}
			},
		},
		{
			name:    "Retry-After",
			respond: failFirst(1, status(429, "Retry-After", "0")),
			retries: 2,
			want: func(shown string) []string {
				return []string{"callback to " + shown + ": HTTP 429, retrying in 0s (attempt 1 of 3)"}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, tt.respond)
			target := strings.Replace(rc.srv.URL, "http://", "http://alice:pa55w0rd@", 1) + "/hook?token=tok-123#frag"
			log := &messages{level: slog.LevelWarn}
			cb := Callback{URL: target, Name: tt.cbName, Retries: tt.retries, Timeout: 10 * time.Second}
			o := callbackOptions{waitMin: time.Millisecond, waitMax: time.Second}
			if _, err := sendCallback(context.Background(), cb, testRunID, []byte(`{}`), slog.New(log), o); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want(rc.srv.URL+"/hook"), log.all()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		log := &messages{level: slog.LevelWarn}
		cb := Callback{URL: refused.URL + "/hook?token=tok-123", Retries: 1, Timeout: 10 * time.Second}
		o := callbackOptions{waitMin: time.Millisecond, waitMax: time.Second}
		if _, err := sendCallback(context.Background(), cb, testRunID, []byte(`{}`), slog.New(log), o); err == nil {
			t.Fatal("delivered to a closed server")
		}
		got := log.all()
		if len(got) != 1 || !strings.HasPrefix(got[0], "callback to "+refused.URL+"/hook: ") ||
			!strings.Contains(got[0], "connection refused") || !strings.HasSuffix(got[0], ", retrying in 1ms (attempt 1 of 2)") {
			t.Errorf("warnings %q", got)
		}
	})
}

// bmc status shows a task's last attempt's duration: the journal gives
// the start of the last attempt beside that of the first, which may be a
// session earlier.
func TestLoadStateLastStart(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	writeJournal(t, dir, base,
		Record{Type: RecordRunStarted, Time: at(0)},
		Record{Type: RecordTaskStarted, Task: "a", Attempt: 1, Time: at(10 * time.Millisecond)},
		Record{Type: RecordTaskFinished, Task: "a", Attempt: 1, State: "failed", ExitCode: codePtr(1), Reason: "exit code 1", Time: at(20 * time.Millisecond)},
		Record{Type: RecordRunFinished, State: "failed", Time: at(30 * time.Millisecond)},
		// Resumed 1.7s later: a's second attempt takes 7ms.
		Record{Type: RecordRunStarted, Time: at(1700 * time.Millisecond)},
		Record{Type: RecordTaskStarted, Task: "a", Attempt: 2, Time: at(1732 * time.Millisecond)},
		Record{Type: RecordTaskFinished, Task: "a", Attempt: 2, State: "succeeded", ExitCode: codePtr(0), Time: at(1739 * time.Millisecond)},
		Record{Type: RecordRunFinished, State: "succeeded", Time: at(1745 * time.Millisecond)},
	)
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := st.Tasks["a"]
	if a == nil || !a.Start.Equal(at(10*time.Millisecond)) || !a.LastStart.Equal(at(1732*time.Millisecond)) || !a.End.Equal(at(1739*time.Millisecond)) {
		t.Fatalf("a: %+v", a)
	}
	if d := a.End.Sub(a.LastStart); d != 7*time.Millisecond {
		t.Errorf("last attempt took %s, want 7ms", d)
	}
}

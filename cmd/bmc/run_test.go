package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bmc-dev/bmc/executor"
	"github.com/google/go-cmp/cmp"
)

// The callback end to end: bmc run and bmc resume with a callback endpoint
// on loopback. (testscript cannot serve HTTP, so this is a Go test.)

const callbackSpec = `apiVersion: bmc/v1
kind: Workload
name: cb
params:
  hook: {}
  fail: {default: "no"}
tasks:
  - id: work
    run: |
      echo data > out.txt
      test "${{ params.fail }}" = no
    outputs:
      - {path: out.txt, to: "az://res/${{ run.id }}/out.txt", when: always}
  - {id: after, dependsOn: [work], run: "true"}
finalize:
  run: echo finalize >> "$BMC_TEST_FINALIZE_LOG"
  callback:
    url: "${{ params.hook }}/hook?run=${{ run.id }}"
    secretEnv: BMC_TEST_HOOK_SECRET
    timeout: 10s
    retries: 0
`

type hookCall struct {
	query  string
	header http.Header
	body   []byte
}

// hookEndpoint records callbacks and answers with its current code.
type hookEndpoint struct {
	mu    sync.Mutex
	code  int
	calls []hookCall
	srv   *httptest.Server
}

func newHookEndpoint(t *testing.T) *hookEndpoint {
	h := &hookEndpoint{code: http.StatusOK}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.URL.Path != "/hook" || r.Method != http.MethodPost {
			t.Errorf("callback %s %s", r.Method, r.URL.Path)
		}
		h.calls = append(h.calls, hookCall{r.URL.RawQuery, r.Header.Clone(), b})
		w.WriteHeader(h.code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookEndpoint) answer(code int) {
	h.mu.Lock()
	h.code = code
	h.mu.Unlock()
}

func (h *hookEndpoint) received() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.calls...)
}

// bmcRun runs the CLI in this process and returns its exit code, stdout
// and stderr.
func bmcRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

type callbackFixture struct {
	hook      *hookEndpoint
	state     string
	spec      string
	finalizes string
	secret    string
}

func newCallbackFixture(t *testing.T) *callbackFixture {
	dir := t.TempDir()
	f := &callbackFixture{
		hook:      newHookEndpoint(t),
		state:     filepath.Join(dir, "state"),
		spec:      filepath.Join(dir, "cb.yaml"),
		finalizes: filepath.Join(dir, "finalize.log"),
		secret:    "hook-secret",
	}
	if err := os.WriteFile(f.spec, []byte(callbackSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BMC_TEST_FINALIZE_LOG", f.finalizes)
	t.Setenv("BMC_TEST_HOOK_SECRET", f.secret)
	return f
}

func (f *callbackFixture) run(t *testing.T, extra ...string) (int, string) {
	t.Helper()
	args := append([]string{"run", "--state-dir", f.state, "--progress", "plain", "--slots", "2", "--set", "hook=" + f.hook.srv.URL}, extra...)
	code, _, stderr := bmcRun(t, append(args, f.spec)...)
	return code, stderr
}

func (f *callbackFixture) resume(t *testing.T) (int, string) {
	t.Helper()
	code, _, stderr := bmcRun(t, "resume", "--state-dir", f.state, "--progress", "plain", "latest")
	return code, stderr
}

// runID is the one run in the state directory.
func (f *callbackFixture) runID(t *testing.T) string {
	t.Helper()
	ids, err := executor.ListRunIDs(f.state)
	if err != nil || len(ids) != 1 {
		t.Fatalf("runs %v (%v), want one", ids, err)
	}
	return ids[0]
}

func (f *callbackFixture) finalizeRuns(t *testing.T) int {
	b, err := os.ReadFile(f.finalizes)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "finalize\n")
}

// checkCall checks a callback's headers and signature and returns its body.
func (f *callbackFixture) checkCall(t *testing.T, c hookCall, runID string) map[string]any {
	t.Helper()
	if c.query != "run="+runID {
		t.Errorf("query %q: ${{ run.id }} not filled in", c.query)
	}
	if got := c.header.Get("Idempotency-Key"); got != runID {
		t.Errorf("Idempotency-Key %q, want %q", got, runID)
	}
	if got := c.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	// The version bmc version prints.
	if got, want := c.header.Get("User-Agent"), "bmc/"+bmcVersion(); got != want {
		t.Errorf("User-Agent %q, want %q", got, want)
	}
	m := hmac.New(sha256.New, []byte(f.secret))
	m.Write(c.body)
	if got, want := c.header.Get("X-Bmc-Signature"), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("X-Bmc-Signature %q, want %q", got, want)
	}
	var body map[string]any
	if err := json.Unmarshal(c.body, &body); err != nil {
		t.Fatalf("body %s: %v", c.body, err)
	}
	for k, want := range map[string]any{"workload": "cb", "runId": runID, "backend": "local"} {
		if body[k] != want {
			t.Errorf("body %s = %v, want %v", k, body[k], want)
		}
	}
	return body
}

func TestRunCallbackSucceeded(t *testing.T) {
	f := newCallbackFixture(t)
	code, stderr := f.run(t)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	id := f.runID(t)
	calls := f.hook.received()
	if len(calls) != 1 {
		t.Fatalf("%d callbacks, want 1\n%s", len(calls), stderr)
	}
	body := f.checkCall(t, calls[0], id)
	if body["status"] != "succeeded" {
		t.Errorf("status %v", body["status"])
	}
	if diff := cmp.Diff(map[string]any{"total": 2.0, "succeeded": 2.0, "failed": 0.0, "skipped": 0.0, "cancelled": 0.0}, body["tasks"]); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{}, body["failed"]); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
	wantOut := []any{map[string]any{"task": "work", "location": "az://res/" + id + "/out.txt"}}
	if diff := cmp.Diff(wantOut, body["outputs"]); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr, "callback delivered (HTTP 200, 1 attempt)") {
		t.Errorf("stderr does not report the delivery:\n%s", stderr)
	}
	if n := f.finalizeRuns(t); n != 1 {
		t.Errorf("finalize ran %d times", n)
	}
	// Nothing is owed: a resume runs nothing and sends nothing.
	if code, stderr := f.resume(t); code != 0 || !strings.Contains(stderr, "(0 to run)") {
		t.Errorf("resume: exit %d\n%s", code, stderr)
	}
	if n := len(f.hook.received()); n != 1 {
		t.Errorf("%d callbacks after a resume of a delivered run", n)
	}
	if n := f.finalizeRuns(t); n != 1 {
		t.Errorf("finalize ran %d times after a resume of a finished run", n)
	}
}

// TestRunCallbackUnsigned: with the variable secretEnv names not set,
// the run runs and its callback is sent unsigned, which bmc warns of once.
func TestRunCallbackUnsigned(t *testing.T) {
	f := newCallbackFixture(t)
	os.Unsetenv("BMC_TEST_HOOK_SECRET") // restored by the fixture's t.Setenv
	code, stderr := f.run(t)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, stderr)
	}
	calls := f.hook.received()
	if len(calls) != 1 {
		t.Fatalf("%d callbacks, want 1\n%s", len(calls), stderr)
	}
	if sig := calls[0].header.Get("X-Bmc-Signature"); sig != "" {
		t.Errorf("X-Bmc-Signature %q on an unsigned callback", sig)
	}
	const warning = "bmc: warning: $BMC_TEST_HOOK_SECRET is empty or not set: the callback is sent unsigned"
	if n := strings.Count(stderr, warning); n != 1 {
		t.Errorf("the warning is given %d times, want once:\n%s", n, stderr)
	}
}

func TestRunCallbackFailedTask(t *testing.T) {
	f := newCallbackFixture(t)
	code, stderr := f.run(t, "--set", "fail=yes")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	id := f.runID(t)
	calls := f.hook.received()
	if len(calls) != 1 {
		t.Fatalf("%d callbacks, want 1", len(calls))
	}
	body := f.checkCall(t, calls[0], id)
	if body["status"] != "failed" {
		t.Errorf("status %v", body["status"])
	}
	if diff := cmp.Diff(map[string]any{"total": 2.0, "succeeded": 0.0, "failed": 1.0, "skipped": 1.0, "cancelled": 0.0}, body["tasks"]); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	wantFailed := []any{map[string]any{"id": "work", "exitCode": 1.0, "reason": "exit code 1", "attempts": 1.0}}
	if diff := cmp.Diff(wantFailed, body["failed"]); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
	// when: always outputs are uploaded and reported on failure too.
	wantOut := []any{map[string]any{"task": "work", "location": "az://res/" + id + "/out.txt"}}
	if diff := cmp.Diff(wantOut, body["outputs"]); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	for _, want := range []string{"failed    work: exit code 1", "skipped   after: upstream work failed", "callback delivered"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestRunCallbackRedelivered: a callback that was not delivered fails the
// run; bmc resume sends it again without running the tasks or the finalize
// step again.
func TestRunCallbackRedelivered(t *testing.T) {
	f := newCallbackFixture(t)
	f.hook.answer(http.StatusBadRequest)
	code, stderr := f.run(t)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	id := f.runID(t)
	for _, want := range []string{"callback FAILED", "bmc resume " + id + " --state-dir " + f.state + " sends it again", "2 succeeded, 0 failed"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	st, err := executor.LoadState(filepath.Join(executor.RunsDir(f.state), id))
	if err != nil {
		t.Fatal(err)
	}
	if st.Callback == nil || st.Callback.Delivered || st.Status != "failed" {
		t.Errorf("journal: callback %+v, status %s", st.Callback, st.Status)
	}

	f.hook.answer(http.StatusOK)
	code, stderr = f.resume(t)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "(0 to run)") || strings.Contains(stderr, "started ") || strings.Contains(stderr, "finalize  started") {
		t.Errorf("resume ran something:\n%s", stderr)
	}
	calls := f.hook.received()
	if len(calls) != 2 {
		t.Fatalf("%d callbacks, want 2", len(calls))
	}
	body := f.checkCall(t, calls[1], id)
	if body["status"] != "succeeded" {
		t.Errorf("redelivered status %v", body["status"])
	}
	if calls[0].header.Get("Idempotency-Key") != calls[1].header.Get("Idempotency-Key") {
		t.Error("the redelivery has another Idempotency-Key")
	}
	if n := f.finalizeRuns(t); n != 1 {
		t.Errorf("finalize ran %d times", n)
	}
	if st, err := executor.LoadState(filepath.Join(executor.RunsDir(f.state), id)); err != nil || st.Status != "succeeded" || !st.Callback.Delivered || st.Sessions != 2 {
		t.Errorf("journal after resume: %+v, %v", st, err)
	}
}

// TestResumeCallbackReportsEarlierOutputs: the outcome a resumed run
// reports covers the whole run, outputs of tasks that succeeded before the
// resume included.
func TestResumeCallbackReportsEarlierOutputs(t *testing.T) {
	f := newCallbackFixture(t)
	gate := filepath.Join(t.TempDir(), "gate")
	t.Setenv("BMC_TEST_GATE", gate)
	spec := `apiVersion: bmc/v1
kind: Workload
name: cb
params:
  hook: {}
tasks:
  - id: first
    run: echo one > one.txt
    outputs:
      - {path: one.txt, to: "az://res/${{ run.id }}/one.txt"}
  - id: second
    run: |
      test -f "$BMC_TEST_GATE"
      echo two > two.txt
    outputs:
      - {path: two.txt, to: "az://res/${{ run.id }}/two.txt"}
finalize:
  callback:
    url: "${{ params.hook }}/hook?run=${{ run.id }}"
    secretEnv: BMC_TEST_HOOK_SECRET
    timeout: 10s
    retries: 0
`
	if err := os.WriteFile(f.spec, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := f.run(t, "--keep-going"); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := f.resume(t); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	id := f.runID(t)
	calls := f.hook.received()
	if len(calls) != 2 {
		t.Fatalf("%d callbacks, want 2", len(calls))
	}
	body := f.checkCall(t, calls[1], id)
	want := []any{
		map[string]any{"task": "first", "location": "az://res/" + id + "/one.txt"},
		map[string]any{"task": "second", "location": "az://res/" + id + "/two.txt"},
	}
	if diff := cmp.Diff(want, body["outputs"]); diff != "" {
		t.Errorf("outputs after resume (-want +got):\n%s", diff)
	}
}

// A callback URL given through a variable (urlEnv) is used, and kept and
// shown nowhere: not in the run directory, not in messages, and not in
// the tasks' environment, which lacks the callback's secret as well.
func TestRunCallbackURLFromEnv(t *testing.T) {
	const token = "T0HOOK5ECRET"
	var mu sync.Mutex
	var paths []string
	code := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		paths = append(paths, r.URL.Path)
		w.WriteHeader(code)
	}))
	defer srv.Close()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	spec := filepath.Join(dir, "hook.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: hook
tasks:
  - {id: work, run: 'env > "$AZ_BATCH_NODE_SHARED_DIR/work-env.txt"'}
finalize:
  run: env > "$AZ_BATCH_NODE_SHARED_DIR/finalize-env.txt"
  callback: {urlEnv: BMC_TEST_HOOK_URL, secretEnv: BMC_TEST_HOOK_SECRET, retries: 0}
`), 0o644)
	t.Setenv("BMC_TEST_HOOK_SECRET", "hook-secret")

	// Not set: the run does not start.
	t.Setenv("BMC_TEST_HOOK_URL", "")
	exit, _, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "none", spec)
	if exit != 1 || !strings.Contains(stderr, "the callback goes to the URL in $BMC_TEST_HOOK_URL, which is not set") {
		t.Fatalf("without the URL: exit %d\n%s", exit, stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "runs")); err == nil {
		t.Error("a run was made without the callback URL")
	}

	t.Setenv("BMC_TEST_HOOK_URL", srv.URL+"/services/"+token)
	exit, _, stderr = bmcRun(t, "run", "--state-dir", state, "--progress", "plain", spec)
	if exit != 0 || !strings.Contains(stderr, "callback delivered (HTTP 200, 1 attempt)") {
		t.Fatalf("exit %d\n%s", exit, stderr)
	}
	mu.Lock()
	if len(paths) != 1 || paths[0] != "/services/"+token {
		t.Errorf("callbacks to %q", paths)
	}
	code = http.StatusBadRequest
	mu.Unlock()

	// A delivery that fails names the variable, not the URL.
	exit, _, stderr = bmcRun(t, "run", "--state-dir", state, "--progress", "plain", spec)
	if exit != 1 || !strings.Contains(stderr, "callback to $BMC_TEST_HOOK_URL: ") {
		t.Errorf("failed delivery: exit %d\n%s", exit, stderr)
	}
	if strings.Contains(stderr, token) {
		t.Errorf("the URL was shown:\n%s", stderr)
	}
	var files int
	filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, secret := range []string{token, "hook-secret", "BMC_TEST_HOOK_URL=", "BMC_TEST_HOOK_SECRET="} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %s", path, secret)
			}
		}
		return nil
	})
	if files < 10 {
		t.Errorf("only %d files in the state directory: the runs did not leave what was searched", files)
	}
}

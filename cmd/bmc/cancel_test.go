package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/executor"
)

// bmc cancel of a local run whose bmc was killed ends the run as a Ctrl-C
// would have: its unfinished tasks are cancelled, and the finalize step
// and the callback (status cancelled) run.
func TestCancelInterruptedRunFinishesIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bodies := make(chan map[string]any, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		bodies <- m
	}))
	defer srv.Close()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	pidFile := filepath.Join(dir, "child.pid")
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: cut
tasks:
  - id: first
    run: "true"
  - id: slow
    dependsOn: [first]
    run: |
      sleep 300 &
      echo $! > %[1]s
      wait
  - id: later
    dependsOn: [slow]
    run: "true"
finalize:
  run: cp "$BMC_RUN_SUMMARY" %[2]s/finalize-saw.json
  callback:
    url: %[3]s
    retries: 0
    secretEnv: BMC_CANCEL_TEST_SECRET
`, pidFile, dir, srv.URL)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	run := bmcProcess(t, dir, "run", "spec.yaml", "--state-dir", state, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	child := childPID(t, pidFile)
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()

	out, err := bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput()
	if err != nil {
		t.Fatalf("bmc cancel: %v\n%s", err, out)
	}
	if running(child) {
		t.Errorf("the task's child %d still runs after cancel", child)
	}
	// The callback goes from cancel's terminal, where the secret is not
	// set: it says so, as bmc run does.
	if !strings.Contains(string(out), "$BMC_CANCEL_TEST_SECRET is empty or not set") {
		t.Errorf("bmc cancel did not warn of an unsigned callback:\n%s", out)
	}
	select {
	case body := <-bodies:
		if body["status"] != "cancelled" {
			t.Errorf("callback status %v, want cancelled", body["status"])
		}
	default:
		t.Errorf("no callback sent:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "finalize-saw.json")); err != nil {
		t.Errorf("the finalize step did not run: %v\n%s", err, out)
	}
	runDir, _ := journalOf(t, state)
	st, err := executor.LoadState(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "cancelled" {
		t.Errorf("run status %q after cancel, want cancelled", st.Status)
	}
	want := map[string]executor.State{"first": executor.Succeeded, "slow": executor.Canceled, "later": executor.Canceled}
	for id, w := range want {
		if ts := st.Tasks[id]; ts == nil || ts.State != w {
			t.Errorf("%s: %+v, want %s", id, ts, w)
		}
	}
	// It is over now.
	out, err = bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not in progress") {
		t.Errorf("second cancel: %v\n%s", err, out)
	}
}

// TestCancelRereadsStateUnderLock: a resume that finished the run between
// bmc cancel's first read of it and its taking the run's lock is not
// undone: no second finalize step or callback, no task journaled as
// succeeded then cancelled.
func TestCancelRereadsStateUnderLock(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir, state, _, _ := killedMidTask(t)
	var inner string
	cancelStateRead = func() {
		cancelStateRead = nil
		os.WriteFile(filepath.Join(dir, "again"), nil, 0o644)
		var code int
		code, _, inner = bmcRun(t, "resume", "--state-dir", state, "--progress", "none", "latest")
		if code != 0 {
			t.Errorf("the resume in between: exit %d\n%s", code, inner)
		}
	}
	t.Cleanup(func() { cancelStateRead = nil })
	code, stdout, stderr := bmcRun(t, "cancel", "--state-dir", state, "latest")
	if code != 1 || !strings.Contains(stderr, "is not in progress") {
		t.Errorf("cancel: exit %d, want 1, not in progress\n%s%s", code, stdout, stderr)
	}
	runDir, recs := journalOf(t, state)
	finished := 0
	for _, r := range recs {
		if r.Type == executor.RecordRunFinished {
			finished++
		}
		if r.State == string(executor.Canceled) {
			t.Errorf("journaled after the resume finished the run: %+v", r)
		}
	}
	if finished != 1 {
		t.Errorf("the run was journaled as finished %d times, want once, by the resume", finished)
	}
	st, err := executor.LoadState(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "succeeded" || st.Tasks["slow"].State != executor.Succeeded {
		t.Errorf("run %s, slow %s: want both succeeded", st.Status, st.Tasks["slow"].State)
	}
}

// sasReceiver is a callback receiver that keeps the query and the body of
// each callback.
type sasReceiver struct {
	mu      sync.Mutex
	queries []string
	bodies  []map[string]any
}

func newSASReceiver(t *testing.T) (*sasReceiver, *httptest.Server) {
	r := &sasReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var b map[string]any
		json.NewDecoder(req.Body).Decode(&b)
		r.mu.Lock()
		r.queries = append(r.queries, req.URL.RawQuery)
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *sasReceiver) got() ([]string, []map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.queries), slices.Clone(r.bodies)
}

// killedWithSecret starts a run whose callback URL, given with --set,
// carries a SAS signature, and kills bmc with SIGKILL while its task
// runs. The finalize step writes the URL it was given to finalize-saw.txt
// once the file finalize-gate exists (made here unless gated), and
// touches finalize-started as it starts.
func killedWithSecret(t *testing.T, url string, gated bool) (dir, state string, child int) {
	t.Helper()
	dir = t.TempDir()
	state = filepath.Join(dir, "state")
	pidFile := filepath.Join(dir, "child.pid")
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: secret
params:
  cb: {}
tasks:
  - id: slow
    run: |
      sleep 300 &
      echo $! > %[1]s
      wait
finalize:
  run: |
    touch %[2]s/finalize-started
    while [ ! -e %[2]s/finalize-gate ]; do sleep 0.05; done
    echo "$CB" > %[2]s/finalize-saw.txt
  env: {CB: "${{ params.cb }}"}
  callback: {url: "${{ params.cb }}", retries: 0}
`, pidFile, dir)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	if !gated {
		os.WriteFile(filepath.Join(dir, "finalize-gate"), nil, 0o644)
	}
	run := bmcProcess(t, dir, "run", "spec.yaml", "--set", "cb="+url, "--state-dir", state, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	child = childPID(t, pidFile)
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()
	return dir, state, child
}

// TestCancelRestoresSecrets: bmc cancel of a run that kept no secrets
// sends the callback to the URL the run had, signature and all, and runs
// the finalize step with it: given again with --set. Without it, the run
// stays interrupted (what its tasks left running stopped all the same),
// and cancel says how to end it.
func TestCancelRestoresSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	recv, srv := newSASReceiver(t)
	url := srv.URL + "/hook?sv=2024-01-01&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
	dir, state, child := killedWithSecret(t, url, false)
	runDir, _ := journalOf(t, state)
	if meta, err := executor.ReadMeta(runDir); err != nil || !meta.Redacted {
		t.Fatalf("run.json: %+v, %v: want a run that kept no secrets", meta, err)
	}

	code, stdout, stderr := bmcRun(t, "cancel", "--state-dir", state, "latest")
	if code != 1 || !strings.Contains(stderr, "--set cb=") || !strings.Contains(stderr, "stays interrupted") || !strings.Contains(stderr, "bmc resume secret-") {
		t.Errorf("cancel without --set: exit %d, want 1 and how to end the run\n%s%s", code, stdout, stderr)
	}
	if running(child) {
		t.Errorf("the task's child %d still runs after cancel", child)
	}
	if q, _ := recv.got(); len(q) != 0 {
		t.Errorf("callbacks sent without the run's secret: %q", q)
	}
	if _, err := os.Stat(filepath.Join(dir, "finalize-saw.txt")); err == nil {
		t.Error("the finalize step ran without the run's secret")
	}
	if st, err := executor.LoadState(runDir); err != nil || st.Status != "interrupted" {
		t.Fatalf("run %+v, %v: want it still interrupted", st, err)
	}

	code, stdout, stderr = bmcRun(t, "cancel", "--state-dir", state, "latest", "--set", "cb="+url)
	if code != 0 {
		t.Fatalf("cancel --set: exit %d\n%s%s", code, stdout, stderr)
	}
	queries, bodies := recv.got()
	if len(queries) != 1 || queries[0] != "sv=2024-01-01&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D" || bodies[0]["status"] != "cancelled" {
		t.Errorf("callbacks: %q %v, want one, cancelled, with the run's signature", queries, bodies)
	}
	if saw, err := os.ReadFile(filepath.Join(dir, "finalize-saw.txt")); err != nil || strings.TrimSpace(string(saw)) != url {
		t.Errorf("the finalize step saw %q (%v), want %q", saw, err, url)
	}
	if st, err := executor.LoadState(runDir); err != nil || st.Status != "cancelled" {
		t.Errorf("run %+v, %v: want cancelled", st, err)
	}
}

// lines sends what r gives, line by line, to the channel it returns,
// closed at r's end.
func lines(r io.Reader) <-chan string {
	c := make(chan string, 64)
	go func() {
		defer close(c)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c <- sc.Text()
		}
	}()
	return c
}

// waitLine waits for a line holding want; it fails if c ends first.
func waitLine(t *testing.T, c <-chan string, want string, seen *strings.Builder) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-c:
			if !ok {
				t.Fatalf("bmc cancel ended without saying %q:\n%s", want, seen.String())
			}
			seen.WriteString(l + "\n")
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("bmc cancel did not say %q:\n%s", want, seen.String())
		}
	}
}

// TestCancelFinishesAfterInterrupt: a first Ctrl-C while bmc cancel runs
// the finalize step of a run whose bmc is gone lets the step and the
// callback finish; a second cuts them short.
func TestCancelFinishesAfterInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, twice := range []bool{false, true} {
		t.Run(fmt.Sprintf("twice=%v", twice), func(t *testing.T) {
			recv, srv := newSASReceiver(t)
			dir, state, _ := killedWithSecret(t, srv.URL+"/hook", true)
			cancel := bmcProcess(t, dir, "cancel", "latest", "--state-dir", state)
			stderr, err := cancel.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cancel.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel.Process.Kill() })
			out := lines(stderr)
			waitFor(t, "the finalize step to start", 30*time.Second, func() bool {
				_, err := os.Stat(filepath.Join(dir, "finalize-started"))
				return err == nil
			})
			var seen strings.Builder
			cancel.Process.Signal(os.Interrupt)
			waitLine(t, out, "the finalize step and the callback finish first", &seen)
			if twice {
				cancel.Process.Signal(os.Interrupt)
			} else {
				os.WriteFile(filepath.Join(dir, "finalize-gate"), nil, 0o644)
			}
			for l := range out {
				seen.WriteString(l + "\n")
			}
			cancel.Wait()
			_, err = os.Stat(filepath.Join(dir, "finalize-saw.txt"))
			if finished := err == nil; finished == twice {
				t.Errorf("the finalize step finished: %v, want %v\n%s", finished, !twice, seen.String())
			}
			if _, bodies := recv.got(); !twice && (len(bodies) != 1 || bodies[0]["status"] != "cancelled") {
				t.Errorf("callbacks %v, want one, cancelled\n%s", bodies, seen.String())
			}
		})
	}
}

// TestCancelClosedOutput: a reader of bmc cancel's output that went away
// does not cut short the finalize step and the callback.
func TestCancelClosedOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	recv, srv := newSASReceiver(t)
	dir, state, _ := killedWithSecret(t, srv.URL+"/hook", false)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // whatever bmc writes to its stdout now fails with EPIPE
	cancel := bmcProcess(t, dir, "cancel", "latest", "--state-dir", state)
	cancel.Stdout = w
	var stderr strings.Builder
	cancel.Stderr = &stderr
	err = cancel.Run()
	w.Close()
	if _, serr := os.Stat(filepath.Join(dir, "finalize-saw.txt")); serr != nil {
		t.Errorf("the finalize step did not finish: %v (bmc cancel: %v)\n%s", serr, err, stderr.String())
	}
	if _, bodies := recv.got(); len(bodies) != 1 || bodies[0]["status"] != "cancelled" {
		t.Errorf("callbacks %v, want one, cancelled\n%s", bodies, stderr.String())
	}
}

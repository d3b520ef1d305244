package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/executor"
)

// bmcProcess starts this test binary as bmc, in dir.
func bmcProcess(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BMC_TEST_AS_BMC=1")
	return cmd
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling an external effect, not synchronizing goroutines
	}
}

func journalOf(t *testing.T, state string) (string, []executor.Record) {
	t.Helper()
	ids, _ := executor.ListRunIDs(state)
	if len(ids) != 1 {
		return "", nil
	}
	dir := filepath.Join(executor.RunsDir(state), ids[0])
	recs, err := executor.ReadJournal(filepath.Join(dir, executor.JournalFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return dir, recs
}

// TestCrashAndResume kills bmc with SIGKILL in the middle of a run of many
// short tasks, resumes it, and checks that no task the journal recorded as
// succeeded ran a second time, and that every task ran.
func TestCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	ranLog := filepath.Join(dir, "ran.log")
	const n = 300
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: crash
params:
  i: {default: [%s]}
tasks:
  - id: t
    matrix: {i: "${{ params.i }}"}
    run: echo "$AZ_BATCH_TASK_ID" >> %s
  - id: last
    dependsOn: [t]
    run: echo last >> %s
`, seqList(n), ranLog, ranLog)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	state := filepath.Join(dir, "state")

	run := bmcProcess(t, dir, "run", "spec.yaml", "--state-dir", state, "--slots", "4", "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	var before []executor.Record
	waitFor(t, "50 tasks journaled as finished", 60*time.Second, func() bool {
		_, before = journalOf(t, state)
		c := 0
		for _, r := range before {
			if r.Type == executor.RecordTaskFinished {
				c++
			}
		}
		return c >= 50
	})
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()

	runDir, before := journalOf(t, state)
	succeeded := map[string]bool{}
	for _, r := range before {
		if r.Type == executor.RecordTaskFinished && r.State == string(executor.Succeeded) {
			succeeded[r.Task] = true
		}
	}
	if len(succeeded) >= n+1 {
		t.Skip("the run finished before it could be killed")
	}

	out, err := bmcProcess(t, dir, "resume", "latest", "--state-dir", state, "--progress", "none").CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	st, err := executor.LoadState(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "succeeded" || len(st.Done()) != n+1 {
		t.Fatalf("after resume: status %s, %d of %d tasks done\n%s", st.Status, len(st.Done()), n+1, out)
	}
	counts := map[string]int{}
	f, err := os.Open(ranLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		counts[sc.Text()]++
	}
	for id := range succeeded {
		if counts[id] != 1 {
			t.Errorf("task %s was journaled as succeeded before the crash but ran %d times", id, counts[id])
		}
	}
	for i := 1; i <= n; i++ {
		if counts[fmt.Sprintf("t-%d", i)] == 0 {
			t.Errorf("task t-%d never ran", i)
		}
	}
	if counts["last"] != 1 {
		t.Errorf("last ran %d times", counts["last"])
	}
	t.Logf("%d tasks journaled as succeeded before SIGKILL; resume ran the rest", len(succeeded))
}

func seqList(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint(i + 1)
	}
	return strings.Join(s, ", ")
}

// TestInterrupt sends SIGINT to a running bmc: the task's whole process
// group is killed, the run exits 130, and the finalize step and the
// callback still run, reporting "cancelled".
func TestInterrupt(t *testing.T) { testStopSignal(t, os.Interrupt) }

// TestHangup: a closed terminal (SIGHUP) stops a run as Ctrl-C does.
func TestHangup(t *testing.T) {
	if signal.Ignored(syscall.SIGHUP) {
		// Started under nohup: bmc would inherit the ignored SIGHUP and
		// rightly keep ignoring it. A handler here gives children the
		// default disposition back, since exec resets caught signals.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGHUP)
		defer signal.Stop(c)
	}
	testStopSignal(t, syscall.SIGHUP)
}

func testStopSignal(t *testing.T, sig os.Signal) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	srv, received := callbackBodies(t)
	pidFile := filepath.Join(dir, "child.pid")
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: interrupt
params:
  cb: {}
tasks:
  - id: long
    run: |
      sleep 300 &
      echo $! > %s
      wait
  - id: after
    dependsOn: [long]
    run: echo never
finalize:
  run: cp "$BMC_RUN_SUMMARY" %s
  callback: {url: "${{ params.cb }}", retries: 0}
`, pidFile, filepath.Join(dir, "summary.json"))
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	cmd := bmcProcess(t, dir, "run", "spec.yaml", "--set", "cb="+srv.URL, "--state-dir", filepath.Join(dir, "state"), "--progress", "plain")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := childPID(t, pidFile)
	cmd.Process.Signal(sig)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want status 130\n%s", err, stderr.String())
	}
	if syscall.Kill(child, 0) == nil {
		// The group is killed before bmc exits; the child may linger as a
		// zombie only until init reaps it.
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child)); err == nil && !strings.Contains(string(st), ") Z") {
			t.Errorf("the task's child %d still runs after Ctrl-C", child)
		}
	}
	sum, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatalf("the finalize step did not run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(string(sum), `"status": "cancelled"`) {
		t.Errorf("summary: %s", sum)
	}
	bodies := received()
	if len(bodies) != 1 || bodies[0]["status"] != "cancelled" {
		t.Fatalf("callback bodies: %v", bodies)
	}
	tasks, _ := bodies[0]["tasks"].(map[string]any)
	if tasks["cancelled"] != float64(2) {
		t.Errorf("callback task counts: %v (want both tasks cancelled)", tasks)
	}
	_ = context.Background
	_ = io.Discard
}

// TestCancelFromAnotherTerminal: bmc cancel RUN stops a run that another
// bmc process drives, which then ends as after Ctrl-C.
func TestCancelFromAnotherTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	marker := filepath.Join(dir, "started")
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: cancelme
tasks:
  - id: long
    run: touch %s; sleep 300
finalize:
  run: cp "$BMC_RUN_SUMMARY" %s
`, marker, filepath.Join(dir, "summary.json"))
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	run := bmcProcess(t, dir, "run", "spec.yaml", "--state-dir", state, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the task to start", 30*time.Second, func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	out, err := bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput()
	if err != nil {
		t.Fatalf("bmc cancel: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "cancelling run cancelme-") {
		t.Errorf("bmc cancel said: %s", out)
	}
	err = run.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("the run exited with %v, want status 130", err)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil || !strings.Contains(string(sum), `"status": "cancelled"`) {
		t.Fatalf("finalize summary: %s (%v)", sum, err)
	}
	// Once over, the run cannot be cancelled again.
	out, err = bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not in progress") {
		t.Errorf("second cancel: %v\n%s", err, out)
	}
}

// killedMidTask starts a run of two tasks and kills bmc with SIGKILL while
// one, slow, runs with a child, after the other, daemon, succeeded leaving
// a process in the background on purpose. It returns the test dir, the
// state dir and the pids of slow's child and of daemon's process, which
// then both still run: bmc could not stop the first. slow, once the file
// "again" exists, succeeds at once.
func killedMidTask(t *testing.T) (dir, state string, child, daemon int) {
	t.Helper()
	dir = t.TempDir()
	state = filepath.Join(dir, "state")
	pidFile := filepath.Join(dir, "child.pid")
	daemonFile := filepath.Join(dir, "daemon.pid")
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: leftover
tasks:
  - id: daemon
    run: |
      sleep 300 &
      echo $! > %[3]s
  - id: slow
    dependsOn: [daemon]
    run: |
      echo attempt >> %[1]s/attempts
      if [ -e %[1]s/again ]; then exit 0; fi
      sleep 300 &
      echo $! > %[2]s
      wait
`, dir, pidFile, daemonFile)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644)
	run := bmcProcess(t, dir, "run", "spec.yaml", "--state-dir", state, "--progress", "none")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	child = childPID(t, pidFile)
	b, _ := os.ReadFile(daemonFile)
	fmt.Sscan(string(b), &daemon)
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()
	t.Cleanup(func() {
		syscall.Kill(child, syscall.SIGKILL)
		syscall.Kill(daemon, syscall.SIGKILL)
	})
	if !running(child) || !running(daemon) {
		t.Fatalf("the tasks' processes %d and %d did not outlive bmc", child, daemon)
	}
	return dir, state, child, daemon
}

// running reports whether pid is a live process, not a zombie.
func running(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(st), ") Z")
}

// After bmc was killed, bmc status points at what its running task left,
// and bmc resume stops it before running the task again: the task never
// runs beside a copy of itself. What a task that ended left in the
// background on purpose is not touched.
func TestResumeStopsLeftovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir, state, child, daemon := killedMidTask(t)
	st := bmcProcess(t, dir, "status", "latest", "--state-dir", state)
	var serr strings.Builder
	st.Stderr = &serr
	if err := st.Run(); err != nil {
		t.Fatalf("bmc status: %v\n%s", err, serr.String())
	}
	if !strings.Contains(serr.String(), "2 processes of run leftover-") || !strings.Contains(serr.String(), "(task slow) still run, left by a bmc process that is gone") {
		t.Errorf("bmc status said: %s", serr.String())
	}
	// The table says so on the task's row too, and the JSON lists them.
	table, err := bmcProcess(t, dir, "status", "latest", "--state-dir", state).Output()
	if err != nil {
		t.Fatalf("bmc status: %v", err)
	}
	if !regexp.MustCompile(`(?m)^slow +running .*; 2 processes of it still run$`).Match(table) {
		t.Errorf("bmc status table:\n%s", table)
	}
	js, err := bmcProcess(t, dir, "status", "latest", "--state-dir", state, "-o", "json").Output()
	if err != nil {
		t.Fatalf("bmc status -o json: %v", err)
	}
	var doc struct {
		Leftovers []struct {
			PID  int
			Task string
		}
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	pids := map[int]string{}
	for _, l := range doc.Leftovers {
		pids[l.PID] = l.Task
	}
	if len(pids) != 2 || pids[child] != "slow" {
		t.Errorf("status leftovers = %+v, want 2 of task slow, among them %d", doc.Leftovers, child)
	}
	os.WriteFile(filepath.Join(dir, "again"), nil, 0o644)
	out, err := bmcProcess(t, dir, "resume", "latest", "--state-dir", state, "--progress", "none").CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "bmc: stopped 2 processes of run leftover-") || !strings.Contains(string(out), "left running by a bmc process that is gone (task slow)") {
		t.Errorf("resume said: %s", out)
	}
	if running(child) {
		t.Errorf("the earlier attempt's child %d still runs after resume", child)
	}
	if !running(daemon) {
		t.Errorf("resume stopped %d, which a task that succeeded left running", daemon)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "attempts")); strings.Count(string(b), "attempt") != 2 {
		t.Errorf("attempts: %q, want the killed one and the resumed one", b)
	}
}

// bmc cancel stops what the tasks of a run whose bmc was killed left
// running; then there is nothing left to cancel.
func TestCancelStopsLeftovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir, state, child, daemon := killedMidTask(t)
	out, err := bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "stopped 2 processes of run leftover-") {
		t.Fatalf("bmc cancel: %v\n%s", err, out)
	}
	if running(child) {
		t.Errorf("the task's child %d still runs after cancel", child)
	}
	if !running(daemon) {
		t.Errorf("cancel stopped %d, which a task that succeeded left running", daemon)
	}
	out, err = bmcProcess(t, dir, "cancel", "latest", "--state-dir", state).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not in progress") {
		t.Errorf("second cancel: %v\n%s", err, out)
	}
}

// callbackBodies is a callback receiver that keeps the bodies it gets;
// received returns them so far.
func callbackBodies(t *testing.T) (srv *httptest.Server, received func() []map[string]any) {
	var mu sync.Mutex
	var bodies []map[string]any
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(bodies)
	}
}

// childPID waits until a task has written a process id and a newline to
// pidFile, and returns it.
func childPID(t *testing.T, pidFile string) int {
	t.Helper()
	waitFor(t, "the task's child to start", 30*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
	b, _ := os.ReadFile(pidFile)
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

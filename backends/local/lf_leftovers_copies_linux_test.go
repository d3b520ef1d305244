package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

// copyRun is a run of a project's state directory, running two tasks:
// one that keeps its environment but works and writes elsewhere, found by
// its environment alone, and one with no environment in its working
// directory, found by where it works alone.
type copyRun struct {
	runDir    string
	env, bare int // their processes
}

// startCopyRun starts run runID of the state directory state, as bmc run
// (or bmc resume in a copy of a project) does.
func startCopyRun(t *testing.T, state, runID string) *copyRun {
	t.Helper()
	run := &executor.RunInfo{ID: runID, Workload: "lf", Dir: filepath.Join(state, "runs", runID), SpecDir: t.TempDir()}
	store := blobstage.NewLocal(t.TempDir())
	run.Storage = store.URL()
	be := New(Options{Store: store, KillGrace: -1})
	if err := be.Prepare(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.stopYielding)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, task := range []compiler.Task{
		{ID: "env", Run: "cd / && exec sleep 1000 >/dev/null 2>&1"},
		{ID: "bare", Command: []string{"env", "-i", "sleep", "1001"}},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			be.RunTask(ctx, &executor.Attempt{Run: run, Task: &task, Number: 1})
		}()
	}
	real, err := filepath.EvalSymlinks(run.Dir) // as /proc shows where a process works
	if err != nil {
		t.Fatal(err)
	}
	return &copyRun{
		runDir: run.Dir,
		env:    envProcess(t, "AZ_BATCH_NODE_ROOT_DIR="+run.Dir),
		bare:   bareProcess(t, filepath.Join(TaskDir(real, "bare"), "wd")),
	}
}

// envProcess waits for the sleep whose environment holds v, and returns
// its pid.
func envProcess(t *testing.T, v string) int {
	t.Helper()
	var pid int
	waitFor(t, "the sleep with "+v, func() bool {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
			env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
			if string(comm) == "sleep\n" && slices.ContainsFunc(bytes.Split(env, []byte{0}), func(e []byte) bool { return string(e) == v }) {
				pid = p
				return true
			}
		}
		return false
	})
	return pid
}

// checkLeftovers checks that Leftovers of runDir finds exactly want.
func checkLeftovers(t *testing.T, what, runDir string, want ...Leftover) {
	t.Helper()
	got, err := Leftovers(runDir, func(string) bool { return true })
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	slices.SortFunc(got, func(a, b Leftover) int { return a.PID - b.PID })
	slices.SortFunc(want, func(a, b Leftover) int { return a.PID - b.PID })
	if !slices.Equal(got, want) {
		t.Errorf("%s: Leftovers = %+v, want %+v", what, got, want)
	}
}

// A project copied with its state directory (cp -a) and resumed runs the
// same run, with the same id and variables, in both copies: each finds,
// and stops, only its own tasks' processes. A project reached through a
// symbolic link, or moved (mv) since its tasks started, finds its own.
func TestLeftoversOfCopies(t *testing.T) {
	runID := fmt.Sprintf("lf-%d-%d", os.Getpid(), time.Now().UnixNano())
	a := startCopyRun(t, filepath.Join(t.TempDir(), "a", ".bmc"), runID)
	// b is run through a symbolic link to its project, as bmc run in a
	// linked directory records it.
	bReal := filepath.Join(t.TempDir(), "b")
	if err := os.MkdirAll(bReal, 0o755); err != nil {
		t.Fatal(err)
	}
	bLink := filepath.Join(t.TempDir(), "b-link")
	if err := os.Symlink(bReal, bLink); err != nil {
		t.Fatal(err)
	}
	b := startCopyRun(t, filepath.Join(bLink, ".bmc"), runID)
	aWant := []Leftover{{PID: a.env, Task: "env"}, {PID: a.bare, Task: "bare"}}
	bWant := []Leftover{{PID: b.env, Task: "env"}, {PID: b.bare, Task: "bare"}}

	checkLeftovers(t, "copy a", a.runDir, aWant...)
	checkLeftovers(t, "copy b", b.runDir, bWant...)
	checkLeftovers(t, "copy b, its link resolved", filepath.Join(bReal, ".bmc", "runs", runID), bWant...)

	// Stopping b's leaves a's running.
	stopped, err := StopLeftovers(b.runDir, func(string) bool { return true }, 5*time.Second)
	if err != nil || len(stopped) != 2 {
		t.Fatalf("StopLeftovers(b) = %+v, %v; want b's 2 processes", stopped, err)
	}
	for _, pid := range []int{b.env, b.bare} {
		if !processGone(pid) {
			t.Errorf("b's process %d still runs after StopLeftovers(b)", pid)
		}
	}
	for _, pid := range []int{a.env, a.bare} {
		if processGone(pid) {
			t.Errorf("a's process %d stopped by StopLeftovers(b)", pid)
		}
	}

	// a moves: its tasks' environment names a directory that is gone.
	aProject := filepath.Dir(filepath.Dir(filepath.Dir(a.runDir)))
	moved := aProject + "-moved"
	if err := os.Rename(aProject, moved); err != nil {
		t.Fatal(err)
	}
	aMoved := filepath.Join(moved, ".bmc", "runs", runID)
	checkLeftovers(t, "copy a, moved", aMoved, aWant...)
}

package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

// A task whose process dropped its environment (env -i, apptainer
// --cleanenv) carries no BMC_RUN_ID: once bmc is gone, it is still found
// by where it runs, named with its task, and stopped, so that it never
// runs beside a copy of itself started by bmc resume. So is one it
// started that works and writes elsewhere, of the session it leads.
func TestLeftoversWithoutEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name string
		task compiler.Task
		also string // the argument of another sleep of the task's session
	}{
		{"command", compiler.Task{ID: "bare", Command: []string{"env", "-i", "sleep", "1000"}}, ""},
		{"run", compiler.Task{ID: "bare", Run: "exec env -i sleep 1000"}, ""},
		{"session", compiler.Task{ID: "bare", Run: "(cd / && exec env -i sleep 1001 >/dev/null 2>&1) & exec env -i sleep 1002"}, "1001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The state directory is anywhere: a run is told by the path
			// below it, runs/<run-id>/tasks/<task>.
			runID := fmt.Sprintf("lo-%d-%s", os.Getpid(), tc.name)
			run := &executor.RunInfo{ID: runID, Workload: "lo", Dir: filepath.Join(t.TempDir(), "some", "state", "runs", runID), SpecDir: t.TempDir()}
			store := blobstage.NewLocal(t.TempDir())
			run.Storage = store.URL()
			be := New(Options{Store: store, KillGrace: -1})
			if err := be.Prepare(context.Background(), run); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(be.stopYielding)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan executor.Result, 1)
			go func() { done <- be.RunTask(ctx, &executor.Attempt{Run: run, Task: &tc.task, Number: 1}) }()
			result := sync.OnceValue(func() executor.Result { return <-done })
			t.Cleanup(func() { cancel(); result() })

			real, err := filepath.EvalSymlinks(run.Dir) // as /proc shows where a process works
			if err != nil {
				t.Fatal(err)
			}
			pid := bareProcess(t, filepath.Join(TaskDir(real, "bare"), "wd"))
			pids := []int{pid}
			if tc.also != "" {
				pids = append(pids, sessionSleep(t, pid, tc.also))
			}
			of := func(task string) bool { return task == "bare" }
			ls, err := Leftovers(run.Dir, of)
			for _, pid := range pids {
				if err != nil || !slices.Contains(ls, Leftover{PID: pid, Task: "bare"}) {
					t.Fatalf("Leftovers = %+v, %v; want process %d of task bare", ls, err, pid)
				}
			}
			if ls, _ := Leftovers(run.Dir, func(task string) bool { return task != "bare" }); len(ls) != 0 {
				t.Errorf("Leftovers of the other tasks = %+v, want none", ls)
			}
			if ls, _ := Leftovers(filepath.Join(filepath.Dir(run.Dir), runID+"x"), func(string) bool { return true }); len(ls) != 0 {
				t.Errorf("Leftovers of another run = %+v, want none", ls)
			}
			stopped, err := StopLeftovers(run.Dir, of, 5*time.Second)
			for _, pid := range pids {
				if err != nil || !slices.Contains(stopped, Leftover{PID: pid, Task: "bare"}) {
					t.Fatalf("StopLeftovers = %+v, %v; want process %d of task bare", stopped, err, pid)
				}
				if !processGone(pid) {
					t.Errorf("process %d still runs after StopLeftovers", pid)
				}
			}
			checkState(t, result(), executor.Failed)
		})
	}
}

// bareProcess waits for the sleep, with no environment at all, that works
// in wd, and returns its pid.
func bareProcess(t *testing.T, wd string) int {
	t.Helper()
	var pid int
	waitFor(t, "the task's sleep to run with no environment", func() bool {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			dir := "/proc/" + e.Name()
			cwd, _ := os.Readlink(dir + "/cwd")
			comm, _ := os.ReadFile(dir + "/comm")
			env, err := os.ReadFile(dir + "/environ")
			if cwd == wd && string(comm) == "sleep\n" && err == nil && len(env) == 0 {
				pid = p
				return true
			}
		}
		return false
	})
	return pid
}

// sessionSleep waits for the sleep arg, with no environment at all, of
// the session leader leads, and returns its pid.
func sessionSleep(t *testing.T, leader int, arg string) int {
	t.Helper()
	var pid int
	waitFor(t, "sleep "+arg+" in the session of "+strconv.Itoa(leader), func() bool {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			dir := "/proc/" + e.Name()
			cmdline, _ := os.ReadFile(dir + "/cmdline")
			stat, _ := os.ReadFile(dir + "/stat")
			env, err := os.ReadFile(dir + "/environ")
			_, rest, _ := strings.Cut(string(stat), ") ")
			f := strings.Fields(rest)
			if string(cmdline) == "sleep\x00"+arg+"\x00" && err == nil && len(env) == 0 && len(f) > 3 && f[3] == strconv.Itoa(leader) {
				pid = p
				return true
			}
		}
		return false
	})
	return pid
}

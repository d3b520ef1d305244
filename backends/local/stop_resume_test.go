package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// On a resume, the working directories of tasks that succeeded in a
// session killed before its end are emptied too, unless kept.
func TestResumeEmptiesWorkdirsOfEarlierSessions(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run("keep="+strconv.FormatBool(keep), func(t *testing.T) {
			f := newFixture(t, Options{KeepWorkdirs: keep})
			// What a session killed with kill -9 left: a succeeded task's files.
			writeFile(t, filepath.Join(f.wd("a"), "big.dat"), "x")
			src := "apiVersion: bmc/v1\nkind: Workload\nname: w\ntasks:\n  - {id: a, run: \"true\"}\n  - {id: b, run: \"true\", dependsOn: [a]}\n"
			prog, diags := compiler.Compile("spec.yaml", []byte(src), compiler.Options{})
			if len(diags) > 0 {
				t.Fatal(diags)
			}
			plan := planner.New(prog, f.be.Capabilities(), map[string]bool{"a": true})
			o, err := executor.RunTasks(context.Background(), plan, f.be, f.run, nil, executor.Options{Slots: 1})
			if err != nil || o.Counts.Succeeded != 2 {
				t.Fatalf("RunTasks: %+v, %v", o, err)
			}
			if err := f.be.Cleanup(context.Background()); err != nil {
				t.Fatal(err)
			}
			if left := exists(filepath.Join(f.wd("a"), "big.dat")); left != keep {
				t.Errorf("working directory of a task done in an earlier session holds its files: %v, want %v", left, keep)
			}
		})
	}
}

// A process that left its task's process group is stopped with the
// attempt on timeout, and does not run on beside the next attempt.
func TestTimeoutStopsProcessesThatLeftTheGroup(t *testing.T) {
	f := newFixture(t, Options{KillGrace: -1})
	task := &compiler.Task{ID: "daemon", Run: `setsid sh -c 'echo $$ > ../stray.pid; exec sleep 300' & wait`, Timeout: compiler.Duration(time.Second)}
	res := f.runTask(t, task, 1)
	checkState(t, res, executor.Failed)
	pid := backgroundPID(t, filepath.Join(f.taskDir("daemon"), "stray.pid"))
	if !processGone(pid) {
		t.Errorf("process %d, in a session of its own, still runs after its attempt timed out", pid)
	}
}

// Prefetch holds no more log files open than its share of the file
// descriptors; the tasks past it open theirs as they start.
func TestPrefetchBoundedByFiles(t *testing.T) {
	f := newFixture(t, Options{})
	f.be.maxOpen = 4
	var tasks []*compiler.Task
	for i := range 10 {
		tk := &compiler.Task{ID: fmt.Sprint("t", i), Run: "echo out; echo err >&2"}
		tasks = append(tasks, tk)
		f.be.Prefetch(f.run, tk)
		if n := f.be.open.Load(); n > 4 {
			t.Fatalf("%d log files held open after %d prefetches, want at most 4", n, i+1)
		}
	}
	for _, tk := range tasks {
		checkState(t, f.runTask(t, tk, 1), executor.Succeeded)
		if got := readFile(t, filepath.Join(f.taskDir(tk.ID), "stdout.txt")); got != "out\n" {
			t.Errorf("%s: stdout %q", tk.ID, got)
		}
	}
	if err := f.be.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.be.open.Load(); n != 0 {
		t.Errorf("%d log files counted open after the run", n)
	}
}

// Running out of file descriptors delays a task; it does not fail it.
func TestOutOfFilesIsWaitedOut(t *testing.T) {
	calls := 0
	err := whileOutOfFiles(context.Background(), func() error {
		calls++
		if calls < 3 {
			return &os.PathError{Op: "open", Path: "stdout.txt", Err: syscall.EMFILE}
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("err %v after %d calls, want success on the third", err, calls)
	}
	other := errors.New("no such program")
	calls = 0
	if err := whileOutOfFiles(context.Background(), func() error { calls++; return other }); err != other || calls != 1 {
		t.Errorf("err %v after %d calls, want %v at once", err, calls, other)
	}
}

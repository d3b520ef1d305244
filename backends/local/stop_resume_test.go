package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	// The stray may still be exiting when the attempt ends: killed, its
	// memory released, it no longer shows as one of the task's, but it is
	// not a zombie yet.
	waitFor(t, fmt.Sprintf("process %d, in a session of its own, to be stopped with its timed-out attempt", pid), func() bool { return processGone(pid) })
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

// Stopping a session's finalize step leaves alone what an earlier
// session's finalize step, which ended by itself, left in the background
// on purpose: both are attempt 1 of the same task of the run.
func TestStoppedFinalizeSparesEarlierSessions(t *testing.T) {
	f := newFixture(t, Options{KillGrace: -1})
	pidFile := filepath.Join(f.run.Dir, "daemon.pid")
	first := &executor.Attempt{Run: f.run, Number: 1, Finalize: true, Task: &compiler.Task{
		ID: compiler.FinalizeID, Run: `setsid sleep 300 > /dev/null 2>&1 & echo $! > "$AZ_BATCH_NODE_ROOT_DIR/daemon.pid"`,
	}}
	checkState(t, f.be.RunTask(context.Background(), first), executor.Succeeded)
	daemon := backgroundPID(t, pidFile)

	// The next session of the run (a resume, or bmc cancel) is another
	// backend on the same run directory.
	later := New(Options{Store: f.store, KillGrace: -1})
	if err := later.Prepare(context.Background(), f.run); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(later.stopYielding)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	second := &executor.Attempt{Run: f.run, Number: 1, Finalize: true, Started: cancel, Task: &compiler.Task{
		ID: compiler.FinalizeID, Run: "sleep 300",
	}}
	checkState(t, later.RunTask(ctx, second), executor.Canceled)
	if processGone(daemon) {
		t.Errorf("process %d, left in the background by an earlier session's finalize step that exited, was stopped with this session's", daemon)
	}
	a := envOf(t, f, &executor.Attempt{Run: f.run, Task: &compiler.Task{ID: "env"}, Number: 1})["BMC_SESSION"]
	b := envOf(t, &fixture{be: later, run: f.run}, &executor.Attempt{Run: f.run, Task: &compiler.Task{ID: "env"}, Number: 2})["BMC_SESSION"]
	if a == "" || a == b {
		t.Errorf("BMC_SESSION %q and %q: want two sessions told apart", a, b)
	}
}

// A working directory that cannot be opened is not taken for a missing
// one: the attempt must not run in what the attempt before left there.
func TestFreshDirsUnopenableWorkdir(t *testing.T) {
	f := newFixture(t, Options{})
	taskDir, wd := f.taskDir("t"), f.wd("t")
	if err := os.MkdirAll(taskDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(wd, "junk"), "from the attempt before")
	defer func(o func(string) (*os.File, error)) { openDir = o }(openDir)
	openDir = func(string) (*os.File, error) { return nil, fs.ErrPermission }
	if err := f.be.freshDirs(taskDir, wd, 2); err == nil {
		t.Error("freshDirs: no error for a working directory that cannot be opened")
	}
}

// A working directory the attempt before replaced with a link is not
// followed: the link goes, the next attempt gets an empty directory, and
// what the link named is left as it was. Cleanup does the same.
func TestReplacedWorkdirNotFollowed(t *testing.T) {
	f := newFixture(t, Options{})
	victim := t.TempDir()
	writeFile(t, filepath.Join(victim, "keep.txt"), "not bmc's")
	taskDir, wd := f.taskDir("t"), f.wd("t")
	if err := os.MkdirAll(taskDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, wd); err != nil {
		t.Fatal(err)
	}
	if err := f.be.freshDirs(taskDir, wd, 2); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(wd); err != nil || !fi.IsDir() {
		t.Errorf("working directory after freshDirs: %v, %v; want a directory", fi, err)
	}
	if err := os.Remove(wd); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, wd); err != nil {
		t.Fatal(err)
	}
	if err := emptyDir(wd); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(victim, "keep.txt")); err != nil {
		t.Errorf("what the link named was emptied: %v", err)
	}
	if fi, err := os.Lstat(wd); err != nil || !fi.IsDir() {
		t.Errorf("working directory after emptyDir: %v, %v; want a directory", fi, err)
	}
}

// What a task left read-only is removed all the same, before the next
// attempt and at the end.
func TestReadOnlyLeftoversRemoved(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root removes what is read-only without being let: run as another user to test this")
	}
	f := newFixture(t, Options{})
	taskDir, wd := f.taskDir("t"), f.wd("t")
	for _, clean := range map[string]func() error{
		"next attempt": func() error { return f.be.freshDirs(taskDir, wd, 2) },
		"cleanup":      func() error { return emptyDir(wd) },
	} {
		writeFile(t, filepath.Join(wd, "cache", "mod", "f"), "frozen")
		for _, d := range []string{filepath.Join(wd, "cache", "mod"), filepath.Join(wd, "cache")} {
			if err := os.Chmod(d, 0o555); err != nil {
				t.Fatal(err)
			}
		}
		if err := clean(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(wd, "cache")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cache left: %v", err)
		}
	}
}

// Out of file descriptors while the working directory is looked into, an
// attempt waits for them, then runs in an emptied directory.
func TestFreshDirsOutOfFiles(t *testing.T) {
	f := newFixture(t, Options{})
	writeFile(t, filepath.Join(f.wd("t"), "junk"), "from the attempt before")
	fails := 2
	openDir = func(name string) (*os.File, error) {
		if fails > 0 {
			fails--
			return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
		}
		return os.Open(name)
	}
	t.Cleanup(func() { openDir = os.Open })
	res := f.runTask(t, &compiler.Task{ID: "t", Run: "test ! -e junk"}, 2)
	checkState(t, res, executor.Succeeded)
	if fails != 0 {
		t.Errorf("%d failed opens left: the attempt did not wait for file descriptors", fails)
	}
}

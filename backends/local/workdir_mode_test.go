package local

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
)

// freshMode is the mode bmc gives a working directory it makes.
func freshMode(t *testing.T) fs.FileMode {
	t.Helper()
	d := filepath.Join(t.TempDir(), "wd")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// A task that takes away the access to its own working directory (chmod
// 000 .) does not make the attempts after it, nor the run's cleanup,
// fail: bmc owns the directory and gives the next attempt one as it makes
// them. Root needs no access bits to clean it, so the mode is checked too.
func TestWorkdirModeRestored(t *testing.T) {
	want := freshMode(t)
	f := newFixture(t, Options{})
	task := &compiler.Task{ID: "flaky", Retries: 2, Run: `if [ "$BMC_TASK_ATTEMPT" = 1 ]; then chmod 000 .; exit 1; fi
stat -c %a . > ../mode`}
	checkState(t, f.runTask(t, task, 1), executor.Failed)
	checkState(t, f.runTask(t, task, 2), executor.Succeeded)
	if got, want := strings.TrimSpace(readFile(t, filepath.Join(f.taskDir("flaky"), "mode"))), fmt.Sprintf("%o", want); got != want {
		t.Errorf("attempt 2 ran in a working directory of mode %s, want %s", got, want)
	}

	// A task that succeeds, and leaves its directory so, is cleaned up all
	// the same, at the end of every session.
	checkState(t, f.runTask(t, &compiler.Task{ID: "locked", Run: "echo x > f; chmod 000 ."}, 1), executor.Succeeded)
	if err := f.be.Cleanup(context.Background()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	fi, err := os.Lstat(f.wd("locked"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("working directory after Cleanup has mode %s, want %s", got, want)
	}
	if entries, err := os.ReadDir(f.wd("locked")); err != nil || len(entries) != 0 {
		t.Errorf("working directory after Cleanup: %d entries, %v; want it empty", len(entries), err)
	}
}

// A working directory bmc cannot clean for want of permission fails the
// attempt without a retry: the next attempt would fail the same way.
func TestWorkdirDeniedNotRetried(t *testing.T) {
	f := newFixture(t, Options{})
	writeFile(t, filepath.Join(f.wd("t"), "junk"), "from the attempt before")
	openDir = func(name string) (*os.File, error) {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	t.Cleanup(func() { openDir = os.Open })
	res := f.runTask(t, &compiler.Task{ID: "t", Retries: 3, Run: "true"}, 2)
	checkState(t, res, executor.Failed)
	if !res.NoRetry {
		t.Errorf("%q: retried, though no attempt could clean the directory", res.Reason)
	}
}

package procrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// marked is bash(t, script) whose processes carry a mark of their own.
func marked(t *testing.T, script string) Spec {
	s := bash(t, script)
	s.Env = append(os.Environ(), "BMC_TEST_RUN="+t.Name(), "BMC_TEST_TASK=t", "BMC_TEST_ATTEMPT=1")
	s.Marks = []string{"BMC_TEST_RUN", "BMC_TEST_TASK", "BMC_TEST_ATTEMPT"}
	return s
}

// A process that left the attempt's group (a session of its own) is
// stopped with the attempt, on timeout and on cancel, before Run returns.
func TestStopReachesProcessesThatLeftTheGroup(t *testing.T) {
	const script = `setsid sh -c 'echo $$ > stray.pid; exec sleep 300' & wait`
	t.Run("cancel", func(t *testing.T) {
		s := marked(t, script)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := runAsync(ctx, s)
		stray := readPID(t, filepath.Join(s.Dir, "stray.pid"))
		cancel()
		if got := <-done; !got.r.Canceled {
			t.Errorf("Canceled=%v, want canceled", got.r.Canceled)
		}
		if !gone(stray) {
			t.Errorf("process %d, started with setsid, still runs after the attempt was cancelled", stray)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		s := marked(t, script)
		s.Timeout = time.Second
		r, err := Run(context.Background(), s)
		if err != nil || !r.TimedOut {
			t.Fatalf("Run: %+v, %v; want a timeout", r, err)
		}
		if stray := readPID(t, filepath.Join(s.Dir, "stray.pid")); !gone(stray) {
			t.Errorf("process %d, started with setsid, still runs after the attempt timed out", stray)
		}
	})
}

// A process an attempt leaves in the background when it exits by itself
// is left running: that is the task's own business.
func TestNormalExitLeavesBackgroundProcesses(t *testing.T) {
	s := marked(t, `setsid sleep 300 > /dev/null 2>&1 & echo $! > stray.pid`)
	// Whatever pid the file holds (a setsid that forks writes its own),
	// what the attempt left is killed once the test is over.
	t.Cleanup(func() {
		found, _ := FindEnvAll([]string{"BMC_TEST_RUN=" + t.Name(), "BMC_TEST_TASK=t"})
		for _, f := range found {
			syscall.Kill(f.PID, syscall.SIGKILL)
		}
	})
	r, err := Run(context.Background(), s)
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("Run: %+v, %v", r, err)
	}
	stray := readPID(t, filepath.Join(s.Dir, "stray.pid"))
	if gone(stray) {
		t.Errorf("process %d, left in the background by an attempt that exited, was stopped", stray)
	}
}

// A failed open of /dev/null (out of file descriptors) fails that start
// only: it is not kept, and no task gets bmc's own stdin instead.
func TestDevNullFailureNotKept(t *testing.T) {
	saved := devNullFile.Swap(nil)
	defer devNullFile.Store(saved)
	open := openDevNull
	defer func() { openDevNull = open }()
	openDevNull = func() (*os.File, error) {
		return nil, &os.PathError{Op: "open", Path: os.DevNull, Err: syscall.EMFILE}
	}
	s := bash(t, `readlink /proc/self/fd/0 > stdin.txt`)
	if _, err := Run(context.Background(), s); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Run without /dev/null: err %v, want EMFILE", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "stdin.txt")); err == nil {
		t.Error("the task ran with bmc's stdin")
	}
	openDevNull = open
	if r, err := Run(context.Background(), s); err != nil || r.ExitCode != 0 {
		t.Fatalf("Run once /dev/null opens again: %+v, %v", r, err)
	}
	if runtime.GOOS == "linux" {
		if got := strings.TrimSpace(readFile(t, filepath.Join(s.Dir, "stdin.txt"))); got != os.DevNull {
			t.Errorf("stdin %q, want %s", got, os.DevNull)
		}
	}
}

package procrun

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bash returns a Spec running script under bash in a fresh working
// directory, with stdout and stderr in files beside it.
func bash(t *testing.T, script string) Spec {
	t.Helper()
	logs := t.TempDir()
	return Spec{
		Argv:   []string{"bash", "-c", script},
		Dir:    t.TempDir(),
		Stdout: filepath.Join(logs, "stdout.txt"),
		Stderr: filepath.Join(logs, "stderr.txt"),
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls until cond holds, failing the test after a generous
// deadline. Polling is the only portable way to observe another process.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPID waits for a script to write a pid into p and returns it.
func readPID(t *testing.T, p string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+p, func() bool {
		b, err := os.ReadFile(p)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	// Whatever the test's outcome, leave no process behind.
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// gone reports whether pid has exited. A zombie counts as gone: it has
// stopped running and only waits for whoever adopted it to reap it.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces or parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		name     string
		argv     []string
		wantCode int
		wantSig  string
	}{
		{"success", []string{"bash", "-c", "exit 0"}, 0, ""},
		{"failure", []string{"bash", "-c", "exit 3"}, 3, ""},
		{"max status", []string{"bash", "-c", "exit 255"}, 255, ""},
		{"argv without shell", []string{"false"}, 1, ""},
		{"terminated", []string{"bash", "-c", "kill -TERM $$"}, 143, "SIGTERM"},
		{"killed", []string{"bash", "-c", "kill -KILL $$"}, 137, "SIGKILL"},
		{"interrupted", []string{"bash", "-c", "kill -INT $$"}, 130, "SIGINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			r, err := Run(context.Background(), Spec{Argv: tt.argv, Dir: t.TempDir()})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if r.ExitCode != tt.wantCode || r.Signal != tt.wantSig {
				t.Errorf("got exit %d signal %q, want %d %q", r.ExitCode, r.Signal, tt.wantCode, tt.wantSig)
			}
			if r.TimedOut || r.Canceled {
				t.Errorf("TimedOut=%v Canceled=%v, want neither", r.TimedOut, r.Canceled)
			}
			if r.Start.Before(before) || r.End.Before(r.Start) {
				t.Errorf("Start %v End %v not ordered after %v", r.Start, r.End, before)
			}
		})
	}
}

func TestRunEnv(t *testing.T) {
	t.Setenv("BMC_PROCRUN_INHERITED", "from parent")
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"explicit", []string{"A=1", "B=two words", "C=ünïcode"}, "A=1\nB=two words\nC=ünïcode\n"},
		{"empty means none", []string{}, ""},
		{"nil inherits", nil, "BMC_PROCRUN_INHERITED=from parent\n"},
		{"last duplicate wins", []string{"A=1", "A=2"}, "A=2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			// env(1) prints the environment exactly as the process got it.
			r, err := Run(context.Background(), Spec{Argv: []string{"/usr/bin/env"}, Env: tt.env, Stdout: out})
			if err != nil || r.ExitCode != 0 {
				t.Fatalf("Run: %+v, %v", r, err)
			}
			got := readFile(t, out)
			if tt.env == nil {
				// Only our marker matters in an inherited environment.
				for l := range strings.SplitSeq(got, "\n") {
					if strings.HasPrefix(l, "BMC_PROCRUN_INHERITED=") {
						got = l + "\n"
					}
				}
			}
			if got != tt.want {
				t.Errorf("environment:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestRunDirAndLookup(t *testing.T) {
	dir := t.TempDir()
	bin := t.TempDir()
	writeExec := func(p, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeExec(filepath.Join(dir, "scripts", "local.sh"), "echo local")
	writeExec(filepath.Join(bin, "bmc-test-tool"), "echo from path")
	writeExec(filepath.Join(dir, "rel-bin", "bmc-rel-tool"), "echo relative path entry")
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		argv []string
		env  []string
		want string
	}{
		{"working directory", []string{"pwd", "-P"}, nil, realDir + "\n"},
		{"relative program resolves against Dir", []string{"./scripts/local.sh"}, nil, "local\n"},
		{"PATH comes from the task environment", []string{"bmc-test-tool"}, []string{"PATH=" + bin}, "from path\n"},
		{"relative PATH entries resolve against Dir", []string{"bmc-rel-tool"}, []string{"PATH=rel-bin"}, "relative path entry\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			r, err := Run(context.Background(), Spec{Argv: tt.argv, Dir: dir, Env: tt.env, Stdout: out})
			if err != nil || r.ExitCode != 0 {
				t.Fatalf("Run: %+v, %v", r, err)
			}
			if got := readFile(t, out); got != tt.want {
				t.Errorf("stdout %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunOutputFiles(t *testing.T) {
	t.Run("separate files", func(t *testing.T) {
		s := bash(t, `echo out; echo err >&2; printf 'no newline'`)
		if err := os.WriteFile(s.Stdout, []byte(strings.Repeat("stale ", 100)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if got, want := readFile(t, s.Stdout), "out\nno newline"; got != want {
			t.Errorf("stdout %q, want %q (existing file must be truncated)", got, want)
		}
		if got, want := readFile(t, s.Stderr), "err\n"; got != want {
			t.Errorf("stderr %q, want %q", got, want)
		}
	})
	t.Run("one file for both", func(t *testing.T) {
		s := bash(t, `echo 1; echo 2 >&2; echo 3; echo 4 >&2`)
		s.Stderr = s.Stdout
		if _, err := Run(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if got, want := readFile(t, s.Stdout), "1\n2\n3\n4\n"; got != want {
			t.Errorf("combined output %q, want %q", got, want)
		}
	})
	t.Run("empty paths discard", func(t *testing.T) {
		s := bash(t, `echo out; echo err >&2`)
		s.Stdout, s.Stderr = "", ""
		r, err := Run(context.Background(), s)
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("Run: %+v, %v", r, err)
		}
	})
	t.Run("children inheriting stdout do not delay Run", func(t *testing.T) {
		s := bash(t, `sleep 60 & echo $! > child.pid; echo leader done`)
		began := time.Now()
		r, err := Run(context.Background(), s)
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("Run: %+v, %v", r, err)
		}
		if d := time.Since(began); d > 30*time.Second {
			t.Errorf("Run took %v: it waited for a background child holding stdout", d)
		}
		child := readPID(t, filepath.Join(s.Dir, "child.pid"))
		if gone(child) {
			t.Errorf("background child %d of a leader that exited normally was killed", child)
		}
		if got := readFile(t, s.Stdout); got != "leader done\n" {
			t.Errorf("stdout %q", got)
		}
	})
}

func TestRunStartFailures(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "not-exec.sh"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad-interp.sh"), []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		ctx      context.Context
		spec     Spec
		wantCode int
		wantIs   error
		wantMsg  string
	}{
		{
			name:     "not in PATH",
			spec:     Spec{Argv: []string{"bmc-no-such-program", "x"}, Dir: dir},
			wantCode: ExitNotFound, wantIs: exec.ErrNotFound, wantMsg: `"bmc-no-such-program"`,
		},
		{
			name:     "missing relative path",
			spec:     Spec{Argv: []string{"./missing.sh"}, Dir: dir},
			wantCode: ExitNotFound, wantIs: fs.ErrNotExist, wantMsg: `"./missing.sh"`,
		},
		{
			name:     "not executable",
			spec:     Spec{Argv: []string{"./not-exec.sh"}, Dir: dir},
			wantCode: ExitCannotExecute, wantIs: fs.ErrPermission, wantMsg: "not-exec.sh",
		},
		{
			name:     "missing interpreter",
			spec:     Spec{Argv: []string{"./bad-interp.sh"}, Dir: dir},
			wantCode: ExitCannotExecute, wantIs: fs.ErrNotExist, wantMsg: "bad-interp.sh",
		},
		{
			name:     "a directory",
			spec:     Spec{Argv: []string{dir}, Dir: dir},
			wantCode: ExitCannotExecute, wantMsg: "is a directory",
		},
		{
			name:     "empty argv",
			spec:     Spec{Dir: dir},
			wantCode: ExitNotFound, wantMsg: "empty command",
		},
		{
			name:     "missing working directory",
			spec:     Spec{Argv: []string{"true"}, Dir: filepath.Join(dir, "nope")},
			wantCode: ExitCannotExecute, wantIs: fs.ErrNotExist, wantMsg: `run "true": chdir ` + filepath.Join(dir, "nope"),
		},
		{
			name:     "stdout cannot be created",
			spec:     Spec{Argv: []string{"true"}, Dir: dir, Stdout: filepath.Join(dir, "no", "such", "dir", "out")},
			wantCode: ExitCannotExecute, wantIs: fs.ErrNotExist,
		},
		{
			name:     "NUL in an argument",
			spec:     Spec{Argv: []string{"echo", "a\x00b"}, Dir: dir},
			wantCode: ExitCannotExecute, wantMsg: "argument contains a NUL byte",
		},
		{
			name:     "NUL in the environment",
			spec:     Spec{Argv: []string{"true"}, Dir: dir, Env: []string{"PATH=/usr/bin:/bin", "BAD=x\x00y"}},
			wantCode: ExitCannotExecute, wantMsg: "variable BAD contains a NUL byte",
		},
		{
			name:     "context already done",
			ctx:      canceled,
			spec:     Spec{Argv: []string{"true"}, Dir: dir},
			wantCode: ExitCannotExecute, wantIs: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			r, err := Run(ctx, tt.spec)
			if err == nil {
				t.Fatalf("Run succeeded with %+v, want an error", r)
			}
			if r.ExitCode != tt.wantCode {
				t.Errorf("ExitCode %d, want %d", r.ExitCode, tt.wantCode)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestRunTimeoutKillsWholeGroup(t *testing.T) {
	s := bash(t, `sleep 300 & echo $! > child.pid; wait`)
	s.Timeout = time.Second
	began := time.Now()
	r, err := Run(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < s.Timeout || d > 60*time.Second {
		t.Errorf("Run took %v with a %v timeout", d, s.Timeout)
	}
	if !r.TimedOut || r.Canceled {
		t.Errorf("TimedOut=%v Canceled=%v, want a timeout", r.TimedOut, r.Canceled)
	}
	if r.ExitCode != 143 || r.Signal != "SIGTERM" {
		t.Errorf("exit %d signal %q, want 143 SIGTERM", r.ExitCode, r.Signal)
	}
	child := readPID(t, filepath.Join(s.Dir, "child.pid"))
	waitFor(t, "background sleep to be killed", func() bool { return gone(child) })
}

func TestRunTimeoutNotReached(t *testing.T) {
	s := bash(t, `exit 4`)
	s.Timeout = time.Minute
	r, err := Run(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if r.TimedOut || r.Canceled || r.ExitCode != 4 {
		t.Errorf("got %+v, want exit 4 and no timeout", r)
	}
}

// runAsync starts Run in the background and returns a channel delivering
// its outcome.
func runAsync(ctx context.Context, s Spec) <-chan struct {
	r   Result
	err error
} {
	ch := make(chan struct {
		r   Result
		err error
	}, 1)
	go func() {
		r, err := Run(ctx, s)
		ch <- struct {
			r   Result
			err error
		}{r, err}
	}()
	return ch
}

func TestRunCancel(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		wantCode int
		wantSig  string
	}{
		{"default disposition", `sleep 300 & echo $! > child.pid; wait`, 143, "SIGTERM"},
		// A program that handles SIGTERM and exits 0 was still stopped
		// before it finished; it must not read as a success.
		{"exits 0 on SIGTERM", `trap 'exit 0' TERM; sleep 300 & echo $! > child.pid; wait`, 143, ""},
		{"exits 7 on SIGTERM", `trap 'exit 7' TERM; sleep 300 & echo $! > child.pid; wait`, 7, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bash(t, tt.script)
			// Everything here obeys SIGTERM, so Run must return long before
			// the grace period, even while killed children linger as
			// zombies waiting for init.
			s.KillGrace = time.Minute
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := runAsync(ctx, s)
			child := readPID(t, filepath.Join(s.Dir, "child.pid"))
			stopped := time.Now()
			cancel()
			got := <-done
			if d := time.Since(stopped); d > 30*time.Second {
				t.Errorf("Run took %v to stop a group that obeys SIGTERM", d)
			}
			if got.err != nil {
				t.Fatal(got.err)
			}
			r := got.r
			if !r.Canceled || r.TimedOut {
				t.Errorf("Canceled=%v TimedOut=%v, want canceled", r.Canceled, r.TimedOut)
			}
			if r.ExitCode != tt.wantCode || r.Signal != tt.wantSig {
				t.Errorf("exit %d signal %q, want %d %q", r.ExitCode, r.Signal, tt.wantCode, tt.wantSig)
			}
			waitFor(t, "background sleep to be killed", func() bool { return gone(child) })
		})
	}
}

func TestRunKillEscalation(t *testing.T) {
	tests := []struct {
		name   string
		script string
		grace  time.Duration
		// minimum time from the stop to Run's return
		minWait  time.Duration
		wantCode int
		wantSig  string
	}{
		{
			// The whole group ignores SIGTERM: SIGKILL after the grace period.
			name:     "leader ignores SIGTERM",
			script:   `trap '' TERM; sleep 300 & echo $! > child.pid; wait`,
			grace:    300 * time.Millisecond,
			minWait:  300 * time.Millisecond,
			wantCode: 137, wantSig: "SIGKILL",
		},
		{
			// The leader obeys SIGTERM but leaves a child that ignores it;
			// the child must still be killed once the grace period is up.
			// The child writes its pid once it ignores SIGTERM, so that the
			// stop cannot come before.
			name:     "straggler outlives leader",
			script:   `(trap '' TERM; echo $BASHPID > child.pid; exec sleep 300) & wait`,
			grace:    300 * time.Millisecond,
			minWait:  300 * time.Millisecond,
			wantCode: 143, wantSig: "SIGTERM",
		},
		{
			name:     "negative grace kills at once",
			script:   `trap '' TERM; sleep 300 & echo $! > child.pid; wait`,
			grace:    -1,
			wantCode: 137, wantSig: "SIGKILL",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bash(t, tt.script)
			s.KillGrace = tt.grace
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := runAsync(ctx, s)
			child := readPID(t, filepath.Join(s.Dir, "child.pid"))
			stopped := time.Now()
			cancel()
			got := <-done
			if got.err != nil {
				t.Fatal(got.err)
			}
			if d := time.Since(stopped); d < tt.minWait {
				t.Errorf("Run returned %v after the stop, before the %v grace period", d, tt.minWait)
			}
			if got.r.ExitCode != tt.wantCode || got.r.Signal != tt.wantSig || !got.r.Canceled {
				t.Errorf("got %+v, want exit %d signal %q canceled", got.r, tt.wantCode, tt.wantSig)
			}
			waitFor(t, "background sleep to be killed", func() bool { return gone(child) })
		})
	}
}

// TestRunLookupCacheFollowsMoves runs a program found through PATH, moves
// it to a later PATH directory, then removes it: the remembered location
// must neither run the old file nor turn "not found" into another error.
func TestRunLookupCacheFollowsMoves(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	env := []string{"PATH=" + a + ":" + b}
	name := "bmc-moving-tool"
	write := func(dir, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\necho "+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func() (Result, string, error) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		r, err := Run(context.Background(), Spec{Argv: []string{name}, Dir: t.TempDir(), Env: env, Stdout: out})
		got, _ := os.ReadFile(out)
		return r, string(got), err
	}

	write(a, "first")
	for range 2 { // the second run takes the remembered path
		if r, got, err := run(); err != nil || r.ExitCode != 0 || got != "first\n" {
			t.Fatalf("run from %s: %+v %q %v", a, r, got, err)
		}
	}
	if err := os.Remove(filepath.Join(a, name)); err != nil {
		t.Fatal(err)
	}
	write(b, "second")
	if r, got, err := run(); err != nil || r.ExitCode != 0 || got != "second\n" {
		t.Fatalf("after the move to %s: %+v %q %v", b, r, got, err)
	}
	if err := os.Remove(filepath.Join(b, name)); err != nil {
		t.Fatal(err)
	}
	r, _, err := run()
	if err == nil || r.ExitCode != ExitNotFound || !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("after removal: exit %d, %v; want %d and not found", r.ExitCode, err, ExitNotFound)
	}
}

// A log file may get the highest descriptor the limit allows: with a low
// limit and many tasks starting at once, one task in some thousands did,
// and failed to start with "bad file descriptor" although its files were
// open.
func TestRunFileAtDescriptorLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur > 1<<20 {
		// The kernel's own default ceiling; above it, a descriptor at the
		// limit would need a table of gigabytes.
		t.Skipf("RLIMIT_NOFILE is %d", lim.Cur)
	}
	for _, which := range []string{"stdout", "stderr", "both"} {
		t.Run(which, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "log.txt"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			topFd := int(lim.Cur - 1)
			if err := unix.Dup2(int(f.Fd()), topFd); err != nil {
				t.Fatal(err)
			}
			top := os.NewFile(uintptr(topFd), f.Name())
			defer top.Close()
			s := bash(t, `echo out; echo err >&2`)
			want := "out\n"
			switch which {
			case "stdout":
				s.StdoutFile = top
			case "stderr":
				s.StderrFile, want = top, "err\n"
			case "both":
				s.StdoutFile, s.StderrFile, want = top, top, "out\nerr\n"
			}
			free := lowestFree(t)
			r, err := Run(context.Background(), s)
			if err != nil || r.ExitCode != 0 {
				t.Fatalf("Run with %s at descriptor %d (the limit is %d): %+v, %v", which, topFd, lim.Cur, r, err)
			}
			if got := readFile(t, f.Name()); got != want {
				t.Errorf("log %q, want %q", got, want)
			}
			if _, err := unix.FcntlInt(uintptr(topFd), unix.F_GETFD, 0); err != nil {
				t.Errorf("the caller's file at %d: %v (Run must not close it)", topFd, err)
			}
			if got := lowestFree(t); got != free {
				t.Errorf("lowest free descriptor %d after Run, %d before: a descriptor was left open", got, free)
			}
		})
	}
}

// lowestFree is the descriptor the next open would get.
func lowestFree(t *testing.T) int {
	t.Helper()
	fd, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	return fd
}

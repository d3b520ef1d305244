// Package procrun runs one task attempt as a local process: in its own
// process group, with stdout and stderr written to files, bounded by a
// timeout and by a context, and reported as a Result that reads like what a
// POSIX shell would report.
//
// It is shared by the local backend and the Batch emulator so that both stop
// tasks the same way. It owns starting, stopping and reaping the process and
// nothing else: it does not build the environment (it only leaves bmc's
// credentials out of the one a task inherits) or the working directory,
// does not retry, does not log, and never interprets an exit code as success
// or failure — that is the caller's business.
//
// Unix only: it needs process groups. The process table (for FindEnv and
// for telling a live group from one of zombies) is read from /proc on
// Linux and with sysctl on macOS.
package procrun

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultKillGrace is how long a stopped process group gets between SIGTERM
// and SIGKILL when Spec.KillGrace is zero. It matches the few seconds most
// programs need to flush and remove temporary files.
const DefaultKillGrace = 5 * time.Second

// Exit codes reported when the program could not be started, chosen to match
// what bash reports for the same situations so that logs read the same
// whether a task ran under bmc or in a shell.
const (
	ExitNotFound      = 127 // the program does not exist
	ExitCannotExecute = 126 // it exists but could not be started
)

// Spec describes one attempt.
type Spec struct {
	// Argv is the program and its arguments. A program name without a
	// slash is looked up in the PATH of Env (or, when Env has no PATH,
	// in bmc's own PATH); a relative name with a slash is relative to Dir.
	Argv []string
	// Dir is the working directory; empty means bmc's own.
	Dir string
	// Env is the complete environment ("KEY=value"). Nil inherits bmc's
	// environment, as os/exec does, less its Credentials; an empty
	// non-nil slice means none.
	Env []string
	// Stdout and Stderr are file paths, created or truncated. Empty
	// discards the stream. The same path for both interleaves the two
	// streams in one file, as 2>&1 would. Relative paths are relative to
	// bmc's directory, not Dir.
	Stdout, Stderr string
	// StdoutFile and StderrFile, when set, are open files used instead of
	// Stdout and Stderr, as they are: not truncated, and not closed by
	// Run. A caller that runs many short tasks opens them ahead of time.
	StdoutFile, StderrFile *os.File
	// ExtraFiles are given to the program as file descriptors 3, 4, …,
	// and not closed by Run.
	ExtraFiles []*os.File
	// Timeout bounds the attempt's wall-clock time; zero means none.
	Timeout time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL when the attempt is
	// stopped. Zero means DefaultKillGrace; negative means SIGKILL at once.
	KillGrace time.Duration
	// Started, when set, is called once the process is running, before
	// Run waits for it.
	Started func()
	// Marks name variables of Env whose values together tell the
	// attempt's processes from every other process (a run id, a task id,
	// an attempt number). When the attempt is stopped, the processes that
	// carry all of them are stopped too, after its group: those that left
	// the group (setsid, set -m, daemons) would otherwise run on. They are
	// not looked for when the attempt ends by itself: what it leaves in
	// the background then is left on purpose.
	Marks []string
}

// Result is what became of an attempt.
//
// ExitCode follows shell conventions: the exit status when the process
// exited, 128+n when signal n ended it (137 for SIGKILL, 143 for SIGTERM),
// and ExitNotFound or ExitCannotExecute when Run returns an error. An
// attempt that was stopped (TimedOut or Canceled) never reports 0, even if
// the program caught SIGTERM and exited cleanly, so a caller that only looks
// at ExitCode cannot mistake it for a success.
type Result struct {
	ExitCode int
	// Signal is the name of the signal that ended the process ("SIGKILL"),
	// or empty when it exited by itself.
	Signal string
	// TimedOut is set when Spec.Timeout stopped the attempt; Canceled when
	// the context did. At most one of them is set.
	TimedOut, Canceled bool
	// Start and End bracket the attempt: from just before the process was
	// started until its leader was reaped and, when it was stopped, the
	// rest of its group was gone or had been sent SIGKILL.
	Start, End time.Time
}

// Run starts the attempt, waits for it and reports how it ended. The error
// is non-nil only when the process could not be started (the program was
// not found, an output file could not be created, the context was already
// done, ...) or, never in practice, could not be waited for; a process
// that ran and failed is reported in Result, never as an error.
//
// On timeout or cancellation the whole process group gets SIGTERM and, if
// anything in it is still alive after KillGrace, SIGKILL. Run returns once
// the group leader has been reaped and the group is empty or has been sent
// SIGKILL. When the leader exits by itself, background processes it left in
// its group are not touched, as with a shell; Run does not wait for them
// (they hold only files, never a pipe to bmc).
//
// The process is started with syscall.ForkExec rather than os/exec: bmc
// starts thousands of short tasks, and os/exec's extras (a pidfd per
// process, poller registration of every file it opens) are system calls
// paid on each of them for nothing a task needs.
func Run(ctx context.Context, s Spec) (Result, error) {
	start := time.Now()
	fail := func(code int, err error) (Result, error) {
		return Result{ExitCode: code, Start: start, End: time.Now()}, err
	}
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return fail(ExitNotFound, errors.New("run: empty command"))
	}
	name := s.Argv[0]
	if err := ctx.Err(); err != nil {
		r, err := fail(ExitCannotExecute, fmt.Errorf("run %q: %w", name, err))
		r.Canceled = true
		return r, err
	}

	path, cached, err := lookPath(name, s.Dir, s.Env)
	if err != nil {
		return fail(lookCode(err), fmt.Errorf("run %q: %w", name, err))
	}

	// The kernel takes C strings: a NUL would cut an argument or variable
	// short, and syscall.ForkExec would only say "invalid argument".
	for _, a := range s.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fail(ExitCannotExecute, fmt.Errorf("run %q: an argument contains a NUL byte", name))
		}
	}
	for _, kv := range s.Env {
		if strings.IndexByte(kv, 0) >= 0 {
			k, _, _ := strings.Cut(kv, "=")
			return fail(ExitCannotExecute, fmt.Errorf("run %q: environment variable %s contains a NUL byte", name, strings.ReplaceAll(k, "\x00", `\0`)))
		}
	}

	stdout, stderr, closeFiles, err := s.outputs()
	if err != nil {
		return fail(ExitCannotExecute, fmt.Errorf("run %q: %w", name, err))
	}
	dn, err := devNull()
	if err != nil {
		closeFiles()
		return fail(ExitCannotExecute, fmt.Errorf("run %q: stdin: %w", name, err))
	}
	stdin := dn.Fd()
	env := s.Env
	if env == nil {
		env = Environ()
	}
	attr := &syscall.ProcAttr{
		Dir:   s.Dir,
		Env:   dedupEnv(env),
		Files: files(stdin, stdout, stderr, s.ExtraFiles),
		// A session of its own, and so a process group: stopping the
		// attempt reaches every process it started and never bmc itself.
		// With no controlling terminal, as on a Batch node, a task that
		// reads the terminal (a password prompt) fails at once instead
		// of being stopped by SIGTTIN while bmc shows it running.
		Sys: &syscall.SysProcAttr{Setsid: true},
	}
	start = time.Now()
	restore := normalForFork()
	pid, err := forkExec(path, s.Argv, attr)
	var lookErr error
	if err != nil && cached {
		// The program found earlier may have gone since: look again.
		forgetPath(name, s.Env)
		if path, _, lookErr = lookPath(name, s.Dir, s.Env); lookErr == nil {
			pid, err = forkExec(path, s.Argv, attr)
		}
	}
	restore()
	// Our copies of the files were handed to the child at fork; holding
	// them open any longer gains nothing.
	closeFiles()
	if lookErr != nil {
		return fail(lookCode(lookErr), fmt.Errorf("run %q: %w", name, lookErr))
	}
	if err != nil {
		return fail(ExitCannotExecute, fmt.Errorf("run %q: %w", name, startError(path, s.Dir, err)))
	}

	if s.Started != nil {
		s.Started()
	}
	// The leader is waited for right here, on the calling goroutine: a
	// task's end then wakes only the thread that started it. A timeout or
	// a cancellation stops the group from a goroutine of its own, made only
	// if it happens.
	var (
		r       Result
		done    = make(chan struct{}) // closed once the leader is reaped
		claimed atomic.Bool           // set by the first of a stop or the reaping
		stopped = make(chan struct{}) // closed when a stop that claimed is over
	)
	stopper := func(timedOut bool) func() {
		return func() {
			if !claimed.CompareAndSwap(false, true) {
				return
			}
			defer close(stopped)
			if stop(pid, done, s.KillGrace) {
				r.TimedOut, r.Canceled = timedOut, !timedOut
				s.stopStrays()
			}
		}
	}
	var timer *time.Timer
	if s.Timeout > 0 {
		timer = time.AfterFunc(s.Timeout, stopper(true))
	}
	afterCancel := context.AfterFunc(ctx, stopper(false))
	ws, waitErr := wait(pid)
	close(done)
	afterCancel()
	if timer != nil {
		timer.Stop()
	}
	if !claimed.CompareAndSwap(false, true) {
		<-stopped // a stop began: the group is seen to before returning
	}
	r.Start, r.End = start, time.Now()
	if waitErr != nil {
		// Only possible if something else in bmc reaped our child (ECHILD):
		// how it ended is unknown, and must not read as a success.
		r.ExitCode = ExitCannotExecute
		return r, fmt.Errorf("run %q: wait: %w", name, waitErr)
	}

	switch {
	case ws.Signaled():
		r.Signal = unix.SignalName(ws.Signal())
		if r.Signal == "" {
			r.Signal = fmt.Sprintf("signal %d", int(ws.Signal()))
		}
		r.ExitCode = 128 + int(ws.Signal())
	default:
		r.ExitCode = ws.ExitStatus()
	}
	if (r.TimedOut || r.Canceled) && r.ExitCode == 0 {
		// The program caught SIGTERM and exited cleanly; it still did not
		// finish its work.
		r.ExitCode = 128 + int(syscall.SIGTERM)
	}
	return r, nil
}

// forkExec is syscall.ForkExec, made to work when one of attr.Files is
// the highest descriptor RLIMIT_NOFILE allows. Before it puts the files in
// place, the child moves its error pipe to the number just above the
// highest of them; for a file at limit-1 that number is past the limit,
// and the child fails with EBADF although every file is open. With a low
// limit and many tasks starting at once, a task's log file gets that
// number now and then (one task in some thousands at --slots 1500 and
// ulimit -n 1024).
//
// The case is handled when the child reports it, not looked for first: the
// limit would be one more system call for every task, and the files of
// nearly all of them are far below it. Such a file is then lent a lower
// number, for the fork only. Should there be none free, the error is
// EMFILE, which the caller may wait out.
func forkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != syscall.EBADF {
		return pid, err
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return pid, err
	}
	files := slices.Clone(attr.Files)
	var lent []int
	defer func() {
		for _, fd := range lent {
			_ = syscall.Close(fd)
		}
	}()
	for i, fd := range files {
		if uint64(fd)+1 < lim.Cur {
			continue
		}
		if j := slices.Index(attr.Files, fd); j < i {
			files[i] = files[j] // stdout and stderr are one file
			continue
		}
		low, derr := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if derr != nil {
			return pid, derr
		}
		lent = append(lent, low)
		files[i] = uintptr(low)
	}
	if lent == nil {
		return pid, err // some other cause: a file that is not open
	}
	a := *attr
	a.Files = files
	return syscall.ForkExec(path, argv, &a)
}

// stopStrays stops what is left of a stopped attempt outside its process
// group: the processes whose environment holds every one of Marks with
// the value Env gives it.
func (s *Spec) stopStrays() {
	if len(s.Marks) == 0 {
		return
	}
	match := make([]string, 0, len(s.Marks))
	for _, name := range s.Marks {
		v, ok := "", false
		for _, kv := range s.Env {
			if val, found := strings.CutPrefix(kv, name+"="); found {
				v, ok = val, true // the last one wins, as for the child
			}
		}
		if !ok {
			return // no such mark: nothing tells the attempt's processes
		}
		match = append(match, name+"="+v)
	}
	find := func() ([]Found, error) { return FindEnvAll(match) }
	found, err := find()
	if err != nil || len(found) == 0 {
		return
	}
	_ = Stop(found, s.KillGrace, find)
}

// startError explains why the child could not exec. The child reports one
// errno for everything between fork and exec, so a missing working
// directory would read as a missing program; look, and say which it was.
func startError(path, dir string, err error) error {
	if errors.Is(err, fs.ErrNotExist) && dir != "" {
		if _, serr := os.Stat(dir); serr != nil {
			return &fs.PathError{Op: "chdir", Path: dir, Err: err}
		}
	}
	return &fs.PathError{Op: "fork/exec", Path: path, Err: err}
}

// files are the descriptors a program is started with: its standard
// ones, then extra.
func files(stdin, stdout, stderr uintptr, extra []*os.File) []uintptr {
	fds := []uintptr{stdin, stdout, stderr}
	for _, f := range extra {
		fds = append(fds, f.Fd())
	}
	return fds
}

// dedupEnv drops all but the last of each variable, as os/exec does: the
// C library's getenv returns the first, so a duplicate would hide the
// value the caller put last on purpose.
func dedupEnv(env []string) []string {
	seen := make(map[string]struct{}, len(env))
	dups := false
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := seen[k]; ok {
			dups = true
			break
		}
		seen[k] = struct{}{}
	}
	if !dups {
		return env
	}
	clear(seen)
	out := make([]string, 0, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		k, _, _ := strings.Cut(env[i], "=")
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, env[i])
	}
	slices.Reverse(out)
	return out
}

// stop ends the process group pgid: SIGTERM, then SIGKILL once grace has
// passed if any member is still alive. It returns when the leader has been
// reaped (done is closed) and the group is empty or has been sent SIGKILL.
// It reports false when the leader had already exited by itself, so that a
// timer firing at the same moment as a normal exit does not mislabel it.
func stop(pgid int, done <-chan struct{}, grace time.Duration) bool {
	select {
	case <-done:
		return false
	default:
	}
	if grace == 0 {
		grace = DefaultKillGrace
	}
	if grace < 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return true
	}
	// Errors are ignored: ESRCH means the group is already gone, which is
	// the goal, and EPERM cannot happen for a group we created.
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return true
	}
	// The leader is gone, but processes it started may still be handling
	// SIGTERM. There is no notification for a group becoming empty, so
	// poll, backing off, until it is or the grace period is up.
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		if !groupAlive(pgid) {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-deadline.C:
			t.Stop()
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return true
		}
	}
}

// devNull is /dev/null, opened once and shared as every task's stdin, so
// that starting a task does not open it again (os/exec would). A failed
// open (out of file descriptors, say) is not kept: the next task tries
// again, and a task never inherits bmc's own stdin.
func devNull() (*os.File, error) {
	if f := devNullFile.Load(); f != nil {
		return f, nil
	}
	devNullMu.Lock()
	defer devNullMu.Unlock()
	if f := devNullFile.Load(); f != nil {
		return f, nil
	}
	f, err := openDevNull()
	if err != nil {
		return nil, err
	}
	devNullFile.Store(f)
	return f, nil
}

var (
	devNullFile atomic.Pointer[os.File]
	devNullMu   sync.Mutex
	openDevNull = func() (*os.File, error) { return os.Open(os.DevNull) }
)

type pathKey struct{ name, path string }

// lookCache maps a program name and PATH to the executable found.
var lookCache sync.Map

// lookPath resolves the program the way execvp would for the child: names
// with a slash relative to the working directory, others through the PATH
// the child will see. os/exec would search bmc's own PATH and resolve
// relative names against bmc's directory, which is not what the task asked
// for.
//
// Names found through a PATH of absolute directories are remembered, as a
// shell's hash table does, and reported as cached: should the exec of one
// fail, forgetPath and a second look find where it went.
func lookPath(name, dir string, env []string) (path string, cached bool, err error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		return p, false, checkExecutable(p)
	}
	pathEnv := pathOf(env)
	// Absolute PATH entries resolve the same way for every task: remember
	// them, so that thousands of short tasks do not each stat every PATH
	// directory. A relative entry depends on dir and is not cached.
	key := pathKey{name, pathEnv}
	cacheable := !strings.Contains(":"+pathEnv+":", ":.:") && !strings.Contains(":"+pathEnv+":", "::")
	for _, d := range filepath.SplitList(pathEnv) {
		cacheable = cacheable && filepath.IsAbs(d)
	}
	if cacheable {
		if p, ok := lookCache.Load(key); ok {
			return p.(string), true, nil
		}
	}
	var firstErr error
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "." // POSIX: an empty PATH entry is the current directory
		}
		if !filepath.IsAbs(d) && dir != "" {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, name)
		err := checkExecutable(p)
		if err == nil {
			if cacheable {
				lookCache.Store(key, p)
			}
			return p, false, nil
		}
		// Like execvp, remember a program that exists but cannot run, so
		// the error says "permission denied" rather than "not found".
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", false, firstErr
	}
	return "", false, exec.ErrNotFound
}

// lookCode is the exit code a shell gives for a program it cannot find
// (127) or cannot run (126).
func lookCode(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return ExitNotFound
	}
	return ExitCannotExecute
}

// forgetPath drops what lookPath remembered for name under env's PATH.
func forgetPath(name string, env []string) {
	lookCache.Delete(pathKey{name, pathOf(env)})
}

// pathOf is the PATH the child will see: the last PATH in env, or bmc's
// own when env is nil or has none.
func pathOf(env []string) string {
	pathEnv, ok := "", false
	if env == nil {
		pathEnv, ok = os.LookupEnv("PATH")
	} else {
		for _, kv := range env {
			if v, found := strings.CutPrefix(kv, "PATH="); found {
				pathEnv, ok = v, true // the last one wins, as in os/exec
			}
		}
	}
	if !ok {
		pathEnv = os.Getenv("PATH")
	}
	return pathEnv
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: is a directory", p)
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: %w", p, fs.ErrPermission)
	}
	return nil
}

// outputs returns the child's stdout and stderr descriptors: the files
// the caller opened, or the files named by path, created or truncated.
// One path named twice is opened once, so that both streams share an
// offset and interleave instead of overwriting each other. closeAll closes
// what outputs opened, never the caller's files.
func (s *Spec) outputs() (stdout, stderr uintptr, closeAll func(), err error) {
	var fds []int
	closeAll = func() {
		for _, fd := range fds {
			_ = syscall.Close(fd) // write-only, handed to the child; nothing to flush
		}
		fds = nil
	}
	open := func(p string) (uintptr, error) {
		if p == "" {
			p = os.DevNull
		}
		fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			return 0, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		fds = append(fds, fd)
		return uintptr(fd), nil
	}
	if s.StdoutFile != nil {
		stdout = s.StdoutFile.Fd()
	} else if stdout, err = open(s.Stdout); err != nil {
		closeAll()
		return 0, 0, nil, err
	}
	switch {
	case s.StderrFile != nil:
		stderr = s.StderrFile.Fd()
	case s.StdoutFile == nil && s.Stderr != "" && s.Stderr == s.Stdout:
		stderr = stdout
	default:
		if stderr, err = open(s.Stderr); err != nil {
			closeAll()
			return 0, 0, nil, err
		}
	}
	return stdout, stderr, closeAll, nil
}

// wait reaps the process pid. A blocking wait4 is the cheapest way: a
// pidfd waited on through the runtime's poller was measured to cost more
// system calls than the blocking call's hand-off of its P saves.
func wait(pid int) (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws, err
		}
	}
}

// Package local is the local backend: each task attempt runs as its own
// process group in .bmc/runs/<run-id>/tasks/<task-id>/wd, with the
// environment Azure Batch gives a task, its inputs staged before and its
// outputs collected after each attempt. It is the embedded default: every
// workload can run here with no cloud at all.
package local

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/filepattern"
	"github.com/bmc-dev/bmc/internal/procrun"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/internal/stall"
	"github.com/bmc-dev/bmc/planner"
	"golang.org/x/sys/unix"
)

// Package is an application package provided from a local directory
// (--package name[@version]=dir).
type Package struct {
	Name, Version, Dir string
}

// Options configure the backend.
type Options struct {
	// Slots is how many task slots run at once.
	Slots int
	// Store is where az:// locations live.
	Store blobstage.Store
	// Packages are the application packages on this "node".
	Packages []Package
	// KeepWorkdirs keeps the working directories of succeeded tasks,
	// which are otherwise removed (those of failed tasks are kept).
	KeepWorkdirs bool
	// PoolID is reported as AZ_BATCH_POOL_ID.
	PoolID string
	// Logs, when set, is an az:// prefix where every task's stdout.txt and
	// stderr.txt are uploaded after each attempt, whatever its outcome.
	Logs string
	// HTTP fetches https:// inputs; nil for a default client, which
	// fails a download once it has stalled for Stall and sets no limit
	// on a download as a whole.
	HTTP *http.Client
	// Stall is how long the default client waits for a server that sends
	// nothing, first response headers, then the next bytes of the body;
	// zero for two minutes.
	Stall time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL on timeout or
	// cancel; zero for procrun's default.
	KillGrace time.Duration
	// Hide are variables of bmc's environment that tasks do not get: the
	// callback's secret and URL, which on Batch only the job manager task
	// sees, and the finalize step there does not.
	Hide []string
}

// Backend runs tasks on this machine.
type Backend struct {
	opts Options

	mu sync.Mutex
	// trash are the working directories of succeeded tasks that hold
	// files, emptied by Cleanup when the run is over. Emptying them as
	// tasks finish would make the file system skip each recently freed
	// inode on every later allocation (ext4 without a journal does), a
	// cost that grows with the run. The directories themselves stay:
	// removing an empty directory frees nothing worth its cost (on a file
	// system mounted with discard, a trim per directory). They are not
	// reused for later tasks: a background process a task left behind may
	// still have one as its working directory.
	trash []string
	// done are the working directories of tasks that succeeded, not yet
	// looked at by settle.
	done []string
	// dirs tracks task directories: dirPrefetching while Prefetch makes
	// them, a *logFiles once it has (new and empty, with the log files
	// open: the first attempt need neither check nor open anything),
	// dirStarted once an attempt has begun.
	dirs sync.Map
	// environ is bmc's environment, read once: every task starts from it.
	environ []string
	// unyield gives bmc's threads back their normal scheduling, once
	// Prepare has had them yield to tasks.
	unyield func()
	// open counts the log files Prefetch holds open; it opens no more
	// than maxOpen, a share of the file descriptors bmc may have, so
	// that a wide --slots does not run bmc out of them.
	open    atomic.Int64
	maxOpen int64
	// running counts the attempts whose process runs; whileRunning
	// compares it with the CPUs there are.
	running atomic.Int32
	// bg tracks the work whileRunning has handed to other goroutines,
	// which Cleanup waits for.
	bg sync.WaitGroup
	// session tells this backend's attempts from those of the run's
	// other sessions (an earlier bmc run or resume, a bmc cancel): every
	// session numbers its finalize attempt 1.
	session string
	// swept is closed once the sweep of the store Prepare started is
	// over; nil when it started none. Cleanup waits for it.
	swept     chan struct{}
	stopSweep context.CancelFunc
}

const (
	dirPrefetching = "prefetching"
	dirStarted     = "started"
)

// logFiles are a task's stdout.txt and stderr.txt, created by Prefetch.
type logFiles struct {
	stdout, stderr *os.File
	open           *atomic.Int64
}

func (l *logFiles) close() {
	l.stdout.Close()
	l.stderr.Close()
	l.open.Add(-2)
}

var (
	_ executor.Backend    = (*Backend)(nil)
	_ executor.Preparer   = (*Backend)(nil)
	_ executor.Cleaner    = (*Backend)(nil)
	_ executor.Prefetcher = (*Backend)(nil)
	_ executor.Resumer    = (*Backend)(nil)
)

// attemptMarks are the variables whose values tell one attempt's
// processes from all others: what a stopped attempt left outside its
// process group is found by them. The session is one of them: the
// finalize step is attempt 1 in every session, and what an earlier
// session's finalize step left in the background on purpose is not this
// one's to stop.
var attemptMarks = []string{runIDVar, taskIDVar, attemptVar, sessionVar}

// New returns a local backend. Tasks start from bmc's environment as it
// is now, less the variables in Hide and bmc's own credentials
// (procrun.Credentials), which tasks on Batch do not get either.
func New(o Options) *Backend {
	if o.Slots < 1 {
		o.Slots = 1
	}
	if o.HTTP == nil {
		o.HTTP = stall.NewClient(o.Stall)
	}
	if o.PoolID == "" {
		o.PoolID = "local"
	}
	return &Backend{opts: o, environ: procrun.Environ(o.Hide...), maxOpen: prefetchFiles(), session: newSession()}
}

// newSession returns a value for BMC_SESSION that no other session of
// any run has: the process id, the time and random characters.
func newSession() string {
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%d-%s-%s", os.Getpid(), strconv.FormatInt(time.Now().UnixNano(), 36), hex.EncodeToString(r[:]))
}

// prefetchFiles is how many log files Prefetch may hold open: a quarter
// of the file descriptors bmc may have (Go raises the soft limit to the
// hard one at start), leaving the rest to the tasks being started, the
// journal, staging and the callback.
func prefetchFiles() int64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return 1 << 20
	}
	return max(0, int64(min(lim.Cur, 1<<40))-64) / 4
}

// Resumed sets aside for Cleanup the working directories of the tasks
// that succeeded in earlier sessions of the run: a session killed before
// its end (kill -9) did not empty them.
func (b *Backend) Resumed(run *executor.RunInfo, done []string) {
	if b.opts.KeepWorkdirs {
		return
	}
	dirs := make([]string, len(done))
	for i, id := range done {
		dirs[i] = filepath.Join(TaskDir(run.Dir, id), "wd")
	}
	b.mu.Lock()
	b.trash = append(b.trash, dirs...)
	b.mu.Unlock()
}

// Capabilities: executor-scheduled, bounded by --slots, no containers.
func (b *Backend) Capabilities() planner.Capabilities {
	avail := map[string][]string{}
	for _, p := range b.opts.Packages {
		n := strings.ToLower(p.Name)
		avail[n] = append(avail[n], p.Version)
	}
	return planner.Capabilities{Name: "local", Slots: b.opts.Slots, Packages: true, AvailablePackages: avail}
}

// Prepare lays out the run's "node": the shared and startup directories.
// A run taken up again (bmc resume, or bmc cancel of a run whose bmc is
// gone) also has the store swept of what uploads of its killed session
// left: see sweepStore.
func (b *Backend) Prepare(ctx context.Context, run *executor.RunInfo) error {
	if _, err := os.Stat(filepath.Join(run.Dir, "tasks")); err == nil {
		b.sweepStore()
	}
	for _, d := range []string{"shared", "startup", "tasks"} {
		if err := os.MkdirAll(filepath.Join(run.Dir, d), 0o755); err != nil {
			return fmt.Errorf("prepare run directory: %w", err)
		}
	}
	b.mu.Lock()
	if b.unyield == nil {
		b.unyield = procrun.YieldToTasks()
	}
	b.mu.Unlock()
	return nil
}

// sweepStore removes, in the background, the partial files of uploads
// whose bmc was killed from the whole local store: a session of the run
// killed mid-upload left them in folders no task may write into again,
// where the sweep before each write would not find them. The store's
// rule keeps every file a live bmc may still be writing, this one's and
// those of other runs going on beside it. A blob account needs none:
// an upload it did not complete is not a blob.
func (b *Backend) sweepStore() {
	s, ok := b.opts.Store.(interface{ Sweep(context.Context) error })
	if !ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.swept != nil {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	b.swept, b.stopSweep = make(chan struct{}), stop
	go func() {
		defer close(b.swept)
		_ = s.Sweep(ctx) // best effort: what it leaves, a later write's sweep may take
	}()
}

// Paths of a task in a run directory.
func TaskDir(runDir, task string) string { return filepath.Join(runDir, "tasks", task) }

// RunTask runs one attempt.
func (b *Backend) RunTask(ctx context.Context, a *executor.Attempt) executor.Result {
	t := a.Task
	taskDir := TaskDir(a.Run.Dir, t.ID)
	wd := filepath.Join(taskDir, "wd")
	res := executor.Result{Start: time.Now()}
	fail := func(reason string, noRetry bool) executor.Result {
		res.State, res.Reason, res.NoRetry, res.End = executor.Failed, reason, noRetry, time.Now()
		return res
	}
	logs, _ := b.dirs.Swap(taskDir, dirStarted)
	lf, fresh := logs.(*logFiles)
	closeLogs := func() {}
	if fresh {
		closeLogs = sync.OnceFunc(lf.close)
		defer closeLogs()
	} else if err := whileOutOfFiles(ctx, func() error { return b.freshDirs(taskDir, wd, a.Number) }); err != nil {
		// Denied, or on a read-only file system, every attempt would fail
		// the same way.
		return fail(err.Error(), errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS))
	}
	if why := tooLong(t); why != "" {
		return fail(why, true) // before inputs are staged for nothing
	}
	if err := b.stageInputs(ctx, a, wd); err != nil {
		if ctx.Err() != nil {
			res.State, res.Reason, res.End = executor.Canceled, "cancelled while staging inputs", time.Now()
			return res
		}
		return fail(err.Error(), true)
	}
	argv := t.Command
	var extra []*os.File
	if t.Run != "" {
		script := t.Run
		if len(script) >= maxArgLen {
			// Too long to be one argument: bash reads it from a pipe, as
			// descriptor 3, which it closes for the script, and runs it as
			// -c would (the same $0, arguments, $_, line numbers and error
			// messages). A file would keep on disk what the script holds
			// (a SAS URL filled in). Shorter scripts, nearly all, cost no
			// pipe.
			r, err := handOver(script)
			if err != nil {
				return fail(fmt.Sprintf("hand the task's script to bash: %v", err), false)
			}
			defer r.Close()
			extra = []*os.File{r}
			script = `eval "$(< /dev/fd/3)" 3<&-`
		}
		argv = []string{"bash", "-euo", "pipefail", "-c", script, t.ID}
	}
	env := b.env(a, taskDir, wd)
	spec := procrun.Spec{
		Argv:       argv,
		Dir:        wd,
		Env:        env,
		Stdout:     filepath.Join(taskDir, "stdout.txt"),
		Stderr:     filepath.Join(taskDir, "stderr.txt"),
		Timeout:    t.Timeout.D(),
		KillGrace:  b.opts.KillGrace,
		Marks:      attemptMarks,
		ExtraFiles: extra,
		// Once the task runs: bmc's copies of its logs are of no more use,
		// and the work left from earlier tasks is done while it runs.
		Started: func() {
			closeLogs()
			b.whileRunning(a.Started)
		},
	}
	if fresh {
		spec.StdoutFile, spec.StderrFile = lf.stdout, lf.stderr
	}
	var pr procrun.Result
	b.running.Add(1)
	err := whileOutOfFiles(ctx, func() error {
		var err error
		pr, err = procrun.Run(ctx, spec)
		return err
	})
	b.running.Add(-1)
	res = executor.ProcessResult(ctx, executor.ProcessEnd{ExitCode: pr.ExitCode, Signal: pr.Signal, TimedOut: pr.TimedOut,
		Canceled: pr.Canceled, StartErr: err, Timeout: t.Timeout.D(), Start: pr.Start})
	if errors.Is(err, unix.E2BIG) && res.State == executor.Failed {
		// Each part fits, all of them together do not: so it stays.
		res.Reason += ": the task's arguments and environment together are more than this system passes to a program"
		res.NoRetry = true
	}
	if res.State != executor.Canceled {
		b.collect(ctx, a, wd, env, &res)
	}
	b.uploadLogs(ctx, a, taskDir, &res)
	res.End = time.Now()
	if res.State == executor.Succeeded && !b.opts.KeepWorkdirs && !a.Finalize {
		b.mu.Lock()
		b.done = append(b.done, wd)
		b.mu.Unlock()
	}
	return res
}

// maxArgLen is the length, with its terminating NUL, at which one
// argument or one environment variable is too long for the kernel to
// pass to a program (Linux's MAX_ARG_STRLEN, 32 pages).
const maxArgLen = 32 * 4096

// tooLong says which of t's environment variables or command arguments
// is too long to be given to a program at all, or "" when none is. A
// run script of any length can be run: it is handed over through a pipe.
func tooLong(t *compiler.Task) string {
	k := ""
	for name, v := range t.Env {
		if len(name)+len(v)+1 >= maxArgLen && (k == "" || name < k) {
			k = name // the first by name, whatever the map's order
		}
	}
	if k != "" {
		return fmt.Sprintf("env %s: its value (%d bytes) is longer than a program can be given in a variable (%d KiB): put it in a file, an input, and give the task its path", k, len(t.Env[k]), maxArgLen/1024)
	}
	for i, arg := range t.Command {
		if len(arg)+1 >= maxArgLen {
			return fmt.Sprintf("command argument %d (%d bytes) is longer than a program can be given in an argument (%d KiB): put it in a file, an input, and give the task its path", i+1, len(arg), maxArgLen/1024)
		}
	}
	return ""
}

// Check is what the local backend's limits make of prog, for its plan:
// environment variables and command arguments that no program can be
// given, which would fail every attempt.
func Check(prog *compiler.Program) []planner.Check {
	var out []planner.Check
	for i := range prog.Tasks {
		if why := tooLong(&prog.Tasks[i]); why != "" {
			out = append(out, planner.Check{Severity: planner.Error, Task: prog.Tasks[i].ID, Message: why})
		}
	}
	if f := &prog.Finalize; f.HasStep() {
		if why := tooLong(&compiler.Task{Command: f.Command, Env: f.Env}); why != "" {
			out = append(out, planner.Check{Severity: planner.Error, Task: f.ID, Message: why})
		}
	}
	return out
}

// handOver returns the read end of a pipe that script is written into:
// a process started with it reads the script, then end of file. Once the
// caller closes it, a write no process reads fails, and the writer ends.
func handOver(script string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	go func() {
		io.WriteString(w, script)
		w.Close()
	}()
	return r, nil
}

// whileRunning does the work an attempt leaves for the time its task
// runs: it sets aside the working directories of tasks that succeeded
// meanwhile (settle), then calls started, with which the executor
// prepares the tasks to come (Prefetch).
//
// It is called on the thread that has just started the task. When a CPU
// is left over, the work is handed to another thread: done here, it would
// hold up the task it has just started, which the kernel mostly runs on
// this same CPU and which this thread preempts as the task's exec wakes
// it, and a chain of tasks would wait for it at every link. When every CPU runs a task, it is done here: a
// hand-over would only add a thread's wake-up to the work.
func (b *Backend) whileRunning(started func()) {
	work := func() {
		b.settle()
		if started != nil {
			started()
		}
	}
	if int(b.running.Load()) >= runtime.GOMAXPROCS(0) {
		work()
		return
	}
	b.bg.Go(work)
}

// settle looks at the working directories of tasks that succeeded since
// it last ran and sets aside for Cleanup those that hold files. It runs
// once the next task has started, rather than between a task's end and
// the next one's start.
func (b *Backend) settle() {
	b.mu.Lock()
	dirs := b.done
	b.done = nil
	b.mu.Unlock()
	var full []string
	for _, wd := range dirs {
		if empty, err := isEmptyDir(wd); err != nil || !empty {
			full = append(full, wd)
		}
	}
	if len(full) > 0 {
		b.mu.Lock()
		b.trash = append(b.trash, full...)
		b.mu.Unlock()
	}
}

// Prefetch creates a task's directories and its empty log files, and
// keeps the files open for its first attempt, while other tasks run. It
// only creates what does not exist, so it cannot disturb a task that
// already started. The calls are made directly: os.Mkdir and os.OpenFile
// would add a stat or poller registration to each of them, and at
// thousands of short tasks those are a measurable share of the run.
func (b *Backend) Prefetch(run *executor.RunInfo, t *compiler.Task) {
	taskDir := TaskDir(run.Dir, t.ID)
	if _, busy := b.dirs.LoadOrStore(taskDir, dirPrefetching); busy {
		return
	}
	if unix.Mkdir(taskDir, 0o755) != nil {
		return // there from an earlier session, or unusable: RunTask sees to it
	}
	if unix.Mkdir(taskDir+"/wd", 0o755) != nil {
		return
	}
	if b.open.Add(2) > b.maxOpen {
		b.open.Add(-2) // RunTask opens them as the task starts
		return
	}
	var fds [2]int
	for i, name := range []string{"/stdout.txt", "/stderr.txt"} {
		fd, err := unix.Open(taskDir+name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			if i == 1 {
				unix.Close(fds[0])
			}
			b.open.Add(-2)
			return
		}
		fds[i] = fd
	}
	lf := &logFiles{
		stdout: os.NewFile(uintptr(fds[0]), taskDir+"/stdout.txt"),
		stderr: os.NewFile(uintptr(fds[1]), taskDir+"/stderr.txt"),
		open:   &b.open,
	}
	if !b.dirs.CompareAndSwap(taskDir, dirPrefetching, lf) {
		lf.close()
	}
}

// stopYielding gives bmc's threads back the scheduling they had before
// Prepare.
func (b *Backend) stopYielding() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unyield != nil {
		b.unyield()
		b.unyield = nil
	}
}

// Cleanup empties the working directories of succeeded tasks and closes
// the log files of tasks prefetched but never started.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.bg.Wait()
	b.stopYielding()
	b.settle()
	b.dirs.Range(func(k, v any) bool {
		if lf, ok := v.(*logFiles); ok && b.dirs.CompareAndDelete(k, v) {
			lf.close()
		}
		return true
	})
	b.mu.Lock()
	dirs := b.trash
	b.trash = nil
	swept, stopSweep := b.swept, b.stopSweep
	b.mu.Unlock()
	if swept != nil {
		select {
		case <-swept:
		case <-ctx.Done():
			stopSweep()
			return ctx.Err()
		}
	}
	var first error
	for _, d := range dirs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := emptyDir(d); err != nil && first == nil {
			first = fmt.Errorf("clean working directory: %w", err)
		}
	}
	return first
}

// outOfFiles reports whether err is bmc running out of file descriptors,
// its own (EMFILE) or the system's (ENFILE): a shortage that passes as
// other tasks end, not a fault of the task.
func outOfFiles(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE)
}

// outOfFilesWait bounds how long a task waits for file descriptors
// before its attempt fails.
const outOfFilesWait = 5 * time.Minute

// whileOutOfFiles runs f, and again, backing off, for as long as it fails
// for want of file descriptors (up to outOfFilesWait), so that a short
// shortage delays tasks instead of failing them.
func whileOutOfFiles(ctx context.Context, f func() error) error {
	err := f()
	if !outOfFiles(err) {
		return err
	}
	deadline := time.Now().Add(outOfFilesWait)
	for wait := 10 * time.Millisecond; outOfFiles(err) && time.Now().Before(deadline); wait = min(2*wait, time.Second) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		err = f()
	}
	return err
}

// emptyDir removes everything in dir, keeping dir. A dir a task replaced
// with a link is not followed: the link is replaced with an empty
// directory, and what it names is left alone.
func emptyDir(dir string) error {
	if replaced, err := unlinkReplaced(dir); err != nil || replaced {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	var first error
	for _, n := range names {
		if err := removeAll(filepath.Join(dir, n)); err != nil && first == nil {
			first = err // the rest is removed all the same
		}
	}
	return first
}

// unlinkReplaced looks at a working directory without following a link:
// one a task replaced with a link, or anything but a directory, is
// removed and made again, empty, and replaced is true. So is a directory
// a task took its owner's access to (chmod 000 .): bmc owns it, and the
// next attempt, or the next task to look into it, gets it as bmc makes
// it. replaced is false when wd is a directory bmc can use as it is, or
// is not there.
func unlinkReplaced(wd string) (replaced bool, err error) {
	fi, err := os.Lstat(wd)
	if err != nil || fi.IsDir() && fi.Mode().Perm()&0o700 == 0o700 {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return false, err
	}
	if fi.IsDir() {
		err = removeAll(wd)
	} else {
		err = os.Remove(wd)
	}
	if err != nil {
		return false, err
	}
	return true, os.Mkdir(wd, 0o755)
}

// removeAll is os.RemoveAll, also of what a task made read-only (a Go
// module cache, a frozen tree): denied, it makes the directories below
// path writable by their owner and tries again. Links are not followed.
func removeAll(path string) error {
	err := os.RemoveAll(path)
	if !errors.Is(err, fs.ErrPermission) {
		return err
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, werr error) error {
		if werr == nil && d.IsDir() {
			if fi, err := d.Info(); err == nil {
				os.Chmod(p, fi.Mode().Perm()|0o700)
			}
		}
		return nil
	})
	return os.RemoveAll(path)
}

// freshDirs gives attempt number an empty working directory, keeping the
// logs of the attempt before, also one of an earlier run session, as
// stdout.attempt-N.txt.
func (b *Backend) freshDirs(taskDir, wd string, number int) error {
	if err := os.Mkdir(taskDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		if err := os.MkdirAll(taskDir, 0o755); err != nil {
			return fmt.Errorf("create task directory: %w", err)
		}
	}
	archiveLogs(taskDir, number-1)
	// The attempt before may have replaced its directory with a link: the
	// next one must not run where it points.
	if replaced, err := unlinkReplaced(wd); err != nil {
		return fmt.Errorf("clean working directory: %w", err)
	} else if replaced {
		return nil
	}
	f, err := openDir(wd)
	switch {
	case err == nil:
		_, rerr := f.Readdirnames(1)
		f.Close()
		if errors.Is(rerr, io.EOF) {
			return nil // empty: made ahead by Prefetch
		}
		if err := removeAll(wd); err != nil {
			return fmt.Errorf("clean working directory: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		// Out of file descriptors, say: the directory may hold the
		// attempt before's files, and must not be taken as missing.
		return fmt.Errorf("clean working directory: %w", err)
	}
	if err := os.Mkdir(wd, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create working directory: %w", err)
	}
	return nil
}

// openDir opens a working directory to look into it; tests replace it.
var openDir = os.Open

// archiveLogs renames non-empty logs of attempt prev, the one before, to
// stdout.attempt-<prev>.txt and stderr.attempt-<prev>.txt, so that
// bmc logs --attempt N shows attempt N. Should those names be taken (logs
// kept by a bmc that numbered attempts otherwise), the next free number
// is used instead: no log is overwritten.
func archiveLogs(taskDir string, prev int) {
	out := filepath.Join(taskDir, "stdout.txt")
	errf := filepath.Join(taskDir, "stderr.txt")
	so, e1 := os.Stat(out)
	se, e2 := os.Stat(errf)
	if (e1 != nil || so.Size() == 0) && (e2 != nil || se.Size() == 0) {
		return
	}
	free := func(n int) bool {
		for _, s := range []string{"stdout", "stderr"} {
			if _, err := os.Stat(filepath.Join(taskDir, fmt.Sprintf("%s.attempt-%d.txt", s, n))); !errors.Is(err, os.ErrNotExist) {
				return false
			}
		}
		return true
	}
	n := prev
	if n < 1 || !free(n) {
		for n = 1; !free(n); n++ {
		}
	}
	os.Rename(out, filepath.Join(taskDir, fmt.Sprintf("stdout.attempt-%d.txt", n)))
	os.Rename(errf, filepath.Join(taskDir, fmt.Sprintf("stderr.attempt-%d.txt", n)))
}

// The variables that name a task's run and the task: set for every task,
// and how Leftovers tells a run's processes and their tasks.
const (
	runIDVar   = "BMC_RUN_ID"
	taskIDVar  = "AZ_BATCH_TASK_ID"
	attemptVar = "BMC_TASK_ATTEMPT"
	// sessionVar tells the run's sessions apart (see Backend.session).
	sessionVar = "BMC_SESSION"
	// nodeRootVar is the run's directory, as it was when the task started.
	nodeRootVar = "AZ_BATCH_NODE_ROOT_DIR"
)

// env is the task's environment: bmc's own, the task's variables, then
// Batch's, which win.
func (b *Backend) env(a *executor.Attempt, taskDir, wd string) []string {
	t := a.Task
	run := a.Run
	env := make([]string, len(b.environ), len(b.environ)+len(t.Env)+20)
	copy(env, b.environ)
	keys := make([]string, 0, len(t.Env))
	for k := range t.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+t.Env[k])
	}
	root := run.Dir
	batch := []string{
		"AZ_BATCH_ACCOUNT_NAME=local",
		"AZ_BATCH_ACCOUNT_URL=",
		"AZ_BATCH_POOL_ID=" + b.opts.PoolID,
		"AZ_BATCH_NODE_ID=local-node",
		"AZ_BATCH_NODE_IS_DEDICATED=true",
		"AZ_BATCH_NODE_ROOT_DIR=" + root,
		"AZ_BATCH_NODE_SHARED_DIR=" + filepath.Join(root, "shared"),
		"AZ_BATCH_NODE_STARTUP_DIR=" + filepath.Join(root, "startup"),
		"AZ_BATCH_NODE_MOUNTS_DIR=" + filepath.Join(root, "fsmounts"),
		"AZ_BATCH_CERTIFICATES_DIR=" + filepath.Join(taskDir, "certs"),
		"AZ_BATCH_JOB_ID=" + run.ID,
		taskIDVar + "=" + t.ID,
		"AZ_BATCH_TASK_DIR=" + taskDir,
		"AZ_BATCH_TASK_WORKING_DIR=" + wd,
		// No disk is set aside for a task here: a user subscription pool
		// without a reservation reports 0 as well.
		"AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES=0",
		runIDVar + "=" + run.ID,
		"BMC_WORKLOAD=" + run.Workload,
		attemptVar + "=" + strconv.Itoa(a.Number),
		sessionVar + "=" + b.session,
	}
	if a.Finalize {
		batch = append(batch, "BMC_RUN_SUMMARY="+a.Summary)
	}
	for _, p := range t.Packages {
		if dir, version, ok := b.pkg(p); ok {
			batch = append(batch, PackageEnv(p.Name, version)+"="+dir)
			if p.Version == "" {
				batch = append(batch, PackageEnv(p.Name, "")+"="+dir)
			}
		}
	}
	return append(env, batch...)
}

// pkg finds the directory of a package reference: its version, or the
// default (a package given without version, or the only one).
func (b *Backend) pkg(ref compiler.Package) (dir, version string, ok bool) {
	var cands []Package
	for _, p := range b.opts.Packages {
		if strings.EqualFold(p.Name, ref.Name) {
			cands = append(cands, p)
		}
	}
	for _, p := range cands {
		if ref.Version != "" && p.Version == ref.Version || ref.Version == "" && p.Version == "" {
			return p.Dir, p.Version, true
		}
	}
	if ref.Version == "" && len(cands) == 1 {
		return cands[0].Dir, cands[0].Version, true
	}
	if ref.Version != "" {
		for _, p := range cands {
			if p.Version == "" {
				return p.Dir, ref.Version, true
			}
		}
	}
	return "", "", false
}

// PackageEnv is the name of the variable Batch sets for an application
// package on Linux: AZ_BATCH_APP_PACKAGE_<name>_<version>, with '.', '-'
// and '#' turned into '_'; without a version for the default.
func PackageEnv(name, version string) string {
	r := strings.NewReplacer(".", "_", "-", "_", "#", "_")
	v := "AZ_BATCH_APP_PACKAGE_" + r.Replace(name)
	if version != "" {
		v += "_" + r.Replace(version)
	}
	return v
}

func (b *Backend) stageInputs(ctx context.Context, a *executor.Attempt, wd string) error {
	// With several inputs, what each puts in place is noted, so that one
	// that replaces a file of another (a prefix holding a blob of the
	// same name as a file input, two folders holding one file) fails the
	// attempt instead of deciding by input order what the task reads.
	var placed map[string]placedFile
	if len(a.Task.Inputs) > 1 {
		placed = map[string]placedFile{}
	}
	for k, in := range a.Task.Inputs {
		if !filepath.IsLocal(filepath.FromSlash(in.Path)) {
			// The compiler refuses such paths; this holds for a program
			// read back from a run directory, too.
			return fmt.Errorf("input %s: path %q is not inside the working directory", inputName(in), in.Path)
		}
		dst := filepath.Join(wd, filepath.FromSlash(in.Path))
		var err error
		switch in.Kind {
		case compiler.InputBlob, compiler.InputBlobPrefix:
			var loc blobstage.Location
			loc, err = blobstage.ParseURL(in.From)
			if err == nil {
				if b.opts.Store == nil {
					err = errors.New("no blob store is configured")
				} else {
					_, err = b.opts.Store.Download(ctx, loc, dst)
				}
			}
		case compiler.InputHTTP:
			_, err = blobstage.FetchHTTP(ctx, b.opts.HTTP, in.From, dst)
		case compiler.InputFile:
			src := in.From
			if !filepath.IsAbs(src) {
				src = filepath.Join(a.Run.SpecDir, src)
			}
			_, err = blobstage.CopyLocal(src, dst)
		}
		if err != nil {
			return fmt.Errorf("input %s: %s", inputName(in), redact.String(err.Error()))
		}
		if placed != nil {
			if err := notePlaced(placed, wd, dst, k, a.Task.Inputs); err != nil {
				return err
			}
		}
	}
	return nil
}

// placedFile is a file an input put in the working directory.
type placedFile struct {
	input int
	fi    os.FileInfo
}

// notePlaced notes the files input k put at dst, and fails if one of
// them replaced a file an earlier input put there: staging writes each
// file anew, so a file still there from an earlier input is the same
// file, and a replaced one is not.
func notePlaced(placed map[string]placedFile, wd, dst string, k int, inputs []compiler.Input) error {
	var clash error
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || clash != nil {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(wd, p)
		rel = filepath.ToSlash(rel)
		if prev, ok := placed[rel]; ok {
			if !os.SameFile(prev.fi, fi) {
				clash = fmt.Errorf("input %s replaced %s, which input %s put there: each file needs a path of its own", inputName(inputs[k]), rel, inputName(inputs[prev.input]))
				return filepath.SkipAll
			}
			return nil // the earlier input's, under this one's directory
		}
		placed[rel] = placedFile{k, fi}
		return nil
	})
	return clash
}

// inputName names an input in messages: a URL without its query and
// fragment, and without a password in its user info.
func inputName(in compiler.Input) string {
	name := in.From
	if in.Kind == compiler.InputHTTP {
		if i := strings.IndexAny(name, "?#"); i >= 0 {
			name = name[:i]
		}
	}
	return redact.String(name)
}

// collect uploads the outputs whose condition matches. Every pattern is
// tried even when one fails; a failed upload fails the attempt, as a
// Batch file upload error does, and is not retried. env is the task's
// environment, which patterns are expanded with (see outputPattern).
func (b *Backend) collect(ctx context.Context, a *executor.Attempt, wd string, env []string, res *executor.Result) {
	var vars map[string]string // made when a pattern names a variable
	ok := res.State == executor.Succeeded
	var errs []string
	if fi, err := os.Lstat(wd); err == nil && !fi.IsDir() && len(a.Task.Outputs) > 0 {
		// The task replaced its directory, with a link to elsewhere say:
		// what is there is not the task's to give.
		res.State, res.NoRetry = executor.Failed, true
		msg := "outputs not collected: the task replaced its working directory (with a link, or a file)"
		if ok {
			res.Reason = msg
		} else {
			res.Reason += "; " + msg
		}
		return
	}
	for _, o := range a.Task.Outputs {
		if !o.When.Matches(ok) {
			continue
		}
		loc, err := blobstage.ParseURL(o.To)
		if err == nil && b.opts.Store == nil {
			err = errors.New("no blob store is configured")
		}
		pattern := o.Pattern
		if err == nil && strings.ContainsAny(pattern, "$%") {
			if vars == nil {
				vars = filepattern.Vars(env)
			}
			pattern, err = outputPattern(o.Pattern, wd, vars)
		}
		var st blobstage.Stats
		if err == nil {
			st, err = b.opts.Store.Upload(ctx, wd, pattern, outputDest(o.Pattern, pattern, loc))
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("output %s -> %s: %s", o.Pattern, o.To, redact.String(err.Error())))
			continue
		}
		if st.Files > 0 && !slices.Contains(res.Outputs, o.To) {
			res.Outputs = append(res.Outputs, o.To)
		}
	}
	if len(errs) > 0 {
		if ok {
			res.State, res.NoRetry = executor.Failed, true
			res.Reason = strings.Join(errs, "; ")
		} else {
			res.Reason += "; " + strings.Join(errs, "; ")
		}
	}
}

// outputPattern is an output's path with the task's environment vars
// expanded, as Batch expands an output file's filePattern on the node
// before matching it (filepattern.Expand). A path that a variable made
// absolute (${AZ_BATCH_TASK_WORKING_DIR}/out/*.bam) is taken relative to
// wd; one naming a place outside wd is an error: the local backend
// collects outputs from the working directory only. The error names the
// path as written, not what the variables made of it.
func outputPattern(written, wd string, vars map[string]string) (string, error) {
	p := filepattern.Expand(written, vars)
	if !strings.HasPrefix(p, "/") {
		return p, nil
	}
	if rel, ok := strings.CutPrefix(p, wd+"/"); ok && strings.Trim(rel, "/") != "" {
		return rel, nil
	}
	return "", fmt.Errorf("path %s names files outside the task's working directory, where the local backend does not collect outputs: write them to the working directory and name them relative to it", written)
}

// outputDest is where the files of an output go: where Batch puts them
// for the Batch backend, which gives Batch, as the destination path, the
// name of a single file as the output's path is written, variables and
// all (Batch expands them in the pattern, not in the destination), and
// for a wildcard the prefix without its last slash, which Batch takes as
// a virtual directory when the pattern, once expanded, has a wildcard.
func outputDest(written, expanded string, to blobstage.Location) blobstage.Location {
	p := to.Path
	switch {
	case filepattern.HasWildcard(written):
		p = strings.TrimSuffix(p, "/")
	case to.IsPrefix():
		p += path.Base(filepattern.Literal(written))
	}
	if filepattern.HasWildcard(expanded) && p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return blobstage.Location{Container: to.Container, Path: p}
}

// uploadLogs sends stdout.txt and stderr.txt to the logs prefix, whatever
// the attempt's outcome: logs are what a person needs most when data
// uploads failed.
func (b *Backend) uploadLogs(ctx context.Context, a *executor.Attempt, taskDir string, res *executor.Result) {
	if b.opts.Logs == "" || b.opts.Store == nil {
		return
	}
	loc := executor.TaskLogs(b.opts.Logs, a.Run, a.Task.ID)
	dst, err := blobstage.ParseURL(loc)
	if err == nil {
		// A fresh context: logs of a cancelled attempt are still worth having.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		_, err = b.opts.Store.Upload(lctx, taskDir, "std*.txt", dst)
	}
	if err != nil {
		msg := "logs -> " + loc + ": " + redact.String(err.Error())
		if res.Reason == "" {
			res.Reason = msg
		} else {
			res.Reason += "; " + msg
		}
	}
}

// Leftover is a process of a run's task still running with no bmc
// driving the run: bmc was killed (SIGKILL, an out-of-memory kill, a CI
// runner's timeout) and could not stop its tasks.
type Leftover struct {
	PID  int    `json:"pid"`
	Task string `json:"task,omitempty"`
}

// Leftovers finds the processes of the tasks of the run in runDir
// (<state>/runs/<run-id>) for which of(task) holds: the tasks that were
// running when bmc was killed, not those that ended and left a process in
// the background on purpose. A run's processes carry its id in their
// environment (BMC_RUN_ID, which every task of the run and everything it
// starts inherits); those that dropped their environment (env -i,
// apptainer --cleanenv) are known by their working directory, stdout or
// stderr in the task's directory, and with them go the other processes
// of a task's session. Those of a copy of the project (cp -a), which run
// with the same id, are not this run's: their environment names the
// copy's run directory. Call it only when no bmc drives the run: those of
// a live run are its running tasks.
func Leftovers(runDir string, of func(task string) bool) ([]Leftover, error) {
	found, err := findLeftovers(runDir, of)
	return leftovers(found), err
}

// StopLeftovers stops what Leftovers finds, as a timeout stops a task:
// SIGTERM, then SIGKILL to what still runs after grace (zero for the
// default of a few seconds), and returns what it found. A task run again
// must not share its working directory and outputs with a copy of itself
// from before.
func StopLeftovers(runDir string, of func(task string) bool, grace time.Duration) ([]Leftover, error) {
	find := func() ([]procrun.Found, error) { return findLeftovers(runDir, of) }
	found, err := find()
	if err != nil {
		return nil, err
	}
	return leftovers(found), procrun.Stop(found, grace, find)
}

func leftovers(found []procrun.Found) []Leftover {
	out := make([]Leftover, len(found))
	for i, f := range found {
		out[i] = Leftover{PID: f.PID, Task: leftoverTask(f)}
	}
	return out
}

// leftoverTask is the task a process found belongs to: as its environment
// says, or else the directory it was found in, which is named by the
// task's id (TaskDir).
func leftoverTask(f procrun.Found) string { return cmp.Or(f.Values[0], f.Dir) }

func findLeftovers(runDir string, of func(task string) bool) ([]procrun.Found, error) {
	runDir, err := filepath.Abs(runDir)
	if err != nil {
		return nil, err
	}
	runID := filepath.Base(runDir)
	// The run's own processes name its directory (nodeRootVar), as it was
	// when they started: a copy's name the copy's.
	q := procrun.Query{Env: []string{runIDVar + "=" + runID}, Report: []string{taskIDVar},
		Home: nodeRootVar + "=" + runDir, Sessions: true}
	if runID != "." && runID != ".." && runID != string(filepath.Separator) {
		// /proc shows where a process works with links resolved, and
		// where the directory is now, moved since or not.
		real, err := filepath.EvalSymlinks(runDir)
		if err != nil {
			real = runDir
		}
		q.Under = TaskDir(real, "") + string(filepath.Separator)
	}
	found, err := procrun.Find(q)
	kept := found[:0]
	for _, f := range found {
		if of(leftoverTask(f)) {
			kept = append(kept, f)
		}
	}
	return kept, err
}

// LeftoverTasks names the tasks of ls, sorted, once each.
func LeftoverTasks(ls []Leftover) []string {
	var tasks []string
	for _, l := range ls {
		if l.Task != "" && !slices.Contains(tasks, l.Task) {
			tasks = append(tasks, l.Task)
		}
	}
	slices.Sort(tasks)
	return tasks
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
	"github.com/bmc-dev/bmc/schema"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type runOptions struct {
	set          setFlag
	slots        int
	backend      string
	events       string
	keepGoing    bool
	only         []string
	keepWorkdirs bool
	packages     []string
	storage      string
	logs         string
	progress     string
	transfers    int
	batch        batchOptions // --backend azurebatch
	// cancelNow: the run is taken up to be cancelled (bmc cancel of a
	// Batch run whose bmc is gone).
	cancelNow bool
	// newRun: a run bmc run starts, which writes its id on stdout (see
	// runIDOut); a resume or a take-up was given the id.
	newRun bool
}

func (o *runOptions) flags(cmd *cobra.Command, resume bool) {
	f := cmd.Flags()
	// 0 is the default's mark: what it comes to depends on the program.
	slotsHelp := "task slots in use at once; a task's slots count against it (default: the CPU count, or the widest task's slots if more)"
	if resume {
		slotsHelp = "task slots in use at once; a task's slots count against it (default: the run's)"
	}
	f.IntVar(&o.slots, "slots", 0, slotsHelp)
	f.StringVar(&o.events, "events", "", "write one JSON object per event to `FILE` (- for stdout)")
	f.BoolVar(&o.keepGoing, "keep-going", false, "after a failure, still run every task that does not depend on it")
	keepHelp := "keep the working directories of succeeded tasks"
	if resume {
		keepHelp += " (default: as the run was started)"
	}
	f.BoolVar(&o.keepWorkdirs, "keep-workdirs", false, keepHelp)
	f.StringArrayVar(&o.packages, "package", nil, "provide an application package: `name[@version]=dir`")
	f.StringVar(&o.storage, "storage", "", "where az:// locations live: local (.bmc/storage) or azure (default: azure when configured in the environment)")
	f.StringVar(&o.logs, "logs", "", "upload every task's stdout/stderr under this az:// `prefix`")
	f.StringVar(&o.progress, "progress", "auto", "progress display: auto, bars, plain or none")
	f.IntVar(&o.transfers, "transfers", 8, "blob transfers in flight at once, per store")
	if !resume {
		addSetFlag(cmd, &o.set)
		f.StringVar(&o.backend, "backend", "local", "where tasks run: local or azurebatch")
		f.StringArrayVar(&o.only, "only", nil, "run only this `task` or group and what it depends on (repeatable)")
		o.batch.flags(cmd)
	}
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a workload",
		Long: `Run a workload: compile it, plan it for the backend, run its tasks, then the
finalize step and the callback, which run whatever happened before, also after
Ctrl-C. The run's state is kept in .bmc/runs/<run-id>/: the program, an
append-only journal, and each task's working directory and logs. An
interrupted or failed run continues with bmc resume.

Exit status: 0 every task succeeded, 1 a task or the callback failed, or the
spec or the backend's configuration (account, pool, storage) is wrong, 2 usage
error, 3 internal error or a backend or blob account that cannot be reached,
130 cancelled.`,
		Example: `  bmc run examples/hello.yaml
  bmc run examples/genomics.yaml --set samples='[s1, s2]' --slots 4
  bmc run examples/failing.yaml --keep-going
  bmc run examples/genomics.yaml --only merge --keep-workdirs --events events.jsonl
  bmc run examples/genomics.yaml --backend azurebatch          # see docs/azurebatch.md`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSpec(cmd, args[0], &o)
		},
	}
	o.flags(cmd, false)
	return cmd
}

func runSpec(cmd *cobra.Command, file string, o *runOptions) error {
	if o.backend != "local" && o.backend != azurebatch.Name {
		return usagef("unknown --backend %q: expected local or azurebatch", o.backend)
	}
	if cmd.Flags().Changed("slots") && o.slots < 1 {
		return usagef("--slots must be at least 1")
	}
	if o.backend == "local" {
		if err := checkBatchFlags(cmd); err != nil {
			return err
		}
	}
	if err := checkProgress(o.progress); err != nil {
		return err
	}
	prog, err := compileSpec(cmd, file, &o.set)
	if err != nil {
		return err
	}
	if !cmd.Flags().Changed("slots") {
		o.slots = localSlots(runtime.NumCPU(), prog)
	}
	if len(o.only) > 0 {
		if prog, err = planner.Only(prog, o.only); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	abs, _ := filepath.Abs(file)
	params, _ := o.set.params()
	meta := executor.Meta{
		ID: executor.NewRunID(prog.Name, time.Now()), Workload: prog.Name, Backend: o.backend,
		Spec: abs, SpecDir: filepath.Dir(abs), Params: params, Created: time.Now().UTC(),
		Slots: o.slots, KeepGoing: o.keepGoing, KeepWorkdirs: o.keepWorkdirs, Logs: o.logs, Only: o.only, Packages: absPackages(o.packages),
	}
	warnUnsigned(cmd.ErrOrStderr(), prog)
	o.newRun = true
	return drive(cmd, prog, meta, o, nil)
}

// checkBatchFlags refuses the azurebatch backend's flags on the local
// backend, which would ignore them.
func checkBatchFlags(cmd *cobra.Command) error {
	var names []string
	batch := &cobra.Command{}
	(&batchOptions{}).flags(batch)
	batch.Flags().VisitAll(func(f *pflag.Flag) {
		if cmd.Flags().Changed(f.Name) {
			names = append(names, "--"+f.Name)
		}
	})
	switch len(names) {
	case 0:
		return nil
	case 1:
		return usagef("%s needs --backend azurebatch", names[0])
	}
	return usagef("%s need --backend azurebatch", strings.Join(names, ", "))
}

// absPackages is --package's name=dir values with their directories made
// absolute, as the run keeps them: bmc resume may run elsewhere.
func absPackages(specs []string) []string {
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		if nv, dir, ok := strings.Cut(s, "="); ok && dir != "" {
			if abs, err := filepath.Abs(dir); err == nil {
				s = nv + "=" + abs
			}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// drive runs (or resumes) a run: plan, tasks, finalize, callback.
func drive(cmd *cobra.Command, prog *compiler.Program, meta executor.Meta, o *runOptions, prev *executor.RunState) error {
	if meta.Backend == azurebatch.Name {
		return driveBatch(cmd, prog, meta, o, prev)
	}
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	state := stateDir(cmd)
	pkgs, err := parsePackages(o.packages)
	if err != nil {
		return err
	}
	if o.transfers < 1 {
		return usagef("--transfers must be at least 1")
	}
	if o.slots < 1 {
		if cmd.Flags().Changed("slots") {
			return usagef("--slots must be at least 1")
		}
		o.slots = localSlots(runtime.NumCPU(), prog)
	}
	var store blobstage.Store
	if prev != nil {
		store, err = openRunStore(ctx, meta.ID, meta.Storage, o.storage, o.transfers, prog, state)
	} else {
		store, err = openStore(ctx, o.storage, o.transfers, prog, state)
	}
	if err != nil {
		return err
	}
	logs := o.logs
	if logs == "" {
		logs = prog.Logs
	}
	if logs != "" {
		if _, err := blobstage.ParseURL(logs); err != nil {
			return usagef("--logs: %v", err)
		}
	}
	poolID := ""
	if prog.Pool != nil {
		poolID = prog.Pool.ID
	}
	be := local.New(local.Options{Slots: o.slots, Store: store, Packages: pkgs, KeepWorkdirs: o.keepWorkdirs, PoolID: poolID, Logs: logs, Hide: prog.Finalize.Callback.EnvVars()})
	var done map[string]bool
	if prev != nil {
		done = prev.Done()
	}
	plan := newPlan(prog, be.Capabilities(), done, meta.SpecDir)
	printChecks(stderr, plan.Checks)
	if err := planError(plan, true); err != nil {
		return err
	}
	cbEnv, err := readCallbackEnv(prog)
	if err != nil {
		return err
	}
	if err := checkStore(ctx, store, prog, logs); err != nil {
		return err
	}
	ev, err := openEvents(cmd, o.events)
	if err != nil {
		return err
	}
	defer ev.close()
	meta.Storage = store.URL()
	dir, j, closeRun, err := openRun(state, &meta, prog, prev != nil)
	if err != nil {
		return err
	}
	defer closeRun()
	noteRunStart(stderr, dir, state, meta.SpecDir, prog, prev != nil)
	if w := runIDOut(cmd, o); w != nil {
		fmt.Fprintln(w, meta.ID)
	}
	if prev != nil {
		// Read again now that the lock is held: a resume that ran since
		// the first read must not be redone.
		if prev, err = loadStateHeld(dir); err != nil {
			return err
		}
		plan = newPlan(prog, be.Capabilities(), prev.Done(), meta.SpecDir)
	}
	if prev != nil && prev.Status == "interrupted" {
		// With the run's lock held, what still runs with its id was left
		// by a bmc that is gone, and must not run beside its own retry.
		if _, err := stopLeftovers(stderr, dir, meta.ID, prev.WasRunning); err != nil {
			return err
		}
	}

	run := &executor.RunInfo{ID: meta.ID, Workload: prog.Name, Dir: dir, SpecDir: meta.SpecDir, Storage: store.URL(), Log: slog.New(newMessageHandler(stderr))}
	sinks, display, closeSinks := openSinks(cmd, o, plan, ev)
	defer closeSinks()
	if err := be.Prepare(ctx, run); err != nil {
		return err
	}

	verb := "run"
	if prev != nil {
		verb = "resume"
	}
	fmt.Fprintf(stderr, "bmc: %s %s: %d task%s (%d to run), %d slot%s, storage %s\n", verb, meta.ID, plan.Tasks, plural(plan.Tasks), plan.ToRun, o.slots, plural(o.slots), store.URL())
	cancels := watchCancels(ctx, stderr)
	defer cancels.stop()
	outcome, err := executor.RunTasks(ctx, plan, be, run, j, executor.Options{Slots: o.slots, KeepGoing: o.keepGoing, Events: sinks, Progress: progressEvery(display, o.events), Previous: prev})
	if err != nil {
		return err
	}
	fctx := cancels.finishing()
	fo := executor.FinishOptions{Secret: cbEnv.secret, CallbackURL: cbEnv.url, Events: sinks}
	if prev != nil && outcome.Ran == 0 {
		fo.SkipStep = prev.Finalize != nil && prev.Finalize.State == executor.Succeeded
		fo.SkipCallback = prev.Callback != nil && prev.Callback.Delivered
	}
	res, err := executor.Finish(fctx, plan, be, run, j, outcome, fo)
	display.Close()
	if err != nil {
		return err
	}
	report(stderr, cmd, meta.ID, dir, plan, outcome, res)
	// A second cancel cuts the cleanup short too, which is no error.
	if err := be.Cleanup(fctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "bmc: %v\n", err)
	}
	return runExit(outcome, res, resendHint(cmd, meta))
}

// cancelWatch follows the signals that cancel a run (Ctrl-C, bmc
// cancel's SIGTERM, a closed terminal) for the finalize step and the
// callback, which run even after a cancel: the run's own context, which
// the same signals cancel, stops only the tasks. A cancel that arrives
// once the tasks are over lets the step and the callback finish; a second
// cancel (or the first, if the tasks were cancelled) cuts them short.
type cancelWatch struct {
	w         io.Writer
	runCtx    context.Context
	sigs      chan os.Signal
	quit      chan struct{}
	ctx       context.Context
	cut       context.CancelFunc
	mu        sync.Mutex
	seen      bool // a cancel arrived
	tasksOver bool
}

// watchCancels starts following the cancels of the run whose context is
// runCtx; w is told when one is put off until the finalize step and the
// callback are done.
func watchCancels(runCtx context.Context, w io.Writer) *cancelWatch {
	c := &cancelWatch{w: w, runCtx: runCtx, sigs: make(chan os.Signal, 1), quit: make(chan struct{})}
	c.ctx, c.cut = context.WithCancel(context.Background())
	signal.Notify(c.sigs, cancelSignals()...)
	go func() {
		for {
			select {
			case <-c.sigs:
				c.cancelled()
			case <-c.quit:
				return
			}
		}
	}()
	return c
}

func (c *cancelWatch) cancelled() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.tasksOver:
		// The run's context stops the tasks; any more cancels while they
		// stop count as this one.
	case c.seen:
		c.cut()
	default:
		fmt.Fprintln(c.w, "bmc: cancel received once the tasks were over: the finalize step and the callback finish first (cancel again to cut them short)")
	}
	c.seen = true
}

// finishing is called once the tasks are over, and returns the context
// of the finalize step and the callback.
func (c *cancelWatch) finishing() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tasksOver = true
	// A cancel that reached only the run's context (before the watch
	// began) counts too: the next one cuts the finalize step short.
	c.seen = c.seen || c.runCtx.Err() != nil
	return c.ctx
}

// stop ends the watch once the finalize step and the callback are over.
func (c *cancelWatch) stop() {
	signal.Stop(c.sigs)
	close(c.quit)
	c.cut()
}

// callbackEnv is what the callback takes from bmc's environment: the
// signing secret (secretEnv) and the URL (urlEnv), when the spec names
// variables for them.
type callbackEnv struct {
	secret []byte
	url    string
}

// readCallbackEnv reads the callback's variables at the run's start, so
// that a missing URL stops the run before any task, not at its end. A
// missing secret does not: the callback is sent unsigned (warnUnsigned
// says so).
func readCallbackEnv(prog *compiler.Program) (callbackEnv, error) {
	var ce callbackEnv
	cb := prog.Finalize.Callback
	if cb == nil {
		return ce, nil
	}
	if cb.SecretEnv != "" {
		if v := os.Getenv(cb.SecretEnv); v != "" {
			ce.secret = []byte(v)
		}
	}
	if cb.URLEnv != "" {
		v := os.Getenv(cb.URLEnv)
		if v == "" {
			return ce, &exitError{code: exitFailed, err: fmt.Errorf("the callback goes to the URL in $%s, which is not set", cb.URLEnv)}
		}
		// The URL is not shown: it is a secret.
		if executor.ValidateCallbackURL(v) != nil {
			return ce, &exitError{code: exitFailed, err: fmt.Errorf("$%s, the callback's URL, is not an https URL, nor http to a loopback host", cb.URLEnv)}
		}
		ce.url = v
	}
	if ce.secret != nil || ce.url != "" {
		hideEnviron()
	}
	return ce, nil
}

// warnUnsigned warns, once a run or resume is asked for, that its
// callback goes unsigned because the variable meant to hold its secret
// (secretEnv) is empty or not set.
func warnUnsigned(w io.Writer, prog *compiler.Program) {
	cb := prog.Finalize.Callback
	if cb == nil || cb.SecretEnv == "" || os.Getenv(cb.SecretEnv) != "" {
		return
	}
	fmt.Fprintf(w, "bmc: warning: $%s is empty or not set: the callback is sent unsigned, without X-Bmc-Signature\n", cb.SecretEnv)
}

// specInputChecks are the plan's checks of the inputs named by a path
// relative to the spec, in specDir: that they are there and do not
// clash, and what their folders hold. Tasks in done are not checked.
func specInputChecks(prog *compiler.Program, done map[string]bool, specDir string) []planner.Check {
	return append(planner.SpecInputsWalk(prog, done, specDir, os.Stat, os.ReadDir),
		planner.SpecInputFolders(prog, done, specDir, os.Stat, os.ReadDir)...)
}

// newPlan plans prog for a run whose earlier sessions completed done,
// from a spec in specDir. What the backend's limits say of a done task
// does not matter: it does not run again.
func newPlan(prog *compiler.Program, caps planner.Capabilities, done map[string]bool, specDir string) *planner.Plan {
	plan := planner.New(prog, caps, done)
	plan.Checks = append(plan.Checks, local.Check(prog)...)
	plan.Checks = slices.DeleteFunc(plan.Checks, func(c planner.Check) bool { return c.Task != "" && done[c.Task] })
	plan.Checks = append(plan.Checks, specInputChecks(prog, done, specDir)...)
	plan.Locate()
	return plan
}

// loadStateHeld reads the state of a run whose lock this process holds.
// executor.LoadState takes a held lock for a bmc driving the run; this
// one drives none yet, so the state is the one a reader without the lock
// would see: a run not journaled as finished is interrupted, and its
// tasks journaled as running were interrupted with it.
func loadStateHeld(dir string) (*executor.RunState, error) {
	st, err := executor.LoadState(dir)
	if err != nil {
		return nil, err
	}
	if pid, held := executor.LockHolder(dir); !held || pid != os.Getpid() {
		return st, nil
	}
	st.Interrupt()
	return st, nil
}

// stopLeftovers stops the processes left by the tasks of picks (those
// running when the bmc process driving the run went away, as
// RunState.WasRunning tells, or fewer), and says so. It returns how many it found. The caller holds the
// run's lock.
func stopLeftovers(w io.Writer, dir, id string, of func(task string) bool) (int, error) {
	ls, err := local.StopLeftovers(dir, of, 0)
	if len(ls) > 0 {
		fmt.Fprintf(w, "bmc: stopped %d process%s of run %s left running by a bmc process that is gone (%s)\n",
			len(ls), pluralES(len(ls)), id, tasksList(local.LeftoverTasks(ls)))
	}
	if err != nil {
		return len(ls), fmt.Errorf("stop the processes run %s left running: %w", id, err)
	}
	return len(ls), nil
}

func pluralES(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}

func tasksList(tasks []string) string {
	switch {
	case len(tasks) == 0:
		return "no task named"
	case len(tasks) == 1:
		return "task " + tasks[0]
	case len(tasks) > 5:
		return "tasks " + strings.Join(tasks[:5], ", ") + fmt.Sprintf(" and %d more", len(tasks)-5)
	}
	return "tasks " + strings.Join(tasks, ", ")
}

// openRun creates the run directory (or finds it, to resume), takes its
// lock and opens its journal. meta.ID changes if the id drawn was taken.
// A new run is locked before it can be found, so that no other bmc
// (cancel, resume) takes it up before this one drives it.
func openRun(state string, meta *executor.Meta, prog *compiler.Program, resume bool) (dir string, j *executor.Journal, closeFn func(), err error) {
	var unlock func()
	if !resume {
		// Two runs of a workload started in the same second may draw the
		// same id: draw again.
		for try := 0; ; try++ {
			dir, unlock, err = executor.CreateRunLocked(state, *meta, prog)
			if err == nil || !errors.Is(err, os.ErrExist) || try == 20 {
				break
			}
			meta.ID = executor.NewRunID(prog.Name, time.Now())
		}
		if err != nil {
			// A state directory that cannot be written (full, read-only)
			// is the user's to see to; the error names the path.
			return "", nil, nil, &exitError{code: exitFailed, err: err}
		}
		// As the run directory has it: a resume needs these again. Read
		// back, as finding them again would encode the whole program.
		if m, err := executor.ReadMeta(dir); err == nil {
			meta.SecretParams = m.SecretParams
		} else {
			meta.SecretParams = executor.SecretParamsOf(*meta, prog)
		}
	} else {
		dir = filepath.Join(executor.RunsDir(state), meta.ID)
		if unlock, err = executor.Lock(dir); err != nil {
			return "", nil, nil, &exitError{code: exitFailed, err: err}
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		unlock()
		return "", nil, nil, err
	}
	path := filepath.Join(dir, executor.JournalFile)
	if !resume {
		// Nothing can find the run before its lock is held: a journal in
		// it is another bmc's doing, which this one must not run over.
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			unlock()
			return "", nil, nil, &exitError{code: exitFailed, err: fmt.Errorf("run %s was taken up by another bmc process before this one started it: see %s", meta.ID, path)}
		}
	}
	j, err = executor.OpenJournal(path)
	if err != nil {
		unlock()
		return "", nil, nil, err
	}
	return dir, j, func() { j.Close(); unlock() }, nil
}

// openSinks makes the run's event sinks: the --events stream, if one was
// opened, and the progress display. close closes the display; the stream
// is its opener's to close.
func openSinks(cmd *cobra.Command, o *runOptions, plan *planner.Plan, ev *eventsFile) (executor.Sinks, progress, func()) {
	sinks := executor.Sinks{}
	if ev.w != nil {
		sinks = append(sinks, executor.NewJSONSink(ev.w))
	}
	if w := runIDOut(cmd, o); w != nil && o.backend == azurebatch.Name {
		// A Batch run's id is written from its run-started event, which
		// comes before its tasks are submitted: driveBatch makes the run
		// and submits it with no step between where the id could be
		// written. (--detach, which sends no events, writes it once the
		// tasks are submitted.)
		sinks = append(sinks, &runIDSink{w: w})
	}
	display := newProgress(cmd.ErrOrStderr(), o.progress, plan)
	if _, none := display.(noProgress); !none {
		// --progress none with no --events (and no Batch run's id to
		// write) leaves the run no sink, and so no event to make, queue
		// and drop for each task.
		sinks = append(sinks, display)
	}
	return sinks, display, display.Close
}

// runIDOut is where a run bmc run starts writes its id, one line, as
// soon as the run exists, before any task starts: stdout, for a script
// (RUN=$(bmc run x.yaml)) or another terminal to follow the run by. It is
// nil for a resume or a take-up, which were given the id, and with
// --events -, whose stdout carries the events only (each names the run).
func runIDOut(cmd *cobra.Command, o *runOptions) io.Writer {
	if !o.newRun || o.events == "-" || o.events != "" && isStdout(cmd, o.events) {
		return nil
	}
	return cmd.OutOrStdout()
}

// isStdout reports whether path is the file cmd's stdout goes to
// (--events /dev/stdout, or a file stdout is redirected to): the events
// are then all that is written there.
func isStdout(cmd *cobra.Command, path string) bool {
	w := cmd.OutOrStdout()
	if o, ok := w.(*outputWriter); ok {
		w = o.w
	}
	out, ok := w.(*os.File)
	if !ok {
		return false
	}
	a, err := out.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// runIDSink writes the run's id, from its run-started event, on a line.
type runIDSink struct {
	w    io.Writer
	once sync.Once
}

func (s *runIDSink) Event(e executor.Event) {
	if e.Type == executor.EventRunStarted {
		s.once.Do(func() { fmt.Fprintln(s.w, e.RunID) })
	}
}

// runExit is the exit status of a finished run. redeliver says how to
// send an undelivered callback again.
func runExit(outcome *executor.Outcome, res *executor.RunResult, redeliver string) error {
	switch {
	case outcome.Canceled && res.CallbackErr != nil:
		return &exitError{code: exitCanceled, err: fmt.Errorf("%v; the run's outcome was not delivered: %s", res.CallbackErr, redeliver)}
	case outcome.Canceled:
		return &exitError{code: exitCanceled}
	case res.CallbackErr != nil:
		return &exitError{code: exitFailed, err: fmt.Errorf("%v; the run's outcome was not delivered: %s", res.CallbackErr, redeliver)}
	case res.Status != executor.CallbackSucceeded:
		return &exitError{code: exitFailed}
	}
	return nil
}

// printChecks writes a plan's checks as bmc's messages: each an error or
// a warning, where in the spec, when known, then the source line with a
// caret under the place, as bmc validate shows its errors.
func printChecks(w io.Writer, checks []planner.Check) {
	files := map[string]*schema.SourceLines{}
	for _, c := range checks {
		line := checkText(c) + "\n"
		if c.Line > 0 {
			lines, ok := files[c.File]
			if !ok {
				if src, err := os.ReadFile(c.File); err == nil {
					lines = schema.NewSourceLines(src)
				}
				files[c.File] = lines
			}
			if lines != nil {
				msg := c.Message
				if c.Task != "" {
					msg = c.Task + ": " + msg
				}
				line = (&schema.Diagnostic{Pos: schema.Pos{File: c.File, Line: c.Line, Col: c.Col}, Msg: msg}).FormatLines(lines)
			}
		}
		fmt.Fprintf(w, "bmc: %s: %s", c.Severity, line)
	}
}

// checkText is a check in one line: where in the spec, when known, the
// task, and the message.
func checkText(c planner.Check) string {
	s := c.Message
	if c.Task != "" {
		s = c.Task + ": " + s
	}
	if p := c.Pos(); p != "" {
		s = p + ": " + s
	}
	return s
}

func parsePackages(specs []string) ([]local.Package, error) {
	var out []local.Package
	for _, s := range specs {
		nv, dir, ok := strings.Cut(s, "=")
		if !ok || nv == "" || dir == "" {
			return nil, usagef("--package %q: expected name[@version]=dir", s)
		}
		name, version, _ := strings.Cut(nv, "@")
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return nil, usagef("--package %s: %s is not a directory", nv, dir)
		}
		out = append(out, local.Package{Name: name, Version: version, Dir: abs})
	}
	return out, nil
}

// eventsFile is the --events stream: nil w when not asked for.
type eventsFile struct {
	w     io.Writer
	close func()
}

// openEvents opens the --events stream. It is opened before anything of
// the run is made, so that a path that cannot be written leaves no run
// behind.
func openEvents(cmd *cobra.Command, path string) (*eventsFile, error) {
	switch path {
	case "":
		return &eventsFile{close: func() {}}, nil
	case "-":
		return &eventsFile{w: cmd.OutOrStdout(), close: func() {}}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, usagef("--events: %v", err)
	}
	return &eventsFile{w: f, close: func() { f.Close() }}, nil
}

// report prints the run's end: counts, failures with their reasons and
// where their logs are, the finalize step and the callback. Its status is
// the one bmc runs shows. dir is the run's directory when the tasks' logs
// are in it (the local backend).
func report(w io.Writer, cmd *cobra.Command, id, dir string, plan *planner.Plan, o *executor.Outcome, res *executor.RunResult) {
	c := o.Counts
	// The time the run took, its finalize step and callback included: a
	// callback retried for a minute is part of it.
	fmt.Fprintf(w, "bmc: %s %s in %s: %d succeeded, %d failed, %d skipped, %d cancelled of %d%s\n",
		id, res.Final(), time.Since(o.Started).Round(time.Millisecond), c.Succeeded, c.Failed, c.Skipped, c.Cancelled, c.Total, failedBeyondTasks(c, res))
	const most = 20
	shown := 0
	for i, t := range o.Tasks {
		if t.State != executor.Failed {
			continue
		}
		if shown++; shown > most {
			continue
		}
		task := plan.Program.Tasks[i].ID
		reason := terminalSafe(t.Reason)
		if t.Attempts == 0 || t.ExitCode == nil { // no process ran: no logs to point at
			fmt.Fprintf(w, "  failed  %s: %s\n", task, reason)
			continue
		}
		fmt.Fprintf(w, "  failed  %s: %s (after %d attempt%s; %s)\n", task, reason, t.Attempts, plural(t.Attempts), logsHint(cmd, id, dir, task))
	}
	if shown > most {
		fmt.Fprintf(w, "  … and %d more failed: %s lists them all\n", shown-most, hint(cmd, "status", id, "--state", "failed"))
	}
	skippedWhy(w, cmd, id, o)
	if f := res.Finalize; f != nil {
		fmt.Fprintf(w, "  finalize %s", f.State)
		if f.Reason != "" {
			fmt.Fprintf(w, ": %s", terminalSafe(f.Reason))
		}
		fmt.Fprintln(w)
	}
	if cb := res.Callback; cb != nil {
		if cb.Delivered {
			fmt.Fprintf(w, "  callback delivered (HTTP %d, %d attempt%s)\n", cb.Status, cb.Attempts, plural(cb.Attempts))
		} else {
			fmt.Fprintf(w, "  callback FAILED: %s\n", terminalSafe(cb.Err))
		}
	}
}

// skippedWhy says why the run's tasks were skipped, a line per reason,
// the most common first: in a sweep the display leaves skipped tasks out,
// and thousands skipped after one failure would go unexplained.
func skippedWhy(w io.Writer, cmd *cobra.Command, id string, o *executor.Outcome) {
	if o.Counts.Skipped == 0 {
		return
	}
	count := map[string]int{}
	var order []string
	for _, t := range o.Tasks {
		if t.State != executor.Skipped {
			continue
		}
		why := strings.TrimPrefix(t.Reason, "skipped: ")
		if count[why] == 0 {
			order = append(order, why)
		}
		count[why]++
	}
	slices.SortStableFunc(order, func(a, b string) int { return count[b] - count[a] })
	const most = 3
	for i, why := range order {
		if i == most {
			n := 0
			for _, why := range order[most:] {
				n += count[why]
			}
			others := len(order) - most
			fmt.Fprintf(w, "  … and %d more skipped, for %d other reason%s: %s lists them all\n", n, others, plural(others), hint(cmd, "status", id, "--state", "skipped"))
			break
		}
		fmt.Fprintf(w, "  skipped %d task%s: %s\n", count[why], plural(count[why]), terminalSafe(why))
	}
}

// logsHint points at a failed task's log: stderr, or stdout when only it
// has something; when the last attempt wrote nothing (a command that was
// not found, say), it says so. Without the logs at hand (dir ""), stderr.
func logsHint(cmd *cobra.Command, id, dir, task string) string {
	if dir == "" {
		return hint(cmd, "logs", id, task, "--stderr")
	}
	size := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(local.TaskDir(dir, task), name))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	switch {
	case size("stderr.txt") > 0:
		return hint(cmd, "logs", id, task, "--stderr")
	case size("stdout.txt") > 0:
		return hint(cmd, "logs", id, task)
	}
	return "it wrote nothing"
}

// terminalSafe escapes the control characters in text shown on a
// terminal, such as a reason quoting a file name or a server's words: an
// escape sequence there could rewrite what the screen shows.
func terminalSafe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// failedBeyondTasks says why a run failed whose tasks all succeeded, as
// "; every task succeeded, but the callback failed": its counts alone
// would read as a success. It is empty for any other run.
func failedBeyondTasks(c executor.Counts, res *executor.RunResult) string {
	if res.Final() != executor.CallbackFailed || c.Succeeded != c.Total {
		return ""
	}
	var what []string
	if f := res.Finalize; f != nil && f.State != executor.Succeeded {
		if f.State == executor.Canceled {
			what = append(what, "the finalize step was cancelled")
		} else {
			what = append(what, "the finalize step failed")
		}
	}
	if res.CallbackErr != nil {
		what = append(what, "the callback failed")
	}
	if res.WriteErr != nil {
		what = append(what, "the run's record could not be written")
	}
	if len(what) == 0 {
		return ""
	}
	return "; every task succeeded, but " + strings.Join(what, " and ")
}

// messageHandler writes log records to stderr the way bmc writes its
// other messages, "bmc: <message>", rather than as slog's key=value
// lines: what the run logs (a callback being retried, say) is for people
// to read. Attributes, if any, follow the message as key=value.
type messageHandler struct {
	w     io.Writer
	mu    *sync.Mutex
	attrs string // those given to WithAttrs, formatted
	group string // the key prefix WithGroup gave, as "group."
}

func newMessageHandler(w io.Writer) *messageHandler {
	return &messageHandler{w: w, mu: &sync.Mutex{}}
}

func (h *messageHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn
}

func (h *messageHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("bmc: ")
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		h.appendAttr(&b, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *messageHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		h.appendAttr(&b, a)
	}
	c.attrs = b.String()
	return &c
}

func (h *messageHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group += name + "."
	return &c
}

func (h *messageHandler) appendAttr(b *strings.Builder, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\n\"=") {
		v = strconv.Quote(v)
	}
	fmt.Fprintf(b, " %s%s=%s", h.group, a.Key, v)
}

// checkProgress checks a --progress mode.
func checkProgress(mode string) error {
	switch mode {
	case "auto", "bars", "plain", "none":
		return nil
	}
	return usagef("unknown --progress %q: expected auto, bars, plain or none", mode)
}

// localSlots is the local backend's default slot count: the CPU count,
// or the most slots one task takes if that is more, so that a spec
// written for a pool of wide nodes runs here as it is, one wide task at a
// time. An explicit --slots is left as given.
func localSlots(cpus int, prog *compiler.Program) int {
	for _, t := range prog.Tasks {
		cpus = max(cpus, t.Slots)
	}
	return cpus
}

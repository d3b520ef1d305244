package azurebatch

// The backend: a run becomes a Batch job on the spec's pool, its tasks are
// added in bulk with their dependencies, and Batch schedules, retries and
// blocks them. The executor follows the run through Poll, which costs a
// job read and a task-count read per poll, plus a filtered, $select'ed
// listing of only the tasks whose state changed since the last one.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/planner"
)

// Name is the backend's name, as --backend and run.json spell it.
const Name = "azurebatch"

// DefaultStaging is where bmc puts what the nodes need from the client.
const DefaultStaging = "az://bmc/"

// BackendOptions configure a Backend.
type BackendOptions struct {
	Client  *Client
	Storage *Storage
	// Staging is the az:// prefix for staged files and run records.
	Staging blobstage.Location
	// Logs is an az:// prefix every task's stdout and stderr go to.
	Logs string
	// AccountID is the ARM id of the Batch account (pool packages).
	AccountID string
	// Parallel is how many add-collection requests are in flight; at
	// least 4, default 8.
	Parallel int
	// DependencyChars is the dependency list limit; zero for Batch's.
	DependencyChars int
	// ListOverlap is how far before the newest state transition seen the
	// next listing starts, so that transitions stamped at the same time
	// but listed later are not missed; zero means 1s, negative none.
	// Tasks are deduplicated, so it costs only re-reads.
	ListOverlap time.Duration
	// Node is how the finalize step runs on the pool; nil runs it where
	// bmc runs.
	Node *NodeOptions
	Log  *slog.Logger
	// OnSubmitted, if set, is told what adding the tasks cost.
	OnSubmitted func(SubmitStats)
	// PoolIdentityFlag says the pool's identity came from --pool-identity,
	// not from the spec: messages say which.
	PoolIdentityFlag bool
}

// NodeOptions say how the job manager task gets bmc and its secret.
type NodeOptions struct {
	// Binary is a linux/amd64 bmc executable to stage, or:
	Binary string
	// Package is an application package holding bmc at its root.
	Package *compiler.Package
	// SecretEnv and Secret sign the callback from the node; with Secret
	// empty the job manager task is not given the variable at all.
	SecretEnv, Secret string
	// URLEnv and URL are the callback's URL, when the spec gives it
	// through a variable (urlEnv).
	URLEnv, URL string
	// PollInterval is how often the node polls; zero means 5s.
	PollInterval time.Duration
}

// SubmitStats are the costs of one submission.
type SubmitStats struct {
	Tasks, Barriers int
	AddTasks        AddTasksStats
	Elapsed         time.Duration
	// Failure is set when not every task could be added.
	Failure *SubmitFailure
}

// SubmittedFailed is the bmc.submitted mark of a job whose tasks bmc
// could not all add: the run is stopped, and reported failed.
const SubmittedFailed = "failed"

// MetaSubmitError is the job metadata saying why the tasks could not all
// be added, for the finalize step on the pool to report.
const MetaSubmitError = "bmc.submitError"

// maxSubmitCause bounds the length of MetaSubmitError.
const maxSubmitCause = 500

// SubmitFailure is why a run's tasks could not all be added to its job.
// The job is then stopped, and the run is reported failed rather than
// cancelled: the tasks the job lacks failed as not submitted, and those
// stopped with it say why they were cancelled.
type SubmitFailure struct {
	// Cause is why, in one line, as the job's metadata keeps it.
	Cause string
	// Missing are the plan's tasks the job does not hold.
	Missing []string
	// Err is the error adding the tasks gave; only the submitting client
	// has it.
	Err error
	// Added says every task was added, and what failed was marking the
	// job submitted (without the mark the job would never end by
	// itself); only the submitting client knows it.
	Added bool
}

// RunStop is the failure as the executor takes it: the tasks the job
// lacks failed as not submitted, with no exit code, and the tasks the
// stopped job cancels say why.
func (f *SubmitFailure) RunStop() *executor.RunStop {
	rs := &executor.RunStop{
		Why:    fmt.Sprintf(": the run stopped because %d of its tasks could not be submitted", len(f.Missing)),
		Failed: make(map[string]string, len(f.Missing)),
	}
	switch {
	case f.Added:
		rs.Why = ": the run stopped because its job could not be marked submitted"
	case len(f.Missing) == 0:
		rs.Why = ": the run stopped because its tasks could not all be submitted"
	}
	for _, id := range f.Missing {
		rs.Failed[id] = "not submitted: " + f.Cause
	}
	return rs
}

// Backend runs plans as Batch jobs. It is used from one goroutine.
type Backend struct {
	c     *Client
	opt   BackendOptions
	log   *slog.Logger
	plan  *planner.Plan
	run   *executor.RunInfo
	jobID string
	// watcher: this backend follows a job another process submitted
	// (bmc finalize --watch on the job manager task).
	watcher bool
	// attached: this backend takes up a run an earlier bmc submitted
	// and no longer follows (bmc resume).
	attached bool
	hasJM    bool
	created  bool   // the job exists
	self     string // the watcher's own task id

	idx        map[string]int
	seen       map[string]seenTask
	mark       time.Time // the newest state transition seen
	completed  int       // tasks known completed, helpers included
	lastCount  BatchTaskCounts
	lagging    int // polls in a row that found fewer completed tasks than counted
	endedPolls int // polls since the job was seen ended
	polls      int
	cancelled  bool // this process cancelled the run
	// jmStopped: the run was stopped before its job manager task started,
	// so the job was ended and the finalize step is the client's to run.
	jmStopped bool
	external  bool // someone else cancelled it, or the submission failed
	failure   *SubmitFailure
	poolOK    bool // EnsurePool found the pool fit for the run
	// terminated are tasks ended by a termination, not a timeout.
	terminated map[string]bool
	// stoppedAt is when the job began to stop, on Batch's clock, as the
	// first read of it once the run was stopped told (endedByStop).
	stoppedAt time.Time
	// barrierFails are barrier tasks seen failed, not yet acted on;
	// blocked are the tasks they block, not yet reported; stoppedFor is
	// the stop of a job an earlier bmc stopped for one (barrier.go).
	barrierFails []barrierFailure
	blocked      map[string]string
	stoppedFor   *executor.RunStop
	// listedAt is the poll that last listed the job's tasks.
	listedAt int
	// lastStarts are the starts of the last attempts seen of tasks Batch
	// retried (LastStart).
	lastStarts map[string]time.Time

	statsMu sync.Mutex
	stats   PollStats
}

type seenTask struct {
	state   BatchTaskState
	retries int32
}

// reported is how many of the task's attempts the updates told of as it
// was last listed (none for a task never listed).
func (s seenTask) reported() int {
	switch s.state {
	case TaskStateRunning, TaskStatePreparing, TaskStateCompleted:
		return int(s.retries) + 1
	}
	return int(s.retries) // waiting for its retry: the attempt that failed
}

// unseenAttempts are the updates for the attempts of a task that Batch
// began and ended between two listings, before the attempt u tells of
// (reported were told before): each began and failed. Batch keeps the
// times of its last attempt only, so they take the earliest time it
// gives, u's start: the task's starts are then Batch's, not this
// client's clock at the poll, and come in order (first start, last
// start, end). None when Batch gives no start.
func unseenAttempts(u executor.TaskUpdate, reported int) []executor.TaskUpdate {
	if u.Start.IsZero() || u.Attempts-1 <= reported {
		return nil
	}
	out := make([]executor.TaskUpdate, 0, u.Attempts-1-reported)
	for a := reported + 1; a < u.Attempts; a++ {
		out = append(out, executor.TaskUpdate{ID: u.ID, State: executor.Pending, Attempts: a, Start: u.Start, End: u.Start})
	}
	return out
}

// PollStats count what following a run cost.
type PollStats struct {
	Polls, JobReads, CountReads, ListRequests, Listed int
}

var _ executor.NativeBackend = (*Backend)(nil)

// NewBackend returns a backend that submits runs.
func NewBackend(opt BackendOptions) *Backend {
	return newBackend(opt)
}

// NewWatcher returns a backend that follows a job submitted by another
// bmc: Submit waits until the submitter has added every task. self is the
// watcher's own task id, which it leaves alone when it stops tasks.
func NewWatcher(opt BackendOptions, self string) *Backend {
	b := newBackend(opt)
	b.watcher, b.hasJM, b.self = true, true, self
	return b
}

func newBackend(opt BackendOptions) *Backend {
	switch {
	case opt.Parallel == 0:
		opt.Parallel = 8
	case opt.Parallel < 4:
		opt.Parallel = 4
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{c: opt.Client, opt: opt, log: log, seen: map[string]seenTask{}}
}

// LastStart is when the last attempt seen of a task that Batch retried
// started, as Batch timed it; zero for a task not retried, whose only
// attempt's start is its outcome's Start.
func (b *Backend) LastStart(id string) time.Time { return b.lastStarts[id] }

// Client is the Batch client the backend uses.
func (b *Backend) Client() *Client { return b.c }

// Created reports whether the run's job was created: until it is, nothing
// of the run is on Batch.
func (b *Backend) Created() bool { return b.created }

// FinalizeStopped reports whether the run was stopped (cancelled, or its
// submission given up) before the job manager task started: the job was
// then ended, and the finalize step will not run on the pool.
func (b *Backend) FinalizeStopped() bool { return b.jmStopped }

// SubmitFailure says why the run's tasks could not all be added, once
// Submit (or, for a watcher, the submitter) gave up; nil otherwise.
func (b *Backend) SubmitFailure() *SubmitFailure { return b.failure }

// Stats are what following the run has cost so far.
func (b *Backend) Stats() PollStats {
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	return b.stats
}

// Capabilities: Batch resolves dependencies, retries and timeouts; the
// pool's nodes bound the slots.
func (b *Backend) Capabilities() planner.Capabilities {
	return Capabilities(nil)
}

// Capabilities are the backend's, for a program's pool.
func Capabilities(p *compiler.Pool) planner.Capabilities {
	c := planner.Capabilities{Name: Name, NativeDependencies: true, Containers: true, Packages: true}
	if p != nil && p.SlotsPerNode > 0 {
		c.MaxTaskSlots = p.SlotsPerNode
		if p.Autoscale == nil {
			c.Slots = (p.Dedicated + p.Spot) * p.SlotsPerNode
		}
	}
	return c
}

// Follow sets the backend up to poll a run submitted before, without
// submitting anything (bmc status).
func (b *Backend) Follow(plan *planner.Plan, run *executor.RunInfo) {
	b.plan, b.run, b.jobID, b.created = plan, run, run.ID, true
	b.idx = make(map[string]int, len(plan.Program.Tasks))
	for i, t := range plan.Program.Tasks {
		b.idx[t.ID] = i
	}
}

// Look reads once how the tasks of a run submitted before stand, for bmc
// status of a run no bmc follows: as Batch has them, with the tasks that
// wait behind a failure, or behind a failed barrier, skipped, naming the
// root cause, as the bmc following the run reports them. A run that was
// cancelled, or stopped, reads as that bmc ends it: what has not started,
// or waits for its retry, will not run, and is cancelled. The job is left
// as it is.
func Look(ctx context.Context, c *Client, plan *planner.Plan, run *executor.RunInfo) (*executor.Tracker, error) {
	b := newBackend(BackendOptions{Client: c})
	b.Follow(plan, run)
	res, err := b.Poll(ctx)
	if err != nil {
		return nil, err
	}
	tr := executor.NewTracker(plan)
	tr.Look(res)
	return tr, nil
}

// ---- submission ----

// Submit creates the run's job and adds its tasks: it makes sure of the
// pool (unless EnsurePool already did), stages local inputs (and, for the
// finalize step on the pool, the run record and bmc), creates the job,
// adds every task, and marks the job submitted. A watcher waits for that
// mark instead.
//
// When Batch does not take every task, Submit stops the job, marks it
// failed and returns nil: the tasks that were added are the run's, and
// polls report the run's end; SubmitFailure says why.
func (b *Backend) Submit(ctx context.Context, plan *planner.Plan, run *executor.RunInfo) error {
	b.Follow(plan, run)
	if b.watcher {
		return b.waitSubmitted(ctx)
	}
	if b.attached {
		return b.attach(ctx)
	}
	b.created = false
	start := time.Now()
	if !b.poolOK {
		if err := b.EnsurePool(ctx, plan.Program); err != nil {
			return err
		}
	}
	staged, dirs, err := b.stageInputs(ctx, plan, run)
	if err != nil {
		return err
	}
	opt := MapOptions{Staged: staged, Dirs: dirs, Logs: b.opt.Logs, AccountID: b.opt.AccountID, SpecHash: SpecHash(plan.Program), DependencyChars: b.opt.DependencyChars}
	if b.opt.Node != nil {
		jm, err := b.jobManager(ctx, plan, run, opt)
		if err != nil {
			return err
		}
		opt.JobManager = jm
		b.hasJM = true
	}
	m, err := Map(plan, run, b.opt.Storage, opt)
	if err != nil {
		return err
	}
	m.Job.Metadata = append(m.Job.Metadata, BatchMetadataItem{Name: MetaStaging, Value: b.opt.Staging.String()})
	for _, c := range m.OutputContainers {
		if err := b.opt.Storage.EnsureContainer(ctx, c); err != nil {
			return err
		}
	}
	if err := b.c.CreateJob(ctx, m.Job); err != nil {
		return fmt.Errorf("create the job: %w", err)
	}
	b.created = true
	res, err := b.c.AddTasks(ctx, b.jobID, m.Tasks, b.opt.Parallel)
	added := err == nil
	if err != nil {
		err = fmt.Errorf("add the tasks: %w", err)
	} else if err = b.markSubmitted(ctx, m.Job.Metadata, SubmittedAll); err != nil {
		err = fmt.Errorf("mark the job submitted: %w", err)
	}
	bctx, stop := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer stop()
	if err != nil && ctx.Err() != nil {
		// Cancelled: what was added may run; the watcher on the pool
		// must learn that no more is coming.
		if perr := b.markSubmitted(bctx, m.Job.Metadata, SubmittedCancelled); perr != nil {
			b.log.Warn("marking the job cancelled failed", "job", b.jobID, "err", perr)
		}
		return err
	}
	if err != nil {
		b.failSubmission(bctx, m.Job.Metadata, err, added)
	}
	if b.opt.OnSubmitted != nil {
		b.opt.OnSubmitted(SubmitStats{Tasks: len(m.Tasks) - m.Barriers, Barriers: m.Barriers, AddTasks: res.Stats, Elapsed: time.Since(start), Failure: b.failure})
	}
	return nil
}

// failSubmission ends a run whose tasks could not all be added: the job
// is marked failed, with the cause, and stopped. With a job manager task
// the job is disabled, as for a cancel, so that the finalize step on the
// pool still runs (terminating the job would kill it) and, reading the
// mark, reports the run failed.
func (b *Backend) failSubmission(ctx context.Context, meta []BatchMetadataItem, err error, added bool) {
	f := &SubmitFailure{Cause: submitCause(err), Err: err, Added: added}
	meta = append(slices.Clone(meta), BatchMetadataItem{Name: MetaSubmitError, Value: f.Cause})
	if merr := b.markSubmitted(ctx, meta, SubmittedFailed); merr != nil {
		b.log.Warn("marking the job's submission failed did not work", "job", b.jobID, "err", merr)
	}
	if serr := b.stop(ctx, "bmc: the tasks could not all be added"); serr != nil {
		b.log.Warn("stopping the job failed", "job", b.jobID, "err", serr)
	}
	b.noteFailure(ctx, f)
}

// learnFailure is how a watcher learns that the submitter gave up adding
// the tasks, from the job's metadata.
func (b *Backend) learnFailure(ctx context.Context, j *BatchJob) {
	cause := metaValue(j.Metadata, MetaSubmitError)
	if cause == "" {
		cause = "bmc could not add it to the job"
	}
	b.noteFailure(ctx, &SubmitFailure{Cause: cause})
}

// noteFailure records a failed submission, with the plan's tasks the job
// lacks: polls then report the run stopped, and failed.
func (b *Backend) noteFailure(ctx context.Context, f *SubmitFailure) {
	b.failure, b.external = f, true
	have := map[string]bool{}
	for t, err := range b.c.ListTasks(ctx, b.jobID, ListOptions{Select: "id"}) {
		if err != nil {
			b.log.Warn("listing the tasks the job holds failed", "job", b.jobID, "err", err)
			return
		}
		have[strings.ToLower(t.ID)] = true
	}
	for _, t := range b.plan.Program.Tasks {
		if !have[strings.ToLower(t.ID)] {
			f.Missing = append(f.Missing, t.ID)
		}
	}
}

// submitCause is why tasks could not be added, in one line: the first
// refused task's error, or the call's.
func submitCause(err error) string {
	var s string
	var ae *AddTasksError
	if errors.As(err, &ae) && len(ae.Failures) > 0 && ae.Failures[0].Err != nil {
		e := ae.Failures[0].Err
		s = e.Code
		if m := firstLine(e.Message); m != "" {
			s = strings.TrimPrefix(s+": "+m, ": ")
		}
	} else {
		s = strings.TrimPrefix(firstLine(err.Error()), "azurebatch: ")
	}
	return boundCause(s)
}

// markSubmitted sets onAllTasksComplete to terminatejob (a job with no
// tasks counts as complete, hence not before) and the submitted mark, in
// one update.
func (b *Backend) markSubmitted(ctx context.Context, meta []BatchMetadataItem, value string) error {
	meta = append(slices.Clone(meta), BatchMetadataItem{Name: MetaSubmitted, Value: value})
	u := BatchJobUpdateOptions{Metadata: meta}
	if value == SubmittedAll {
		u.OnAllTasksComplete = AllTasksCompleteTerminateJob
	}
	err := b.c.PatchJob(ctx, b.jobID, u)
	if err == nil {
		return nil
	}
	// An attempt whose answer was lost may have gone through, and the
	// job, its tasks all done, ended at once: a retry then finds it
	// completed. The job says whether the update was made.
	if j, gerr := b.c.GetJob(ctx, b.jobID); gerr == nil && metaValue(j.Metadata, MetaSubmitted) == value {
		return nil
	}
	return err
}

// PoolMismatchError says an existing pool is not the pool the spec asks for.
type PoolMismatchError struct {
	Pool, Field, Have, Want string
}

func (e *PoolMismatchError) Error() string {
	return fmt.Sprintf("pool %s exists with %s %s, but the spec asks for %s: use another pool id, or change the spec to match", e.Pool, e.Field, e.Have, e.Want)
}

// EnsurePool reuses the spec's pool when it exists and matches (vmSize,
// taskSlotsPerNode, the pool identity when the spec names one, and a
// container configuration exactly when tasks run in containers), and
// creates it from the spec's pool block otherwise.
func (b *Backend) EnsurePool(ctx context.Context, prog *compiler.Program) error {
	if prog.Pool == nil || prog.Pool.ID == "" {
		return errors.New("the azurebatch backend needs a pool: give the spec a pool block, or --pool")
	}
	id := prog.Pool.ID
	p, err := b.c.GetPool(ctx, id)
	switch {
	case err == nil:
		err = checkPool(p, prog)
		b.poolOK = err == nil
		return err
	case !IsNotFound(err):
		return fmt.Errorf("look up pool %s: %w", id, err)
	}
	if len(prog.Packages) > 0 && b.opt.AccountID == "" {
		// A pool's package reference is the application's full ARM id,
		// which needs the account's.
		return fmt.Errorf("pool %s does not exist, and bmc cannot create it with the spec's packages: a pool names its application packages by ARM id, so set AZURE_BATCH_ACCOUNT_ID to the Batch account's resource id", id)
	}
	want, err := PoolOptions(prog, b.opt.AccountID)
	if err != nil {
		return fmt.Errorf("pool %s does not exist, and bmc cannot create it: %w", id, err)
	}
	if prog.Pool.Identity != "" {
		from := "the spec gives it a managed identity (pool.identity)"
		if b.opt.PoolIdentityFlag {
			from = "--pool-identity names a managed identity for it"
		}
		return fmt.Errorf("pool %s does not exist, and %s, which Batch sets only through Azure Resource Manager: create the pool with that identity first (az batch pool create or a template), then run again", want.ID, from)
	}
	b.log.Info("creating pool", "pool", want.ID, "vmSize", want.VMSize)
	if err := b.c.CreatePool(ctx, want); err != nil {
		return fmt.Errorf("create pool %s: %w", want.ID, err)
	}
	b.poolOK = true
	return nil
}

// checkPool checks an existing pool against what the spec asks of it.
func checkPool(p *BatchPool, prog *compiler.Program) error {
	spec := prog.Pool
	if p.State == PoolStateDeleting {
		return fmt.Errorf("pool %s is being deleted: wait for it to go, or use another pool id", p.ID)
	}
	if spec.VMSize != "" && !strings.EqualFold(p.VMSize, spec.VMSize) {
		return &PoolMismatchError{Pool: p.ID, Field: "vmSize", Have: p.VMSize, Want: spec.VMSize}
	}
	// Without a vmSize the spec names a pool rather than describing one:
	// its slots per node are then the compiler's default, not a wish.
	have := max(p.TaskSlotsPerNode, 1)
	if spec.VMSize != "" && spec.SlotsPerNode > 0 && int32(spec.SlotsPerNode) != have {
		return &PoolMismatchError{Pool: p.ID, Field: "taskSlotsPerNode", Have: strconv.Itoa(int(have)), Want: strconv.Itoa(spec.SlotsPerNode)}
	}
	if spec.Identity != "" {
		// The identity reaches storage for the tasks and Batch for the
		// finalize step on the pool: a pool without it would fail both,
		// the latter by ending the job without a callback.
		ok, have := false, "none"
		if p.Identity != nil && len(p.Identity.UserAssignedIdentities) > 0 {
			have = "other identities"
			for _, id := range p.Identity.UserAssignedIdentities {
				ok = ok || strings.EqualFold(id.ResourceID, spec.Identity)
			}
		}
		if !ok {
			return &PoolMismatchError{Pool: p.ID, Field: "identity", Have: have, Want: spec.Identity}
		}
	}
	// Batch fails every task whose containerSettings do not go with its
	// pool's container configuration, on the node: a task in a container
	// on a pool without one, and any task without on a pool with one.
	var cc *BatchContainerConfiguration
	if vm := p.VirtualMachineConfiguration; vm != nil {
		cc = vm.ContainerConfiguration
	}
	switch boxed := UsesContainers(prog); {
	case boxed && cc == nil:
		var ids []string
		for _, t := range prog.Tasks {
			if t.Container != nil {
				ids = append(ids, t.ID)
			}
		}
		return &PoolMismatchError{Pool: p.ID, Field: "containerConfiguration", Have: "none", Want: "one (tasks " + idList(ids, 3) + " run in containers)"}
	case !boxed && cc != nil:
		return &PoolMismatchError{Pool: p.ID, Field: "containerConfiguration", Have: string(cc.Type),
			Want: "none (no task has a container, and Batch runs every task of such a pool in one)"}
	}
	return nil
}

// stageInputs uploads the spec-relative files the tasks read, and the
// lists of their directories' empty directories.
func (b *Backend) stageInputs(ctx context.Context, plan *planner.Plan, run *executor.RunInfo) (map[string][]StagedFile, map[string]StagedDirs, error) {
	out := map[string][]StagedFile{}
	dirs := map[string]StagedDirs{}
	steps := plan.Program.Tasks
	if fin := &plan.Program.Finalize; b.opt.Node != nil && len(fin.Inputs) > 0 {
		// The finalize step on the pool gets its spec-relative inputs
		// as a task does; on the client it reads them where they are.
		steps = append(slices.Clip(steps), compiler.Task{ID: FinalizeTaskID, Inputs: fin.Inputs})
	}
	for _, t := range steps {
		for _, in := range t.Inputs {
			if in.Kind != compiler.InputFile {
				continue
			}
			if _, ok := out[in.From]; ok {
				continue
			}
			files, d, err := b.stageLocal(ctx, run.SpecDir, in.From)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: input %s: %w", stepName(t.ID), in.From, err)
			}
			out[in.From] = files
			if len(d.Rels) > 0 {
				dirs[in.From] = d
			}
		}
	}
	return out, dirs, nil
}

// stepName names a task, or the finalize step, in messages.
func stepName(id string) string {
	if id == FinalizeTaskID {
		return "the finalize step"
	}
	return "task " + id
}

// stageLocal uploads a local input: a file, or the files of a directory
// as TreeLayout places them, with the list of the directory's empty
// directories (dirList), if it has any, named by its content; Map decides
// whether a task reads that list or names them itself.
func (b *Backend) stageLocal(ctx context.Context, specDir, from string) ([]StagedFile, StagedDirs, error) {
	src := from
	if !filepath.IsAbs(src) {
		src = filepath.Join(specDir, src)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, StagedDirs{}, err
	}
	prefix := b.opt.Staging
	if fi.Mode().IsRegular() {
		loc, err := b.opt.Storage.StageFile(ctx, prefix, src)
		if err != nil {
			return nil, StagedDirs{}, err
		}
		return []StagedFile{{Loc: loc, Mode: fi.Mode()}}, StagedDirs{}, nil
	}
	if !fi.IsDir() {
		return nil, StagedDirs{}, fmt.Errorf("%s is not a regular file or directory", src)
	}
	// A directory is staged as a tree of its own (TreeLayout), named by
	// its files' paths, modes and contents, so that one resource file per
	// file mode brings it whole, however many files it holds. An input
	// that is itself a link to a folder brings that folder, as on the
	// local backend: the walk below follows no link, its root's included.
	if real, err := filepath.EvalSymlinks(src); err == nil {
		src = real
	}
	var (
		out, single []StagedFile
		empty       emptyDirs
	)
	local := map[string]string{} // Rel -> local path
	sums := map[string]string{}  // Rel -> content hash
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		empty.add(rel, d.IsDir())
		if !d.Type().IsRegular() {
			if d.IsDir() {
				return nil
			}
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				return fmt.Errorf("%s is not a regular file", p)
			}
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sum, err := hashFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(rel, `\`) {
			return fmt.Errorf("%s: a file name holding a backslash cannot be brought to a Batch node, which reads it as a directory separator: rename it", p)
		}
		local[rel], sums[rel] = p, sum
		f := StagedFile{Rel: rel, Loc: ContentLocation(prefix, sum), Mode: st.Mode()}
		if !treeName(rel) {
			// A path a blob name cannot carry as it is comes on its own,
			// named by its content, with its path in the resource file.
			single = append(single, f)
			return nil
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, StagedDirs{}, err
	}
	out = TreeLayout(prefix, out)
	for _, f := range out {
		if err := b.opt.Storage.StageFileAt(ctx, f.Loc, local[f.Rel], sums[f.Rel]); err != nil {
			return nil, StagedDirs{}, err
		}
	}
	for _, f := range single {
		if err := b.opt.Storage.StageFileAt(ctx, f.Loc, local[f.Rel], sums[f.Rel]); err != nil {
			return nil, StagedDirs{}, err
		}
	}
	var dirs StagedDirs
	if dirs.Rels = empty.rels(); len(dirs.Rels) > 0 {
		list := dirList(dirs.Rels)
		sum := sha256.Sum256(list)
		dirs.List = ContentLocation(prefix, hex.EncodeToString(sum[:]))
		if err := b.opt.Storage.StageData(ctx, dirs.List, list); err != nil {
			return nil, StagedDirs{}, fmt.Errorf("stage the list of its empty directories: %w", err)
		}
	}
	return append(out, single...), dirs, nil
}

// treeName reports whether a file's path below a staged directory can be
// part of a blob name as it is, so that a container download lands it at
// that path: blob storage reads "\" as "/", advises against segments
// ending in ".", and bounds names to 1,024 characters and 254 segments.
func treeName(rel string) bool {
	if strings.Contains(rel, `\`) || len(rel) > 768 || strings.Count(rel, "/") > 200 {
		return false
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if strings.HasSuffix(seg, ".") {
			return false
		}
	}
	return true
}

// ---- following the run ----

// waitSubmitted waits until the submitter has marked the job.
func (b *Backend) waitSubmitted(ctx context.Context) error {
	interval := b.pollInterval()
	for {
		j, err := b.c.GetJob(ctx, b.jobID)
		if err != nil {
			b.log.Warn("reading the job failed", "job", b.jobID, "err", err)
		} else {
			switch metaValue(j.Metadata, MetaSubmitted) {
			case SubmittedAll:
				return nil
			case SubmittedCancelled:
				b.external = true
				return nil
			case SubmittedFailed:
				b.learnFailure(ctx, j)
				return nil
			}
			if j.State != JobStateActive {
				b.external = true
				return nil
			}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (b *Backend) pollInterval() time.Duration {
	if b.opt.Node != nil && b.opt.Node.PollInterval > 0 {
		return b.opt.Node.PollInterval
	}
	return 5 * time.Second
}

func metaValue(items []BatchMetadataItem, name string) string {
	for _, m := range items {
		if m.Name == name {
			return m.Value
		}
	}
	return ""
}

// listSelect are the task properties a poll reads.
const listSelect = "id,state,stateTransitionTime,executionInfo"

// listFilter are the tasks a poll lists, before the time filter: those
// running or over, and those waiting for a retry (active, with a retry
// count), which wait pending, as on the local backend.
const listFilter = "(state eq 'running' or state eq 'preparing' or state eq 'completed' or (state eq 'active' and executionInfo/retryCount gt 0))"

// quietPolls bounds the polls in a row that list nothing while tasks wait
// and others run. Batch's task counts do not move when a task's attempt
// fails and another task starts in its slot (one running task becomes
// active, one active task running), which is just when a retry waits.
const quietPolls = 5

// Poll reads the job and its task counts, and lists the tasks that changed
// state since the last listing, if the counts say any did.
func (b *Backend) Poll(ctx context.Context) (executor.PollResult, error) {
	var res executor.PollResult
	if !b.created {
		// Submission stopped before the job was made: nothing runs.
		res.Cancelled = true
		return res, nil
	}
	b.count(func(s *PollStats) { s.Polls++; s.JobReads++ })
	b.polls++
	j, err := b.c.GetJob(ctx, b.jobID)
	if err != nil {
		return res, err
	}
	b.count(func(s *PollStats) { s.CountReads++ })
	counts, err := b.c.GetTaskCounts(ctx, b.jobID)
	if err != nil {
		return res, err
	}
	tc := counts.TaskCounts
	ended := j.State == JobStateCompleted || j.State == JobStateTerminating
	b.noteCancel(j)
	if (b.cancelled || b.external) && b.stoppedAt.IsZero() {
		// The first read once stopped: later ones may tell a later
		// change (the job ending after it was disabled).
		b.stoppedAt = jobStopTime(j)
	}
	if b.failure == nil && !b.cancelled && metaValue(j.Metadata, MetaSubmitted) == SubmittedFailed {
		// Given up by the bmc that submitted it, which this one is not
		// (bmc status of a run no bmc follows): the run stopped, and
		// failed, as it did for that bmc.
		b.learnFailure(ctx, j)
	}
	changed := tc.Running != b.lastCount.Running || tc.Completed != b.lastCount.Completed || tc.Active != b.lastCount.Active
	swapped := tc.Running > 0 && tc.Active > 0 && b.polls-b.listedAt >= quietPolls
	if changed || swapped || b.polls == 1 || ended || b.lagging > 0 {
		b.listedAt = b.polls
		filter := listFilter
		if !b.mark.IsZero() {
			overlap := b.opt.ListOverlap
			if overlap == 0 {
				overlap = time.Second
			}
			filter += " and stateTransitionTime ge datetime'" + b.mark.Add(-max(overlap, 0)).UTC().Format(time.RFC3339Nano) + "'"
		}
		if b.lagging >= 3 {
			// The counts keep saying more tasks completed than the
			// listings showed: list every completed task once.
			b.log.Info("task counts and listings disagree; listing completed tasks", "job", b.jobID, "counted", tc.Completed, "seen", b.completed)
			filter = "state eq 'completed'"
			b.lagging = 0
		}
		if err := b.list(ctx, filter, &res); err != nil {
			return res, err
		}
		// A task terminated by someone: if the job was cancelled
		// meanwhile, so was the task.
		if !b.cancelled && !b.external && slices.ContainsFunc(res.Updates, func(u executor.TaskUpdate) bool { return u.State == executor.Failed && b.terminated[u.ID] }) {
			if j2, err := b.c.GetJob(ctx, b.jobID); err == nil {
				b.noteCancel(j2)
				if b.external {
					for i, u := range res.Updates {
						if u.State == executor.Failed && b.terminated[u.ID] {
							res.Updates[i].State, res.Updates[i].Reason, res.Updates[i].ExitCode, res.Updates[i].Outputs = executor.Canceled, "cancelled", nil, nil
						}
					}
				}
			}
		}
	}
	if err := b.checkBarriers(ctx, j); err != nil {
		// The barriers stay noted: the next poll tries again, and this
		// one's updates are not lost.
		b.log.Warn("stopping the run for a failed barrier task failed", "job", b.jobID, "err", err)
	}
	b.lastCount = tc
	if b.completed < int(tc.Completed) {
		b.lagging++
	} else {
		b.lagging = 0
	}
	res.Blocked = b.takeBlocked()
	switch {
	case b.failure != nil:
		res.Stopped = b.failure.RunStop()
	case b.stoppedFor != nil:
		res.Stopped = b.stoppedFor
	case b.external:
		res.Cancelled = true
	case ended && !b.cancelled:
		// The job ended: nothing that has not run will. If it ended
		// because its tasks did, give the listings a few polls to show
		// the last of them; otherwise (terminated, out of time) the run
		// is over now.
		reason := ""
		if j.ExecutionInfo != nil {
			reason = j.ExecutionInfo.TerminateReason
		}
		b.endedPolls++
		if reason != "AllTasksComplete" && reason != "JMComplete" || b.endedPolls > 5 {
			res.Cancelled = true
		}
	}
	return res, nil
}

// noteCancel notes a cancellation by someone else: the job disabled, or
// ended by a bmc's cancel (a run without a job manager task), or its
// submission given up. A job an earlier bmc stopped for a failed barrier
// (MetaBarrierFailed) counts too: the tasks its stop ended were
// cancelled, not failed; the poll then reports the run stopped.
func (b *Backend) noteCancel(j *BatchJob) {
	if b.cancelled {
		return
	}
	if j.State == JobStateDisabling || j.State == JobStateDisabled || metaValue(j.Metadata, MetaSubmitted) == SubmittedCancelled ||
		metaValue(j.Metadata, MetaBarrierFailed) != "" || j.ExecutionInfo != nil && j.ExecutionInfo.TerminateReason == cancelledReason {
		b.external = true
	}
}

func (b *Backend) count(f func(*PollStats)) {
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	f(&b.stats)
}

func (b *Backend) list(ctx context.Context, filter string, res *executor.PollResult) error {
	b.count(func(s *PollStats) { s.ListRequests++ })
	for t, err := range b.c.ListTasks(ctx, b.jobID, ListOptions{Filter: filter, Select: listSelect}) {
		if err != nil {
			return err
		}
		b.count(func(s *PollStats) { s.Listed++ })
		if t.StateTransitionTime.After(b.mark) {
			b.mark = t.StateTransitionTime
		}
		var retries int32
		if t.ExecutionInfo != nil {
			retries = t.ExecutionInfo.RetryCount
		}
		prev, ok := b.seen[t.ID]
		if ok && prev.state == t.State && prev.retries == retries {
			continue
		}
		b.seen[t.ID] = seenTask{state: t.State, retries: retries}
		if t.State == TaskStateCompleted && (!ok || prev.state != TaskStateCompleted) {
			b.completed++
		}
		if u, ok := b.update(ctx, &t); ok {
			res.Updates = append(res.Updates, unseenAttempts(u, prev.reported())...)
			res.Updates = append(res.Updates, u)
		} else if _, planned := b.idx[t.ID]; !planned && IsBarrier(t.ID) {
			b.noteBarrier(&t)
		}
	}
	return nil
}

// update is a listed task as the executor sees it.
func (b *Backend) update(ctx context.Context, t *BatchTask) (executor.TaskUpdate, bool) {
	i, ok := b.idx[t.ID]
	if !ok {
		return executor.TaskUpdate{}, false
	}
	pt := &b.plan.Program.Tasks[i]
	ei := t.ExecutionInfo
	if ei == nil {
		ei = &BatchTaskExecutionInfo{}
	}
	u := executor.TaskUpdate{ID: t.ID, Attempts: int(ei.RetryCount) + 1, Start: ei.StartTime, End: ei.EndTime}
	if ei.RetryCount > 0 && !ei.StartTime.IsZero() && (ei.LastRequeueTime.IsZero() || ei.LastRequeueTime.Before(ei.StartTime) || t.State != TaskStateActive) {
		if b.lastStarts == nil {
			b.lastStarts = map[string]time.Time{}
		}
		b.lastStarts[t.ID] = ei.StartTime
	}
	switch t.State {
	case TaskStateRunning, TaskStatePreparing:
		u.State = executor.Running
		return u, true
	case TaskStateActive:
		if ei.RetryCount == 0 {
			return u, false
		}
		// An attempt failed and Batch runs the task again: it waits,
		// pending. The attempt ended when the task became active, unless
		// what made it active since was a requeue (a node lost), after
		// which the attempt's end is not known.
		u.State, u.Attempts = executor.Pending, int(ei.RetryCount)
		u.End = t.StateTransitionTime
		if !ei.LastRequeueTime.IsZero() && !ei.LastRequeueTime.Before(ei.StartTime) {
			u.Start, u.End = time.Time{}, time.Time{}
		}
		return u, true
	case TaskStateCompleted:
	default:
		return u, false
	}
	if ei.ExitCode != nil {
		c := int(*ei.ExitCode)
		u.ExitCode = &c
	}
	fi := ei.FailureInfo
	inputMissing := false
	success := ei.Result == TaskResultSuccess || ei.Result == "" && fi == nil
	if success {
		u.State = executor.Succeeded
	} else {
		u.State = executor.Failed
		u.Reason = b.reason(pt, ei)
		if reason, ok := b.inputFailure(pt, fi); ok {
			u.Reason = reason
		}
		if reason, ok := b.inputNotFound(ctx, pt, t.ID, ei); ok {
			// As on the local backend: no process of the task's ran.
			u.Reason, u.ExitCode, inputMissing = reason, nil, true
		}
		if fi != nil && fi.Code == "TaskEnded" && (b.endedByStop(ei) || !b.timedOut(pt, ei)) {
			if b.cancelled || b.external {
				u.State, u.Reason, u.ExitCode = executor.Canceled, "cancelled", nil
			} else {
				if b.terminated == nil {
					b.terminated = map[string]bool{}
				}
				b.terminated[t.ID] = true
			}
		}
	}
	// Outputs: every attempt before the last failed (Batch retried it)
	// and uploaded its failure outputs; the last one its own.
	filled := executor.FillTask(pt, b.run, 1)
	uploadFailed := fi != nil && strings.HasPrefix(fi.Code, "FileUpload")
	for a := 1; a <= u.Attempts; a++ {
		ok := a == u.Attempts && success
		if a == u.Attempts && (u.State == executor.Canceled || uploadFailed) {
			break
		}
		if a == u.Attempts && (preProcessing(fi) || inputMissing) {
			break
		}
		var locs []string
		for _, o := range filled.Outputs {
			if o.When.Matches(ok) && !slices.Contains(locs, o.To) {
				locs = append(locs, o.To)
			}
		}
		u.Outputs = append(u.Outputs, locs...)
	}
	return u, true
}

// endedByStop reports whether a task Batch ended (TaskEnded) ended once
// the run was stopped (cancelled, by this bmc or another, or given up):
// the stop ended it, whatever its elapsed time says, even within a second
// of its timeout. A task that ended before the job began to stop, as the
// job tells it on Batch's clock, is judged by its time.
func (b *Backend) endedByStop(ei *BatchTaskExecutionInfo) bool {
	if !b.cancelled && !b.external {
		return false
	}
	return b.stoppedAt.IsZero() || ei.EndTime.IsZero() || !ei.EndTime.Before(b.stoppedAt)
}

// jobStopTime is when, on Batch's clock, the job began to stop (to be
// disabled or to end); zero when it is not stopping, or does not say.
func jobStopTime(j *BatchJob) time.Time {
	switch j.State {
	case JobStateDisabling, JobStateTerminating:
		return j.StateTransitionTime
	case JobStateDisabled, JobStateCompleted:
		if j.PreviousState == JobStateDisabling || j.PreviousState == JobStateTerminating {
			return j.PreviousStateTransitionTime
		}
	}
	return time.Time{}
}

// timedOut tells a wall-clock expiry from a termination.
func (b *Backend) timedOut(pt *compiler.Task, ei *BatchTaskExecutionInfo) bool {
	if pt.Timeout <= 0 || ei.StartTime.IsZero() || ei.EndTime.IsZero() {
		return false
	}
	return ei.EndTime.Sub(ei.StartTime) >= pt.Timeout.D()-time.Second
}

// inputNotFound is the reason of a task whose move step exited with
// InputNotFoundExit: a blob prefix input had no blobs, or one input would
// have replaced a file another put in place, as its stderr says; ok is
// false for a task whose own command exited with that code.
func (b *Backend) inputNotFound(ctx context.Context, pt *compiler.Task, id string, ei *BatchTaskExecutionInfo) (reason string, ok bool) {
	if ei.ExitCode == nil || *ei.ExitCode != InputNotFoundExit ||
		!slices.ContainsFunc(pt.Inputs, func(in compiler.Input) bool {
			return in.Kind == compiler.InputBlobPrefix || in.Kind == compiler.InputFile
		}) {
		return "", false
	}
	rc, err := b.c.GetTaskFile(ctx, b.jobID, id, "stderr.txt", 0, 4095)
	if err != nil {
		return "", false
	}
	defer rc.Close()
	data, _ := io.ReadAll(rc)
	line := firstLine(string(data))
	if !strings.HasPrefix(line, InputNotFoundPrefix+"input ") {
		return "", false
	}
	return redact.String(strings.TrimPrefix(line, InputNotFoundPrefix)), true
}

// inputFailure is the reason of a task that could not start because
// Batch could not download one of its az:// inputs, naming the input as
// the spec wrote it, as the local backend does, rather than the storage
// URL Batch names in its message (which may carry a SAS); ok is false
// when the failure is not about such an input. The input is the one the
// failure's FilePath detail names, or whose blob URL the message names.
func (b *Backend) inputFailure(pt *compiler.Task, fi *BatchTaskFailureInfo) (string, bool) {
	if fi == nil || !preProcessing(fi) || !slices.ContainsFunc(pt.Inputs, func(in compiler.Input) bool {
		return in.Kind == compiler.InputBlob || in.Kind == compiler.InputBlobPrefix
	}) {
		return "", false
	}
	filePath := ""
	for _, d := range fi.Details {
		if d.Name == "FilePath" {
			filePath = d.Value
		}
	}
	account := ""
	if b.run != nil {
		account = strings.TrimRight(b.run.Storage, "/")
	}
	for k, in := range executor.FillTask(pt, b.run, 1).Inputs {
		l, err := blobstage.ParseURL(in.From)
		if err != nil {
			continue
		}
		var named bool
		switch in.Kind {
		case compiler.InputBlob:
			named = filePath != "" && filePath == in.Path || account != "" && namesURL(fi.Message, account, l.Container+"/"+l.Path)
		case compiler.InputBlobPrefix:
			named = filePath != "" && filePath == prefixDir+"/"+strconv.Itoa(k)
		}
		if !named {
			continue
		}
		what := "could not be downloaded"
		switch fi.Code {
		case "BlobNotFound", "ResourceContainerNotFound":
			what = "not found"
		case "BlobAccessDenied", "ResourceContainerAccessDenied":
			what = "access denied (the pool's identity, or the SAS, cannot read it)"
		}
		return fmt.Sprintf("input %s: %s (Batch: %s)", inputName(in), what, fi.Code), true
	}
	return "", false
}

// namesURL reports whether text names the blob at path in the account
// (its URL, the path as it is or escaped), followed by no more of a path.
func namesURL(text, account, path string) bool {
	for _, v := range []string{account + "/" + path, account + "/" + (&url.URL{Path: path}).EscapedPath()} {
		for rest := text; ; {
			i := strings.Index(rest, v)
			if i < 0 {
				break
			}
			rest = rest[i+len(v):]
			if rest == "" || !strings.ContainsRune("/%._~-", rune(rest[0])) && !isAlnum(rest[0]) {
				return true
			}
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// preProcessing reports whether a failure happened before the command
// ran (resource files, packages, the command line).
func preProcessing(fi *BatchTaskFailureInfo) bool {
	if fi == nil {
		return false
	}
	switch {
	case strings.HasPrefix(fi.Code, "Blob"), strings.HasPrefix(fi.Code, "Resource"),
		strings.HasPrefix(fi.Code, "Command"), strings.HasPrefix(fi.Code, "ApplicationPackage"),
		strings.HasPrefix(fi.Code, "Container"):
		return true
	}
	return false
}

// reason says why a task failed, as the local backend words it.
func (b *Backend) reason(pt *compiler.Task, ei *BatchTaskExecutionInfo) string {
	fi := ei.FailureInfo
	code, msg := "", ""
	if fi != nil {
		code, msg = fi.Code, redact.String(firstLine(fi.Message))
	}
	switch {
	case code == "FailureExitCode" || fi == nil && ei.ExitCode != nil:
		if ei.ExitCode != nil {
			return "exit code " + strconv.Itoa(int(*ei.ExitCode))
		}
	case code == "TaskEnded" && b.timedOut(pt, ei):
		return fmt.Sprintf("timed out after %s", pt.Timeout)
	case preProcessing(fi):
		return fmt.Sprintf("could not start: %s: %s", code, msg)
	case strings.HasPrefix(code, "FileUpload"):
		return fmt.Sprintf("output upload failed: %s: %s", code, msg)
	}
	if code == "" {
		return "failed"
	}
	return code + ": " + msg
}

// Cancel stops the run. Without a job manager task the job is
// terminated: running tasks are killed, waiting ones never run. With one,
// the job is disabled (no task starts) and its running tasks are
// terminated, leaving the job manager task to run the finalize step; if
// that task has not started (the pool has no free node), a disabled job
// would never start it, so the job is terminated instead and
// FinalizeStopped says the finalize step is the caller's to run.
func (b *Backend) Cancel(ctx context.Context) error {
	b.cancelled = true
	if !b.created {
		return nil
	}
	return b.stop(ctx, cancelledReason)
}

// stop stops the job as Cancel says, terminating it with reason when it
// has no job manager task.
func (b *Backend) stop(ctx context.Context, reason string) error {
	if !b.hasJM {
		err := b.c.TerminateJob(ctx, b.jobID, reason)
		if err != nil && !IsConflict(err, "") {
			return err
		}
		return nil
	}
	if err := b.c.DisableJob(ctx, b.jobID, DisableWait); err != nil && !IsConflict(err, "") {
		return err
	}
	// Once the job is disabled no task starts, the job manager task
	// neither: read after the disable, its state no longer changes from
	// active to running.
	if !b.watcher {
		notStarted, err := jobManagerNotStarted(ctx, b.c, b.jobID)
		if err != nil {
			return err
		}
		if notStarted {
			b.jmStopped = true
			if err := b.c.TerminateJob(ctx, b.jobID, reason); err != nil && !IsConflict(err, "") {
				return err
			}
			return nil
		}
	}
	return b.terminateRunning(ctx)
}

// jobManagerNotStarted reports whether the job's job manager task is
// waiting to start (for the first time, or for a retry).
func jobManagerNotStarted(ctx context.Context, c *Client, jobID string) (bool, error) {
	t, err := c.GetTask(ctx, jobID, FinalizeTaskID)
	if err != nil {
		if IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return t.State == TaskStateActive, nil
}

// ErrFinalizeNotRunning is WaitJobDone's error for a job disabled while
// its job manager task waits to start (it would wait for ever), or ended
// before that task ever started.
var ErrFinalizeNotRunning = errors.New("the job was stopped (disabled or ended) before its finalize task started: that task will not run")

// terminateRunning terminates the job's running tasks but the job manager
// task.
func (b *Backend) terminateRunning(ctx context.Context) error {
	var ids []string
	for t, err := range b.c.ListTasks(ctx, b.jobID, ListOptions{Filter: "state eq 'running' or state eq 'preparing'", Select: "id"}) {
		if err != nil {
			return err
		}
		if !strings.EqualFold(t.ID, FinalizeTaskID) {
			ids = append(ids, t.ID)
		}
	}
	var first error
	for _, id := range ids {
		if err := b.c.TerminateTask(ctx, b.jobID, id); err != nil && !IsConflict(err, "") && !IsNotFound(err) && first == nil {
			first = err
		}
	}
	return first
}

// ErrJobEnded is CancelJob's error for a job that has ended, or is
// ending: there is nothing left to cancel.
var ErrJobEnded = errors.New("the job has ended")

// CancelJob cancels a run from outside the process following it (bmc
// cancel of a detached run): the same as Cancel.
func CancelJob(ctx context.Context, c *Client, jobID string) error {
	j, err := c.GetJob(ctx, jobID)
	if err != nil {
		return err
	}
	// A job being deleted has ended too: Batch refuses to terminate or
	// disable it (409).
	if j.State == JobStateCompleted || j.State == JobStateTerminating || j.State == JobStateDeleting {
		return fmt.Errorf("job %s: %w", jobID, ErrJobEnded)
	}
	b := newBackend(BackendOptions{Client: c})
	b.jobID, b.created = jobID, true
	b.hasJM = j.JobManagerTask != nil
	if err := b.Cancel(ctx); err != nil {
		return err
	}
	if b.jmStopped {
		return fmt.Errorf("job %s: %w", jobID, ErrFinalizeStopped)
	}
	return nil
}

// ErrFinalizeStopped is CancelJob's error for a run cancelled before its
// job manager task started: the job was ended, and the finalize step and
// the callback will not run on the pool.
var ErrFinalizeStopped = errors.New("the finalize task had not started, so the job was ended: the finalize step and the callback will not run on the pool")

// ---- the finalize step on the pool ----

// NodeConfig is the run record the job manager task reads: what bmc
// finalize --watch needs to follow the job and run the finalize step.
type NodeConfig struct {
	RunID    string            `json:"runId"`
	Workload string            `json:"workload"`
	Storage  string            `json:"storage"`
	Program  *compiler.Program `json:"program"`
	// PollInterval is how often the node polls Batch.
	PollInterval compiler.Duration `json:"pollInterval"`
	// SecretEnv names the variable holding the callback secret.
	SecretEnv string `json:"secretEnv,omitempty"`
	// CallbackEnv names the variable holding what the record leaves out
	// of the callback, as JSON: its URL (whose user info and query may
	// hold a password or a signature) and its headers' values (a token);
	// the record has the URL without them and the values redacted.
	CallbackEnv string `json:"callbackEnv,omitempty"`
	// Identity is the pool identity the node reaches Batch with.
	Identity string `json:"identity,omitempty"`
	// Started is when the run started, as the client's journal has it:
	// the summary's startedAt, not when the finalize task started.
	Started time.Time `json:"started,omitzero"`
	// FinalizeSetup is the script that puts the finalize step's
	// spec-relative inputs in place, from where the job manager task's
	// resource files brought them (FinalizeInputs), before the step's
	// own command; empty for none.
	FinalizeSetup string `json:"finalizeSetup,omitempty"`
}

// Files of the job manager task, relative to its working directory.
const (
	NodeConfigFile = "bmc-run.json"
	NodeResultFile = "bmc-result.json"
	NodeStepDir    = "step"   // the finalize step's working directory
	NodeUploadDir  = "upload" // outputs chosen for upload, by output
)

// NodeStepLog is the finalize step's log of a stream ("stdout",
// "stderr"), relative to the job manager task's directory.
func NodeStepLog(stream string) string { return "finalize/" + stream + ".txt" }

// NodeResult is what the job manager task leaves for the client.
type NodeResult struct {
	Status   executor.CallbackStatus  `json:"status"`
	Body     executor.CallbackBody    `json:"body"`
	Finalize *executor.TaskOutcome    `json:"finalize,omitempty"`
	Callback *executor.CallbackResult `json:"callback,omitempty"`
	Tasks    []NodeTask               `json:"tasks"`
	Error    string                   `json:"error,omitempty"`
}

// Result is the run's result as the executor gives it, from what the job
// manager task left: a callback it could not deliver fails the run.
func (nr *NodeResult) Result() *executor.RunResult {
	res := &executor.RunResult{Status: nr.Status, Body: nr.Body, Finalize: nr.Finalize, Callback: nr.Callback}
	if cb := nr.Callback; cb != nil && !cb.Delivered {
		res.CallbackErr = errors.New(cb.Err)
	}
	return res
}

// NodeTask is a task's outcome as the node saw it, with the times and
// outputs a client that followed the run journals: a detached run's
// status tells them as an attached run's does. Results an older bmc left
// on the pool have neither.
type NodeTask struct {
	ID       string         `json:"id"`
	State    executor.State `json:"state"`
	Attempts int            `json:"attempts"`
	ExitCode *int           `json:"exitCode,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Outputs  []string       `json:"outputs,omitempty"`
	// Start is when the first attempt started (or the earliest known),
	// LastStart when the last one did, End when the task ended: Batch's
	// times where it gives them.
	Start     time.Time `json:"start,omitzero"`
	LastStart time.Time `json:"lastStart,omitzero"`
	End       time.Time `json:"end,omitzero"`
}

// nodeProgram is the program as the run record staged for the node holds
// it: the node follows the tasks by id and runs only the finalize step,
// so of the secrets the program holds (SAS signatures in URLs), only the
// finalize step's are staged. The callback's URL and header values are
// not: the record is a blob every task on the pool can read, and stays
// after the run. They are returned apart, for the job manager task's
// environment, nil when the callback has neither.
func nodeProgram(p *compiler.Program) (*compiler.Program, *nodeCallback) {
	out := p
	if b, redacted, err := p.RedactedJSON(false); err == nil && redacted {
		var r compiler.Program
		if json.Unmarshal(b, &r) == nil {
			r.Finalize = p.Finalize
			out = &r
		}
	}
	cb := p.Finalize.Callback
	if cb == nil || cb.URL == "" && len(cb.Headers) == 0 {
		return out, nil
	}
	if out == p {
		c := *p
		out = &c
	}
	kept := *cb
	kept.URL = urlWithoutSecrets(cb.URL)
	kept.Headers = make(map[string]string, len(cb.Headers))
	for k := range cb.Headers {
		kept.Headers[k] = redact.Marker
	}
	out.Finalize.Callback = &kept
	return out, &nodeCallback{URL: cb.URL, Headers: cb.Headers}
}

// nodeCallback is what NodeConfig.CallbackEnv holds.
type nodeCallback struct {
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// urlWithoutSecrets is a callback URL as a record may show it: without
// user info, query or fragment, as bmc's messages name it; empty when it
// does not parse.
func urlWithoutSecrets(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redact.Marker
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// Program is the run record's program with the callback it left out
// restored from the variable CallbackEnv names, which getenv reads.
func (c *NodeConfig) program(getenv func(string) string) (*compiler.Program, error) {
	if c.CallbackEnv == "" || c.Program.Finalize.Callback == nil {
		return c.Program, nil
	}
	v := getenv(c.CallbackEnv)
	if v == "" {
		return nil, fmt.Errorf("the run record leaves the callback's URL and headers to $%s, which is not set", c.CallbackEnv)
	}
	var nc nodeCallback
	if json.Unmarshal([]byte(v), &nc) != nil {
		// The value is a secret: not quoted.
		return nil, fmt.Errorf("$%s does not hold the callback's URL and headers as bmc run gave them", c.CallbackEnv)
	}
	p := *c.Program
	cb := *p.Finalize.Callback
	cb.URL, cb.Headers = nc.URL, nc.Headers
	p.Finalize.Callback = &cb
	return &p, nil
}

// freeEnvName is name, or name followed by as many "_" as it takes to
// differ from every one of taken.
func freeEnvName(name string, taken ...string) string {
	for slices.Contains(taken, name) {
		name += "_"
	}
	return name
}

// jobManager stages the run record and builds the job manager task that
// runs the finalize step on the pool; opt has the staged inputs, the
// step's among them.
func (b *Backend) jobManager(ctx context.Context, plan *planner.Plan, run *executor.RunInfo, opt MapOptions) (*BatchJobManagerTask, error) {
	n := b.opt.Node
	if b.opt.Storage.Identity() == "" {
		// Batch has retired task authentication tokens: the job manager
		// task reaches Batch with the pool's identity, or not at all.
		return nil, ErrNoPoolIdentity
	}
	inputs, setup, err := FinalizeInputs(plan, run, b.opt.Storage, opt)
	if err != nil {
		return nil, err
	}
	prog, cb := nodeProgram(plan.Program)
	cfg := NodeConfig{RunID: run.ID, Workload: run.Workload, Storage: run.Storage, Program: prog, Started: run.Started,
		PollInterval: compiler.Duration(b.pollInterval()), SecretEnv: n.SecretEnv, Identity: b.opt.Storage.Identity(), FinalizeSetup: setup}
	var cbEnv []EnvironmentSetting
	if cb != nil {
		v, err := json.Marshal(cb)
		if err != nil {
			return nil, err
		}
		cfg.CallbackEnv = freeEnvName("BMC_CALLBACK", n.SecretEnv, n.URLEnv)
		cbEnv = append(cbEnv, EnvironmentSetting{Name: cfg.CallbackEnv, Value: string(v)})
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgLoc := b.opt.Staging.Join("runs/" + run.ID + "/" + NodeConfigFile)
	if err := b.opt.Storage.Put(ctx, cfgLoc, data); err != nil {
		return nil, fmt.Errorf("stage the run record: %w", err)
	}
	u, ref, err := b.opt.Storage.BlobURL(cfgLoc.Container, cfgLoc.Path)
	if err != nil {
		return nil, err
	}
	jm := &BatchJobManagerTask{
		ID:                  FinalizeTaskID,
		DisplayName:         "bmc finalize --watch",
		ResourceFiles:       append([]ResourceFile{{HTTPURL: u, FilePath: NodeConfigFile, IdentityReference: ref}}, inputs...),
		KillJobOnCompletion: Ptr(true),
		RunExclusive:        Ptr(false),
		Constraints:         &BatchTaskConstraints{MaxTaskRetryCount: Ptr(int32(2))},
	}
	bin, find := "./bmc", ""
	switch {
	case n.Package != nil:
		jm.ApplicationPackageReferences = []BatchApplicationPackageReference{{ApplicationID: n.Package.Name, Version: n.Package.Version}}
		find = findPackageScript(n.Package.Name, n.Package.Version)
		bin = `"$bmc_pkg"/bmc`
	case n.Binary != "":
		loc, err := b.opt.Storage.StageFile(ctx, b.opt.Staging, n.Binary)
		if err != nil {
			return nil, fmt.Errorf("stage bmc for the pool: %w", err)
		}
		bu, bref, err := b.opt.Storage.BlobURL(loc.Container, loc.Path)
		if err != nil {
			return nil, err
		}
		jm.ResourceFiles = append(jm.ResourceFiles, ResourceFile{HTTPURL: bu, FilePath: "bmc", FileMode: "0755", IdentityReference: bref})
	default:
		return nil, errors.New("the finalize step on the pool needs bmc there: give --bmc-package, or run bmc from a linux/amd64 machine")
	}
	jm.CommandLine = ScriptCommandLine(find+"exec "+bin+" finalize --watch --config "+NodeConfigFile, FinalizeTaskID)
	if n.SecretEnv != "" && n.Secret != "" {
		// Without a secret the variable is left out, not set empty: the
		// callback then goes unsigned from the pool as from here.
		jm.EnvironmentSettings = append(jm.EnvironmentSettings, EnvironmentSetting{Name: n.SecretEnv, Value: n.Secret})
	}
	if n.URLEnv != "" && n.URLEnv != n.SecretEnv {
		jm.EnvironmentSettings = append(jm.EnvironmentSettings, EnvironmentSetting{Name: n.URLEnv, Value: n.URL})
	}
	jm.EnvironmentSettings = append(jm.EnvironmentSettings, cbEnv...)
	fin := &plan.Program.Finalize
	ft := executor.FillTask(&compiler.Task{ID: FinalizeTaskID, Run: fin.Run, Outputs: fin.Outputs}, run, 1)
	for k, o := range ft.Outputs {
		l, err := blobstage.ParseURL(o.To)
		if err != nil {
			return nil, fmt.Errorf("finalize output %s: %w", o.Pattern, err)
		}
		cu, cref, err := b.opt.Storage.ContainerURL(l.Container, true)
		if err != nil {
			return nil, err
		}
		if err := b.opt.Storage.EnsureContainer(ctx, l.Container); err != nil {
			return nil, err
		}
		jm.OutputFiles = append(jm.OutputFiles, OutputFile{
			FilePattern:   FinalizeOutputPattern(k, o.Pattern),
			Destination:   OutputFileDestination{Container: &OutputFileBlobContainerDestination{ContainerURL: cu, Path: OutputPath(o.Pattern, l), IdentityReference: cref}},
			UploadOptions: OutputFileUploadConfig{UploadCondition: UploadOnTaskCompletion},
		})
	}
	return jm, nil
}

// ErrNoPoolIdentity is the error of a finalize step on the pool for a run
// whose pool has no managed identity: Batch no longer gives tasks
// authentication tokens, so the job manager task could not reach Batch.
var ErrNoPoolIdentity = errors.New("the finalize step on the pool reaches Batch with the pool's managed identity, and the run has none")

// findPackageScript sets bmc_pkg to the directory of an application
// package, from its variable: Batch's documents disagree on whether the
// variable keeps the application id's case, so it is looked for in any
// case; a task without it fails saying so.
func findPackageScript(name, version string) string {
	want := strings.ToUpper(packageEnv(name, version))
	ref := name
	if version != "" {
		ref += "@" + version
	}
	msg := "bmc: no " + want + " variable (in any case) on this node: is application package " + ref + " on the account?"
	return `bmc_pkg=; for v in $(compgen -e); do if [ "${v^^}" = ` + forceQuote(want) + ` ]; then bmc_pkg=${!v}; break; fi; done; ` +
		`if [ -z "$bmc_pkg" ]; then echo ` + forceQuote(msg) + ` >&2; exit 1; fi; `
}

// packageEnv is the variable Batch sets on Linux for an application
// package: AZ_BATCH_APP_PACKAGE_<name>_<version>, with '.', '-' and '#'
// as '_'; without a version for the default.
func packageEnv(name, version string) string {
	r := strings.NewReplacer(".", "_", "-", "_", "#", "_")
	v := "AZ_BATCH_APP_PACKAGE_" + r.Replace(name)
	if version != "" {
		v += "_" + r.Replace(version)
	}
	return v
}

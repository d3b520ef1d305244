package main

// bmc run --backend azurebatch: the wiring of the Batch backend. The run
// directory, journal, events and report are the local backend's; what
// differs is that Batch schedules the tasks, and that the finalize step
// runs on the pool as the job's job manager task (or, when no bmc for the
// pool is at hand, here).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/spf13/cobra"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/planner"
)

// batchOptions are the flags of bmc run for the azurebatch backend.
type batchOptions struct {
	detach       bool
	pool         string
	poolIdentity string
	bmcPackage   string
	staging      string
	finalizeOn   string
	poll         time.Duration
	sasLifetime  time.Duration
	parallel     int
}

func (o *batchOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.pool, "pool", "", "azurebatch: run on this Batch `pool` instead of the spec's (it must exist if the spec has no pool block)")
	f.StringVar(&o.poolIdentity, "pool-identity", "", "azurebatch: the ARM `id` of the pool's user-assigned managed identity, instead of the spec's pool.identity (the finalize step on the pool reaches Batch with it)")
	f.BoolVar(&o.detach, "detach", false, "azurebatch: leave once the tasks are submitted; the finalize step and the callback run on the pool")
	f.StringVar(&o.bmcPackage, "bmc-package", "", "azurebatch: the application `package[@version]` holding bmc for the pool (default: this bmc, staged, when it is linux/amd64)")
	f.StringVar(&o.staging, "staging", azurebatch.DefaultStaging, "azurebatch: az:// `prefix` for the files bmc stages for the pool")
	f.StringVar(&o.finalizeOn, "finalize-on", "auto", "azurebatch: where the finalize step runs: pool, client, or auto (pool when the run names a pool identity and bmc for the pool is at hand)")
	f.DurationVar(&o.poll, "poll-interval", 2*time.Second, "azurebatch: time between polls of the job")
	f.DurationVar(&o.sasLifetime, "sas-lifetime", azurebatch.DefaultSASLifetime, "azurebatch: how long the SAS URLs in task definitions stay valid")
	f.IntVar(&o.parallel, "submit-parallel", 8, "azurebatch: add-task-collection requests in flight (4 or more)")
}

// batchLogger logs the Batch client's retries to stderr.
func batchLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(newMessageHandler(cmd.ErrOrStderr()))
}

// batchClient is the client for AZURE_BATCH_ENDPOINT. A client that
// cannot be made is the environment's to fix: exit 1.
func batchClient(cmd *cobra.Command) (*azurebatch.Client, error) {
	return newBatchClient(azurebatch.Options{Logger: batchLogger(cmd)})
}

// inspectRetries bounds the retries of each call bmc status and bmc logs
// make: a person is waiting for an answer, and an unreachable Batch is
// told in seconds (1s and 2s between attempts), not after a run's worth
// of patience.
const inspectRetries = 2

// inspectClient is batchClient for commands that only look at a run.
func inspectClient(cmd *cobra.Command) (*azurebatch.Client, error) {
	return newBatchClient(azurebatch.Options{Logger: batchLogger(cmd), MaxRetries: inspectRetries})
}

func newBatchClient(o azurebatch.Options) (*azurebatch.Client, error) {
	c, err := azurebatch.FromEnv(o)
	if err != nil {
		return nil, &exitError{code: exitFailed, err: err}
	}
	return c, nil
}

// batchStorage is the blob account the tasks reach, from the environment
// (or the spec's storage block), with the pool identity when the spec
// names one.
func batchStorage(prog *compiler.Program, ttl time.Duration) (*azurebatch.Storage, error) {
	identity := ""
	if prog.Pool != nil {
		identity = prog.Pool.Identity
	}
	opt := azurebatch.StorageOptions{Identity: identity, SASLifetime: ttl}
	if cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		return azurebatch.StorageFromConnectionString(cs, opt)
	}
	endpoint := os.Getenv("AZURE_STORAGE_ACCOUNT_URL")
	account := os.Getenv("AZURE_STORAGE_ACCOUNT")
	if prog.Storage != nil && prog.Storage.AccountURL != "" {
		endpoint = prog.Storage.AccountURL
	}
	if endpoint == "" && account != "" {
		endpoint = "https://" + account + ".blob.core.windows.net"
	}
	if endpoint == "" {
		return nil, errors.New("the azurebatch backend needs a blob account for az:// locations and staging: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT (with AZURE_STORAGE_KEY, or a pool identity)")
	}
	if key := os.Getenv("AZURE_STORAGE_KEY"); key != "" && account != "" {
		return azurebatch.StorageFromKey(endpoint, account, key, opt)
	}
	if identity == "" {
		return nil, errors.New("the azurebatch backend reaches storage from the pool with a SAS minted from the account key, or with the pool's managed identity: set AZURE_STORAGE_KEY (or AZURE_STORAGE_CONNECTION_STRING), or give the pool an identity in the spec")
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %s", endpoint, redact.String(err.Error()))
	}
	return azurebatch.StorageFromIdentity(endpoint, cred, identity, opt)
}

// finalizePlace is where the finalize step runs, and why.
type finalizePlace struct {
	pool bool
	why  string
}

func (p finalizePlace) String() string {
	if p.pool {
		return "pool"
	}
	return "client"
}

// noIdentityHelp says what to configure for the finalize step on the pool.
const noIdentityHelp = "give the pool a user-assigned managed identity with a role on the Batch account, and name it in the spec's pool.identity or with --pool-identity"

// whereFinalize decides where the finalize step runs. The job manager
// task reaches Batch with the pool's managed identity (Batch no longer
// gives tasks authentication tokens), so the pool needs one, and bmc for
// the pool (bmcFrom says where it comes from; empty for none). auto picks
// the pool when both are at hand; pool and --detach insist on them, and
// are refused before anything is made.
func whereFinalize(finalizeOn string, detach bool, identity, bmcFrom string) (finalizePlace, error) {
	switch finalizeOn {
	case "client":
		if detach {
			return finalizePlace{}, usagef("--detach needs --finalize-on pool: the finalize step must outlive this process")
		}
		return finalizePlace{why: "--finalize-on client"}, nil
	case "pool", "auto":
	default:
		return finalizePlace{}, usagef("unknown --finalize-on %q: expected pool, client or auto", finalizeOn)
	}
	insist := finalizeOn == "pool" || detach
	what := "--finalize-on pool"
	if finalizeOn != "pool" {
		what = "--detach"
	}
	if identity == "" {
		if insist {
			return finalizePlace{}, &exitError{code: exitFailed, err: fmt.Errorf("%s: the finalize step on the pool reaches Batch with the pool's managed identity (Batch no longer gives tasks authentication tokens), and this run names none: %s; or finalize here with --finalize-on client (without --detach)", what, noIdentityHelp)}
		}
		return finalizePlace{why: "the run names no pool identity, which the finalize step on the pool needs to reach Batch; to finalize there, " + noIdentityHelp}, nil
	}
	if bmcFrom == "" {
		if insist {
			return finalizePlace{}, usagef("the finalize step on the pool needs bmc there: give --bmc-package (this bmc is %s/%s, not linux/amd64)", runtime.GOOS, runtime.GOARCH)
		}
		return finalizePlace{why: fmt.Sprintf("no bmc for the pool: this bmc is %s/%s, not linux/amd64; to finalize there, give --bmc-package", runtime.GOOS, runtime.GOARCH)}, nil
	}
	why := "--finalize-on pool"
	if finalizeOn == "auto" {
		why = "the run names a pool identity"
	}
	return finalizePlace{pool: true, why: why + "; bmc for the pool is " + bmcFrom}, nil
}

// bmcForPool says where bmc for the pool would come from: an application
// package, this bmc staged, or nowhere ("").
func bmcForPool(bmcPackage string) string {
	switch {
	case bmcPackage != "":
		return "application package " + bmcPackage
	case runtime.GOOS == "linux" && runtime.GOARCH == "amd64":
		return "this bmc, staged"
	}
	return ""
}

// node decides how the finalize step gets bmc on the pool: nil means it
// runs here.
func (o *batchOptions) node(cb *compiler.Callback, ce callbackEnv, identity string) (*azurebatch.NodeOptions, finalizePlace, error) {
	place, err := whereFinalize(o.finalizeOn, o.detach, identity, bmcForPool(o.bmcPackage))
	if err != nil || !place.pool {
		return nil, place, err
	}
	n := &azurebatch.NodeOptions{PollInterval: o.poll}
	if cb != nil {
		// The job manager task gets the callback's variables, as bmc has
		// them here.
		if cb.SecretEnv != "" {
			n.SecretEnv, n.Secret = cb.SecretEnv, string(ce.secret)
		}
		if cb.URLEnv != "" {
			n.URLEnv, n.URL = cb.URLEnv, ce.url
		}
	}
	if o.bmcPackage != "" {
		name, version, _ := strings.Cut(o.bmcPackage, "@")
		n.Package = &compiler.Package{Name: name, Version: version}
		return n, place, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, place, fmt.Errorf("find this bmc to stage for the pool: %w", err)
	}
	n.Binary = exe
	return n, place, nil
}

// driveBatch is drive for the azurebatch backend.
func driveBatch(cmd *cobra.Command, prog *compiler.Program, meta executor.Meta, o *runOptions, prev *executor.RunState) error {
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	state := stateDir(cmd)
	bo := &o.batch
	// A run taken up (bmc resume, or bmc cancel of a run whose bmc is
	// gone) is on Batch already: it is followed, not submitted, with the
	// pool, staging and finalize place it started with.
	resuming := prev != nil
	if resuming {
		if err := resumableBatch(meta, prog, prev); err != nil {
			return err
		}
		bo.pool, bo.poolIdentity, bo.staging = meta.Extra["pool"], meta.Extra["poolIdentity"], meta.Extra["staging"]
		if bo.sasLifetime == 0 {
			bo.sasLifetime = azurebatch.DefaultSASLifetime
		}
		if d, err := time.ParseDuration(meta.Extra["pollInterval"]); err == nil && bo.poll == 0 {
			bo.poll = d
		}
	}
	if o.storage == "local" {
		return usagef("--storage local: the pool's nodes cannot reach this machine's folder store; the azurebatch backend needs a blob account")
	}
	if cmd.Flags().Changed("submit-parallel") && bo.parallel < 4 {
		return usagef("--submit-parallel %d: give 4 or more requests in flight", bo.parallel)
	}
	if cmd.Flags().Changed("sas-lifetime") && bo.sasLifetime <= 0 {
		return usagef("--sas-lifetime %v: give a positive duration, such as 48h", bo.sasLifetime)
	}
	if len(o.packages) > 0 {
		return usagef("--package gives packages to the local backend; on Azure Batch, packages are the account's application packages")
	}
	staging, err := blobstage.ParseURL(bo.staging)
	if err != nil || !staging.IsPrefix() {
		return usagef("--staging %q: want an az://container/prefix/ location", bo.staging)
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
	prog = withPoolIdentity(withPool(prog, bo.pool), bo.poolIdentity)
	cbEnv, err := readCallbackEnv(prog)
	if err != nil {
		return err
	}
	var node *azurebatch.NodeOptions
	var place finalizePlace
	if resuming {
		// Where the last session left the finalize step: on the pool, or
		// here (planned so, or moved here).
		place = finalizePlace{pool: meta.Extra["finalizeOn"] == "pool", why: "as the run started"}
	} else if node, place, err = bo.node(prog.Finalize.Callback, cbEnv, poolIdentity(prog)); err != nil {
		return err
	}
	plan := planner.New(prog, azurebatch.Capabilities(prog.Pool), nil)
	if !resuming {
		plan.Checks = append(plan.Checks, azurebatch.Check(prog, azurebatch.CheckOptions{JobManager: node != nil, SpecDir: meta.SpecDir})...)
		plan.Checks = append(plan.Checks, specInputChecks(prog, nil, meta.SpecDir)...)
		plan.Checks = append(plan.Checks, batchStorageCheck(prog, o.storage)...)
		plan.Locate()
	}
	printChecks(stderr, plan.Checks)
	if err := planError(plan, true); err != nil {
		return err
	}
	client, err := batchClient(cmd)
	if err != nil {
		return err
	}
	st, err := batchStorage(prog, bo.sasLifetime)
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	// The finalize step run here writes its outputs with bmc's own access.
	var store blobstage.Store
	if !place.pool {
		store, err = openStore(ctx, "azure", o.transfers, prog, state)
		if err != nil {
			return err
		}
	}
	if !resuming {
		meta.Storage = st.URL()
		meta.KeepGoing = true // Batch runs every task that does not depend on a failure
		meta.Extra = map[string]string{"batchEndpoint": os.Getenv("AZURE_BATCH_ENDPOINT"), "pool": prog.Pool.ID, "staging": staging.String(), "finalizeOn": place.String()}
		if bo.poolIdentity != "" {
			meta.Extra["poolIdentity"] = bo.poolIdentity
		}
		if bo.poll > 0 {
			meta.Extra["pollInterval"] = bo.poll.String()
		}
	}

	log := batchLogger(cmd)
	beOpts := azurebatch.BackendOptions{
		Client: client, Storage: st, Staging: staging, Logs: logs, AccountID: os.Getenv("AZURE_BATCH_ACCOUNT_ID"),
		Parallel: bo.parallel, Node: node, Log: log, PoolIdentityFlag: bo.poolIdentity != "",
		OnSubmitted: func(s azurebatch.SubmitStats) {
			if f := s.Failure; f != nil && f.Added {
				fmt.Fprintf(stderr, "bmc: every task was added, but the job could not be marked submitted (it would never end by itself), so the run is stopped and reported failed: %v\n", f.Err)
				return
			} else if f != nil {
				fmt.Fprintf(stderr, "bmc: not every task could be added, so the run is stopped and reported failed: %v\n", f.Err)
				return
			}
			fmt.Fprintf(stderr, "bmc: submitted %d tasks (+%d barrier tasks) in %s: %d requests, %d bytes\n",
				s.Tasks, s.Barriers, s.Elapsed.Round(time.Millisecond), s.AddTasks.Requests, s.AddTasks.BytesSent)
		},
	}
	be := azurebatch.NewBackend(beOpts)
	if resuming {
		be = azurebatch.NewAttached(beOpts)
	}
	ev, err := openEvents(cmd, o.events)
	if err != nil {
		return err
	}
	defer ev.close()
	if !resuming {
		if err := checkBatchSetup(ctx, be, st, prog, staging); err != nil {
			return err
		}
	}
	dir, j, closeRun, err := openRun(state, &meta, prog, resuming)
	if err != nil {
		return err
	}
	defer closeRun()
	if resuming {
		// Read again with the lock held: a bmc that took the run up
		// meanwhile may have finished it.
		if prev, err = loadStateHeld(dir); err != nil {
			return err
		}
		if err := resumableBatch(meta, prog, prev); err != nil {
			return err
		}
		// Where the finalize step is, as the run directory has it now: a
		// bmc that took the run up meanwhile may have moved it here.
		if m, err := executor.ReadMeta(dir); err == nil && m.Extra["finalizeOn"] != "pool" {
			place.pool = false
		}
		// A finalize step the gone bmc ran here may still run: it must not
		// run beside the one this takes up. Only a step of this machine's:
		// the pool's goes on, and this bmc waits for its report. (Processes
		// of the run's tasks here, or of the pool's job manager task, are
		// the emulator's, which runs them, and carry the same variables.)
		if !place.pool {
			onlyFinalize := func(task string) bool { return task == compiler.FinalizeID && prev.WasRunning(task) }
			if _, err := stopLeftovers(stderr, dir, meta.ID, onlyFinalize); err != nil {
				return err
			}
		}
	}
	// A run taken up whose job is no longer on Batch (deleted): a cancel
	// ends it as the journal has it, its unfinished tasks cancelled; a
	// resume cannot follow it.
	jobGone := false
	if resuming && prev.Finished.IsZero() && !tasksOver(plan, prev) {
		// A job being deleted is gone too: Batch deletes it in a while.
		if j, err := client.GetJob(ctx, meta.ID); azurebatch.IsNotFound(err) || err == nil && j.State == azurebatch.JobStateDeleting {
			if !o.cancelNow {
				return &exitError{code: exitFailed, err: fmt.Errorf("run %s: job %s: %w; %s ends the run, its unfinished tasks cancelled, and runs its finalize step and callback", meta.ID, meta.ID, azurebatch.ErrJobGone, hint(cmd, "cancel", meta.ID))}
			}
			jobGone = true
		}
	}

	run := &executor.RunInfo{ID: meta.ID, Workload: prog.Name, Dir: dir, SpecDir: meta.SpecDir, Storage: st.URL(), Log: log, Started: meta.Created}
	if resuming {
		fmt.Fprintf(stderr, "bmc: taking up run %s on Azure Batch pool %s: %d tasks, finalize on the %s, storage %s\n", meta.ID, prog.Pool.ID, plan.Tasks, place, st.URL())
	} else {
		fmt.Fprintf(stderr, "bmc: run %s on Azure Batch pool %s: %d tasks, finalize on the %s (%s), storage %s\n", meta.ID, prog.Pool.ID, plan.Tasks, place, place.why, st.URL())
	}
	if bo.detach {
		if err := executor.SubmitNative(ctx, plan, be, run, j); err != nil {
			return notSubmitted(ctx, j, be, err)
		}
		if be.SubmitFailure() != nil {
			if be.FinalizeStopped() {
				fmt.Fprintf(stderr, "bmc: run %s failed before its finalize task started on the pool, so its job was ended: no finalize step and no callback will run for it\n", meta.ID)
				return &exitError{code: exitFailed}
			}
			fmt.Fprintf(stderr, "bmc: the finalize step on the pool reports run %s failed. Follow it with: %s\n", meta.ID, hint(cmd, "status", meta.ID))
			return &exitError{code: exitFailed}
		}
		fmt.Fprintf(stderr, "bmc: %s submitted; the finalize step and the callback run on the pool. Follow it with: %s\n", meta.ID, hint(cmd, "status", meta.ID))
		fmt.Fprintln(cmd.OutOrStdout(), meta.ID)
		return nil
	}
	sinks, display, closeSinks := openSinks(cmd, o, plan, ev)
	defer closeSinks()

	// After a first Ctrl-C the run is cancelled and followed until Batch
	// has stopped it; a second one stops waiting.
	stop := make(chan struct{})
	followed := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-followed:
			return
		}
		sctx, sstop := signal.NotifyContext(context.Background(), cancelSignals()...)
		defer sstop()
		select {
		case <-sctx.Done():
			close(stop)
		case <-followed:
		}
	}()
	// As on the local backend: a cancel once the tasks are over lets the
	// finalize step and the callback finish; another cuts them short.
	cancels := watchCancels(ctx, stderr)
	defer cancels.stop()
	var outcome *executor.Outcome
	switch {
	case jobGone:
		outcome, err = executor.CancelInterrupted(plan, j, prev, nil)
	case resuming && (!prev.Finished.IsZero() || tasksOver(plan, prev)):
		// Its tasks are over (the gone bmc went away in the finalize step
		// or the callback, or the callback was not delivered): they stay
		// as the journal has them, which Batch no longer tells once the
		// job was ended (as cancelled, or behind a failure).
		outcome = executor.OutcomeOf(plan, prev)
	default:
		runCtx := ctx
		if o.cancelNow {
			c, cancel := context.WithCancel(ctx)
			cancel()
			runCtx = c
		}
		outcome, err = executor.RunNative(runCtx, plan, be, run, j, executor.NativeOptions{
			Events: sinks, Progress: progressEvery(display, o.events), PollInterval: bo.poll, Stop: stop,
		})
		if err == nil && o.cancelNow && outcome.Counts.Cancelled == 0 {
			// Every task had ended before the cancel: the outcome stands,
			// as with a cancel that reaches a live bmc then.
			outcome.Canceled = false
		}
	}
	close(followed)
	if err != nil {
		if errors.Is(err, azurebatch.ErrJobGone) {
			return &exitError{code: exitFailed, err: fmt.Errorf("run %s: %w", meta.ID, err)}
		}
		if resuming {
			return fmt.Errorf("take up run %s on Azure Batch: %w", meta.ID, err)
		}
		return notSubmitted(ctx, j, be, err)
	}
	fctx := cancels.finishing()
	var res *executor.RunResult
	onPool := place.pool && !be.FinalizeStopped()
	var finishEvents executor.Sink = sinks
	moved := ""
	if place.pool && !onPool {
		moved = "the run stopped before its finalize task started on the pool"
		fmt.Fprintf(stderr, "bmc: %s, so its job was ended; the finalize step runs here\n", moved)
	}
	if onPool {
		res, err = finishOnPool(fctx, stderr, client, plan, run, j, outcome, sinks, bo.poll)
		if errors.Is(err, azurebatch.ErrFinalizeNotRunning) {
			// Someone disabled or ended the job before its finalize task started:
			// end the job, so that it never starts, and finalize here.
			fmt.Fprintf(stderr, "bmc: %v; the job is ended and the finalize step runs here\n", err)
			onPool, err = false, nil
			moved = "the job was stopped while its finalize task waited to start on the pool"
			if len(sinks) > 0 {
				// finishOnPool told the step started; it is the same step.
				finishEvents = withoutFinalizeStarted{sinks}
			}
		}
	}
	if moved != "" {
		if err := recordFinalizeHere(dir, moved); err != nil {
			fmt.Fprintf(stderr, "bmc: recording that the finalize step runs here: %v\n", err)
		}
	}
	if !onPool && store == nil {
		if store, err = openStore(fctx, "azure", o.transfers, prog, state); err != nil {
			return err
		}
	}
	if !onPool {
		// Tasks blocked behind a failure would wait for ever: end the job
		// (if it is still there).
		if err := client.TerminateJob(fctx, run.ID, "bmc: run over"); err != nil && !azurebatch.IsConflict(err, "") && !azurebatch.IsNotFound(err) {
			fmt.Fprintf(stderr, "bmc: ending job %s: %v\n", run.ID, err)
		}
		lb := local.New(local.Options{Slots: 1, Store: store, PoolID: prog.Pool.ID, Logs: logs, Hide: prog.Finalize.Callback.EnvVars()})
		fo := executor.FinishOptions{Secret: cbEnv.secret, CallbackURL: cbEnv.url, Events: finishEvents}
		if resuming && moved == "" {
			// What the last session finished here is not done twice.
			fo.SkipStep = prev.Finalize != nil && prev.Finalize.State == executor.Succeeded
			fo.SkipCallback = prev.Callback != nil && prev.Callback.Delivered
		}
		if resuming && !prev.Finished.IsZero() {
			// A run that is over gets its callback again, not its
			// finalize step, as bmc resume of a local run that runs no
			// task.
			fo.SkipStep = true
		}
		if err = lb.Prepare(fctx, run); err == nil {
			res, err = executor.Finish(fctx, plan, lb, run, j, outcome, fo)
		}
	}
	display.Close()
	if err != nil {
		return err
	}
	report(stderr, cmd, meta.ID, "", plan, outcome, res)
	redeliver := resendHint(cmd, meta)
	if onPool {
		redeliver = "it was the pool's to send, and bmc resume does not send a callback of the pool's again"
	}
	return runExit(outcome, res, redeliver)
}

// resumableBatch says whether a run on Azure Batch can be taken up: one
// whose bmc went away before it was over, or whose callback, sent here,
// was not delivered.
func resumableBatch(meta executor.Meta, prog *compiler.Program, prev *executor.RunState) error {
	if e, now := meta.Extra["batchEndpoint"], os.Getenv("AZURE_BATCH_ENDPOINT"); e != "" && strings.TrimRight(e, "/") != strings.TrimRight(now, "/") {
		if now == "" {
			return &exitError{code: exitFailed, err: fmt.Errorf("run %s ran on the Batch account at %s: set AZURE_BATCH_ENDPOINT to it", meta.ID, e)}
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("run %s ran on the Batch account at %s, and AZURE_BATCH_ENDPOINT names another: set it to that account", meta.ID, e)}
	}
	if prev.Finished.IsZero() {
		return nil
	}
	undelivered := prog.Finalize.Callback != nil && (prev.Callback == nil || !prev.Callback.Delivered)
	switch {
	case undelivered && meta.Extra["finalizeOn"] != "pool":
		return nil // its callback, sent here, is sent again
	case undelivered:
		return &exitError{code: exitFailed, err: fmt.Errorf("run %s on Azure Batch is over (%s); its callback was the pool's to send, and bmc resume does not send a callback of the pool's again", meta.ID, prev.Status)}
	case prev.Status != string(executor.Succeeded):
		return &exitError{code: exitFailed, err: fmt.Errorf("run %s on Azure Batch is over (%s): a Batch run is not run again in part; start it again with bmc run", meta.ID, prev.Status)}
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("run %s on Azure Batch is over (%s), and its outcome was delivered", meta.ID, prev.Status)}
}

// finishOnPool waits for the job manager task to run the finalize step
// and post the callback, then journals what it reports, as Finish would
// have. Its events go the way the executor's do: queued after the task
// phase's, so that a reader that does not keep up holds up neither the
// journal nor bmc's end, and the display and --events get them in order,
// one at a time. The texts the pool reports are redacted again: they come
// from a file on the pool, which an older bmc there may have written.
func finishOnPool(ctx context.Context, stderr io.Writer, c *azurebatch.Client, plan *planner.Plan, run *executor.RunInfo, j *executor.Journal, o *executor.Outcome, events executor.Sink, poll time.Duration) (*executor.RunResult, error) {
	q := executor.QueueEvents(run, events)
	defer q.Close()
	emit := func(e executor.Event) {
		e.Counts = o.Counts
		q.Event(e)
	}
	if plan.Program.Finalize.HasStep() {
		emit(executor.Event{Type: executor.EventFinalizeStarted, Task: compiler.FinalizeID})
	}
	var nr *azurebatch.NodeResult
	_, err := azurebatch.WaitJobDone(ctx, c, run.ID, poll)
	switch {
	case err != nil && ctx.Err() != nil && !errors.Is(err, azurebatch.ErrFinalizeNotRunning):
		// A second cancel: the step and the callback are cut short, on
		// the pool as they would be here.
		if nr, err = cutShortOnPool(stderr, c, plan, run, o, poll); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("waiting for the finalize step on the pool: %w", err)
	default:
		if nr, err = azurebatch.ReadNodeResult(ctx, c, run.ID); err != nil {
			return nil, fmt.Errorf("the finalize step on the pool left no result (bmc logs %s finalize --stderr): %w", run.ID, err)
		}
	}
	redactNodeResult(nr)
	body := executor.Summarize(plan, run, o)
	if nr.Body.RunID != "" {
		body = nr.Body
	}
	res := nr.Result()
	res.Body = body
	// The run directory holds the summary, as after a local run. The
	// pool has sent the callback already: a summary that cannot be kept
	// here fails the run, but the rest of its end is journaled all the
	// same.
	if err := executor.WriteSummary(run.Dir, body); err != nil {
		err = fmt.Errorf("write the run summary: %w", err)
		fmt.Fprintf(stderr, "bmc: %v\n", err)
		res.WriteErr = err
	}
	if res.Status == "" {
		res.Status = body.Status
	}
	if f := nr.Finalize; f != nil {
		rec := executor.Record{Type: executor.RecordFinalizeFinished, Time: f.End, Task: compiler.FinalizeID, Attempt: 1, State: string(f.State), ExitCode: f.ExitCode, Reason: f.Reason, Data: rawJSON(executor.FinalizeData{Start: f.Start, Outputs: f.Outputs})}
		if err := j.Append(rec); err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		emit(executor.Event{Type: executor.EventFinalizeFinished, Task: compiler.FinalizeID, State: f.State, ExitCode: f.ExitCode, Reason: f.Reason, Elapsed: f.End.Sub(f.Start)})
	}
	if cb := nr.Callback; cb != nil {
		if err := j.Append(executor.Record{Type: executor.RecordCallback, Data: rawJSON(cb)}); err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		st, reason := executor.Succeeded, ""
		if !cb.Delivered {
			st, reason = executor.Failed, cb.Err
		}
		emit(executor.Event{Type: executor.EventCallback, State: st, Reason: reason, Attempt: cb.Attempts, HTTPStatus: cb.Status})
	}
	if nr.Error != "" {
		fmt.Fprintf(stderr, "bmc: the finalize step on the pool reports: %s\n", nr.Error)
	}
	final := res.Final()
	if err := j.Append(executor.Record{Type: executor.RecordRunFinished, State: string(final), Data: rawJSON(body.Tasks)}); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	emit(executor.Event{Type: executor.EventRunFinished, State: executor.State(final), Elapsed: time.Since(o.Started)})
	return res, nil
}

// cutPoolFinalize is how long a second cancel waits for Batch to end the
// job manager task it terminates, and for the task's report.
const cutPoolFinalize = 2 * time.Minute

// cutShortOnPool cuts the finalize step on the pool and the callback
// short, for a second cancel: the job manager task is terminated (the
// job, whose tasks are over, ends with it), and what it reported is the
// result. A task terminated before it could report (Batch ended it at
// once) leaves none: the step is then cancelled, and the callback, if
// the spec has one, not delivered, as far as bmc can tell. When the task
// cannot be terminated, the step goes on on the pool, and the error says
// how to follow it.
func cutShortOnPool(stderr io.Writer, c *azurebatch.Client, plan *planner.Plan, run *executor.RunInfo, o *executor.Outcome, poll time.Duration) (*azurebatch.NodeResult, error) {
	ctx, stop := context.WithTimeout(context.Background(), cutPoolFinalize)
	defer stop()
	fmt.Fprintf(stderr, "bmc: cancelled again: cutting the finalize step and the callback short on the pool (terminating its job manager task %s)\n", azurebatch.FinalizeTaskID)
	goesOn := func(err error) error {
		follow := "bmc status " + run.ID
		if state := filepath.Dir(filepath.Dir(run.Dir)); run.Dir != "" && state != ".bmc" {
			follow += " --state-dir " + shellQuote(state)
		}
		return &exitError{code: exitCanceled, err: fmt.Errorf("the finalize step on the pool could not be cut short (%v): it goes on there, and sends the callback; %s reads the run's outcome once it is over", err, follow)}
	}
	if err := c.TerminateTask(ctx, run.ID, azurebatch.FinalizeTaskID); err != nil && !azurebatch.IsConflict(err, "") && !azurebatch.IsNotFound(err) {
		return nil, goesOn(err)
	}
	if _, err := azurebatch.WaitJobDone(ctx, c, run.ID, poll); err != nil && !errors.Is(err, azurebatch.ErrFinalizeNotRunning) {
		return nil, goesOn(err)
	}
	if nr, err := azurebatch.ReadNodeResult(ctx, c, run.ID); err == nil && nr.Status != "" {
		return nr, nil // what the step and the callback came to before they were cut
	}
	const why = "the finalize task on the pool was terminated by a second cancel"
	nr := &azurebatch.NodeResult{Body: executor.Summarize(plan, run, o)}
	nr.Body.FinishedAt = time.Now().UTC()
	if plan.Program.Finalize.HasStep() {
		nr.Finalize = &executor.TaskOutcome{State: executor.Canceled, Attempts: 1, Reason: why, End: nr.Body.FinishedAt}
		nr.Body.Failed = append(nr.Body.Failed, executor.CallbackFailedTask{ID: compiler.FinalizeID, Reason: "cancelled: " + why, Attempts: 1})
		if nr.Body.Status == executor.CallbackSucceeded {
			nr.Body.Status = executor.CallbackFailed
		}
	}
	if cb := plan.Program.Finalize.Callback; cb != nil && (cb.URL != "" || cb.URLEnv != "") {
		nr.Callback = &executor.CallbackResult{Err: "callback cut short: " + why + " before it reported sending it"}
	}
	nr.Status = nr.Body.Status
	return nr, nil
}

// redactNodeResult takes the secrets out of the texts of the finalize
// step's result that bmc journals, shows and sends on as events.
func redactNodeResult(nr *azurebatch.NodeResult) {
	nr.Error = redact.String(nr.Error)
	if f := nr.Finalize; f != nil {
		f.Reason = redact.String(f.Reason)
	}
	if cb := nr.Callback; cb != nil {
		cb.Err = redact.String(cb.Err)
	}
	for i := range nr.Body.Failed {
		nr.Body.Failed[i].Reason = redact.String(nr.Body.Failed[i].Reason)
	}
	for i := range nr.Tasks {
		nr.Tasks[i].Reason = redact.String(nr.Tasks[i].Reason)
	}
}

// withoutFinalizeStarted passes on every event but finalize-started: for
// the finalize step run here once the pool's did not start, after
// finishOnPool told it started.
type withoutFinalizeStarted struct{ executor.Sink }

func (s withoutFinalizeStarted) Event(e executor.Event) {
	if e.Type != executor.EventFinalizeStarted {
		s.Sink.Event(e)
	}
}

// NewErr is the sinks' first write error not told yet: the finalize
// step's queue tells it, as the task phase's does.
func (s withoutFinalizeStarted) NewErr() error {
	if e, ok := s.Sink.(interface{ NewErr() error }); ok {
		return e.NewErr()
	}
	return nil
}

// recordFinalizeHere records in the run's run.json that its finalize step
// runs here after all, not on the pool: finalizeOn says where it ran (bmc
// logs reads its logs here, then), finalizePlanned where it was to run,
// and finalizeMoved why it did not. The file is replaced whole, for the
// bmc processes that may be reading it.
func recordFinalizeHere(dir, why string) error {
	f, err := os.Open(filepath.Join(dir, executor.MetaFile))
	if err != nil {
		return err
	}
	var m executor.Meta
	dec := json.NewDecoder(f)
	dec.UseNumber() // the params, as they were written
	err = dec.Decode(&m)
	f.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", executor.MetaFile, err)
	}
	if m.Extra == nil {
		m.Extra = map[string]string{}
	}
	if planned := m.Extra["finalizeOn"]; planned != "" && planned != "client" {
		m.Extra["finalizePlanned"] = planned
	}
	m.Extra["finalizeOn"], m.Extra["finalizeMoved"] = "client", why
	b, _, err := redact.JSON(m, true)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+executor.MetaFile+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, executor.MetaFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func rawJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// checkBatchSetup checks, before the run is made, what it needs of the
// Batch account, the pool and the storage account: that bmc reaches both
// accounts with its credentials, and that the pool fits the spec (it is
// created if missing). A run that could not start on them is not left
// behind.
func checkBatchSetup(ctx context.Context, be *azurebatch.Backend, st *azurebatch.Storage, prog *compiler.Program, staging blobstage.Location) error {
	if err := be.EnsurePool(ctx, prog); err != nil {
		return batchSetupErr(err)
	}
	// Most runs stage files there; making sure of it tries the storage
	// credentials.
	if err := st.EnsureContainer(ctx, staging.Container); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		code := exitFailed
		if unreachable(err) {
			code = exitInternal
		}
		return &exitError{code: code, err: fmt.Errorf("storage account %s: %s (check AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, or the spec's storage block)", st.URL(), storageErrLine(err))}
	}
	return nil
}

// unreachable reports whether err is a service that could not be reached
// at all (no answer: refused, unresolved, timed out), rather than one
// that answered no. Such a run exits 3, which CI can tell from a workload
// or configuration that is wrong (1): it may go through if tried again.
func unreachable(err error) bool {
	var be *azurebatch.Error
	if errors.As(err, &be) && be.StatusCode != 0 {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// storageErrLine is a storage error in one line: the Azure SDK's take a
// screen, with the answer's body, of which the status and the error code
// are kept.
func storageErrLine(err error) string {
	lines := strings.Split(err.Error(), "\n")
	out := []string{strings.TrimSpace(lines[0])}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "RESPONSE ") || strings.HasPrefix(l, "ERROR CODE: ") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "; ")
}

// batchSetupErr is the error of a run that could not start on Batch, and
// so failed (exit 1): mostly, the account, the pool, the storage account
// or a local input are not as the run needs them, which is the user's to
// fix. For credentials Batch refused, or an endpoint it could not be
// reached at, it says what to check; an endpoint that could not be
// reached exits 3, as the backend being down is no fault of the run's.
func batchSetupErr(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var be *azurebatch.Error
	var ne net.Error
	switch {
	case !errors.As(err, &be):
	case be.StatusCode == http.StatusUnauthorized || be.StatusCode == http.StatusForbidden:
		err = fmt.Errorf("%w: Azure Batch refused bmc's credentials (check AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY or, with Entra ID, the identity's role on the account)", err)
	case be.StatusCode == 0 && errors.As(be.Err, &ne):
		return &exitError{code: exitInternal, err: fmt.Errorf("%w: Azure Batch cannot be reached at %s (check AZURE_BATCH_ENDPOINT)", err, os.Getenv("AZURE_BATCH_ENDPOINT"))}
	}
	return &exitError{code: exitFailed, err: err}
}

// notSubmitted ends a run whose submission stopped before its job was
// made: nothing of it is on Batch, so its journal says it is over, and
// why, rather than leaving it in progress for ever. Once the job exists,
// the error is about following it, and the run goes on on Batch.
func notSubmitted(ctx context.Context, j *executor.Journal, be *azurebatch.Backend, err error) error {
	if be.Created() {
		return err
	}
	state := executor.CallbackFailed
	if ctx.Err() != nil {
		state = executor.CallbackCancelled
	}
	if jerr := j.Append(executor.Record{Type: executor.RecordRunFinished, State: string(state), Reason: redact.String(err.Error())}); jerr != nil {
		return fmt.Errorf("%w (journal: %v)", err, jerr)
	}
	return batchSetupErr(err)
}

// poolIdentity is the pool identity a program names, if any.
func poolIdentity(prog *compiler.Program) string {
	if prog.Pool == nil {
		return ""
	}
	return prog.Pool.Identity
}

// withPoolIdentity is prog with the pool identity --pool-identity names,
// if any.
func withPoolIdentity(prog *compiler.Program, id string) *compiler.Program {
	return withPoolField(prog, id, func(p *compiler.Pool) { p.Identity = id })
}

// withPool is prog on the pool --pool names, if any.
func withPool(prog *compiler.Program, id string) *compiler.Program {
	return withPoolField(prog, id, func(p *compiler.Pool) { p.ID = id })
}

// withPoolField is prog with its pool (or an empty one) changed by set,
// unless the flag's value is empty; prog itself is left as it is.
func withPoolField(prog *compiler.Program, value string, set func(*compiler.Pool)) *compiler.Program {
	if value == "" {
		return prog
	}
	p := compiler.Pool{}
	if prog.Pool != nil {
		p = *prog.Pool
	}
	set(&p)
	cp := *prog
	cp.Pool = &p
	return &cp
}

// tasksOver reports whether the journal tells how every task of a run
// taken up ended: its bmc went away after them, in the finalize step or
// the callback.
func tasksOver(plan *planner.Plan, prev *executor.RunState) bool {
	for _, t := range plan.Program.Tasks {
		// A task bmc went away while it ran is not over: Batch tells.
		if ts := prev.Tasks[t.ID]; ts == nil || !ts.State.Terminal() || ts.Interrupted {
			return false
		}
	}
	return true
}

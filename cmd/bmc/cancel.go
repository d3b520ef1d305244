package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
	"github.com/spf13/cobra"
)

func newCancelCmd() *cobra.Command {
	var set setFlag
	cmd := &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a run in progress, from another terminal",
		Long: `Cancel a run in progress, as Ctrl-C in its terminal would: its running tasks'
process groups are killed, tasks are marked cancelled, and the finalize step
and the callback (status cancelled) still run. A cancel that arrives once the
tasks are over lets the finalize step and the callback finish and leaves the
run's outcome as it is; a second cancel cuts them short. When the bmc process
that ran it is gone (killed with SIGKILL, say), cancel stops what its tasks
left running and ends the run as that bmc would have: its unfinished tasks
are marked cancelled, and the finalize step and the callback (status
cancelled) run here, with the callback's secret and URL taken from this
environment; a run whose tasks had all ended keeps its outcome. Ctrl-C there lets them finish; a second Ctrl-C cuts them short.
A run directory keeps no secrets: those of a run that had any are taken again
from its spec, and one the run had from --set is given again with --set, as
to bmc resume. Without them the run stays interrupted, its leftover processes
stopped. A run on Azure Batch that no bmc here follows is cancelled on
Batch; when its finalize step was to run here, by a bmc that is gone, cancel
takes the run up: it stops its tasks on Batch, then runs the finalize step and
the callback here. A run that is over is not in progress: cancel says so, and
exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := executor.FindRun(stateDir(cmd), args[0])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			id := filepath.Base(dir)
			if len(set.values) > 0 {
				if meta, err := executor.ReadMeta(dir); err == nil && !meta.Redacted {
					return usagef("--set: run %s was started with its params fixed; --set only gives back secrets a run did not keep", id)
				}
			}
			pid, held := executor.LockHolder(dir)
			if meta, ok := isBatchRun(dir); ok && (!held || pid <= 0) {
				// No bmc here follows it (--detach): cancel on Batch.
				return batchCancel(cmd.Context(), cmd, dir, meta, &set)
			}
			if !held || pid <= 0 {
				return cancelLeftovers(cmd, dir, id, &set)
			}
			// Make sure the pid is still a bmc process before signalling it.
			if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && !strings.Contains(string(cmdline), "bmc") {
				return &exitError{code: exitFailed, err: fmt.Errorf("run %s: process %d is not bmc", id, pid)}
			}
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				return fmt.Errorf("cancel run %s: signal process %d: %w", id, pid, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cancelling run %s (bmc process %d); its finalize step and callback still run (a second cancel cuts them short)\n", id, pid)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&set.values, "set", nil, "give again a param that held a secret, which the run did not keep, for its finalize step and callback: name=value")
	return cmd
}

// cancelStateRead, when set, is called once bmc cancel has read the
// state of a run whose bmc process is gone, before it takes the run's
// lock: tests use it to have a resume run just then.
var cancelStateRead func()

// cancelLeftovers cancels a run whose bmc process went away before the
// run was over (killed with SIGKILL, say): it stops the processes its
// tasks left running and, for a local run, ends the run as a Ctrl-C would
// have. A run that is over is simply not in progress.
func cancelLeftovers(cmd *cobra.Command, dir, id string, set *setFlag) error {
	notRunning := &exitError{code: exitFailed, err: fmt.Errorf("run %s is not in progress", id)}
	// Read before the lock is taken: with it held, the run would read as
	// running.
	st, err := executor.LoadState(dir)
	if err != nil {
		return err
	}
	if st.Status != "interrupted" {
		return notRunning // it ended: none of its tasks was cut off
	}
	if cancelStateRead != nil {
		cancelStateRead()
	}
	// The lock keeps a bmc resume from starting the run's tasks while
	// they are looked for.
	unlock, err := executor.Lock(dir)
	if err != nil {
		return notRunning // taken just now: a bmc process drives it again
	}
	defer unlock()
	// Read again now that the lock is held: a resume that ran since the
	// first read may have finished the run, or run its tasks again.
	if st, err = loadStateHeld(dir); err != nil {
		return err
	}
	if st.Status != "interrupted" {
		return notRunning
	}
	n, err := stopLeftovers(cmd.OutOrStdout(), dir, id, st.WasRunning)
	if err != nil {
		return err
	}
	if meta, err := executor.ReadMeta(dir); err == nil && meta.Backend == "local" {
		return finishCancelled(cmd, dir, meta, st, set)
	}
	if n == 0 {
		return notRunning
	}
	return nil
}

// finishCancelled ends an interrupted local run as cancelled: its
// unfinished tasks are journaled as cancelled, then the finalize step and
// the callback run, as after a Ctrl-C. The caller holds the run's lock,
// has stopped what its tasks left running, and read the run's state st
// with the lock held. Should the run's secrets (set says them again) or
// the callback's variables be missing here, the run stays interrupted,
// for a cancel with them (or a resume).
func finishCancelled(cmd *cobra.Command, dir string, meta executor.Meta, st *executor.RunState, set *setFlag) error {
	stderr := cmd.ErrOrStderr()
	// The tasks are over: as for bmc run once they are, a first cancel
	// (Ctrl-C, a closed terminal) lets the finalize step and the callback
	// finish, and a second cuts them short. The command's own context,
	// which the first cancel or a closed stdout ends, is not theirs.
	cancels := watchCancels(cmd.Context(), stderr)
	defer cancels.stop()
	ctx := cancels.finishing()
	// stays says how to end a run left interrupted for want of what err
	// tells: bmc cancel again with how, or bmc resume.
	stays := func(err error, how string) error {
		var ee *exitError
		if !errors.As(err, &ee) || ee.err == nil {
			return err // --set itself is wrong: it says so
		}
		return &exitError{code: ee.code, err: fmt.Errorf("%v\nbmc: run %s stays interrupted, with what its tasks left running stopped: %s ends it as cancelled, or %s goes on with it", ee.err, meta.ID, hint(cmd, "cancel", meta.ID)+" "+how, hint(cmd, "resume", meta.ID))}
	}
	// The finalize step runs in a directory of its own: the paths it is
	// given (its summary, the run's directories) must not be relative to
	// this one, as a --state-dir given relative would make them.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	prog, err := readProgram(dir)
	if err != nil {
		return err
	}
	if meta.Redacted {
		// The finalize step and the callback run with the secrets the run
		// started with, never with what stands in for them on disk.
		if prog, err = restoreSecrets(meta, prog, set, "ending it here"); err != nil {
			return stays(err, "--set name=…")
		}
	}
	cbEnv, err := readCallbackEnv(prog)
	if err != nil {
		return stays(err, "with the variable set")
	}
	// The callback goes from this terminal, signed with its secretEnv.
	warnUnsigned(stderr, prog)
	log := slog.New(newMessageHandler(stderr))
	store, err := openRunStore(ctx, meta.ID, meta.Storage, "", 4, prog, stateDir(cmd))
	if err != nil {
		// The callback goes out all the same; only the finalize step's
		// inputs and outputs need the store.
		log.Warn(fmt.Sprintf("run %s: storage: %v", meta.ID, err))
		store = nil
	}
	pkgs, err := parsePackages(meta.Packages)
	if err != nil {
		log.Warn(fmt.Sprintf("run %s: packages: %v", meta.ID, err))
		pkgs = nil
	}
	poolID := ""
	if prog.Pool != nil {
		poolID = prog.Pool.ID
	}
	be := local.New(local.Options{Slots: 1, Store: store, Packages: pkgs, KeepWorkdirs: meta.KeepWorkdirs, PoolID: poolID, Logs: prog.Logs, Hide: prog.Finalize.Callback.EnvVars()})
	plan := planner.New(prog, be.Capabilities(), st.Done())
	run := &executor.RunInfo{ID: meta.ID, Workload: prog.Name, Dir: dir, SpecDir: meta.SpecDir, Storage: meta.Storage, Log: log}
	if store != nil {
		run.Storage = store.URL()
	}
	j, err := executor.OpenJournal(filepath.Join(dir, executor.JournalFile))
	if err != nil {
		return err
	}
	defer j.Close()
	if err := be.Prepare(ctx, run); err != nil {
		return err
	}
	// The working directories of tasks that succeeded are emptied once
	// the run is over, as after any run.
	if done := slices.Collect(maps.Keys(st.Done())); len(done) > 0 {
		be.Resumed(run, done)
	}
	o, err := executor.CancelInterrupted(plan, j, st, nil)
	if err != nil {
		return err
	}
	if o.Canceled {
		fmt.Fprintf(cmd.OutOrStdout(), "cancelled run %s, whose bmc process is gone: %d task%s cancelled; its finalize step and callback run now\n", meta.ID, o.Counts.Cancelled, plural(o.Counts.Cancelled))
	} else {
		fmt.Fprintf(cmd.OutOrStdout(), "run %s, whose bmc process is gone, had ended its tasks: its outcome stands; its finalize step and callback run now\n", meta.ID)
	}
	// As on a resume with nothing run again: what the run's last session
	// already finished is not done twice.
	fo := executor.FinishOptions{Secret: cbEnv.secret, CallbackURL: cbEnv.url}
	fo.SkipStep = st.Finalize != nil && st.Finalize.State == executor.Succeeded
	fo.SkipCallback = st.Callback != nil && st.Callback.Delivered
	res, err := executor.Finish(ctx, plan, be, run, j, o, fo)
	if err != nil {
		return err
	}
	report(stderr, cmd, meta.ID, dir, plan, o, res)
	if err := be.Cleanup(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "bmc: %v\n", err)
	}
	if res.CallbackErr != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("%v; the run's outcome was not delivered: %s", res.CallbackErr, resendHint(cmd, meta))}
	}
	return nil
}

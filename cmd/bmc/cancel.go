package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bmc-dev/bmc/executor"
	"github.com/spf13/cobra"
)

func newCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a run in progress, from another terminal",
		Long: `Cancel a run in progress, as Ctrl-C in its terminal would: its running tasks'
process groups are killed, tasks are marked cancelled, and the finalize step
and the callback (status cancelled) still run. A cancel that arrives once the
tasks are over lets the finalize step and the callback finish and leaves the
run's outcome as it is; a second cancel cuts them short. When the bmc process
that ran it is gone (killed with SIGKILL, say), cancel stops what its tasks
left running. A run on Azure Batch that no bmc here follows is cancelled on
Batch. A run that is over is not in progress: cancel says so, and exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := executor.FindRun(stateDir(cmd), args[0])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			id := filepath.Base(dir)
			pid, held := executor.LockHolder(dir)
			if meta, ok := isBatchRun(dir); ok && (!held || pid <= 0) {
				// No bmc here follows it (--detach): cancel on Batch.
				return batchCancel(cmd.Context(), cmd, dir, meta)
			}
			if !held || pid <= 0 {
				return cancelLeftovers(cmd, dir, id)
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
}

// cancelLeftovers stops the processes a run's tasks left running when the
// bmc process driving it was killed; with none, the run is simply not in
// progress.
func cancelLeftovers(cmd *cobra.Command, dir, id string) error {
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
	// The lock keeps a bmc resume from starting the run's tasks while
	// they are looked for.
	unlock, err := executor.Lock(dir)
	if err != nil {
		return notRunning // taken just now: a bmc process drives it again
	}
	defer unlock()
	n, err := stopLeftovers(cmd.OutOrStdout(), id, st)
	if err != nil {
		return err
	}
	if n == 0 {
		return notRunning
	}
	return nil
}

package main

import (
	"fmt"

	"github.com/bmc-dev/bmc/executor"
	"github.com/spf13/cobra"
)

func newResumeCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "resume RUN",
		Short: "Continue a run: re-run only what did not succeed",
		Long: `Continue an interrupted or failed run under the same run id: tasks journaled
as succeeded are not run again, everything else is, with the same program
(params were fixed when the run started) and the same outputs. The finalize
step runs again if any task ran, and the callback is sent again unless it was
already delivered. RUN is a run id, a unique prefix of one, or "latest".`,
		Example: `  bmc resume latest
  bmc resume genome-align-261128153000-x7 --slots 8`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			state := stateDir(cmd)
			dir, err := executor.FindRun(state, args[0])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			meta, err := executor.ReadMeta(dir)
			if err != nil {
				return fmt.Errorf("read run: %w", err)
			}
			prog, err := executor.ReadProgram(dir)
			if err != nil {
				return err
			}
			prev, err := executor.LoadState(dir)
			if err != nil {
				return err
			}
			if prev.Status == "running" {
				return &exitError{code: exitFailed, err: fmt.Errorf("run %s is in progress", meta.ID)}
			}
			if !cmd.Flags().Changed("slots") && meta.Slots > 0 {
				o.slots = meta.Slots
			}
			if !cmd.Flags().Changed("keep-going") {
				o.keepGoing = meta.KeepGoing
			}
			if !cmd.Flags().Changed("package") {
				o.packages = meta.Packages
			}
			o.backend = meta.Backend
			return drive(cmd, prog, meta, &o, prev)
		},
	}
	o.flags(cmd, true)
	return cmd
}

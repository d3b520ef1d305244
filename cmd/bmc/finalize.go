package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/spf13/cobra"
)

func newFinalizeCmd() *cobra.Command {
	var watch bool
	var config string
	cmd := &cobra.Command{
		Use:   "finalize --watch",
		Short: "Run a Batch job's finalize step on the pool (the job manager task bmc run adds)",
		Long: `Run on an Azure Batch node as the job manager task of a run that finalizes on
the pool: follow the job from the run record bmc run staged beside it, wait
until the client has added every task and every task has completed or is
blocked behind a failure, run the workload's finalize step, post the callback,
and leave the result in ` + azurebatch.NodeResultFile + ` for the client. Batch then ends the job.

It reaches Batch with the pool's managed identity (Batch no longer gives tasks
authentication tokens). People do not run it by hand.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !watch {
				return usagef("bmc finalize runs only as --watch, on a Batch node")
			}
			b, err := os.ReadFile(config)
			if err != nil {
				return &exitError{code: exitInternal, err: fmt.Errorf("read the run record: %w", err)}
			}
			var cfg azurebatch.NodeConfig
			if err := json.Unmarshal(b, &cfg); err != nil || cfg.Program == nil {
				return &exitError{code: exitInternal, err: fmt.Errorf("read the run record %s: not a bmc run record", config)}
			}
			log := batchLogger(cmd)
			c, err := azurebatch.NodeClient(cfg.Identity, azurebatch.Options{Logger: log})
			if err != nil {
				return &exitError{code: exitInternal, err: err}
			}
			wd := os.Getenv("AZ_BATCH_TASK_WORKING_DIR")
			if wd == "" {
				if wd, err = os.Getwd(); err != nil {
					return err
				}
			}
			taskDir := os.Getenv("AZ_BATCH_TASK_DIR")
			if taskDir == "" {
				taskDir = filepath.Dir(wd)
			}
			var secret []byte
			if cfg.SecretEnv != "" {
				secret = []byte(os.Getenv(cfg.SecretEnv))
			}
			cbURL := ""
			if cb := cfg.Program.Finalize.Callback; cb != nil && cb.URLEnv != "" {
				cbURL = os.Getenv(cb.URLEnv)
			}
			// A store the step cannot have fails the step, on its az://
			// inputs, not the watch: the callback still goes.
			store, err := azurebatch.NodeStore(cmd.Context(), &cfg)
			if err != nil {
				log.Error("the finalize step's az:// inputs cannot be downloaded", "err", err)
			}
			// The events of the run, as plain lines in the task's stdout.
			events := &plain{w: cmd.OutOrStdout(), verbose: len(cfg.Program.Tasks) <= 200}
			res, err := azurebatch.RunNode(cmd.Context(), azurebatch.NodeRun{
				Config: &cfg, Client: c, WorkDir: wd, TaskDir: taskDir, Secret: secret, CallbackURL: cbURL, Log: log, Events: events, Store: store,
			})
			if err != nil {
				return &exitError{code: exitInternal, err: err}
			}
			c2 := res.Body.Tasks
			// The run's status as the client will journal it.
			fmt.Fprintf(cmd.OutOrStdout(), "bmc: %s %s: %d succeeded, %d failed, %d skipped, %d cancelled of %d\n",
				cfg.RunID, res.Result().Final(), c2.Succeeded, c2.Failed, c2.Skipped, c2.Cancelled, c2.Total)
			if res.Callback != nil && !res.Callback.Delivered {
				fmt.Fprintf(cmd.ErrOrStderr(), "bmc: callback not delivered: %s\n", res.Callback.Err)
			}
			if res.Error != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "bmc: %s\n", res.Error)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the job, then finalize (the only mode)")
	cmd.Flags().StringVar(&config, "config", azurebatch.NodeConfigFile, "the run record `file`")
	return cmd
}

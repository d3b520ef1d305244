// Command bmc compiles declarative workload specs into task DAGs and runs
// them on the local machine or on Azure Batch.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1 // spec invalid or run failed
	exitUsage    = 2
	exitInternal = 3 // internal error or backend unreachable
	exitCanceled = 130
)

// exitError carries an exit code with an error that was already reported.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// usageError marks errors in how bmc was called.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// cancelSignals are the signals that cancel a run: Ctrl-C, bmc cancel's
// SIGTERM, and a closed terminal, which stops a run as Ctrl-C does (its
// tasks are stopped and journaled as cancelled, and the finalize step and
// callback run, rather than the tasks running on with no bmc to record
// them). Under nohup, SIGHUP stays ignored.
func cancelSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// Main runs bmc with os.Args and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), cancelSignals()...)
	defer stop()
	// BMC_CPUPROFILE=file profiles bmc itself, for its developers.
	if path := os.Getenv("BMC_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			defer f.Close()
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	err := root.ExecuteContext(ctx)
	return exitCode(err, stderr)
}

// exitCode is the one place errors become text and exit codes.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "bmc: %v\n", ee.err)
		}
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "bmc: %v\nRun 'bmc --help' for usage.\n", ue.err)
		return exitUsage
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "bmc: canceled")
		return exitCanceled
	}
	fmt.Fprintf(stderr, "bmc: %v\n", err)
	return exitInternal
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "bmc",
		Short: "Compile workload specs into task DAGs and run them locally or on Azure Batch",
		Long: `bmc compiles declarative, schema-checked YAML workload specs (apiVersion bmc/v1)
into a task DAG with file specifications, and runs it on the local machine or on
Azure Batch pools, always finishing with a finalize step that calls back the
workload's owner.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("state-dir", ".bmc", "where runs and the local blob store live (env BMC_STATE_DIR)")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(
		newValidateCmd(),
		newRunCmd(),
		newResumeCmd(),
		newPlanCmd(),
		newRunsCmd(),
		newStatusCmd(),
		newLogsCmd(),
		newCancelCmd(),
		newCompileCmd(),
		newGraphCmd(),
		newSchemaCmd(),
		newEmulatorCmd(),
		newVersionCmd(),
		newFinalizeCmd(),
	)
	for _, c := range root.Commands() {
		if c.Args == nil {
			continue
		}
		args := c.Args
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return &usageError{err}
			}
			return nil
		}
	}
	return root
}

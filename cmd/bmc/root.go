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
	"strings"
	"syscall"

	"github.com/bmc-dev/bmc/executor"
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

// cancelSignals are the signals that cancel a run: Ctrl-C, Ctrl-\
// (SIGQUIT, which would otherwise dump goroutines and leave the tasks
// running), bmc cancel's SIGTERM, and a closed terminal, which stops a run
// as Ctrl-C does (its tasks are stopped and journaled as cancelled, and
// the finalize step and callback run, rather than the tasks running on
// with no bmc to record them). Under nohup, SIGHUP stays ignored.
func cancelSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// Main runs bmc with os.Args and returns the exit code.
func Main() int {
	// A reader of bmc's output that goes away (bmc run --events - | head)
	// would kill bmc with SIGPIPE, leaving its run without a finalize step
	// or callback. Caught, the signal does nothing: the write fails with
	// EPIPE, and the output's writer cancels the run as a closed terminal
	// does. (Caught rather than ignored: tasks start with the default.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), cancelSignals()...)
	defer stop()
	executor.Version = bmcVersion()
	// BMC_CPUPROFILE=file profiles bmc itself, for its developers.
	if path := os.Getenv("BMC_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			defer f.Close()
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	gone := func() { cancel(errOutputClosed) }
	var stdout, stderr io.Writer = &outputWriter{w: os.Stdout, gone: gone}, os.Stderr
	if !isTerminal(os.Stderr) {
		// A terminal is no pipe; and the progress display looks for one.
		stderr = &outputWriter{w: os.Stderr, gone: gone}
	}
	return run(ctx, os.Args[1:], os.Stdin, stdout, stderr)
}

// errOutputClosed is the cause of the cancel when bmc's stdout or stderr
// is a pipe whose reader went away.
var errOutputClosed = errors.New("output closed")

// outputWriter is bmc's stdout or stderr. A write to it that fails
// because its reader went away (EPIPE) calls gone, which cancels what bmc
// is doing as a closed terminal does: a run's tasks are stopped, and its
// finalize step and callback still run.
type outputWriter struct {
	w    io.Writer
	gone func()
}

func (o *outputWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		o.gone()
	}
	return n, err
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	cmd, err := root.ExecuteContextC(ctx)
	var ue *usageError
	var ee *exitError
	if err != nil && cmd == root && !errors.As(err, &ue) && !errors.As(err, &ee) {
		// The root command runs nothing itself: its error is cobra's for
		// an unknown command.
		err = &usageError{err}
	}
	return exitCode(ctx, err, stderr)
}

// exitCode is the one place errors become text and exit codes. ctx is
// the command's.
func exitCode(ctx context.Context, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, syscall.EPIPE) && errors.Is(context.Cause(ctx), errOutputClosed) {
		// Writing to an output nobody reads any more failed: the command
		// was stopped, as by Ctrl-C, and there is no one to tell.
		return exitCanceled
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
	// A damaged journal is the run directory's, not bmc's, to mend.
	var cj *executor.CorruptJournalError
	if errors.As(err, &cj) {
		fmt.Fprintf(stderr, "bmc: %v\nbmc: line %d of %s is not a journal record, so what the run did cannot be told: mend or remove that line (the records before it are intact)\n", err, cj.Line, cj.Path)
		return exitFailed
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
		Version:       bmcVersion(),
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.PersistentFlags().String("state-dir", ".bmc", "where runs and the local blob store live (env BMC_STATE_DIR)")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err} })
	root.SetHelpCommand(newHelpCmd())
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
		newPruneCmd(),
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

// newHelpCmd is cobra's help command, but for a topic it does not know,
// which is a usage error rather than a usage text and success.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help provides help for any command in the application.\nSimply type bmc help [path to command] for full details.",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, _, err := c.Root().Find(args)
			if cmd == nil || err != nil {
				return usagef("unknown help topic %q", strings.Join(args, " "))
			}
			cmd.InitDefaultHelpFlag()
			return cmd.Help()
		},
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/schema"
	"github.com/spf13/cobra"
)

func newLogsCmd() *cobra.Command {
	var stderr, follow bool
	var attempt int
	cmd := &cobra.Command{
		Use:   "logs RUN TASK",
		Short: "Print a task's stdout (or stderr)",
		Long: `Print a task's stdout, or its stderr with --stderr, from the run directory.
--follow keeps printing what the task writes until it is over. --attempt N
shows an earlier attempt's log. TASK may be "finalize".`,
		Example: `  bmc logs latest align-s1
  bmc logs latest broken --stderr
  bmc logs latest train-0_1-32-1 --follow`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := executor.FindRun(stateDir(cmd), args[0])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			task := args[1]
			if err := knownTask(dir, task); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			stream := "stdout"
			if stderr {
				stream = "stderr"
			}
			name := stream + ".txt"
			if attempt > 0 {
				name = fmt.Sprintf("%s.attempt-%d.txt", stream, attempt)
			}
			if meta, ok := isBatchRun(dir); ok && (task != "finalize" || meta.Extra["finalizeOn"] == "pool") {
				return batchLogs(cmd.Context(), cmd, dir, meta, task, stream, attempt)
			}
			path := filepath.Join(local.TaskDir(dir, task), name)
			if !follow && attempt == 0 {
				// Directories are made ahead of tasks; whether a task ran
				// is the journal's to say.
				if st, err := executor.LoadState(dir); err == nil && task != "finalize" {
					if ts := st.Tasks[task]; ts == nil || ts.Attempts == 0 {
						reason := "it has not run"
						if ts != nil && ts.Reason != "" {
							reason = ts.Reason
						}
						return &exitError{code: exitFailed, err: fmt.Errorf("task %s has no logs in run %s: %s", task, filepath.Base(dir), reason)}
					}
				}
			}
			if _, err := os.Stat(path); err != nil {
				if _, err := os.Stat(local.TaskDir(dir, task)); err != nil {
					return &exitError{code: exitFailed, err: fmt.Errorf("task %s has no logs in run %s: it has not run (see bmc status %s)", task, filepath.Base(dir), filepath.Base(dir))}
				}
				if attempt > 0 {
					return &exitError{code: exitFailed, err: fmt.Errorf("task %s has no attempt %d log in run %s: that attempt wrote nothing, or it is the last, whose log has no number", task, attempt, filepath.Base(dir))}
				}
				if !follow {
					return &exitError{code: exitFailed, err: fmt.Errorf("task %s: no %s yet", task, name)}
				}
			}
			if !follow {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = io.Copy(cmd.OutOrStdout(), f)
				return err
			}
			return followLog(cmd.Context(), cmd.OutOrStdout(), dir, task, path)
		},
	}
	cmd.Flags().BoolVar(&stderr, "stderr", false, "print stderr instead of stdout")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the task is over")
	cmd.Flags().IntVar(&attempt, "attempt", 0, "print the log of an earlier `attempt`")
	return cmd
}

// knownTask checks that the run has the task, so that a mistyped id is
// not reported as a task that has not run (or, with --follow, waited for
// until the run ends).
func knownTask(dir, task string) error {
	if task == compiler.FinalizeID {
		return nil
	}
	prog, err := executor.ReadProgram(dir)
	if err != nil {
		return nil // an unreadable plan: the logs may still be there
	}
	ids := make([]string, len(prog.Tasks))
	for i := range prog.Tasks {
		if prog.Tasks[i].ID == task {
			return nil
		}
		ids[i] = prog.Tasks[i].ID
	}
	msg := fmt.Sprintf("run %s has no task %s", filepath.Base(dir), task)
	if s := schema.Suggest(task, ids); s != "" {
		msg += "; did you mean " + s + "?"
	} else {
		msg += fmt.Sprintf(" (see bmc status %s)", filepath.Base(dir))
	}
	return errors.New(msg)
}

// followLog prints the file as it grows, until the task is over (its
// journal says so, or no bmc process drives the run) or ctx ends.
func followLog(ctx context.Context, w io.Writer, dir, task, path string) error {
	var off int64
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		over := taskOver(dir, task)
		if f, err := os.Open(path); err == nil {
			f.Seek(off, io.SeekStart)
			n, _ := io.Copy(w, f)
			off += n
			f.Close()
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if over {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func taskOver(dir, task string) bool {
	st, err := executor.LoadState(dir)
	if err != nil {
		return true
	}
	if st.Status != "running" {
		return true
	}
	if task == "finalize" {
		return st.Finalize != nil
	}
	t := st.Tasks[task]
	return t != nil && t.State.Terminal()
}

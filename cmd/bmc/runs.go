package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/spf13/cobra"
)

type runRow struct {
	ID       string             `json:"id"`
	Workload string             `json:"workload"`
	Backend  string             `json:"backend"`
	Status   string             `json:"status"`
	Created  time.Time          `json:"created"`
	Counts   executor.Counts    `json:"tasks"`
	State    *executor.RunState `json:"-"`
}

func newRunsCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List runs, newest last",
		Long: `List runs, newest last, as their journals tell them: no backend is asked.

STATUS is running (a bmc process here drives the run), succeeded, failed,
cancelled, interrupted (the bmc process that drove it went away before its
end: bmc resume continues it), corrupt (its directory cannot be read: the
message before the table says why), or, for a run on Azure Batch that no bmc
process here follows (--detach, or its bmc went away), detached: it goes on
on Batch, and its journal knows only what happened while bmc followed it.
bmc status RUN asks Batch, and once the run is over it journals the outcome,
which bmc runs shows from then on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			state := stateDir(cmd)
			ids, err := executor.ListRunIDs(state)
			if err != nil {
				return err
			}
			var rows []runRow
			for _, id := range ids {
				dir := filepath.Join(executor.RunsDir(state), id)
				r, err := loadRow(dir)
				if err != nil {
					// Listed all the same: a run left out would look gone.
					fmt.Fprintf(cmd.ErrOrStderr(), "bmc: run %s: %v\n", id, err)
					r = corruptRow(dir, id)
				}
				rows = append(rows, r)
			}
			// Newest last by start time: ids sort by workload name first.
			slices.SortStableFunc(rows, func(a, b runRow) int {
				return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
			})
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				if rows == nil {
					rows = []runRow{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			case "text":
				if len(rows) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "no runs in %s\n", executor.RunsDir(state))
					return nil
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RUN\tSTATUS\tTASKS\tFAILED\tSTARTED")
				for _, r := range rows {
					started := "-"
					if !r.Created.IsZero() {
						started = r.Created.Local().Format("2006-01-02 15:04:05")
					}
					fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\n", r.ID, r.Status, r.Counts.Succeeded, r.Counts.Total, r.Counts.Failed, started)
				}
				return tw.Flush()
			}
			return usagef("unknown --output %q: expected text or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// corruptRow is the row of a run whose directory cannot be read: what
// of it can be.
func corruptRow(dir, id string) runRow {
	r := runRow{ID: id, Status: "corrupt"}
	if meta, err := executor.ReadMeta(dir); err == nil {
		r.Workload, r.Backend, r.Created = meta.Workload, meta.Backend, meta.Created
	}
	if prog, err := executor.ReadProgram(dir); err == nil {
		r.Counts.Total = len(prog.Tasks)
	}
	return r
}

// loadRow reads a run's meta data, program and journal into counts.
func loadRow(dir string) (runRow, error) {
	meta, err := readMeta(dir)
	if err != nil {
		return runRow{}, err
	}
	prog, err := executor.ReadProgram(dir)
	if err != nil {
		return runRow{}, &exitError{code: exitFailed, err: err}
	}
	st, err := executor.LoadState(dir)
	if err != nil {
		return runRow{}, err
	}
	if meta.Backend == azurebatch.Name && st.Status == "interrupted" {
		// Not interrupted: the run goes on on Batch without a bmc here.
		st.Status = "detached"
	}
	r := runRow{ID: meta.ID, Workload: meta.Workload, Backend: meta.Backend, Status: st.Status, Created: meta.Created, State: st}
	r.Counts.Total = len(prog.Tasks)
	for _, t := range prog.Tasks {
		ts := st.Tasks[t.ID]
		if ts == nil {
			r.Counts.Pending++
			continue
		}
		switch ts.State {
		case executor.Succeeded:
			r.Counts.Succeeded++
		case executor.Failed:
			r.Counts.Failed++
		case executor.Skipped:
			r.Counts.Skipped++
		case executor.Canceled:
			r.Counts.Cancelled++
		case executor.Running:
			r.Counts.Running++
		default:
			r.Counts.Pending++
		}
	}
	return r, nil
}

// readMeta reads a run's meta data. A run directory that cannot be read
// (a file damaged, or gone) is for its owner to mend or remove: exit 1,
// with the file named.
func readMeta(dir string) (executor.Meta, error) {
	m, err := executor.ReadMeta(dir)
	if err != nil {
		return m, &exitError{code: exitFailed, err: fmt.Errorf("read run: %w", err)}
	}
	return m, nil
}

// readProgram reads the program a run executes; one that cannot be read
// is as readMeta says: exit 1.
func readProgram(dir string) (*compiler.Program, error) {
	p, err := executor.ReadProgram(dir)
	if err != nil {
		return nil, &exitError{code: exitFailed, err: fmt.Errorf("read run: %w", err)}
	}
	return p, nil
}

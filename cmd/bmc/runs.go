package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// runStatuses are the statuses bmc runs shows, and lists with --status.
var runStatuses = []string{"running", "succeeded", "failed", "cancelled", "interrupted", "detached", "corrupt"}

type runsOptions struct {
	output    string
	workloads []string
	statuses  []string
	states    []string // --state, as bmc status calls its filter
	limit     int
}

func newRunsCmd() *cobra.Command {
	var o runsOptions
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
which bmc runs shows from then on.

--workload lists the runs of the workloads it names, --status (or --state,
as bmc status calls its filter) those with the statuses it names (both take
a list, or are repeated), and --limit N the N newest of those, still newest
last.`,
		Example: `  bmc runs
  bmc runs --workload genome-align --status failed,interrupted
  bmc runs --limit 5 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listRuns(cmd, &o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringSliceVar(&o.workloads, "workload", nil, "list only the runs of these workloads (repeat or separate with commas)")
	f.StringSliceVar(&o.statuses, "status", nil, "list only the runs with these statuses: "+strings.Join(runStatuses, ", "))
	f.IntVar(&o.limit, "limit", 0, "list only the `N` newest runs (of those the other flags list)")
	// --state, as bmc status calls its filter, is --status here too.
	f.StringSliceVar(&o.states, "state", nil, "the same as --status")
	f.MarkHidden("state")
	return cmd
}

func listRuns(cmd *cobra.Command, o *runsOptions) error {
	if o.output != "text" && o.output != "json" {
		return usagef("unknown --output %q: expected text or json", o.output)
	}
	if cmd.Flags().Changed("limit") && o.limit < 1 {
		return usagef("--limit must be 1 or more")
	}
	statuses := map[string]bool{}
	for _, s := range slices.Concat(o.statuses, o.states) {
		if s = strings.TrimSpace(s); !slices.Contains(runStatuses, s) {
			return usagef("unknown --status %q: expected some of %s", s, strings.Join(runStatuses, ", "))
		}
		statuses[s] = true
	}
	workloads := map[string]bool{}
	for _, w := range o.workloads {
		workloads[strings.TrimSpace(w)] = true
	}
	state := stateDir(cmd)
	ids, err := executor.ListRunIDs(state)
	if err != nil {
		return err
	}
	// The meta data first, which is small: the journals, which are not,
	// are read only for the runs the workloads and the limit leave.
	type found struct {
		dir  string
		meta executor.Meta
		err  error
	}
	runs := make([]found, 0, len(ids))
	for _, id := range ids {
		dir := filepath.Join(executor.RunsDir(state), id)
		meta, err := readMeta(dir)
		if len(workloads) > 0 && (err != nil || !workloads[meta.Workload]) {
			continue
		}
		if err != nil {
			meta = executor.Meta{ID: id}
		}
		runs = append(runs, found{dir, meta, err})
	}
	// Newest last by start time: ids sort by workload name first.
	slices.SortStableFunc(runs, func(a, b found) int {
		return cmp.Or(a.meta.Created.Compare(b.meta.Created), cmp.Compare(a.meta.ID, b.meta.ID))
	})
	var rows []runRow
	var warnings []string
	for i := len(runs) - 1; i >= 0 && (o.limit == 0 || len(rows) < o.limit); i-- {
		f := runs[i]
		id := filepath.Base(f.dir)
		err := f.err
		var r runRow
		if err == nil {
			r, err = loadRunsRow(f.dir, f.meta)
		}
		if err != nil {
			// Listed all the same: a run left out would look gone.
			r = corruptRow(f.dir, id)
		}
		if len(statuses) > 0 && !statuses[r.Status] {
			continue
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("bmc: run %s: %v\n", id, err))
		}
		rows = append(rows, r)
	}
	slices.Reverse(rows)
	slices.Reverse(warnings)
	for _, w := range warnings {
		fmt.Fprint(cmd.ErrOrStderr(), w)
	}
	out := cmd.OutOrStdout()
	if o.output == "json" {
		if rows == nil {
			rows = []runRow{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		if len(workloads)+len(statuses) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "no runs in %s of %s\n", executor.RunsDir(state), runsFilter(o))
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "no runs in %s\n", executor.RunsDir(state))
		}
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

// runsFilter says which runs the filters of o ask for.
func runsFilter(o *runsOptions) string {
	var what []string
	if len(o.workloads) > 0 {
		what = append(what, "workload "+strings.Join(o.workloads, " or "))
	}
	if s := slices.Concat(o.statuses, o.states); len(s) > 0 {
		what = append(what, "status "+strings.Join(s, " or "))
	}
	return strings.Join(what, " and ")
}

// corruptRow is the row of a run whose directory cannot be read: what
// of it can be.
func corruptRow(dir, id string) runRow {
	r := runRow{ID: id, Status: "corrupt"}
	if meta, err := executor.ReadMeta(dir); err == nil {
		r.Workload, r.Backend, r.Created = meta.Workload, meta.Backend, meta.Created
	}
	if n, err := executor.CountTasks(dir); err == nil {
		r.Counts.Total = n
	}
	return r
}

// loadRunsRow is a run's row as bmc runs lists it: its meta data and its
// journal, with the number of its tasks as the journal has it, and its
// program read only when the journal does not say: on a sweep, the
// program is tens of megabytes. The row does not keep the run's state.
func loadRunsRow(dir string, meta executor.Meta) (runRow, error) {
	if err := programEnds(filepath.Join(dir, executor.ProgramFile)); err != nil {
		return runRow{}, &exitError{code: exitFailed, err: err}
	}
	st, err := executor.LoadState(dir)
	if err != nil {
		return runRow{}, err
	}
	total, ok := st.TaskCount()
	if !ok {
		if total, err = executor.CountTasks(dir); err != nil {
			return runRow{}, &exitError{code: exitFailed, err: err}
		}
	}
	r := newRow(meta, st)
	r.Counts = stateCounts(total, st, meta.Backend != azurebatch.Name)
	r.State = nil
	return r, nil
}

// programEnds checks, from its last bytes only, that a run's program
// ends as a whole one does: a program is tens of megabytes, and bmc runs
// lists many. It is written whole, compact, and its last field is the
// finalize object: it ends with }}. One cut short almost never does: it
// ends inside a string or a number, or after a task's }, a list's ], a
// comma.
func programEnds(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	tail := make([]byte, min(info.Size(), 64))
	if _, err := f.ReadAt(tail, info.Size()-int64(len(tail))); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	tail = bytes.TrimRight(tail, " \t\r\n")
	rest, ok := bytes.CutSuffix(tail, []byte("}"))
	if ok {
		_, ok = bytes.CutSuffix(bytes.TrimRight(rest, " \t\r\n"), []byte("}"))
	}
	if !ok {
		return fmt.Errorf("read %s: cut short (%d bytes): it does not end as a program does", path, info.Size())
	}
	return nil
}

// newRow is a run's row, without its counts.
func newRow(meta executor.Meta, st *executor.RunState) runRow {
	if meta.Backend == azurebatch.Name && st.Status == "interrupted" {
		// Not interrupted: the run goes on on Batch without a bmc here.
		st.Status = "detached"
	}
	return runRow{ID: meta.ID, Workload: meta.Workload, Backend: meta.Backend, Status: st.Status, Created: meta.Created, State: st}
}

// stateCounts counts the states of a run's total tasks as st has them:
// those it does not name are pending.
func stateCounts(total int, st *executor.RunState, local bool) executor.Counts {
	c := executor.Counts{Total: total}
	for _, ts := range st.Tasks {
		if local {
			// A task bmc was killed under counts as bmc status tells it
			// when none of its processes runs on: it runs again on resume.
			countState(&c, ts.Standing(false).State)
			continue
		}
		countState(&c, ts.State)
	}
	c.Pending += max(0, total-c.Succeeded-c.Failed-c.Skipped-c.Cancelled-c.Running-c.Pending)
	return c
}

// idCounts counts the states of the tasks ids as st has them.
func idCounts(ids []string, st *executor.RunState) executor.Counts {
	c := executor.Counts{Total: len(ids)}
	for _, id := range ids {
		if ts := st.Tasks[id]; ts != nil {
			countState(&c, ts.State)
		} else {
			c.Pending++
		}
	}
	return c
}

func countState(c *executor.Counts, s executor.State) {
	switch s {
	case executor.Succeeded:
		c.Succeeded++
	case executor.Failed:
		c.Failed++
	case executor.Skipped:
		c.Skipped++
	case executor.Canceled:
		c.Cancelled++
	case executor.Running:
		c.Running++
	default:
		c.Pending++
	}
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

package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/executor"
	"github.com/spf13/cobra"
)

// pruneStatuses are the statuses bmc prune can be asked to remove, and
// defaultPrune those it removes unless asked otherwise: runs that are
// over. An interrupted run may still be resumed, and a detached one goes
// on on Azure Batch.
var (
	pruneStatuses = []string{"succeeded", "failed", "cancelled", "interrupted", "detached", "corrupt"}
	defaultPrune  = []string{"succeeded", "failed", "cancelled"}
)

// statusRemnant is the status shown for what a removal of a run that was
// cut short left.
const statusRemnant = "partly-removed"

type pruneOptions struct {
	olderThan string
	keep      int
	statuses  []string
	dryRun    bool
	output    string
}

// pruneRun is a run bmc prune removes, or would.
type pruneRun struct {
	ID       string    `json:"id"`
	Workload string    `json:"workload,omitempty"`
	Backend  string    `json:"backend,omitempty"`
	Status   string    `json:"status"`
	Created  time.Time `json:"created,omitzero"`
	// Active is when the run was last active, as its journal tells.
	Active time.Time `json:"lastActive,omitzero"`
	Bytes  int64     `json:"bytes"`
	dir    string
	remove func() error
}

// pruneSkip is a run bmc prune chose and did not remove: left alone
// (Reason), or that could not be removed (Error).
type pruneSkip struct {
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// pruneReport is bmc prune's result.
type pruneReport struct {
	DryRun  bool        `json:"dryRun"`
	Runs    []pruneRun  `json:"runs"`
	Skipped []pruneSkip `json:"skipped,omitempty"`
	// Bytes is the disk space freed, or that would be.
	Bytes int64 `json:"bytes"`
}

func newPruneCmd() *cobra.Command {
	var o pruneOptions
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove old runs' directories from the state directory",
		Long: `Remove the directories of runs that are over, freeing the space their
journals, logs and working directories take in the state directory (.bmc,
--state-dir or BMC_STATE_DIR). Say which with --older-than, --keep or both: a
run is removed when it was last active (as its journal tells) longer ago than
--older-than, and is not one of the --keep newest runs of its workload (runs
of every status count). --keep 0 keeps none.

Only runs with a status (as bmc runs shows it) of --status are removed: by
default succeeded, failed and cancelled. An interrupted run is removed only
when asked (--status interrupted), as bmc resume can still continue it, and
never while processes its tasks left (bmc was killed) still run: bmc cancel
stops them. A detached run is removed only when asked too: its job goes on on
Azure Batch, but no bmc can follow it, run its finalize step or send its
callback once its directory is gone. corrupt is a run whose directory cannot
be read. A run in progress (a bmc process drives it) is never removed: each
run's lock is held while it is removed, so that no bmc resume starts on a run
half removed.

bmc prune never touches the blob store: the outputs runs wrote, to the local
store (storage/ in the state directory) or to Azure Blob Storage, are yours.
To remove a run's outputs too, see where it put them first (bmc status RUN
--output json lists each task's outputs), then remove them by hand: rm -r on
the files under storage/<container>/ for the local store, az storage blob
delete-batch for Azure.

--dry-run lists what would be removed, with the space it takes, and removes
nothing. What a removal that was cut short left (a hidden .<run-id>.removing
directory in the runs directory) is removed whatever the options. Exits 0
when no run is to be removed, and when a run chosen was left alone (in
progress, or changed since it was chosen); 1 when one could not be removed.`,
		Example: `  bmc prune --older-than 30d --dry-run
  bmc prune --keep 5
  bmc prune --older-than 1d12h --status succeeded,failed,cancelled,interrupted`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("bmc prune takes no arguments: it chooses runs by --older-than, --keep and --status")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return prune(cmd, &o, time.Now())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.olderThan, "older-than", "", "remove runs last active longer ago than `DURATION` (30d, 36h, 1d12h)")
	f.IntVar(&o.keep, "keep", 0, "keep the `N` newest runs of each workload")
	f.StringSliceVar(&o.statuses, "status", defaultPrune, "remove runs with these statuses: "+strings.Join(pruneStatuses, ", "))
	f.BoolVar(&o.dryRun, "dry-run", false, "list what would be removed, and remove nothing")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func prune(cmd *cobra.Command, o *pruneOptions, now time.Time) error {
	if o.output != "text" && o.output != "json" {
		return usagef("unknown --output %q: expected text or json", o.output)
	}
	hasAge, hasKeep := cmd.Flags().Changed("older-than"), cmd.Flags().Changed("keep")
	if !hasAge && !hasKeep {
		return usagef("bmc prune needs --older-than, --keep or both, to say which runs to remove (--keep 0 removes every run --status names)")
	}
	var age time.Duration
	if hasAge {
		var err error
		if age, err = parseAge(o.olderThan); err != nil {
			return usagef("--older-than: %v", err)
		}
	}
	keep := -1
	if hasKeep {
		if o.keep < 0 {
			return usagef("--keep must be 0 or more")
		}
		keep = o.keep
	}
	statuses := map[string]bool{}
	for _, s := range o.statuses {
		s = strings.TrimSpace(s)
		switch {
		case s == "running":
			return usagef("--status running: a run in progress is never removed")
		case !slices.Contains(pruneStatuses, s):
			return usagef("unknown --status %q: expected some of %s", s, strings.Join(pruneStatuses, ", "))
		}
		statuses[s] = true
	}

	state := stateDir(cmd)
	stderr := cmd.ErrOrStderr()
	ids, err := executor.ListRunIDs(state)
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("list runs: %w", err)}
	}
	runs := make([]pruneRun, 0, len(ids))
	for _, id := range ids {
		r, _, _ := readPruneRun(filepath.Join(executor.RunsDir(state), id), false)
		runs = append(runs, r)
	}
	chosen := choosePrune(runs, statuses, hasAge, age, keep, now)
	remnants, err := executor.Remnants(state)
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("list runs: %w", err)}
	}
	for _, rm := range remnants {
		chosen = append(chosen, pruneRun{ID: rm.ID, Status: statusRemnant, dir: rm.Dir, remove: func() error { return executor.RemoveRemnant(rm) }})
	}

	rep := pruneReport{DryRun: o.dryRun, Runs: []pruneRun{}}
	out := cmd.OutOrStdout()
	var failed int
	for _, r := range chosen {
		if err := cmd.Context().Err(); err != nil {
			// Stopped (Ctrl-C) between two runs: none is left half
			// removed, and what was removed is told.
			writePruneReport(out, o.output, rep)
			return err
		}
		r.Bytes = executor.DiskUsage(r.dir)
		if !o.dryRun {
			if r.remove == nil {
				r.remove = func() error { return executor.RemoveRun(r.dir, func() error { return checkPrune(cmd, r) }) }
			}
			err := r.remove()
			var left *leftAlone
			switch {
			case errors.Is(err, executor.ErrRunInProgress), errors.As(err, &left):
				fmt.Fprintf(stderr, "bmc: %v: left alone\n", err)
				rep.Skipped = append(rep.Skipped, pruneSkip{ID: r.ID, Reason: err.Error()})
				continue
			case err != nil:
				fmt.Fprintf(stderr, "bmc: run %s: %v\n", r.ID, err)
				rep.Skipped = append(rep.Skipped, pruneSkip{ID: r.ID, Error: err.Error()})
				failed++
				continue
			}
			if o.output == "text" {
				fmt.Fprintf(out, "removed %s (%s, %s)\n", r.ID, r.Status, formatBytes(r.Bytes))
			}
		}
		rep.Runs = append(rep.Runs, r)
		rep.Bytes += r.Bytes
	}
	if o.output == "text" && len(chosen) == 0 {
		fmt.Fprintf(stderr, "no runs to remove in %s (%d run%s, none chosen)\n", executor.RunsDir(state), len(ids), plural(len(ids)))
		return nil
	}
	writePruneReport(out, o.output, rep)
	if failed > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%d run%s could not be removed", failed, plural(failed))}
	}
	return nil
}

// writePruneReport writes what bmc prune did, or would do: for text, the
// list of a dry run and the total, the runs removed having been told as
// they went.
func writePruneReport(w io.Writer, output string, rep pruneReport) {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	n := len(rep.Runs)
	if !rep.DryRun {
		fmt.Fprintf(w, "freed %s: %d run%s removed\n", formatBytes(rep.Bytes), n, plural(n))
		return
	}
	if n > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tSTATUS\tLAST ACTIVE\tSIZE")
		for _, r := range rep.Runs {
			active := "-"
			if !r.Active.IsZero() {
				active = r.Active.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Status, active, formatBytes(r.Bytes))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "would free %s: %d run%s to remove (dry run: nothing was removed)\n", formatBytes(rep.Bytes), n, plural(n))
}

// readPruneRun reads what bmc prune chooses a run by. held says this
// process holds the run's lock, which LoadState would take for a bmc
// driving it. A run whose directory cannot be read is corrupt, and err
// says why.
func readPruneRun(dir string, held bool) (r pruneRun, st *executor.RunState, err error) {
	r = pruneRun{ID: filepath.Base(dir), dir: dir}
	meta, err := executor.ReadMeta(dir)
	if err == nil {
		r.ID, r.Workload, r.Backend, r.Created = cmp.Or(meta.ID, r.ID), meta.Workload, meta.Backend, meta.Created
		_, err = executor.ReadProgram(dir)
	}
	if err == nil {
		st, err = executor.LoadState(dir)
	}
	if err != nil {
		// Its age is its directory's, whose files change as the run
		// goes: nothing else of it can be trusted.
		r.Status, r.Active = "corrupt", r.Created
		if fi, serr := os.Stat(dir); serr == nil && fi.ModTime().After(r.Active) {
			r.Active = fi.ModTime()
		}
		return r, nil, err
	}
	if held {
		st.Interrupt()
	}
	r.Status = st.Status
	if meta.Backend == azurebatch.Name && r.Status == "interrupted" {
		r.Status = "detached" // as bmc runs says
	}
	r.Active = lastActive(r.Created, st)
	return r, st, nil
}

// lastActive is when a run last did something, as its journal tells: its
// end, or the last start or end of a task or of its finalize step, or its
// creation. The journal's records are read rather than its file's time,
// which a copy of the state directory changes.
func lastActive(created time.Time, st *executor.RunState) time.Time {
	t := created
	later := func(u time.Time) {
		if u.After(t) {
			t = u
		}
	}
	later(st.Started)
	later(st.Finished)
	for _, ts := range st.Tasks {
		later(ts.LastStart)
		later(ts.End)
	}
	if st.Finalize != nil {
		later(st.Finalize.End)
	}
	return t
}

// choosePrune picks the runs to remove, oldest first: of each workload,
// those not among its keep newest (keep < 0: no such rule), whose status
// is one of statuses, and, if hasAge, last active more than age before
// now. A running run is never picked.
func choosePrune(runs []pruneRun, statuses map[string]bool, hasAge bool, age time.Duration, keep int, now time.Time) []pruneRun {
	newest := slices.Clone(runs)
	slices.SortStableFunc(newest, func(a, b pruneRun) int {
		return cmp.Or(b.Created.Compare(a.Created), cmp.Compare(b.ID, a.ID))
	})
	kept := map[string]bool{}
	if keep >= 0 {
		seen := map[string]int{}
		for _, r := range newest {
			if seen[r.Workload] < keep {
				kept[r.ID] = true
			}
			seen[r.Workload]++
		}
	}
	var out []pruneRun
	for _, r := range slices.Backward(newest) {
		switch {
		case r.Status == "running", !statuses[r.Status], kept[r.ID]:
		case hasAge && !r.Active.Before(now.Add(-age)):
		default:
			out = append(out, r)
		}
	}
	return out
}

// leftAlone is why a run chosen, once locked, is not removed after all.
type leftAlone struct{ msg string }

func (e *leftAlone) Error() string { return e.msg }

// checkPrune reads a run chosen again once its lock is held: a bmc
// resume may have run it since it was read, and it must still be as it
// was chosen. An interrupted run whose tasks' processes still run (bmc
// was killed) is left for bmc cancel to stop them first: removed, their
// working directories would go from under them.
func checkPrune(cmd *cobra.Command, was pruneRun) error {
	r, st, _ := readPruneRun(was.dir, true)
	if r.Status != was.Status {
		return &leftAlone{fmt.Sprintf("run %s is %s now, not %s as it was when chosen", r.ID, r.Status, was.Status)}
	}
	if r.Status != "interrupted" && r.Status != "detached" {
		return nil
	}
	ls, err := local.Leftovers(was.dir, st.WasRunning)
	if err != nil {
		return fmt.Errorf("looking for processes its tasks left: %w", err)
	}
	if len(ls) > 0 {
		return &leftAlone{fmt.Sprintf("%d process%s of run %s (%s) still run, left by a bmc process that is gone: %s stops them",
			len(ls), pluralES(len(ls)), r.ID, tasksList(local.LeftoverTasks(ls)), hint(cmd, "cancel", r.ID))}
	}
	return nil
}

// parseAge reads a duration as time.ParseDuration does, with days too:
// 30d, 1d12h, 1.5d.
func parseAge(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration: expected one such as 30d, 36h or 1d12h", s)
	var d time.Duration
	rest := s
	if days, after, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, bad
		}
		d, rest = time.Duration(n*float64(24*time.Hour)), after
		if rest == "" {
			return d, nil
		}
	}
	e, err := time.ParseDuration(rest)
	if err != nil || e < 0 {
		return 0, bad
	}
	return d + e, nil
}

// formatBytes writes a size for people: 512 B, 4.0 KiB, 1.2 GiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

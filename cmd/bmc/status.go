package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/spf13/cobra"
)

func newStatusCmd() *cobra.Command {
	var output string
	var all bool
	var states []string
	cmd := &cobra.Command{
		Use:   "status RUN",
		Short: "Show a run's tasks and their states",
		Long: `Show a run's tasks and their states, as its journal tells them. RUN is a run
id, a unique prefix of one, or "latest". By default only tasks that are not
succeeded are listed when there are many, up to 200; --all lists every task,
and --state lists every task in the states it names (--state failed: all the
failed tasks of a sweep), in text and in JSON. A task's
DURATION is that of its last attempt, from its start to its end, as are its
EXIT and REASON; ATTEMPTS counts them all, over every session of the run.

When the bmc that drove a local run was killed, its tasks' processes may run
on: status names them, on each task's row and, with --output json, as
"leftovers" (pid and task). bmc cancel or bmc resume stops them. A task that
was running then is running while a process of it runs, and pending once
none does (bmc resume runs it again); bmc cancel ends it cancelled.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			want := map[executor.State]bool{}
			for _, st := range states {
				if !slices.Contains(taskStates, executor.State(st)) {
					return usagef("unknown --state %q: expected succeeded, failed, skipped, cancelled, running or pending", st)
				}
				want[executor.State(st)] = true
			}
			dir, err := executor.FindRun(stateDir(cmd), args[0])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			meta, err := readMeta(dir)
			if err != nil {
				return err
			}
			// The program's task ids, not the program: on a sweep it is
			// tens of megabytes, which bmc status need not decode.
			ids, err := executor.ReadTaskIDs(dir)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			st, err := executor.LoadState(dir)
			if err != nil {
				return err
			}
			row := newRow(meta, st)
			row.Counts = idCounts(ids, st)
			finStart := st.FinalizeStart()
			var behind error // set when the backend could not say how the run stands
			// A run on Azure Batch that no bmc here follows: ask Batch.
			if meta.Backend == azurebatch.Name && row.State.Status != "running" && row.State.Finished.IsZero() {
				if meta.Extra["finalizeOn"] != "pool" {
					// Its finalize step and callback were to run here, by
					// a bmc that went away: no one runs them until told.
					fmt.Fprintf(cmd.ErrOrStderr(), "bmc: run %s's finalize step and callback were to run here, by a bmc process that is gone: %s follows the run to its end and runs them; %s stops it first\n",
						meta.ID, hint(cmd, "resume", meta.ID), hint(cmd, "cancel", meta.ID))
				}
				prog, err := executor.ReadProgram(dir)
				if err != nil {
					return err
				}
				bst, err := batchRunState(cmd.Context(), cmd, dir, meta, prog, row.State)
				if err != nil {
					// Its journal is shown, and said to be behind: a
					// script must not take it for the run's state.
					code := exitFailed
					if unreachable(err) {
						code = exitInternal
					}
					behind = &exitError{code: code, err: fmt.Errorf("reading run %s from Azure Batch: %v; shown as its journal has it, which may be behind (tasks running on Batch show as pending)", meta.ID, err)}
				} else {
					row = batchRow(row, prog, bst)
				}
			}
			st = row.State
			if st.Finalize != nil && st.Finalize.Start.IsZero() {
				st.Finalize.Start = finStart
			}
			// What a killed bmc left running: the journal says those
			// tasks were interrupted, but their processes go on.
			// (A Batch run no bmc follows reads "detached", not
			// "interrupted".)
			var left []local.Leftover
			stale := map[string]int{} // task (or "finalize") -> processes
			if st.Status == "interrupted" {
				if ls, _ := local.Leftovers(dir, st.WasRunning); len(ls) > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "bmc: %d process%s of run %s (%s) still run, left by a bmc process that is gone: %s stops them and runs those tasks again; %s stops them\n",
						len(ls), pluralES(len(ls)), row.ID, tasksList(local.LeftoverTasks(ls)), hint(cmd, "resume", row.ID), hint(cmd, "cancel", row.ID))
					left = ls
					for _, l := range ls {
						stale[l.Task]++
					}
				}
			}
			// A task of a local run interrupted with its bmc is shown
			// running while a process of it runs, pending otherwise: not
			// cancelled, which only bmc cancel makes it. (A Batch run is
			// as Batch tells it.)
			standing := meta.Backend != azurebatch.Name
			// The tasks listed, in the program's order: each task's state
			// is looked up as it is printed, not copied into a list.
			listed := func(id string) (executor.TaskState, bool) {
				ts := executor.TaskState{ID: id, State: executor.Pending}
				if p := st.Tasks[id]; p != nil {
					ts = *p
					if standing {
						ts = ts.Standing(stale[id] > 0)
					}
				}
				return ts, len(want) == 0 || want[ts.State]
			}
			nlisted := 0
			counts := executor.Counts{Total: len(ids)}
			for _, id := range ids {
				ts, ok := listed(id)
				if ok {
					nlisted++
				}
				countState(&counts, ts.State)
			}
			if standing {
				row.Counts = counts
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				w := bufio.NewWriterSize(out, 64<<10)
				err := writeStatusJSON(w, statusJSON{row, st, nil, st.Finalize, left, behind != nil}, func(yield func(executor.TaskState) bool) {
					for _, id := range ids {
						if ts, ok := listed(id); ok && !yield(ts) {
							return
						}
					}
				})
				if err == nil {
					err = w.Flush()
				}
				if err != nil {
					return err
				}
				return behind
			}
			if output != "text" {
				return usagef("unknown --output %q: expected text or json", output)
			}
			// Buffered: --all on a sweep is a row per task.
			bw := bufio.NewWriterSize(out, 64<<10)
			out = bw
			c := row.Counts
			fmt.Fprintf(out, "run %s (%s): %s\n", row.ID, row.Workload, row.Status)
			fmt.Fprintf(out, "tasks: %d succeeded, %d failed, %d skipped, %d cancelled, %d running, %d pending of %d\n",
				c.Succeeded, c.Failed, c.Skipped, c.Cancelled, c.Running, c.Pending, c.Total)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TASK\tSTATE\tATTEMPTS\tEXIT\tDURATION\tREASON")
			shown := 0
			hiddenBy := map[executor.State]int{}
			every := all || len(want) > 0
			for _, id := range ids {
				t, ok := listed(id)
				if !ok {
					continue
				}
				if !every && (nlisted > 50 && t.State == executor.Succeeded || shown >= 200) {
					hiddenBy[t.State]++
					continue
				}
				shown++
				printTaskRow(tw, withStale(t, stale[t.ID]))
			}
			if f := st.Finalize; f != nil {
				printTaskRow(tw, withStale(*f, stale[f.ID]))
			} else if n := stale[compiler.FinalizeID]; n > 0 {
				// Its start is not journaled, only its processes tell.
				printTaskRow(tw, withStale(executor.TaskState{ID: compiler.FinalizeID, State: executor.Running, Reason: "left by a bmc process that is gone"}, n))
			}
			tw.Flush()
			if hidden := nlisted - shown; hidden > 0 {
				var by []string
				for _, s := range taskStates {
					if n := hiddenBy[s]; n > 0 {
						by = append(by, fmt.Sprintf("%d %s", n, s))
					}
				}
				what := fmt.Sprintf("%d task%s (%s)", hidden, plural(hidden), strings.Join(by, ", "))
				if len(by) == 1 {
					what = fmt.Sprintf("%d %s task%s", hidden, by[0][strings.IndexByte(by[0], ' ')+1:], plural(hidden))
				}
				fmt.Fprintf(out, "%s not shown; --all shows them, --state STATE those in a state\n", what)
			}
			if cb := st.Callback; cb != nil {
				if cb.Delivered {
					fmt.Fprintf(out, "callback: delivered (HTTP %d after %d attempt%s)\n", cb.Status, cb.Attempts, plural(cb.Attempts))
				} else {
					fmt.Fprintf(out, "callback: not delivered: %s\n", cb.Err)
				}
			}
			if err := bw.Flush(); err != nil {
				return err
			}
			return behind
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&all, "all", false, "list every task")
	cmd.Flags().StringSliceVar(&states, "state", nil, "list every task in these states (succeeded, failed, skipped, cancelled, running, pending; repeat or separate with commas)")
	return cmd
}

// taskStates are the states bmc status lists tasks in, in the order it
// counts them.
var taskStates = []executor.State{executor.Succeeded, executor.Failed, executor.Skipped, executor.Canceled, executor.Running, executor.Pending}

// withStale notes in t's reason that n processes of it still run,
// although its state, from the journal, says it ended.
func withStale(t executor.TaskState, n int) executor.TaskState {
	if n > 0 {
		note := fmt.Sprintf("%d processes of it still run", n)
		if n == 1 {
			note = "1 process of it still runs"
		}
		if t.Reason != "" {
			note = t.Reason + "; " + note
		}
		t.Reason = note
	}
	return t
}

func printTaskRow(tw *tabwriter.Writer, t executor.TaskState) {
	exit, dur := "-", "-"
	if t.ExitCode != nil {
		exit = fmt.Sprint(*t.ExitCode)
	}
	// The last attempt's: Start is the first attempt's, which may be an
	// earlier session's. Batch gives only the last attempt's, as Start.
	start := t.LastStart
	if start.IsZero() {
		start = t.Start
	}
	if !start.IsZero() && !t.End.IsZero() && !t.End.Before(start) {
		dur = t.End.Sub(start).Round(time.Millisecond).String()
	}
	fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", t.ID, t.State, t.Attempts, exit, dur, terminalSafe(t.Reason))
}

// statusJSON is what bmc status -o json prints.
type statusJSON struct {
	runRow
	Run       *executor.RunState   `json:"run"`
	Tasks     []executor.TaskState `json:"taskStates"`
	Finalize  *executor.TaskState  `json:"finalize,omitempty"`
	Leftovers []local.Leftover     `json:"leftovers,omitempty"`
	// JournalOnly says the backend could not be asked: the states are
	// the journal's, which may be behind.
	JournalOnly bool `json:"journalOnly,omitempty"`
}

// writeStatusJSON writes v, indented, with the task states tasks yields
// as its taskStates: the same text as encoding v with them in its Tasks,
// but written one task at a time, for a sweep's are tens of megabytes.
func writeStatusJSON(w io.Writer, v statusJSON, tasks iter.Seq[executor.TaskState]) error {
	v.Tasks = []executor.TaskState{}
	var head bytes.Buffer
	enc := json.NewEncoder(&head)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	// The list is the only member of the top level by that name, and
	// only the top level's members are indented by two spaces.
	const empty = "\n  \"taskStates\": []"
	b := head.Bytes()
	at := bytes.Index(b, []byte(empty))
	if at < 0 {
		return errors.New("status: no task list in the JSON written")
	}
	if _, err := w.Write(b[:at+len(empty)-1]); err != nil {
		return err
	}
	n := 0
	var err error
	var elem bytes.Buffer
	tasks(func(t executor.TaskState) bool {
		elem.Reset()
		if n > 0 {
			elem.WriteByte(',')
		}
		elem.WriteString("\n    ")
		var e []byte
		if e, err = json.MarshalIndent(t, "    ", "  "); err != nil {
			return false
		}
		elem.Write(e)
		n++
		_, err = w.Write(elem.Bytes())
		return err == nil
	})
	if err != nil {
		return err
	}
	if n > 0 {
		if _, err := io.WriteString(w, "\n  "); err != nil {
			return err
		}
	}
	_, err = w.Write(b[at+len(empty)-1:])
	return err
}

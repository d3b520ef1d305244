package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
	"github.com/spf13/cobra"
)

type planOptions struct {
	set      setFlag
	output   string
	slots    int
	run      string
	only     []string
	packages []string
	backend  string
	batch    batchPlanOptions // --backend azurebatch
}

func newPlanCmd() *cobra.Command {
	var o planOptions
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show what a run would do, without running anything",
		Long: `Show what a run would do: tasks and matrix groups, the width of each level of
the graph, the critical path, what a resume of an earlier run would skip
(--run), and what the backend's limits say about the workload.`,
		Example: `  bmc plan examples/genomics.yaml
  bmc plan examples/genomics.yaml --run latest      # what bmc resume latest would skip
  bmc plan examples/sweep.yaml --output json
  bmc plan examples/genomics.yaml --backend azurebatch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.slots < 1 {
				return usagef("--slots must be at least 1")
			}
			prog, err := compileSpec(cmd, args[0], &o.set)
			if err != nil {
				return err
			}
			if len(o.only) > 0 {
				if prog, err = planner.Only(prog, o.only); err != nil {
					return &exitError{code: exitFailed, err: err}
				}
			}
			if o.backend == azurebatch.Name {
				return planBatch(cmd, prog, &o)
			}
			if !cmd.Flags().Changed("slots") {
				o.slots = localSlots(o.slots, prog)
			}
			if o.backend != "local" {
				return usagef("unknown --backend %q: expected local or azurebatch", o.backend)
			}
			pkgs, err := parsePackages(o.packages)
			if err != nil {
				return err
			}
			be := local.New(local.Options{Slots: o.slots, Packages: pkgs})
			var done map[string]bool
			if o.run != "" {
				dir, err := executor.FindRun(stateDir(cmd), o.run)
				if err != nil {
					return &exitError{code: exitFailed, err: err}
				}
				st, err := executor.LoadState(dir)
				if err != nil {
					return err
				}
				done = st.Done()
			}
			plan := planner.New(prog, be.Capabilities(), done)
			switch o.output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(plan); err != nil {
					return err
				}
			case "text":
				printPlan(cmd.OutOrStdout(), plan)
			default:
				return usagef("unknown --output %q: expected text or json", o.output)
			}
			if len(plan.Errors()) > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("the plan does not fit the %s backend", plan.Backend)}
			}
			return nil
		},
	}
	addSetFlag(cmd, &o.set)
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().IntVar(&o.slots, "slots", runtime.NumCPU(), "task slots the run would have")
	cmd.Flags().StringVar(&o.run, "run", "", "show what resuming this `run` would skip")
	cmd.Flags().StringArrayVar(&o.only, "only", nil, "plan only this `task` or group and what it depends on")
	cmd.Flags().StringArrayVar(&o.packages, "package", nil, "an application package the run would have: `name[@version]=dir`")
	cmd.Flags().StringVar(&o.backend, "backend", "local", "the backend to plan for: local or azurebatch")
	o.batch.flags(cmd)
	return cmd
}

func printPlan(w io.Writer, p *planner.Plan) {
	// No slot count: a pool the spec does not size (an existing one, or
	// autoscale) has as many as Batch gives it when the run starts.
	slots := "as many slots as the pool has"
	if n := p.Capabilities.Slots; n > 0 {
		slots = fmt.Sprintf("%d slot%s", n, plural(n))
	}
	fmt.Fprintf(w, "workload %s on the %s backend (%s)\n", p.Workload, p.Backend, slots)
	fmt.Fprintf(w, "  tasks:         %d (%d to run", p.Tasks, p.ToRun)
	if len(p.Skip) > 0 {
		fmt.Fprintf(w, ", %d done in the earlier run", len(p.Skip))
	}
	fmt.Fprintln(w, ") + finalize")
	if len(p.Groups) > 0 {
		var gs []string
		for _, g := range p.Groups {
			gs = append(gs, fmt.Sprintf("%s ×%d", g.ID, g.Members))
		}
		fmt.Fprintf(w, "  groups:        %s\n", strings.Join(gs, ", "))
	}
	var lv []string
	for _, n := range p.Levels {
		lv = append(lv, fmt.Sprint(n))
	}
	fmt.Fprintf(w, "  level widths:  %s\n", strings.Join(lv, " → "))
	cp := p.CriticalPath
	if len(cp) > 12 {
		cp = append(append(append([]string{}, cp[:5]...), fmt.Sprintf("… %d more …", len(cp)-10)), cp[len(cp)-5:]...)
	}
	// The path ends with finalize, which is not one of the tasks.
	tasks := len(p.CriticalPath) - 1
	fmt.Fprintf(w, "  critical path: %s (%d task%s + finalize)\n", strings.Join(cp, " → "), tasks, plural(tasks))
	if len(p.Skip) > 0 {
		skip := p.Skip
		more := ""
		if len(skip) > 10 {
			skip, more = skip[:10], fmt.Sprintf(" and %d more", len(p.Skip)-10)
		}
		fmt.Fprintf(w, "  resume skips:  %s%s\n", strings.Join(skip, ", "), more)
	}
	if len(p.Checks) == 0 {
		fmt.Fprintf(w, "  checks:        the workload fits the %s backend\n", p.Backend)
	}
	for _, c := range p.Checks {
		fmt.Fprintf(w, "  %-15s%s\n", c.Severity+":", checkText(c))
	}
}

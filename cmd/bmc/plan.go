package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/redact"
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
	specDir  string           // where the spec's local inputs are
}

func newPlanCmd() *cobra.Command {
	var o planOptions
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show what a run would do, without running anything",
		Long: `Show what a run would do: tasks and matrix groups, the width of each level of
the graph, the critical path, what a resume of an earlier run would skip
(--run), and what the backend's limits say about the workload.

With --run, the plan is that of bmc resume RUN: the program the run started
with, kept in its directory, with its slots and packages, and the tasks it
completed skipped. FILE is compared with it: a spec that now gives another
workload, or tasks that differ, is warned about, for resume does not run
them as they are now.`,
		Example: `  bmc plan examples/genomics.yaml
  bmc plan examples/genomics.yaml --run latest      # what bmc resume latest would skip
  bmc plan examples/sweep.yaml --output json
  bmc plan examples/genomics.yaml --backend azurebatch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("slots") && o.slots < 1 {
				return usagef("--slots must be at least 1")
			}
			if o.run != "" && len(o.only) > 0 {
				return usagef("--only with --run: bmc resume runs the tasks the run was started with")
			}
			// The run plan --run reads is read while FILE compiles: on a
			// sweep both take a while.
			var reading chan *planRun
			if o.run != "" && o.backend == "local" {
				reading = make(chan *planRun, 1)
				state := stateDir(cmd)
				go func() { reading <- readPlanRun(state, o.run) }()
				defer func() {
					if reading != nil {
						<-reading // not left reading once plan returns
					}
				}()
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
			if abs, err := filepath.Abs(args[0]); err == nil {
				o.specDir = filepath.Dir(abs)
			}
			if o.backend == azurebatch.Name {
				return planBatch(cmd, prog, &o)
			}
			if o.backend != "local" {
				return usagef("unknown --backend %q: expected local or azurebatch", o.backend)
			}
			var done map[string]bool
			if reading != nil {
				r := <-reading
				reading = nil
				if prog, done, err = resumePlanned(cmd, args[0], prog, r, &o); err != nil {
					return err
				}
			}
			if !cmd.Flags().Changed("slots") && o.slots < 1 {
				o.slots = localSlots(runtime.NumCPU(), prog)
			}
			pkgs, err := parsePackages(o.packages)
			if err != nil {
				return err
			}
			be := local.New(local.Options{Slots: o.slots, Packages: pkgs})
			plan := newPlan(prog, be.Capabilities(), done, o.specDir)
			plan.Checks = append(plan.Checks, envChecks(prog)...)
			plan.Locate()
			switch o.output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(plan); err != nil {
					return err
				}
			case "text":
				printPlan(cmd.OutOrStdout(), plan)
				printStorage(cmd.OutOrStdout(), prog, stateDir(cmd), o.run)
			default:
				return usagef("unknown --output %q: expected text or json", o.output)
			}
			return planError(plan, false)
		},
	}
	addSetFlag(cmd, &o.set)
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	// 0 is the default's mark: what it comes to depends on the program.
	cmd.Flags().IntVar(&o.slots, "slots", 0, "task slots the run would have (default: the CPU count, or the widest task's slots if more; with --run, the run's)")
	cmd.Flags().StringVar(&o.run, "run", "", "show what resuming this `run` would do: its own program, less what it completed")
	cmd.Flags().StringArrayVar(&o.only, "only", nil, "plan only this `task` or group and what it depends on")
	cmd.Flags().StringArrayVar(&o.packages, "package", nil, "an application package the run would have: `name[@version]=dir`")
	cmd.Flags().StringVar(&o.backend, "backend", "local", "the backend to plan for: local or azurebatch")
	o.batch.flags(cmd)
	return cmd
}

// planError is the error ending a plan with errors in its checks, or nil
// when it has none; starting says a run was to start from it.
func planError(p *planner.Plan, starting bool) error {
	n := len(p.Errors())
	if n == 0 {
		return nil
	}
	what := "1 error"
	if n > 1 {
		what = fmt.Sprintf("%d errors", n)
	}
	msg := fmt.Sprintf("the plan for the %s backend has %s", p.Backend, what)
	if starting {
		msg += ": nothing was run"
	}
	return &exitError{code: exitFailed, err: errors.New(msg)}
}

// planRun is what plan --run reads of the run: its directory, meta
// data, program (split, nil if it cannot be) and state, or the error
// that stopped it.
type planRun struct {
	dir  string
	meta executor.Meta
	was  *keptJSON
	st   *executor.RunState
	err  error
}

func readPlanRun(state, id string) *planRun {
	r := &planRun{}
	dir, err := executor.FindRun(state, id)
	if err != nil {
		r.err = &exitError{code: exitFailed, err: err}
		return r
	}
	r.dir = dir
	if r.meta, r.err = readMeta(dir); r.err != nil {
		return r
	}
	if r.meta.Backend == azurebatch.Name {
		r.err = &exitError{code: exitFailed, err: fmt.Errorf("run %s runs on Azure Batch: bmc resume takes it up as it is, following its job, and plans nothing of it again", r.meta.ID)}
		return r
	}
	kept, err := readKept(dir)
	if err != nil {
		r.err = err
		return r
	}
	if r.was, err = splitKept(kept); err == nil {
		r.was.index()
	}
	r.st, r.err = executor.LoadState(dir)
	return r
}

// resumePlanned is what bmc resume RUN would run, for plan --run: the
// run's own program and the tasks it completed, from r. The slots and
// packages are the run's unless given. It says on stderr that the run's
// program is planned, and warns where FILE (compiled as prog) now
// differs from it.
func resumePlanned(cmd *cobra.Command, file string, prog *compiler.Program, r *planRun, o *planOptions) (*compiler.Program, map[string]bool, error) {
	if r.err != nil {
		return nil, nil, r.err
	}
	dir, meta, st := r.dir, r.meta, r.st
	// Compared as the run was started: with its --only and, unless --set
	// is given, the params it started with, not the spec's defaults (a run
	// given --set is no change of FILE).
	var asRun *compiler.Program
	if len(o.set.values) == 0 && len(meta.Params) > 0 {
		asRun, _ = compileAsRun(file, meta.Params, meta, nil) // nil: compared as compiled
	}
	if asRun != nil {
		prog = asRun
	} else if len(meta.Only) > 0 {
		if p, err := planner.Only(prog, meta.Only); err == nil {
			prog = p
		}
	}
	// The run's program is read by comparing it with FILE's: the tasks
	// that are the same are not decoded.
	var (
		stored *compiler.Program
		c      *programCompare
		err    = errors.New("the program is not split")
	)
	if r.was != nil {
		if c, err = compareSplit(r.was, prog); err == nil {
			stored, err = c.program()
		}
	}
	if err != nil {
		c = nil
		if stored, err = executor.ReadProgram(dir); err != nil {
			return nil, nil, err
		}
	}
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "bmc: the plan of run %s's own program, which %s runs\n", meta.ID, hint(cmd, "resume", meta.ID))
	if stored.Name != prog.Name {
		fmt.Fprintf(stderr, "bmc: warning: run %s is of workload %s, not %s's %s: bmc resume runs the run's own program, as planned here\n", meta.ID, stored.Name, file, prog.Name)
	} else if c != nil && c.diff != "" {
		fmt.Fprintf(stderr, "bmc: warning: %s %s since run %s started: bmc resume runs the program the run started with, as planned here; bmc run %s runs the spec as it is now\n", file, c.diff, meta.ID, file)
	}
	done := st.Done()
	if spec, _, err := runSpecPath(dir, stateDir(cmd), meta); err == nil {
		warnChangedInputs(stderr, dir, meta.ID, stored, done, filepath.Dir(spec), prog)
	}
	if !cmd.Flags().Changed("slots") && meta.Slots > 0 {
		o.slots = meta.Slots
	}
	if !cmd.Flags().Changed("package") {
		o.packages = meta.Packages
	}
	return stored, done, nil
}

// taskText is t as its run directory would keep it, less its hash.
func taskText(t compiler.Task) string {
	t.Hash = ""
	return redactedText(t)
}

func redactedText(v any) string {
	b, _, err := redact.JSON(v, false)
	if err != nil {
		return ""
	}
	return string(b)
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

// envChecks are what bmc run would refuse in this environment, though the
// spec is fine: warnings, as a plan is often made where the run's
// variables are not set (CI).
func envChecks(prog *compiler.Program) []planner.Check {
	var out []planner.Check
	if cb := prog.Finalize.Callback; cb != nil && cb.URLEnv != "" && os.Getenv(cb.URLEnv) == "" {
		out = append(out, planner.Check{Severity: planner.Warning, Message: fmt.Sprintf("the callback goes to the URL in $%s, which is not set here: bmc run refuses to start without it", cb.URLEnv)})
	}
	if s := prog.Storage; s != nil && s.Backend == "azure" && s.AccountURL == "" && !storageConfigured() {
		out = append(out, planner.Check{Severity: planner.Warning, Message: "storage azure: no blob account is configured here (AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_URL or AZURE_STORAGE_ACCOUNT): bmc run refuses to start without one"})
	}
	return out
}

// storageConfigured reports whether the environment names a blob account.
func storageConfigured() bool {
	for _, k := range []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_ACCOUNT"} {
		if os.Getenv(k) != "" {
			return true
		}
	}
	return false
}

package main

// bmc plan --backend azurebatch: Batch's limits checked, and what a run
// would create, without calling Batch.

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

type batchPlanOptions struct {
	pool       string
	finalizeOn string
}

func (o *batchPlanOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.pool, "pool", "", "azurebatch: plan for this Batch `pool` instead of the spec's")
	f.StringVar(&o.finalizeOn, "finalize-on", "pool", "azurebatch: where the finalize step would run: pool or client")
}

func planBatch(cmd *cobra.Command, prog *compiler.Program, o *planOptions) error {
	prog = withPool(prog, o.batch.pool)
	if o.batch.finalizeOn != "pool" && o.batch.finalizeOn != "client" {
		return usagef("unknown --finalize-on %q: expected pool or client", o.batch.finalizeOn)
	}
	var done map[string]bool
	if o.run != "" {
		return usagef("--run: runs on Azure Batch cannot be resumed yet")
	}
	copt := azurebatch.CheckOptions{JobManager: o.batch.finalizeOn == "pool"}
	plan := planner.New(prog, azurebatch.Capabilities(prog.Pool), done)
	plan.Checks = append(plan.Checks, azurebatch.Check(prog, copt)...)
	var sum *azurebatch.Summary
	if len(plan.Errors()) == 0 {
		s, err := azurebatch.Describe(prog, copt)
		if err != nil {
			plan.Checks = append(plan.Checks, planner.Check{Severity: planner.Error, Message: err.Error()})
		}
		sum = s
	}
	out := cmd.OutOrStdout()
	switch o.output {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			*planner.Plan
			Batch *azurebatch.Summary `json:"azurebatch,omitempty"`
		}{plan, sum}); err != nil {
			return err
		}
	case "text":
		printPlan(out, plan)
		if sum != nil {
			printBatch(out, prog, sum)
		}
	default:
		return usagef("unknown --output %q: expected text or json", o.output)
	}
	if len(plan.Errors()) > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("the plan does not fit the %s backend", plan.Backend)}
	}
	return nil
}

func printBatch(w io.Writer, prog *compiler.Program, s *azurebatch.Summary) {
	fmt.Fprintf(w, "on Azure Batch a run creates:\n")
	p := s.Pool
	if p.ID != "" {
		size := ""
		switch {
		case p.EnableAutoScale != nil && *p.EnableAutoScale:
			size = "autoscale"
		case p.TargetDedicatedNodes != nil:
			size = fmt.Sprintf("%d dedicated + %d spot nodes", *p.TargetDedicatedNodes, *p.TargetLowPriorityNodes)
		}
		slots := int32(1)
		if p.TaskSlotsPerNode != nil {
			slots = *p.TaskSlotsPerNode
		}
		fmt.Fprintf(w, "  pool:          %s (%s, %s, %d slots per node): %s\n", p.ID, p.VMSize, size, slots, s.PoolReused)
	} else {
		fmt.Fprintf(w, "  pool:          %s (must exist: the spec gives nothing to create it from)\n", prog.Pool.ID)
	}
	fmt.Fprintf(w, "  job:           %s-<time>-<random>, with task dependencies\n", prog.Name)
	fmt.Fprintf(w, "  tasks:         %d", s.Tasks)
	if s.Barriers > 0 {
		fmt.Fprintf(w, " + %d barrier tasks (fan-ins too long for one dependency list)", s.Barriers)
	}
	fmt.Fprintf(w, ", in %d add-collection requests; largest task %d bytes\n", s.Requests, s.LargestTask)
	fmt.Fprintf(w, "  finalize:      %s\n", s.Finalize)
}

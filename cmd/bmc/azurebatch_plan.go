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
	pool         string
	poolIdentity string
	bmcPackage   string
	finalizeOn   string
	detach       bool
}

func (o *batchPlanOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.pool, "pool", "", "azurebatch: plan for this Batch `pool` instead of the spec's")
	f.StringVar(&o.poolIdentity, "pool-identity", "", "azurebatch: plan for a pool with this managed identity (ARM `id`) instead of the spec's pool.identity")
	f.StringVar(&o.bmcPackage, "bmc-package", "", "azurebatch: plan with bmc for the pool from this application `package[@version]`")
	f.StringVar(&o.finalizeOn, "finalize-on", "auto", "azurebatch: where the finalize step would run: pool, client, or auto (as bmc run decides)")
	f.BoolVar(&o.detach, "detach", false, "azurebatch: plan a run that leaves once its tasks are submitted")
}

// batchStorageCheck refuses a spec whose storage is the local folder
// store, unless --storage (flag) says otherwise: the pool's nodes cannot
// reach it, and the run would quietly use the blob account instead.
func batchStorageCheck(prog *compiler.Program, flag string) []planner.Check {
	if flag != "" || prog.Storage == nil || prog.Storage.Backend != "local" {
		return nil
	}
	return []planner.Check{{Severity: planner.Error, Message: "storage.backend is local: the pool's nodes cannot reach this machine's folder store, and the azurebatch backend needs a blob account (leave storage out, or give --storage azure)"}}
}

func planBatch(cmd *cobra.Command, prog *compiler.Program, o *planOptions) error {
	prog = withPoolIdentity(withPool(prog, o.batch.pool), o.batch.poolIdentity)
	place, err := whereFinalize(o.batch.finalizeOn, o.batch.detach, poolIdentity(prog), bmcForPool(o.batch.bmcPackage))
	if err != nil {
		return err
	}
	var done map[string]bool
	if o.run != "" {
		return usagef("--run: bmc resume takes a run on Azure Batch up as it is, following its job, and plans nothing of it again")
	}
	copt := azurebatch.CheckOptions{JobManager: place.pool, SpecDir: o.specDir}
	plan := planner.New(prog, azurebatch.Capabilities(prog.Pool), done)
	plan.Checks = append(plan.Checks, azurebatch.Check(prog, copt)...)
	plan.Checks = append(plan.Checks, specInputChecks(prog, nil, o.specDir)...)
	plan.Checks = append(plan.Checks, batchStorageCheck(prog, "")...)
	var sum *azurebatch.Summary
	if len(plan.Errors()) == 0 {
		s, err := azurebatch.Describe(prog, copt)
		if err != nil {
			plan.Checks = append(plan.Checks, planner.Check{Severity: planner.Error, Message: err.Error()})
		}
		sum = s
	}
	plan.Locate()
	out := cmd.OutOrStdout()
	switch o.output {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			*planner.Plan
			Batch      *azurebatch.Summary `json:"azurebatch,omitempty"`
			FinalizeOn string              `json:"finalizeOn"`
			Why        string              `json:"finalizeOnWhy"`
		}{plan, sum, place.String(), place.why}); err != nil {
			return err
		}
	case "text":
		printPlan(out, plan)
		if sum != nil {
			printBatch(out, prog, sum)
			fmt.Fprintf(out, "                 because %s\n", place.why)
		}
	default:
		return usagef("unknown --output %q: expected text or json", o.output)
	}
	return planError(plan, false)
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

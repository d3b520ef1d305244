package azurebatch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

func checkProgram(tasks ...compiler.Task) *compiler.Program {
	return &compiler.Program{Name: "w", Tasks: tasks, Pool: &compiler.Pool{ID: "pool-1", VMSize: "Standard_D4s_v5", SlotsPerNode: 4, Dedicated: 2,
		Image: &compiler.Image{Publisher: "p", Offer: "o", SKU: "s"}, NodeAgentSKU: "a"}}
}

func checksOf(sev planner.Severity, cs []planner.Check) []planner.Check {
	var out []planner.Check
	for _, c := range cs {
		if c.Severity == sev {
			out = append(out, c)
		}
	}
	return out
}

// TestCheckTimeoutRetries: Batch does not retry an attempt its
// maxWallClockTime ended, so a task with both timeout and retries gets a
// warning; the tasks of a sweep that defaults give both share one.
func TestCheckTimeoutRetries(t *testing.T) {
	timeout := compiler.Duration(time.Minute)
	one := checksOf(planner.Warning, Check(checkProgram(
		compiler.Task{ID: "both", Run: "true", Slots: 1, Timeout: timeout, Retries: 2},
		compiler.Task{ID: "timeout-only", Run: "true", Slots: 1, Timeout: timeout},
		compiler.Task{ID: "retries-only", Run: "true", Slots: 1, Retries: 2},
	), CheckOptions{}))
	if len(one) != 1 || one[0].Task != "both" || !strings.Contains(one[0].Message, "an attempt that times out is the last") {
		t.Errorf("warnings %+v, want one for task both", one)
	}

	var sweep []compiler.Task
	for i := range 5 {
		sweep = append(sweep, compiler.Task{ID: fmt.Sprint("train-", i), Run: "true", Slots: 1, Timeout: timeout, Retries: 1})
	}
	many := checksOf(planner.Warning, Check(checkProgram(sweep...), CheckOptions{}))
	if len(many) != 1 || many[0].Task != "" ||
		!strings.HasPrefix(many[0].Message, "5 tasks (train-0, train-1, train-2 and 2 more) have timeout and retries: ") {
		t.Errorf("warnings %+v, want one naming the 5 tasks", many)
	}
}

// TestCheckPoolWithoutNodes: a pool the spec would create with no nodes
// and no autoscale never runs a task, so the plan is refused; a pool named
// without a vmSize is used as it is, whatever the spec says of nodes.
func TestCheckPoolWithoutNodes(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*compiler.Pool)
		want string // a fragment of the one error; "" for none
	}{
		{"no nodes", func(p *compiler.Pool) { p.Dedicated = 0 }, "pool pool-1: 0 dedicated and 0 spot nodes, and no autoscale"},
		{"spot only", func(p *compiler.Pool) { p.Dedicated, p.Spot = 0, 3 }, ""},
		{"autoscale", func(p *compiler.Pool) {
			p.Dedicated, p.Autoscale = 0, &compiler.Autoscale{Formula: "$TargetDedicatedNodes = 1;"}
		}, ""},
		{"existing pool", func(p *compiler.Pool) { *p = compiler.Pool{ID: p.ID, SlotsPerNode: 1} }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, jm := range []bool{false, true} {
				prog := checkProgram(compiler.Task{ID: "t", Run: "true", Slots: 1})
				c.edit(prog.Pool)
				errs := checksOf(planner.Error, Check(prog, CheckOptions{JobManager: jm}))
				switch {
				case c.want == "" && len(errs) > 0:
					t.Errorf("job manager %v: errors %+v", jm, errs)
				case c.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Message, c.want)):
					t.Errorf("job manager %v: errors %+v, want one with %q", jm, errs, c.want)
				}
			}
		})
	}
}

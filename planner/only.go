package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bmc-dev/bmc/compiler"
)

// Only narrows a program to the named tasks (ids or matrix groups) and
// everything upstream of them, for debugging one part of a workload. The
// finalize step stays.
func Only(prog *compiler.Program, names []string) (*compiler.Program, error) {
	idx := make(map[string]int, len(prog.Tasks))
	for i, t := range prog.Tasks {
		idx[t.ID] = i
	}
	groups := make(map[string][]string, len(prog.Groups))
	for _, g := range prog.Groups {
		groups[g.ID] = g.Members
	}
	keep := make([]bool, len(prog.Tasks))
	var stack []int
	push := func(id string) {
		if i, ok := idx[id]; ok && !keep[i] {
			keep[i] = true
			stack = append(stack, i)
		}
	}
	for _, n := range names {
		_, isTask := idx[n]
		members, isGroup := groups[n]
		if !isTask && !isGroup {
			var cands []string
			for _, t := range prog.Tasks {
				if strings.Contains(t.ID, n) {
					cands = append(cands, t.ID)
				}
			}
			if len(cands) > 5 {
				cands = append(cands[:5], "…")
			}
			msg := fmt.Sprintf("--only %s: no task or matrix group has that id", n)
			if len(cands) > 0 {
				msg += " (similar: " + strings.Join(cands, ", ") + ")"
			}
			return nil, fmt.Errorf("%s", msg)
		}
		push(n)
		for _, m := range members {
			push(m)
		}
	}
	for len(stack) > 0 {
		t := &prog.Tasks[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		for _, d := range t.DependsOn {
			push(d)
		}
		for _, g := range t.DependsOnGroups {
			for _, m := range groups[g] {
				push(m)
			}
		}
	}
	out := prog.Subset(keep)
	// Groups keep the members that stay. A dependency on a group whose
	// members were all kept stays a group dependency.
	out.Groups = nil
	for _, g := range prog.Groups {
		var m []string
		for _, id := range g.Members {
			if keep[idx[id]] {
				m = append(m, id)
			}
		}
		if len(m) > 0 {
			out.Groups = append(out.Groups, compiler.Group{ID: g.ID, Members: m})
		}
	}
	slices.SortFunc(out.Groups, func(a, b compiler.Group) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

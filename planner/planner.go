// Package planner decides what a run will do: from a compiled program, a
// backend's declared capabilities and the state of an earlier attempt of
// the same run, it builds the graph the executor walks (dependencies as
// indexes, matrix groups kept whole), priorities by critical path, level
// widths, what a resume skips, and the checks the backend's limits impose.
// It is pure: no I/O, no clock.
package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/schema"
)

// Capabilities are what a backend declares up front; the planner checks a
// program against them before anything runs.
type Capabilities struct {
	// Name of the backend: local, azurebatch.
	Name string `json:"name"`
	// NativeDependencies: the backend resolves dependsOn itself (Batch
	// task dependencies); otherwise the executor schedules.
	NativeDependencies bool `json:"nativeDependencies"`
	// Slots is the number of task slots available at once (0 = unknown).
	Slots int `json:"slots"`
	// MaxTaskSlots is the most slots one task may take (0 = Slots).
	MaxTaskSlots int `json:"maxTaskSlots,omitempty"`
	// Containers: tasks with a container run in it.
	Containers bool `json:"containers"`
	// Packages: application packages are provided.
	Packages bool `json:"packages"`
	// Packages the backend has, name -> versions ("" = default).
	AvailablePackages map[string][]string `json:"-"`
}

// Severity of a check.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Check is something the plan says about the program: what the backend's
// limits make of it, or a hazard in the program itself (outputs that
// overwrite each other).
type Check struct {
	Severity Severity `json:"severity"`
	Task     string   `json:"task,omitempty"`
	Message  string   `json:"message"`
	// File, Line and Col are where in the spec the check is about, when
	// known: the task's id (see Locate), or the place a warning of the
	// compile names.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
	// Input, when not 0, is the task's input (1 for its first) the check
	// is about: Locate places it at that input's from.
	Input int `json:"-"`
}

// Pos is where the check is, as file:line:col; "" when not known.
func (c Check) Pos() string {
	if c.Line == 0 {
		return ""
	}
	return schema.Pos{File: c.File, Line: c.Line, Col: c.Col}.String()
}

// Locate gives each check about a task that has no place yet the place
// of the task in the spec (its id), and each about the pool the place of
// the pool, when the program knows it: a spec compiled in this process,
// not one read back from a run directory.
func (p *Plan) Locate() {
	var idx map[string]int
	for i := range p.Checks {
		c := &p.Checks[i]
		if c.Line > 0 {
			continue
		}
		if c.Task == "" {
			// A check of the pool names it first, as "pool <id>: …".
			if pool := p.Program.Pool; pool != nil && strings.HasPrefix(c.Message, "pool "+pool.ID+":") {
				if pos, ok := p.Program.PoolPos(); ok {
					c.File, c.Line, c.Col = pos.File, pos.Line, pos.Col
				}
			}
			continue
		}
		if idx == nil {
			idx = make(map[string]int, len(p.Program.Tasks))
			for j, t := range p.Program.Tasks {
				idx[t.ID] = j
			}
		}
		j, ok := idx[c.Task]
		if c.Task == compiler.FinalizeID {
			j, ok = -1, true
		}
		if !ok {
			continue
		}
		if pos, ok := p.Program.InputPos(j, c.Input-1); ok && c.Input > 0 {
			c.File, c.Line, c.Col = pos.File, pos.Line, pos.Col
		} else if pos, ok := p.Program.TaskPos(j); ok {
			c.File, c.Line, c.Col = pos.File, pos.Line, pos.Col
		}
	}
}

// Plan is a program made ready for one backend. The JSON view is the
// summary a person reviews; the graph is for the executor.
type Plan struct {
	Workload     string       `json:"workload"`
	Backend      string       `json:"backend"`
	Tasks        int          `json:"tasks"`
	Groups       []GroupInfo  `json:"groups,omitempty"`
	Levels       []int        `json:"levels"`
	CriticalPath []string     `json:"criticalPath"`
	Skip         []string     `json:"skip,omitempty"`
	ToRun        int          `json:"toRun"`
	Checks       []Check      `json:"checks,omitempty"`
	Capabilities Capabilities `json:"capabilities"`

	Program *compiler.Program `json:"-"`
	Graph   *Graph            `json:"-"`
	// Done marks tasks that an earlier attempt of the run completed.
	Done []bool `json:"-"`
}

// GroupInfo summarizes a matrix group.
type GroupInfo struct {
	ID      string `json:"id"`
	Members int    `json:"members"`
}

// Graph is the task graph by index, in program order (topological). A
// dependency on a matrix group is one edge to the group, not one per
// member.
type Graph struct {
	Deps      [][]int32 // per task: tasks it waits for
	GroupDeps [][]int32 // per task: groups it waits for
	Group     []int32   // per task: its group, or -1
	Members   [][]int32 // per group: its tasks
	// Dependents are the reverse edges: per task, the tasks waiting on it
	// directly; per group, the tasks waiting on the whole group.
	Dependents      [][]int32
	GroupDependents [][]int32
	// Priority is the number of tasks on the longest path from the task to
	// the end: the scheduler runs the longest chains first.
	Priority []int32
	Level    []int32
}

// Errors reports whether any check is an error.
func (p *Plan) Errors() []Check {
	var out []Check
	for _, c := range p.Checks {
		if c.Severity == Error {
			out = append(out, c)
		}
	}
	return out
}

// New plans a program for a backend. done names tasks an earlier attempt
// of this run completed (resume); they are not run again.
func New(prog *compiler.Program, caps Capabilities, done map[string]bool) *Plan {
	g := buildGraph(prog)
	p := &Plan{
		Workload:     prog.Name,
		Backend:      caps.Name,
		Tasks:        len(prog.Tasks),
		Capabilities: caps,
		Program:      prog,
		Graph:        g,
		Done:         make([]bool, len(prog.Tasks)),
	}
	for _, gr := range prog.Groups {
		p.Groups = append(p.Groups, GroupInfo{ID: gr.ID, Members: len(gr.Members)})
	}
	for i, t := range prog.Tasks {
		lv := int(g.Level[i])
		for len(p.Levels) <= lv {
			p.Levels = append(p.Levels, 0)
		}
		p.Levels[lv]++
		if done[t.ID] {
			p.Done[i] = true
			p.Skip = append(p.Skip, t.ID)
		}
	}
	p.ToRun = len(prog.Tasks) - len(p.Skip)
	p.CriticalPath = criticalPath(prog, g)
	p.Checks = check(prog, caps)
	return p
}

func buildGraph(prog *compiler.Program) *Graph {
	n := len(prog.Tasks)
	idx := make(map[string]int32, n)
	for i, t := range prog.Tasks {
		idx[t.ID] = int32(i)
	}
	gidx := make(map[string]int32, len(prog.Groups))
	g := &Graph{
		Deps: make([][]int32, n), GroupDeps: make([][]int32, n), Group: make([]int32, n),
		Members: make([][]int32, len(prog.Groups)), Dependents: make([][]int32, n),
		GroupDependents: make([][]int32, len(prog.Groups)), Priority: make([]int32, n), Level: make([]int32, n),
	}
	for i := range g.Group {
		g.Group[i] = -1
	}
	for gi, gr := range prog.Groups {
		gidx[gr.ID] = int32(gi)
		g.Members[gi] = make([]int32, len(gr.Members))
		for j, m := range gr.Members {
			t := idx[m]
			g.Members[gi][j] = t
			g.Group[t] = int32(gi)
		}
	}
	for i, t := range prog.Tasks {
		if len(t.DependsOn) > 0 {
			g.Deps[i] = make([]int32, len(t.DependsOn))
			for j, d := range t.DependsOn {
				di := idx[d]
				g.Deps[i][j] = di
				g.Dependents[di] = append(g.Dependents[di], int32(i))
			}
		}
		if len(t.DependsOnGroups) > 0 {
			g.GroupDeps[i] = make([]int32, len(t.DependsOnGroups))
			for j, d := range t.DependsOnGroups {
				gi := gidx[d]
				g.GroupDeps[i][j] = gi
				g.GroupDependents[gi] = append(g.GroupDependents[gi], int32(i))
			}
		}
	}
	// Levels forward (program order is topological), priorities backward.
	groupLevel := make([]int32, len(prog.Groups))
	for i := 0; i < n; i++ {
		lv := int32(0)
		for _, d := range g.Deps[i] {
			lv = max(lv, g.Level[d]+1)
		}
		for _, gd := range g.GroupDeps[i] {
			lv = max(lv, groupLevel[gd]+1)
		}
		g.Level[i] = lv
		if gi := g.Group[i]; gi >= 0 {
			groupLevel[gi] = max(groupLevel[gi], lv)
		}
	}
	groupPrio := make([]int32, len(prog.Groups))
	for i := n - 1; i >= 0; i-- {
		p := max(g.Priority[i], 0) + 1
		if gi := g.Group[i]; gi >= 0 {
			p = max(p, groupPrio[gi]+1)
		}
		g.Priority[i] = p
		for _, d := range g.Deps[i] {
			g.Priority[d] = max(g.Priority[d], p)
		}
		for _, gd := range g.GroupDeps[i] {
			groupPrio[gd] = max(groupPrio[gd], p)
		}
	}
	return g
}

// criticalPath follows the highest priorities from the deepest root.
func criticalPath(prog *compiler.Program, g *Graph) []string {
	best := int32(-1)
	for i := range prog.Tasks {
		if g.Level[i] == 0 && (best < 0 || g.Priority[i] > g.Priority[best]) {
			best = int32(i)
		}
	}
	var path []string
	for best >= 0 {
		path = append(path, prog.Tasks[best].ID)
		next := int32(-1)
		consider := func(d int32) {
			if next < 0 || g.Priority[d] > g.Priority[next] || g.Priority[d] == g.Priority[next] && d < next {
				next = d
			}
		}
		for _, d := range g.Dependents[best] {
			consider(d)
		}
		if gi := g.Group[best]; gi >= 0 {
			for _, d := range g.GroupDependents[gi] {
				consider(d)
			}
		}
		best = next
	}
	return append(path, compiler.FinalizeID)
}

func check(prog *compiler.Program, caps Capabilities) []Check {
	var out []Check
	maxSlots := caps.MaxTaskSlots
	if maxSlots == 0 {
		maxSlots = caps.Slots
	}
	containers, packages := 0, map[string]bool{}
	for _, t := range prog.Tasks {
		if maxSlots > 0 && t.Slots > maxSlots {
			msg := fmt.Sprintf("task takes %d slots; the %s backend has %d", t.Slots, caps.Name, maxSlots)
			if caps.Name == "local" {
				msg += fmt.Sprintf(" (--slots %d or more runs it)", t.Slots)
			}
			out = append(out, Check{Severity: Error, Task: t.ID, Message: msg})
		} else if p := prog.Pool; !caps.NativeDependencies && p != nil && p.SlotsPerNode > 0 && t.Slots > p.SlotsPerNode {
			// The local backend runs it, but a node of the spec's pool
			// would not: Batch would never start it. A pool without an
			// id (--pool names it on Batch) is the spec's.
			pool := "the spec's pool"
			if p.ID != "" {
				pool = "pool " + p.ID
			}
			out = append(out, Check{Severity: Warning, Task: t.ID, Message: fmt.Sprintf("task takes %d slots, more than the %d of a node of %s (slotsPerNode): on Azure Batch it would never start", t.Slots, p.SlotsPerNode, pool)})
		}
		if t.Container != nil {
			containers++
		}
		for _, p := range t.Packages {
			packages[p.Name] = true
		}
	}
	out = append(out, warnings(prog)...)
	if containers > 0 && !caps.Containers {
		out = append(out, Check{Severity: Warning, Task: "", Message: fmt.Sprintf("%d task(s) name a container; the %s backend runs them on the host", containers, caps.Name)})
	}
	if caps.Packages && caps.AvailablePackages != nil {
		names := make([]string, 0, len(packages))
		for n := range packages {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			var want string
			for _, p := range prog.Packages {
				if p.Name == n {
					want = p.Version
				}
			}
			vs, ok := caps.AvailablePackages[strings.ToLower(n)]
			// A reference without a version takes the default: a package
			// given without a version, or the only one given.
			usable := ok && (want == "" && (slices.Contains(vs, "") || len(vs) == 1) ||
				want != "" && (slices.Contains(vs, want) || slices.Contains(vs, "")))
			if !usable {
				hint := fmt.Sprintf("--package %s=DIR", n)
				if want != "" {
					hint = fmt.Sprintf("--package %s@%s=DIR", n, want)
				}
				out = append(out, Check{Severity: Error, Task: "", Message: fmt.Sprintf("package %s is not available on the %s backend: give it with %s", pkgName(n, want), caps.Name, hint)})
			}
		}
	}
	return out
}

func pkgName(n, v string) string {
	if v == "" {
		return n
	}
	return n + "@" + v
}

// warnings are the hazards the compiler found in the spec, each at its
// place: the spec is valid, but likely not as meant.
func warnings(prog *compiler.Program) []Check {
	var out []Check
	for _, d := range prog.Warnings() {
		msg := d.Msg
		if d.Hint != "" {
			msg += " (" + d.Hint + ")"
		}
		out = append(out, Check{Severity: Warning, Message: msg, File: d.Pos.File, Line: d.Pos.Line, Col: d.Pos.Col})
	}
	return out
}

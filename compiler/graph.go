package compiler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/bmc-dev/bmc/schema"
)

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		r := id[i]
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// matrixDesc names the matrix values of member m of ts as they were
// written: a value of a list in the spec as its text there (1.10, 0x10),
// one from a param as interpolated (a number given as JSON writes
// numbers keeps its text), so that two values that give one id are told
// apart.
func matrixDesc(ts *taskSpec, m int) string {
	parts := make([]string, len(ts.matrixKeys))
	for k := len(ts.matrixKeys) - 1; k >= 0; k-- {
		// Members are numbered as an odometer turns: the last key fastest.
		vals := ts.matrixVals[k]
		i := m % len(vals)
		m /= len(vals)
		text := interpolated(vals[i])
		if n := ts.matrixNodes[k]; n.Kind == schema.KindList && i < len(n.Vals) {
			text = scalarText(n.Vals[i])
		}
		parts[k] = fmt.Sprintf("%s=%q", ts.matrixKeys[k], text)
	}
	return strings.Join(parts, ", ")
}

// maxClashes bounds the matrix id clashes told one by one for a task:
// the rest are counted, so that a huge matrix does not bury the spec's
// other errors.
const maxClashes = 20

// checkIDs checks ids after expansion: characters, length, and
// case-insensitive uniqueness (Azure Batch's rule), with groups.
func (c *compiler) checkIDs(specs []*taskSpec) {
	type owner struct {
		spec   *taskSpec
		member int
	}
	seen := make(map[string]owner, len(c.prog.Tasks))
	// Group ids are unique as task ids are: a dependency on a group waits
	// for all its members, and two groups of one name would be one.
	groups := map[string]*taskSpec{}
	for _, ts := range specs {
		if len(ts.matrixKeys) == 0 || ts.count == 0 || ts.idUnknown != nil {
			continue
		}
		g := c.prog.Tasks[ts.first].Group
		low := strings.ToLower(g)
		if prev, dup := groups[low]; dup {
			d := c.errorf(ts.idNode, []any{"tasks", ts.i, "id"}, "duplicate matrix task %q: ids are unique case-insensitively (first at %d:%d)", g, prev.idNode.Pos.Line, prev.idNode.Pos.Col)
			d.Related = []schema.Pos{prev.idNode.Pos}
			continue
		}
		groups[low] = ts
	}
	for _, ts := range specs {
		if ts.idUnknown != nil {
			continue
		}
		p := []any{"tasks", ts.i, "id"}
		lenReported, charReported, otherReported := false, false, false
		clashes := 0
		for m := 0; m < ts.count; m++ {
			t := &c.prog.Tasks[ts.first+m]
			if !validID(t.ID) {
				switch {
				case len(t.ID) > 64 && !lenReported:
					lenReported = true
					d := c.errorf(ts.idNode, p, "task id %q is %d characters; Azure Batch allows at most 64", t.ID, len(t.ID))
					if t.Matrix != nil {
						d.Msg += fmt.Sprintf(" (from matrix %s)", matrixDesc(ts, m))
						d.Hint = "shorten the task id or the matrix values"
					}
				case len(t.ID) <= 64 && !charReported:
					charReported = true
					c.errorf(ts.idNode, p, "task id %q: expected 1-64 letters, digits, _ and -", t.ID)
				}
				continue
			}
			low := strings.ToLower(t.ID)
			if low == FinalizeID {
				c.errorf(ts.idNode, p, "task id %q is reserved for the finalize step", t.ID)
				continue
			}
			if prev, dup := seen[low]; dup {
				// Every clash within the matrix is told, each member
				// against the first of its id; a clash with another
				// task once, as the two are one mistake.
				switch {
				case prev.spec == ts:
					if clashes++; clashes <= maxClashes {
						c.errorf(ts.idNode, p, "matrix %s and %s both give task id %q", matrixDesc(ts, prev.member), matrixDesc(ts, m), t.ID)
					}
				case !otherReported:
					otherReported = true
					d := c.errorf(ts.idNode, p, "duplicate task id %q: ids are unique case-insensitively (first at %d:%d)", t.ID, prev.spec.idNode.Pos.Line, prev.spec.idNode.Pos.Col)
					d.Related = []schema.Pos{prev.spec.idNode.Pos}
				}
				continue
			}
			seen[low] = owner{ts, m}
			if g, ok := groups[low]; ok && g != ts {
				d := c.errorf(ts.idNode, p, "task id %q is also the name of the matrix group at %d:%d", t.ID, g.idNode.Pos.Line, g.idNode.Pos.Col)
				d.Related = []schema.Pos{g.idNode.Pos}
			}
		}
		if clashes > maxClashes {
			c.errorf(ts.idNode, p, "and %d more pairs of matrix values that give one task id", clashes-maxClashes)
		}
	}
	// A task dropped for other errors keeps its id: one that another task
	// has too is reported now, not once the other errors are fixed.
	first := map[string]*taskSpec{}
	for _, ts := range c.droppedSpecs {
		if !ts.id.constant() {
			continue // the names it may take are not known
		}
		low := strings.ToLower(scalarText(ts.idNode))
		other := first[low]
		if o, ok := seen[low]; ok && (other == nil || o.spec.i < other.i) {
			other = o.spec
		}
		if g, ok := groups[low]; ok && (other == nil || g.i < other.i) {
			other = g
		}
		if other == nil {
			first[low] = ts
			continue
		}
		at, prev := ts, other
		if other.i > ts.i {
			at, prev = other, ts
		}
		d := c.errorf(at.idNode, []any{"tasks", at.i, "id"}, "duplicate task id %q: ids are unique case-insensitively (first at %d:%d)", scalarText(at.idNode), prev.idNode.Pos.Line, prev.idNode.Pos.Col)
		d.Related = []schema.Pos{prev.idNode.Pos}
	}
	if g, ok := groups[FinalizeID]; ok {
		c.errorf(g.idNode, []any{"tasks", g.i, "id"}, "%q is reserved for the finalize step", c.prog.Tasks[g.first].Group)
	}
}

// resolveDeps turns dependsOn names into task ids and group ids.
func (c *compiler) resolveDeps(specs []*taskSpec, memberDeps [][]string) {
	tasks := c.prog.Tasks
	byID := make(map[string]int, len(tasks))
	for i := range tasks {
		byID[tasks[i].ID] = i
	}
	groupIdx := map[string]int{}
	for i, g := range c.prog.Groups {
		groupIdx[g.ID] = i
	}
	type resolved struct{ ids, groups []string }
	// A name in error adds no edge, and the task keeps the others: a
	// cycle through them is one whatever the name, and is reported with
	// its error.
	resolve := func(ts *taskSpec, member int, names []string) resolved {
		var r resolved
		self := tasks[ts.first+member]
		for j, name := range names {
			if ts.broken[ts.deps[j]] {
				continue // reported, and the name it gives is not known
			}
			n := ts.depNodes[j]
			p := []any{"tasks", ts.i, "dependsOn", ts.depIdx[j]}
			if g, isGroup := groupIdx[name]; isGroup {
				if g2 := c.prog.Groups[g]; g2.ID == self.Group {
					c.errorOnce(n, p, "task %q depends on its own matrix group %q", self.ID, name)
					continue
				}
				r.groups = append(r.groups, name)
				continue
			}
			if _, exists := byID[name]; !exists {
				// Unknown, or an id validate does not know yet: no edge.
				c.unknownDep(n, p, name, byID, specs)
				continue
			}
			if name == self.ID {
				c.errorOnce(n, p, "task %q depends on itself", self.ID)
				continue
			}
			r.ids = append(r.ids, name)
		}
		r.ids = dedupe(r.ids)
		r.groups = dedupe(r.groups)
		return r
	}
	for _, ts := range specs {
		if len(ts.deps) == 0 {
			continue
		}
		var shared resolved
		for m := 0; m < ts.count; m++ {
			if m == 0 || ts.varDeps {
				shared = resolve(ts, m, memberDeps[ts.first+m])
			}
			t := &tasks[ts.first+m]
			t.DependsOn, t.DependsOnGroups = shared.ids, shared.groups
		}
	}
}

func dedupe(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func (c *compiler) unknownDep(n *schema.Node, p []any, name string, byID map[string]int, specs []*taskSpec) {
	for _, ts := range c.droppedSpecs {
		if ts.idUnknown.MatchString(name) {
			return
		}
	}
	for _, ts := range specs {
		if ts.idUnknown != nil && ts.idUnknown.MatchString(name) {
			return
		}
	}
	for id := range byID {
		if strings.EqualFold(id, name) {
			d := c.errorf(n, p, "unknown dependsOn target %q", name)
			d.Hint = "did you mean " + id + "? (ids are matched exactly)"
			return
		}
	}
	// Suggest among the names a person wrote: plain task ids and groups,
	// not every matrix member.
	var cands []string
	for _, ts := range specs {
		if ts.count > 0 {
			cands = append(cands, c.prog.Tasks[ts.first].ID)
			if g := c.prog.Tasks[ts.first].Group; g != "" {
				cands = append(cands, g)
			}
		}
	}
	d := c.errorf(n, p, "unknown dependsOn target %q: no task or matrix group has that id", name)
	if s := schema.Suggest(name, cands); s != "" {
		d.Hint = "did you mean " + s + "?"
	}
}

// order checks the graph for cycles and sorts the tasks by level (the
// longest path from a root), ties broken by id: a topological order that
// does not depend on how the spec was written.
func (c *compiler) order(specs []*taskSpec) {
	tasks := c.prog.Tasks
	n := len(tasks)
	g := len(c.prog.Groups)
	idx := make(map[string]int32, n)
	for i := range tasks {
		idx[tasks[i].ID] = int32(i)
	}
	gidx := make(map[string]int32, g)
	for i, gr := range c.prog.Groups {
		gidx[gr.ID] = int32(n + i)
	}
	// Nodes 0..n-1 are tasks, n..n+g-1 groups. A group depends on its
	// members; a task on its dependsOn ids and groups.
	deps := func(v int32, f func(int32)) {
		if int(v) >= n {
			for _, m := range c.prog.Groups[int(v)-n].Members {
				f(idx[m])
			}
			return
		}
		t := &tasks[v]
		for _, d := range t.DependsOn {
			f(idx[d])
		}
		for _, d := range t.DependsOnGroups {
			f(gidx[d])
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, n+g)
	level := make([]int32, n+g)
	var stack []frame
	var cycles int
	var scratch []int32
	for root := int32(0); root < int32(n); root++ {
		if color[root] != white {
			continue
		}
		push := func(v int32) {
			color[v] = grey
			scratch = scratch[:0]
			deps(v, func(d int32) { scratch = append(scratch, d) })
			stack = append(stack, frame{v: v, deps: slices.Clone(scratch)})
		}
		push(root)
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next < len(top.deps) {
				d := top.deps[top.next]
				top.next++
				switch color[d] {
				case white:
					push(d)
				case grey:
					if cycles < 10 {
						c.reportCycle(stack, d, n)
					}
					cycles++
				}
				continue
			}
			lv := int32(0)
			for _, d := range top.deps {
				if int(d) < n {
					lv = max(lv, level[d]+1)
				} else {
					lv = max(lv, level[d]) // a group is as deep as its deepest member
				}
			}
			level[top.v] = lv
			color[top.v] = black
			stack = stack[:len(stack)-1]
		}
	}
	if cycles > 0 {
		return
	}
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(a, b int32) int {
		return cmp.Or(cmp.Compare(level[a], level[b]), strings.Compare(tasks[a].ID, tasks[b].ID))
	})
	sorted := make([]Task, n)
	nodes := make([]*schema.Node, n)
	for i, p := range perm {
		sorted[i], nodes[i] = tasks[p], c.taskNode[p]
	}
	c.prog.Tasks, c.taskNode = sorted, nodes
	slices.SortFunc(c.prog.Groups, func(a, b Group) int { return strings.Compare(a.ID, b.ID) })
}

type frame struct {
	v    int32
	deps []int32
	next int
}

// reportCycle reports the cycle closed by an edge from the top of the DFS
// stack back to back: a -> b -> c -> a, in task ids.
func (c *compiler) reportCycle(stack []frame, back int32, n int) {
	start := len(stack) - 1
	for start >= 0 && stack[start].v != back {
		start--
	}
	var ids []string
	var firstTask int32 = -1
	for _, f := range stack[start:] {
		if int(f.v) < n {
			ids = append(ids, c.prog.Tasks[f.v].ID)
			if firstTask < 0 {
				firstTask = f.v
			}
		} else {
			ids = append(ids, "group "+c.prog.Groups[int(f.v)-n].ID)
		}
	}
	ids = append(ids, ids[0])
	// Name the cycle from its task with the smallest id, so the message
	// does not depend on where the walk began.
	ring := ids[:len(ids)-1]
	best := 0
	for i, id := range ring {
		if !strings.HasPrefix(id, "group ") && (strings.HasPrefix(ring[best], "group ") || id < ring[best]) {
			best = i
		}
	}
	rot := append(slices.Clone(ring[best:]), ring[:best]...)
	rot = append(rot, rot[0])
	key := strings.Join(rot, " -> ")
	if c.cycleSeen == nil {
		c.cycleSeen = map[string]bool{}
	}
	if c.cycleSeen[key] {
		return
	}
	c.cycleSeen[key] = true
	var node *schema.Node
	var path []any
	for i := range c.prog.Tasks {
		if c.prog.Tasks[i].ID == rot[0] {
			node = c.taskNode[i]
			break
		}
	}
	if node == nil {
		node = c.taskNode[firstTask]
	}
	if d := node.Get("dependsOn"); d != nil {
		path = []any{"dependsOn"}
		node = d
	}
	c.errorf(node, append(c.specPath(node), path...), "dependency cycle: %s", key)
}

// specPath finds the tasks[i] path of a node under tasks.
func (c *compiler) specPath(n *schema.Node) []any {
	list := c.root.Get("tasks")
	for i, t := range list.Vals {
		if t == n || t.Get("dependsOn") == n {
			return []any{"tasks", i}
		}
	}
	return nil
}

package compiler

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bmc-dev/bmc/internal/redact"
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

// caseNote says why ids that differ only in case clash.
const caseNote = "Azure Batch takes ids that differ only in case for one"

// memberIndex is the index, in the values of matrix key k, of member m's
// value. Members are numbered as an odometer turns: the last key fastest.
func memberIndex(ts *taskSpec, m, k int) int {
	for j := len(ts.matrixVals) - 1; j > k; j-- {
		m /= len(ts.matrixVals[j])
	}
	return m % len(ts.matrixVals[k])
}

// repeatsValue reports whether members a and b of ts have, for each
// matrix key, values that give one id part (in any case): their ids
// clash because a key repeats a value, which matrixRepeats reports.
func repeatsValue(ts *taskSpec, a, b int) bool {
	for k, parts := range ts.idParts {
		if !strings.EqualFold(parts[memberIndex(ts, a, k)], parts[memberIndex(ts, b, k)]) {
			return false
		}
	}
	return true
}

// matrixRepeats reports each value of a matrix key that gives the id
// part of an earlier value of the key, in any case: every member with it
// has the id of a member with the earlier one. Each value so written is
// told once, at its first repeat, with why it collides with the first
// value of that id part: the same value (and how many times it is
// written), one value written two ways (1 and "1", 1.10 and 1.1), values
// that sanitizing makes one (a.b and a_b), or ids that differ only in
// case (a and A). Past maxClashes values of a key, the rest are counted.
func (c *compiler) matrixRepeats(ts *taskSpec) {
	if ts.count == 0 || len(ts.idParts) != len(ts.matrixKeys) {
		return
	}
	base := ""
	if ts.first < len(c.prog.Tasks) {
		base = c.prog.Tasks[ts.first].Group
	}
	// exampleID is the id of the first member with value i of key k.
	exampleID := func(k, i int) string {
		var b strings.Builder
		b.WriteString(base)
		for j, parts := range ts.idParts {
			b.WriteByte('-')
			if j == k {
				b.WriteString(parts[i])
			} else {
				b.WriteString(parts[0])
			}
		}
		return b.String()
	}
	// With more keys, a repeated value gives many ids: one is shown.
	one, two := "task id", "task ids"
	if len(ts.matrixKeys) > 1 {
		one, two = "task ids such as", "task ids such as"
	}
	for k, key := range ts.matrixKeys {
		n := ts.matrixNodes[k]
		list := n.Kind == schema.KindList && len(n.Vals) == len(ts.matrixVals[k])
		path := []any{"tasks", ts.i, "matrix", key}
		first := make(map[string]int, len(ts.idParts[k]))
		var repeated []int // the values whose id part an earlier one has
		for j, part := range ts.idParts[k] {
			low := strings.ToLower(part)
			if _, dup := first[low]; dup {
				repeated = append(repeated, j)
			} else {
				first[low] = j
			}
		}
		if len(repeated) == 0 {
			continue
		}
		// times counts how often each value, as shown, is written among
		// those whose id part repeats: the first ones included.
		shown := func(j int) string { return strings.ToLower(ts.idParts[k][j]) + "\x00" + shownValue(ts, k, j) }
		dupLow := make(map[string]bool, len(repeated))
		for _, j := range repeated {
			dupLow[strings.ToLower(ts.idParts[k][j])] = true
		}
		times := map[string]int{}
		for j, part := range ts.idParts[k] {
			if dupLow[strings.ToLower(part)] {
				times[shown(j)]++
			}
		}
		told := map[string]bool{}
		more, moreAt, morePath := 0, n, path
		for _, j := range repeated {
			sj := shown(j)
			if told[sj] {
				continue
			}
			told[sj] = true
			if len(told) > maxClashes {
				if more++; more == 1 && list {
					// After those told, where the first untold one is.
					moreAt, morePath = n.Vals[j], append(slices.Clip(path), j)
				}
				continue
			}
			part := ts.idParts[k][j]
			i := first[strings.ToLower(part)]
			vi, vj := shownValue(ts, k, i), shownValue(ts, k, j)
			// Where the first value is, and the second when the error
			// is not at it: the values of a list have places of their
			// own, those of an expression only their place in the list.
			at, whereI, whereJ := n, "", ""
			var related []schema.Pos
			if list {
				at = n.Vals[j]
				p := n.Vals[i].Pos
				whereI = fmt.Sprintf("at %d:%d", p.Line, p.Col)
				related = []schema.Pos{p}
			} else {
				whereI = fmt.Sprintf("value %d of the list", i+1)
				whereJ = fmt.Sprintf(" (value %d)", j+1)
			}
			var msg string
			switch id := exampleID(k, j); {
			case vi == vj:
				where := "first " + whereI
				if !list {
					where = fmt.Sprintf("values %d and %d of the list", i+1, j+1)
					if t := times[sj]; t > 2 {
						where = fmt.Sprintf("values %d, %d and %d more of the list", i+1, j+1, t-2)
					}
				}
				msg = fmt.Sprintf("matrix value %s is written %s (%s): all give %s %q", vj, timesText(times[sj]), where, one, id)
				if times[sj] == 2 {
					msg = strings.Replace(msg, ": all give ", ": both give ", 1)
				}
			case stringify(ts.matrixVals[k][i]) == stringify(ts.matrixVals[k][j]):
				msg = fmt.Sprintf("matrix values %s (%s) and %s%s are one value written two ways: both give %s %q", vi, whereI, vj, whereJ, one, id)
			case ts.idParts[k][i] == part:
				why := "in ids, characters other than letters, digits, _ and - become _"
				if strings.Contains(part, redact.Marker) {
					why = "in ids, a value's secrets become " + redact.Marker + ", and characters other than letters, digits, _ and - become _"
				}
				msg = fmt.Sprintf("matrix values %s (%s) and %s%s both give %s %q: %s", vi, whereI, vj, whereJ, one, id, why)
			default:
				msg = fmt.Sprintf("matrix values %s (%s) and %s%s give %s %q and %q, which differ only in case: %s",
					vi, whereI, vj, whereJ, two, exampleID(k, i), id, caseNote)
			}
			if t := times[sj]; vi != vj && t > 1 {
				msg += fmt.Sprintf(" (%s is written %s)", vj, timesText(t))
			}
			p := path
			if list {
				p = append(slices.Clip(path), j)
			}
			d := c.errorf(at, p, "%s", msg)
			d.Related = related
		}
		if more > 0 {
			c.errorf(moreAt, morePath, "and %d more values of matrix %s that repeat an earlier value's id", more, key)
		}
	}
}

// timesText is how many times a value is written, in words for two.
func timesText(n int) string {
	if n == 2 {
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// shownValue is value i of matrix key k of ts as a message shows it: a
// value of a list in the spec as written there, quoted if a string; one
// from an expression as interpolated, quoted if a string.
func shownValue(ts *taskSpec, k, i int) string {
	n := ts.matrixNodes[k]
	if n.Kind == schema.KindList && i < len(n.Vals) {
		if v := n.Vals[i]; v.Kind != schema.KindString {
			return scalarText(v)
		}
		return strconv.Quote(n.Vals[i].Str)
	}
	if v, ok := ts.matrixVals[k][i].(string); ok {
		return strconv.Quote(v)
	}
	return interpolated(ts.matrixVals[k][i])
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
		c.matrixRepeats(ts)
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
					c.errorf(ts.idNode, p, "task id %q: expected 1-64 ASCII letters, digits, _ and -", t.ID)
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
				case prev.spec == ts && repeatsValue(ts, prev.member, m):
					// matrixRepeats told it, at the value.
				case prev.spec == ts:
					// Only the combination of keys makes the clash.
					if clashes++; clashes > maxClashes {
						break
					}
					if first := c.prog.Tasks[ts.first+prev.member].ID; first != t.ID {
						c.errorf(ts.idNode, p, "matrix %s and %s give task ids %q and %q, which differ only in case: %s", matrixDesc(ts, prev.member), matrixDesc(ts, m), first, t.ID, caseNote)
					} else {
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
	if !slices.ContainsFunc(specs, func(ts *taskSpec) bool { return len(ts.deps) > 0 }) {
		return // a sweep's million members need no index of their ids
	}
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
	// The names no task has that an entry of a matrix task gives its
	// members are told once, at the entry, when every member is resolved:
	// not once per member.
	var missing []*missingDeps
	entry := map[depEntry]*missingDeps{}
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
				if len(ts.matrixKeys) == 0 {
					c.unknownDep(n, p, name, byID, specs)
					continue
				}
				if c.mayBeID(name, specs) {
					continue
				}
				m := entry[depEntry{ts, j}]
				if m == nil {
					m = &missingDeps{ts: ts, j: j, seen: map[string]bool{}}
					entry[depEntry{ts, j}] = m
					missing = append(missing, m)
				}
				m.add(name, ts)
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
	for _, m := range missing {
		c.unknownMatrixDep(m, byID, specs)
	}
}

// depEntry is entry j of a task's dependsOn.
type depEntry struct {
	ts *taskSpec
	j  int
}

// missingDeps are the names no task has that dependsOn entry j of matrix
// task ts gives its members, and how many members they are.
type missingDeps struct {
	ts      *taskSpec
	j       int
	names   []string // each once, in the order of the members
	seen    map[string]bool
	members int
}

// add counts a member, or all when they share their dependsOn (resolved
// once for all), that has name for the entry.
func (m *missingDeps) add(name string, ts *taskSpec) {
	if !m.seen[name] {
		m.seen[name] = true
		m.names = append(m.names, name)
	}
	if ts.varDeps {
		m.members++
	} else {
		m.members = ts.count
	}
}

// maxNamed bounds the unknown names of a dependsOn entry a message lists:
// the rest are counted.
const maxNamed = 3

// unknownMatrixDep reports a dependsOn entry of a matrix task that gives
// some or all of its members a name no task has: one error at the entry,
// saying how many members it applies to, with the names it gives listed
// up to maxNamed, the first one's suggestion as the hint. A matrix of a
// thousand members with a misspelt entry is one mistake, not a thousand.
func (c *compiler) unknownMatrixDep(m *missingDeps, byID map[string]int, specs []*taskSpec) {
	ts := m.ts
	group := c.prog.Tasks[ts.first].Group
	var who string
	switch {
	case ts.membersUnknown && m.members >= ts.count:
		// The members wait for a param's values.
		who = fmt.Sprintf("every member of matrix task %q depends on", group)
	case ts.membersUnknown:
		who = fmt.Sprintf("some members of matrix task %q depend on", group)
	case ts.count == 1:
		who = fmt.Sprintf("the one member of matrix task %q depends on", group)
	case m.members >= ts.count:
		who = fmt.Sprintf("all %d members of matrix task %q depend on", ts.count, group)
	case m.members == 1:
		who = fmt.Sprintf("1 of the %d members of matrix task %q depends on", ts.count, group)
	default:
		who = fmt.Sprintf("%d of the %d members of matrix task %q depend on", m.members, ts.count, group)
	}
	var msg string
	if len(m.names) == 1 {
		msg = fmt.Sprintf("unknown dependsOn target %q: no task or matrix group has that id (%s it)", m.names[0], who)
	} else {
		shown := make([]string, 0, maxNamed)
		for _, name := range m.names[:min(len(m.names), maxNamed)] {
			shown = append(shown, strconv.Quote(name))
		}
		list := strings.Join(shown[:len(shown)-1], ", ") + " and " + shown[len(shown)-1]
		if more := len(m.names) - len(shown); more > 0 {
			list = fmt.Sprintf("%s and %d more", strings.Join(shown, ", "), more)
		}
		msg = fmt.Sprintf("unknown dependsOn targets %s: no task or matrix group has those ids (%s one)", list, who)
	}
	hint, _ := c.depHint(m.names[0], byID, specs)
	d := c.errorf(ts.depNodes[m.j], []any{"tasks", ts.i, "dependsOn", ts.depIdx[m.j]}, "%s", msg)
	d.Hint = hint
}

func dedupe(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// unknownDep reports a dependsOn target, name, that no task has, unless
// it may be the id of a task validate does not know the id of.
func (c *compiler) unknownDep(n *schema.Node, p []any, name string, byID map[string]int, specs []*taskSpec) {
	if c.mayBeID(name, specs) {
		return
	}
	hint, caseOnly := c.depHint(name, byID, specs)
	d := c.errorf(n, p, "unknown dependsOn target %q: no task or matrix group has that id", name)
	if caseOnly {
		d.Msg = fmt.Sprintf("unknown dependsOn target %q", name)
	}
	d.Hint = hint
}

// mayBeID reports whether name, which no task has, may be the id of a
// task whose id validate does not know: one dropped for its errors, or
// one whose id needs a param not given.
func (c *compiler) mayBeID(name string, specs []*taskSpec) bool {
	for _, ts := range c.droppedSpecs {
		if ts.idUnknown.MatchString(name) {
			return true
		}
	}
	for _, ts := range specs {
		if ts.idUnknown != nil && ts.idUnknown.MatchString(name) {
			return true
		}
	}
	return false
}

// depHint is what a dependsOn target no task has, name, may have been
// meant to be, or ""; caseOnly is set when a task has it in another case.
func (c *compiler) depHint(name string, byID map[string]int, specs []*taskSpec) (hint string, caseOnly bool) {
	// A value paired with matrix members (trim-${{ matrix.sample }})
	// is not sanitized, and the members' ids are: the member the value
	// would be, sanitized, is the one meant.
	var b strings.Builder
	sanitizeID(&b, name)
	if sane := b.String(); sane != name {
		if _, ok := byID[sane]; ok {
			return "did you mean " + sane + "? Task ids are sanitized (characters other than letters, digits, _ and - become _), dependsOn values are not: pair members by values valid in ids (see docs/spec.md#dependson)", false
		}
	}
	for id := range byID {
		if strings.EqualFold(id, name) {
			return "did you mean " + id + "? (ids are matched exactly)", true
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
	if s := schema.Suggest(name, cands); s != "" {
		return "did you mean " + s + "?", false
	}
	return "", false
}

// order checks the graph for cycles and sorts the tasks by level (the
// longest path from a root), ties broken by id: a topological order that
// does not depend on how the spec was written.
func (c *compiler) order(specs []*taskSpec) {
	tasks := c.prog.Tasks
	n := len(tasks)
	g := len(c.prog.Groups)
	// The index of ids is made only when some task has a dependency: a
	// sweep's million members need none.
	var idx map[string]int32
	for i := range tasks {
		if len(tasks[i].DependsOn)+len(tasks[i].DependsOnGroups) > 0 {
			idx = make(map[string]int32, n)
			for i := range tasks {
				idx[tasks[i].ID] = int32(i)
			}
			break
		}
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
	// The tasks are moved in place, cycle by cycle of the permutation
	// (task i takes task perm[i]'s place): a second list of a million
	// tasks would double the compile's peak memory.
	nodes := c.taskNode
	for i := range perm {
		if perm[i] == int32(i) {
			continue
		}
		t, nd := tasks[i], nodes[i]
		j := i
		for {
			k := int(perm[j])
			perm[j] = int32(j) // placed
			if k == i {
				tasks[j], nodes[j] = t, nd
				break
			}
			tasks[j], nodes[j] = tasks[k], nodes[k]
			j = k
		}
	}
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

package compiler

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/bmc-dev/bmc/internal/filepattern"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/schema"
)

// taskSpec is one task as written, with its strings parsed into templates
// once; a matrix task expands into many tasks from it.
type taskSpec struct {
	i      int
	node   *schema.Node
	idNode *schema.Node
	id     *template

	matrixKeys  []string
	matrixVals  [][]any
	matrixNodes []*schema.Node
	// idParts are, per matrix key, its values as member ids hold them
	// (sanitized): made once per value, not once per member.
	idParts [][]string

	run      *template
	runNode  *schema.Node
	command  []*template
	cmdNodes []*schema.Node
	envKeys  []string // sorted
	env      []*template
	envNodes []*schema.Node
	envPaths [][]any // where each is written: the task's env, or defaults'
	inputs   []inputSpec
	outputs  []outputSpec
	image    *template
	options  string
	imgNode  *schema.Node
	packages []Package
	retries  int
	slots    int
	timeout  Duration
	deps     []*template
	depNodes []*schema.Node
	depIdx   []int // each dep's index in dependsOn as written

	// per-field: does it vary between matrix members?
	varRun, varCmd, varEnv, varIn, varOut, varImg, varDeps bool

	first, count int // the expanded tasks, prog.Tasks[first:first+count]

	// badMatrix are the matrix keys whose values were in error.
	badMatrix []string
	// membersUnknown is set when a matrix key's values are a required
	// param validate was not given: one stand-in value, and how many
	// members the task has is not known.
	membersUnknown bool

	// broken are the task's templates with errors of their own,
	// reported: their values are unknown, as a missing param's are, so
	// that no check of them adds to the errors, and the task's other
	// fields are checked all the same.
	broken map[*template]bool

	// idUnknown, when set, matches the ids the task may take: its id
	// holds a value validate does not know, or the task was dropped.
	idUnknown *regexp.Regexp
	// dropped: the task's id or matrix had errors, reported, and its
	// members are not known: it is not compiled. standIn is the scope its
	// fields are checked in, once, with the matrix values in error
	// unknown.
	dropped bool
	standIn *scope
}

// eval evaluates a template of the task, or of the finalize step when
// broken is nil; one in broken is unknown.
func eval(t *template, s *scope, broken map[*template]bool) (string, bool) {
	if t == nil {
		return "", false
	}
	if broken[t] {
		return "", true
	}
	v, unk, _ := t.eval(s)
	return v, unk
}

// idPattern matches what id may render to: values not known at validate
// time match any text, the empty text too (a param may be ""), and so
// do matrix members' suffixes (a matrix value may be "").
func idPattern(id *template, s *scope) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, p := range id.parts {
		if p.path == nil {
			b.WriteString(regexp.QuoteMeta(p.lit))
			continue
		}
		if v, err := s.lookup(p.path); err == nil {
			if _, unk := v.(unknown); !unk && v != nil {
				b.WriteString(regexp.QuoteMeta(stringify(v)))
				continue
			}
		}
		b.WriteString(".*")
	}
	b.WriteString("(-.*)?$")
	return regexp.MustCompile(b.String())
}

type inputSpec struct {
	j                  int // its index in inputs as written
	from, path         *template
	fromNode, pathNode *schema.Node
}

type outputSpec struct {
	j                int // its index in outputs as written
	path, to         *template
	pathNode, toNode *schema.Node
	when             When
}

func varies(ts ...*template) bool {
	for _, t := range ts {
		if t != nil && (t.usesContext("matrix") || t.usesContext("task")) {
			return true
		}
	}
	return false
}

func (c *compiler) tasks() {
	list := c.root.Get("tasks")
	if list == nil || list.Kind != schema.KindList {
		return
	}
	var specs []*taskSpec
	for i, n := range list.Vals {
		if n.Kind != schema.KindMap {
			continue
		}
		switch ts := c.taskSpec(i, n); {
		case ts == nil:
		case ts.dropped:
			// Its errors are reported; dependents should not also report
			// it as unknown, and its id is still checked against others,
			// and its fields as far as they do not name its members.
			c.droppedSpecs = append(c.droppedSpecs, ts)
			c.checkDropped(ts)
		default:
			specs = append(specs, ts)
		}
	}
	total := 0
	for _, ts := range specs {
		total += ts.memberCount()
	}
	if total > MaxTasks {
		c.errorf(list, []any{"tasks"}, "the tasks expand to more than %d tasks, the most a workload may have", MaxTasks)
		return
	}
	c.prog.Tasks = make([]Task, 0, total)
	c.taskNode = make([]*schema.Node, 0, total)
	memberDeps := make([][]string, 0, total)
	for _, ts := range specs {
		ts.first = len(c.prog.Tasks)
		memberDeps = c.expand(ts, memberDeps)
		ts.count = len(c.prog.Tasks) - ts.first
	}
	// Dependencies are resolved, and cycles looked for, also when ids
	// are in error, so that validate reports those errors too; with a
	// duplicate id, a name resolves to one of its tasks.
	c.checkIDs(specs)
	c.resolveDeps(specs, memberDeps)
	c.checkDroppedDeps(specs)
	c.order(specs)
	if len(c.diags) == 0 {
		c.crossOutputs()
	}
}

// files names the files two uploads send: one name, or both.
func files(a, b string) string {
	if a == b {
		return a
	}
	return a + " and " + b
}

// crossOutputs warns of two tasks, not members of one matrix task (their
// case is sharedOutputs'), that upload a file named without wildcards to
// one blob and may run at once: neither waits for the other, so which
// upload remains depends on timing. A task that waits for the other
// overwrites it on purpose, and is left alone.
//
// Tasks are in order, and each upload is compared with the last one to
// the same blob only: if each waits for the one before, all are ordered,
// so a chain of tasks rewriting one blob costs a look at each link.
func (c *compiler) crossOutputs() {
	type upload struct{ task, out int }
	last := map[string]upload{}
	reported := map[string]bool{}
	// idx and groups are made when two uploads to one blob are first
	// compared: most programs have none.
	var idx map[string]int
	var groups map[string][]string
	index := func() {
		if idx != nil {
			return
		}
		idx = make(map[string]int, len(c.prog.Tasks))
		for i := range c.prog.Tasks {
			idx[c.prog.Tasks[i].ID] = i
		}
		groups = make(map[string][]string, len(c.prog.Groups))
		for _, g := range c.prog.Groups {
			groups[g.ID] = g.Members
		}
	}
	// budget bounds the walks of the graph below, all together: a warning
	// is not worth a compile that takes minutes. Spent, pairs are taken
	// for ordered.
	budget := 4 * (len(c.prog.Tasks) + 1000)
	// waits reports whether task b waits, directly or not, for task a.
	waits := func(a, b int) bool {
		index()
		ta, tb := &c.prog.Tasks[a], &c.prog.Tasks[b]
		if slices.Contains(tb.DependsOn, ta.ID) || ta.Group != "" && slices.Contains(tb.DependsOnGroups, ta.Group) {
			return true
		}
		seen, seenGroup := map[int]bool{}, map[string]bool{}
		stack := []int{b}
		visit := func(id string) bool {
			budget--
			d := idx[id]
			if d == a || budget < 0 {
				return true
			}
			if d > a && !seen[d] { // tasks are in order: one before a cannot wait for it
				seen[d] = true
				stack = append(stack, d)
			}
			return false
		}
		for len(stack) > 0 {
			t := &c.prog.Tasks[stack[len(stack)-1]]
			stack = stack[:len(stack)-1]
			for _, id := range t.DependsOn {
				if visit(id) {
					return true
				}
			}
			for _, g := range t.DependsOnGroups {
				if g == ta.Group {
					return true
				}
				if seenGroup[g] {
					continue
				}
				seenGroup[g] = true
				for _, id := range groups[g] {
					if visit(id) {
						return true
					}
				}
			}
		}
		return false
	}
	// What a pattern names is worked out once per pattern: the members
	// of a matrix mostly share theirs. The memo is bounded, for those
	// that do not.
	type named struct {
		wild bool
		rel  string // the file's name under a prefix
	}
	memo := map[string]named{}
	for i := range c.prog.Tasks {
		t := &c.prog.Tasks[i]
		for j, o := range t.Outputs {
			if o.Pattern == "" {
				continue
			}
			nm, ok := memo[o.Pattern]
			if !ok {
				nm.wild = filepattern.HasWildcard(o.Pattern)
				if !nm.wild {
					nm.rel = strings.TrimPrefix(path.Clean(o.Pattern), filepattern.BaseDir(o.Pattern)+"/")
				}
				if len(memo) >= 1024 {
					clear(memo)
				}
				memo[o.Pattern] = nm
			}
			if nm.wild {
				continue
			}
			blob := o.To
			if strings.HasSuffix(o.To, "/") {
				blob = o.To + nm.rel
			}
			prev, seen := last[blob]
			last[blob] = upload{i, j}
			if !seen || prev.task == i {
				continue
			}
			p := &c.prog.Tasks[prev.task]
			// Told once per pair of tasks as written: two matrix tasks
			// may clash member by member.
			pair := cmp.Or(p.Group, p.ID) + "\x00" + cmp.Or(t.Group, t.ID)
			if reported[pair] || p.Group != "" && p.Group == t.Group || waits(prev.task, i) {
				continue
			}
			reported[pair] = true
			at := c.taskNode[i].Get("outputs")
			if at == nil || j >= len(at.Vals) || at.Vals[j].Get("to") == nil {
				continue
			}
			d := &schema.Diagnostic{Pos: at.Vals[j].Get("to").Pos, Path: schema.PathString(append(c.specPath(c.taskNode[i]), "outputs", j, "to")), Warning: true,
				Msg:  fmt.Sprintf("tasks %s and %s both upload %s to %s, and neither waits for the other: which upload remains depends on timing", p.ID, t.ID, files(p.Outputs[prev.out].Pattern, o.Pattern), blob),
				Hint: fmt.Sprintf("give each its own to, or make %s depend on %s", t.ID, p.ID)}
			if pto := c.taskNode[prev.task].Get("outputs"); pto != nil && prev.out < len(pto.Vals) && pto.Vals[prev.out].Get("to") != nil {
				d.Related = []schema.Pos{pto.Vals[prev.out].Get("to").Pos}
			}
			c.warnings = append(c.warnings, d)
		}
	}
}

// checkDroppedDeps reports the dependsOn names of tasks dropped for their
// errors that name no task: a typo there is an error of its own.
func (c *compiler) checkDroppedDeps(specs []*taskSpec) {
	if len(c.droppedDeps) == 0 {
		return
	}
	byID := make(map[string]int, len(c.prog.Tasks))
	for i := range c.prog.Tasks {
		byID[c.prog.Tasks[i].ID] = i
	}
	for _, g := range c.prog.Groups {
		byID[g.ID] = -1
	}
	for _, d := range c.droppedDeps {
		if _, ok := byID[d.name]; !ok {
			c.unknownDep(d.spec.depNodes[d.j], []any{"tasks", d.spec.i, "dependsOn", d.spec.depIdx[d.j]}, d.name, byID, specs)
		}
	}
}

func (ts *taskSpec) memberCount() int {
	n := 1
	for _, v := range ts.matrixVals {
		n *= len(v)
		if n > MaxTasks {
			return MaxTasks + 1
		}
	}
	return n
}

func (c *compiler) taskSpec(i int, n *schema.Node) *taskSpec {
	p := func(k ...any) []any { return append([]any{"tasks", i}, k...) }
	// A variable bmc sets does not keep the task from being checked on.
	c.checkEnvNames(n.Get("env"), p("env"), false)
	ts := &taskSpec{i: i, node: n, idNode: n.Get("id"), broken: map[*template]bool{}}
	if ts.idNode == nil || ts.idNode.Kind != schema.KindString {
		return nil
	}
	ts.id = c.tmpl(ts.idNode, p("id"))
	// Matrix values come first: every other expression may name them.
	m := n.Get("matrix")
	keyless := m != nil && m.Kind == schema.KindMap && len(m.Keys) == 0
	if keyless {
		c.errorf(m, p("matrix"), "matrix has no keys: give it a key with a list of values, or leave matrix out")
	}
	if m != nil && m.Kind == schema.KindMap {
		for j, k := range m.Keys {
			vals, standIn := c.matrixValues(m.Vals[j], p("matrix", k.Str))
			ts.membersUnknown = ts.membersUnknown || standIn
			if vals == nil {
				ts.badMatrix = append(ts.badMatrix, k.Str)
				continue
			}
			ts.matrixKeys = append(ts.matrixKeys, k.Str)
			ts.matrixVals = append(ts.matrixVals, vals)
			ts.matrixNodes = append(ts.matrixNodes, m.Vals[j])
		}
	}
	if r := n.Get("run"); r != nil {
		ts.run, ts.runNode = c.tmpl(r, p("run")), r
		if r.Kind == schema.KindString && strings.TrimSpace(r.Str) == "" {
			c.errorf(r, p("run"), "run is empty: give the script to run")
		}
	}
	if cmd := n.Get("command"); cmd != nil && cmd.Kind == schema.KindList {
		for j, a := range cmd.Vals {
			ts.command = append(ts.command, c.tmpl(a, p("command", j)))
			ts.cmdNodes = append(ts.cmdNodes, a)
		}
	}
	envs := map[string]*schema.Node{}
	var envT = map[string]*template{}
	envP := map[string][]any{}
	for _, k := range c.defaults.envOrder {
		envs[k], envT[k], envP[k] = c.defaults.envNodes[k], c.defaults.env[k], []any{"defaults", "env", k}
	}
	if env := n.Get("env"); env != nil && env.Kind == schema.KindMap {
		for j, k := range env.Keys {
			envs[k.Str], envT[k.Str], envP[k.Str] = env.Vals[j], c.tmpl(env.Vals[j], p("env", k.Str)), p("env", k.Str)
		}
	}
	for k := range envs {
		ts.envKeys = append(ts.envKeys, k)
	}
	slices.Sort(ts.envKeys)
	for _, k := range ts.envKeys {
		ts.env = append(ts.env, envT[k])
		ts.envNodes = append(ts.envNodes, envs[k])
		ts.envPaths = append(ts.envPaths, envP[k])
	}
	ts.inputs = c.inputSpecs(n.Get("inputs"), p("inputs"))
	ts.outputs = c.outputSpecs(n.Get("outputs"), p("outputs"))
	cont := n.Get("container")
	if cont == nil {
		cont = c.defaults.container
	}
	if cont != nil && cont.Kind == schema.KindMap {
		ts.imgNode = cont.Get("image")
		if cont == c.defaults.container {
			ts.image = c.defaults.image // parsed once, its errors told once
		} else {
			ts.image = c.tmpl(ts.imgNode, p("container", "image"))
		}
		ts.options = str(cont.Get("options"))
	}
	if pk := n.Get("packages"); pk != nil && pk.Kind == schema.KindList {
		// Batch takes package names case-insensitively: a name given
		// twice, in any case, is one package installed twice.
		seen := map[string]*schema.Node{}
		for j, e := range pk.Vals {
			low := strings.ToLower(e.Str)
			if first, dup := seen[low]; dup {
				d := c.errorf(e, p("packages", j), "duplicate package %q: the task names it at %d:%d already", e.Str, first.Pos.Line, first.Pos.Col)
				d.Related = []schema.Pos{first.Pos}
				continue
			}
			seen[low] = e
			pkg, ok := c.packages[strings.ToLower(e.Str)]
			if !ok {
				var names []string
				for _, p := range c.prog.Packages {
					names = append(names, p.Name)
				}
				d := c.errorf(e, p("packages", j), "unknown package %q: declare it under packages", e.Str)
				if s := schema.Suggest(e.Str, names); s != "" {
					d.Hint = "did you mean " + s + "?"
				}
				continue
			}
			ts.packages = append(ts.packages, pkg)
		}
	}
	ts.retries = intOf(n.Get("retries"), c.defaults.retries)
	ts.slots = intOf(n.Get("slots"), c.defaults.slots)
	ts.timeout = c.defaults.timeout
	if d, ok := c.duration(n.Get("timeout"), p("timeout")); ok {
		ts.timeout = d
	}
	if deps := n.Get("dependsOn"); deps != nil && deps.Kind == schema.KindList {
		for j, e := range deps.Vals {
			if e.Kind != schema.KindString {
				continue
			}
			if t := c.tmpl(e, p("dependsOn", j)); t != nil {
				ts.deps = append(ts.deps, t)
				ts.depNodes = append(ts.depNodes, e)
				ts.depIdx = append(ts.depIdx, j)
			}
		}
	}
	ts.varRun = varies(ts.run)
	ts.varCmd = varies(ts.command...)
	ts.varEnv = varies(ts.env...)
	for _, in := range ts.inputs {
		ts.varIn = ts.varIn || varies(in.from, in.path)
	}
	for _, o := range ts.outputs {
		ts.varOut = ts.varOut || varies(o.path, o.to)
	}
	ts.varImg = varies(ts.image)
	ts.varDeps = varies(ts.deps...)
	// Evaluate every expression once, for the first member, so that an
	// unknown name is reported once and not once per member. This goes
	// on after errors above, so that validate reports a task's every
	// error at once; a matrix key whose values were in error stands in
	// as unknown, and an expression that did not parse is left out.
	s := c.memberScope(ts, 0)
	s.taskID = "task-id" // a stand-in: ids are checked after expansion
	if keyless || len(ts.badMatrix) > 0 {
		// The matrix is in error, reported: the task may still name
		// matrix values.
		if s.matrix == nil {
			s.matrix, s.matrixOK = map[string]any{}, true
		}
		s.matrixKeyless = keyless
	}
	for _, k := range ts.badMatrix {
		s.matrix[k] = unknown{name: "matrix." + k}
	}
	// A template in error is broken: the task is compiled without its
	// value, and the checks of the other fields go on.
	checkIn := func(s *scope, t *template, n *schema.Node, path []any) {
		c.checkTmpl(t, n, path, s, ts.broken)
	}
	check := func(t *template, n *schema.Node, path []any) { checkIn(s, t, n, path) }
	// A template of defaults had what is the same in every task checked
	// once (defaults2); what it names of the task's matrix is checked in
	// each task, and an error told once, for the first task.
	checkDefault := func(t *template, n *schema.Node, path []any, field string) {
		if t == nil {
			return
		}
		if c.defaults.broken[t] {
			ts.broken[t] = true
			return
		}
		errs := t.check(s)
		for _, err := range errs {
			c.defaultsErr(ts, n, path, field, err)
		}
		if len(errs) > 0 {
			ts.broken[t] = true
		}
	}
	idScope := *s
	idScope.matrixOK, idScope.taskOK, idScope.in = false, false, idField
	checkIn(&idScope, ts.id, ts.idNode, p("id"))
	check(ts.run, ts.runNode, p("run"))
	for j, t := range ts.command {
		check(t, ts.cmdNodes[j], p("command", j))
	}
	for j, t := range ts.env {
		if ts.envPaths[j][0] == "defaults" {
			checkDefault(t, ts.envNodes[j], ts.envPaths[j], "env."+ts.envKeys[j])
		} else {
			check(t, ts.envNodes[j], ts.envPaths[j])
		}
	}
	for _, in := range ts.inputs {
		check(in.from, in.fromNode, p("inputs", in.j, "from"))
		check(in.path, in.pathNode, p("inputs", in.j, "path"))
	}
	for _, o := range ts.outputs {
		check(o.path, o.pathNode, p("outputs", o.j, "path"))
		check(o.to, o.toNode, p("outputs", o.j, "to"))
	}
	if ts.image != nil && ts.image == c.defaults.image {
		checkDefault(ts.image, ts.imgNode, []any{"defaults", "container", "image"}, "container")
	} else {
		check(ts.image, ts.imgNode, p("container", "image"))
	}
	depScope := *s
	depScope.taskOK, depScope.in = false, dependsOnField
	for j, t := range ts.deps {
		checkIn(&depScope, t, ts.depNodes[j], p("dependsOn", ts.depIdx[j]))
	}
	// Without its id or its matrix the task's members are not known.
	// A matrix key whose values were refused (by the schema, before
	// this task's own checks) drops the task too.
	if ts.broken[ts.id] || keyless || len(ts.badMatrix) > 0 {
		// Dropped; its dependsOn names written out are still checked,
		// once the ids of the tasks that compiled are known.
		for j, t := range ts.deps {
			if t.constant() && !t.bad {
				c.droppedDeps = append(c.droppedDeps, droppedDep{spec: ts, j: j, name: str(ts.depNodes[j])})
			}
		}
		ts.dropped, ts.standIn = true, s
		// The names its id may take, for dependsOn entries naming it: an
		// id with an expression is matched as rendered with the params.
		ts.idUnknown = idPattern(ts.id, c.top())
	}
	return ts
}

// droppedDep is a dependsOn name of a task dropped for its errors.
type droppedDep struct {
	spec *taskSpec
	j    int
	name string
}

// inputSpecs parses the inputs of a task or of the finalize step, n, at
// path; an input without from is the schema's to report.
func (c *compiler) inputSpecs(n *schema.Node, path []any) []inputSpec {
	if n == nil || n.Kind != schema.KindList {
		return nil
	}
	var out []inputSpec
	for j, e := range n.Vals {
		is := inputSpec{j: j, fromNode: e.Get("from"), pathNode: e.Get("path")}
		is.from = c.tmpl(is.fromNode, append(slices.Clip(path), j, "from"))
		is.path = c.tmpl(is.pathNode, append(slices.Clip(path), j, "path"))
		if is.from != nil {
			out = append(out, is)
		}
	}
	return out
}

func (c *compiler) outputSpecs(n *schema.Node, path []any) []outputSpec {
	if n == nil || n.Kind != schema.KindList {
		return nil
	}
	var out []outputSpec
	for j, e := range n.Vals {
		o := outputSpec{j: j, pathNode: e.Get("path"), toNode: e.Get("to"), when: WhenSuccess}
		o.path = c.tmpl(o.pathNode, append(slices.Clip(path), j, "path"))
		o.to = c.tmpl(o.toNode, append(slices.Clip(path), j, "to"))
		if w := str(e.Get("when")); w != "" {
			o.when = When(w)
		}
		if o.path != nil && o.to != nil {
			out = append(out, o)
		}
	}
	return out
}

// matrixValues reads the values of a matrix key, n; nil when they are in
// error, reported. standIn is set when they are a required param not
// given (validate): one value stands in for them.
func (c *compiler) matrixValues(n *schema.Node, path []any) (vals []any, standIn bool) {
	switch n.Kind {
	case schema.KindList:
		for _, v := range n.Vals {
			switch v.Kind {
			case schema.KindList, schema.KindMap, schema.KindNull:
				return nil, false // the schema reports a value that is not a scalar
			}
			c.asWritten(v, append(slices.Clip(path), len(vals)), "a matrix value in a list")
			vals = append(vals, v.Value())
		}
	case schema.KindString:
		t := c.tmpl(n, path)
		if t == nil || t.bad {
			return nil, false
		}
		if !t.whole {
			c.errorf(n, path, "a matrix value must be a list, or one expression giving a list such as ${{ params.samples }}")
			return nil, false
		}
		s := c.top()
		s.in = matrixField
		v, unk, err := t.evalValue(s)
		if err != nil {
			c.exprErr(n, path, err)
			return nil, false
		}
		if unk {
			// A required param with no value (validate): one stand-in member.
			return []any{strings.TrimPrefix(v.(unknown).name, "params.")}, true
		}
		l, ok := v.([]any)
		if !ok {
			c.errorf(n, path, "%s gives a %s; a matrix needs a list", strings.TrimSpace(n.Str), typeName(v))
			return nil, false
		}
		for _, e := range l {
			switch e.(type) {
			case []any, map[string]any, nil:
				c.errorf(n, path, "%s: matrix values must be strings, numbers or bools", strings.TrimSpace(n.Str))
				return nil, false
			}
		}
		vals = l
	default:
		return nil, false
	}
	if len(vals) == 0 {
		c.errorf(n, path, "the matrix key has no values: the task would expand to nothing")
		return nil, false
	}
	return vals, false
}

func (c *compiler) memberScope(ts *taskSpec, member int) *scope {
	s := c.top()
	s.taskOK = true
	if len(ts.matrixKeys) > 0 {
		s.matrixOK = true
		s.matrix = make(map[string]any, len(ts.matrixKeys))
		idx := member
		for k := len(ts.matrixKeys) - 1; k >= 0; k-- {
			vals := ts.matrixVals[k]
			s.matrix[ts.matrixKeys[k]] = vals[idx%len(vals)]
			idx /= len(vals)
		}
	}
	return s
}

// sanitizeID maps a matrix value to id characters. The value's secrets
// (a signed URL's signature, a password) are taken out first, as
// everywhere bmc shows a value: a task id is shown, written to the run's
// files and given to Azure Batch as it is.
func sanitizeID(b *strings.Builder, v any) {
	for _, r := range redact.String(stringify(v)) {
		if r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
}

// expand appends the tasks of one spec to the program.
func (c *compiler) expand(ts *taskSpec, memberDeps [][]string) [][]string {
	s := c.memberScope(ts, 0)
	idScope := *s
	idScope.matrixOK, idScope.taskOK, idScope.in = false, false, idField
	base, idUnk, _ := ts.id.eval(&idScope)
	if idUnk {
		// A required param not given to validate: the id is not known,
		// so it is not checked, and dependsOn names it might take are
		// not reported unknown.
		ts.idUnknown = idPattern(ts.id, &idScope)
	}

	// What does not vary is computed once and shared by every member.
	var mv member
	evalAll := func(s *scope, tk *Task, first bool) {
		c.evalMember(ts, s, &mv, first)
		tk.Run, tk.Command, tk.Env, tk.Inputs, tk.Outputs, tk.Container = mv.run, mv.command, mv.env, mv.inputs, mv.outputs, mv.cont
	}
	h := newHasher()
	if len(ts.matrixKeys) == 0 {
		tk := Task{ID: base, Retries: ts.retries, Slots: ts.slots, Timeout: ts.timeout, Packages: ts.packages}
		s.taskID = base
		evalAll(s, &tk, true)
		c.emptyStart(ts.runNode, ts.node.Get("command"), []any{"tasks", ts.i}, tk.Run, tk.Command, tk.Inputs, "task")
		tk.Hash = h.sum(&tk)
		c.prog.Tasks = append(c.prog.Tasks, tk)
		c.taskNode = append(c.taskNode, ts.node)
		return append(memberDeps, mv.deps)
	}
	n := ts.memberCount()
	group := Group{ID: base, Members: make([]string, 0, n)}
	idx := make([]int, len(ts.matrixKeys))
	ts.idParts = make([][]string, len(ts.matrixKeys))
	for k, vals := range ts.matrixVals {
		parts := make([]string, len(vals))
		for i, v := range vals {
			var b strings.Builder
			sanitizeID(&b, v)
			parts[i] = b.String()
			if whole, ok := v.(int64); ok {
				if s.intText == nil {
					s.intText = map[int64]string{}
				}
				s.intText[whole] = interpolated(v)
			}
		}
		ts.idParts[k] = parts
	}
	for m := 0; m < n; m++ {
		vals := make(map[string]any, len(ts.matrixKeys))
		size := len(base)
		for k, key := range ts.matrixKeys {
			vals[key] = ts.matrixVals[k][idx[k]]
			size += 1 + len(ts.idParts[k][idx[k]])
		}
		// One allocation per id: it is kept, in the task and its group.
		var b strings.Builder
		b.Grow(size)
		b.WriteString(base)
		for k := range ts.matrixKeys {
			b.WriteByte('-')
			b.WriteString(ts.idParts[k][idx[k]])
		}
		id := b.String()
		s.matrix, s.taskID = vals, id
		tk := Task{ID: id, Group: base, Matrix: vals, Retries: ts.retries, Slots: ts.slots, Timeout: ts.timeout, Packages: ts.packages}
		evalAll(s, &tk, m == 0)
		if m == 0 {
			c.sharedOutputs(ts, base, tk.Outputs)
			c.emptyStart(ts.runNode, ts.node.Get("command"), []any{"tasks", ts.i}, tk.Run, tk.Command, tk.Inputs, "task")
		}
		tk.Hash = h.sum(&tk)
		c.prog.Tasks = append(c.prog.Tasks, tk)
		c.taskNode = append(c.taskNode, ts.node)
		memberDeps = append(memberDeps, mv.deps)
		group.Members = append(group.Members, id)
		// Odometer: the last key turns fastest.
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < len(ts.matrixVals[k]) {
				break
			}
			idx[k] = 0
		}
	}
	c.prog.Groups = append(c.prog.Groups, group)
	return memberDeps
}

// member is what a member of a task is given. What does not vary
// between members is kept from one to the next.
type member struct {
	run     string
	command []string
	env     map[string]string
	inputs  []Input
	outputs []Output
	cont    *Container
	deps    []string
}

// evalMember evaluates the fields of a member of ts in scope s into m, and
// checks their values: every field for the first member, and those that
// vary for the others.
func (c *compiler) evalMember(ts *taskSpec, s *scope, m *member, first bool) {
	p := func(k ...any) []any { return append([]any{"tasks", ts.i}, k...) }
	if first || ts.varRun {
		m.run, _ = eval(ts.run, s, ts.broken)
		c.noNUL(ts.runNode, m.run, func() []any { return p("run") })
	}
	if first || ts.varCmd {
		m.command = nil
		if ts.command != nil {
			m.command = make([]string, len(ts.command))
			for j, t := range ts.command {
				m.command[j], _ = eval(t, s, ts.broken)
				c.noNUL(ts.cmdNodes[j], m.command[j], func() []any { return p("command", j) })
			}
			if m.command[0] == "" && !ts.broken[ts.command[0]] {
				c.errorOnce(ts.cmdNodes[0], p("command", 0), "the program to run (command[0]) is empty")
			}
		}
	}
	if first || ts.varEnv {
		m.env = nil
		if len(ts.env) > 0 {
			m.env = make(map[string]string, len(ts.env))
			for j, t := range ts.env {
				m.env[ts.envKeys[j]], _ = eval(t, s, ts.broken)
				c.noNUL(ts.envNodes[j], m.env[ts.envKeys[j]], func() []any { return ts.envPaths[j] })
			}
		}
	}
	if first || ts.varIn {
		m.inputs = c.inputs(ts.inputs, ts.broken, s, p)
	}
	if first || ts.varOut {
		m.outputs = c.outputs(ts.outputs, s, p, ts.broken)
	}
	if first || ts.varImg {
		m.cont = nil
		if ts.image != nil {
			img, _ := eval(ts.image, s, ts.broken)
			m.cont = &Container{Image: img, Options: ts.options}
		}
	}
	if first || ts.varDeps {
		depScope := *s
		depScope.taskOK, depScope.in = false, dependsOnField
		// A dependsOn entry in error is "", and resolveDeps passes it by.
		m.deps = make([]string, len(ts.deps))
		for j, t := range ts.deps {
			m.deps[j], _ = eval(t, &depScope, ts.broken)
		}
	}
}

// checkDropped checks the fields of a task dropped for an error in its id
// or matrix, as expand does its first member's, in the scope its
// expressions were checked in: a matrix value in error is unknown, and
// the checks that need it are skipped. Nothing joins the program.
func (c *compiler) checkDropped(ts *taskSpec) {
	var m member
	c.evalMember(ts, ts.standIn, &m, true)
}

// sharedOutputs warns of an output that members of a matrix task (group)
// upload to one place, as the first member's outputs (outs) show: a file named
// without wildcards, to a destination that names neither the task nor
// every matrix key that has more than one value. Members that differ only
// in the keys left out upload to the same blob, and the members run side
// by side: any two that write the file overwrite each other's upload. It
// is a warning, not an error: one member may be the only one to write it,
// or the overwrite the point.
//
// The templates decide it, not their values: it costs nothing per member.
// The file's path counts when to is a prefix: the blob's name ends with
// it.
func (c *compiler) sharedOutputs(ts *taskSpec, group string, outs []Output) {
	for j, o := range outs {
		spec := ts.outputs[j]
		j := spec.j
		if o.Pattern == "" || filepattern.HasWildcard(o.Pattern) || strings.Contains(o.Pattern, "${{") {
			continue
		}
		named := []*template{spec.to}
		if strings.HasSuffix(o.To, "/") {
			named = append(named, spec.path)
		}
		keys, byTask := map[string]bool{}, false
		for _, t := range named {
			if t == nil || t.bad || ts.broken[t] {
				keys = nil
				break
			}
			for _, p := range t.parts {
				switch {
				case len(p.path) == 2 && p.path[0] == "matrix":
					keys[p.path[1]] = true
				case len(p.path) > 0 && p.path[0] == "task" && (len(p.path) < 2 || p.path[1] != "attempt"):
					byTask = true
				}
			}
		}
		if keys == nil || byTask {
			continue
		}
		var left []string
		for k, key := range ts.matrixKeys {
			if !keys[key] && len(ts.matrixVals[k]) > 1 {
				left = append(left, key)
			}
		}
		if len(left) == 0 {
			continue
		}
		at := []any{"tasks", ts.i, "outputs", j, "to"}
		file := o.Pattern
		if !spec.path.constant() && spec.pathNode != nil {
			file = spec.pathNode.Str // as written: the members' differ
		}
		var msg string
		if len(keys) == 0 {
			msg = fmt.Sprintf("every member of matrix task %s uploads %s to %s: those that write it overwrite each other's", group, file, o.To)
		} else {
			msg = fmt.Sprintf("members of matrix task %s that differ only in %s upload %s to one place: those that write it overwrite each other's", group, strings.Join(left, " and "), file)
		}
		hint := make([]string, len(left))
		for i, k := range left {
			hint[i] = "${{ matrix." + k + " }}"
		}
		c.warnings = append(c.warnings, &schema.Diagnostic{Pos: spec.toNode.Pos, Path: schema.PathString(at), Msg: msg,
			Hint: fmt.Sprintf("name the member in to, with %s or ${{ task.id }}, unless that is meant", strings.Join(hint, " and ")), Warning: true})
	}
}

// noNUL refuses a NUL byte in what a task's process is given (its script,
// arguments and environment): the kernel takes C strings, so the value
// would be cut short, and every attempt of the task would fail to start.
// path is made only for an error: this runs for every matrix member.
func (c *compiler) noNUL(n *schema.Node, v string, path func() []any) {
	if n != nil && strings.IndexByte(v, 0) >= 0 {
		c.errorOnce(n, path(), "holds a NUL byte, which no process can be given (its text would end there)")
	}
}

// inputs evaluates and checks the inputs of a task or of the finalize
// step; a template in broken is unknown.
func (c *compiler) inputs(specs []inputSpec, broken map[*template]bool, s *scope, p func(...any) []any) []Input {
	if len(specs) == 0 {
		return nil
	}
	out := make([]Input, 0, len(specs))
	var landed map[string]landing
	for _, is := range specs {
		j := is.j
		fromPath := func() []any { return p("inputs", j, "from") }
		from, unk := eval(is.from, s, broken)
		in := Input{From: from}
		switch {
		case strings.HasPrefix(from, "az://"):
			in.Kind = InputBlob
			if strings.HasSuffix(from, "/") || strings.Count(from, "/") == 2 {
				in.Kind = InputBlobPrefix
			}
			if !unk {
				c.checkBlobURL(is.fromNode, fromPath, from, in.Kind == InputBlobPrefix)
			}
		case strings.HasPrefix(from, "https://") || strings.HasPrefix(from, "http://"):
			in.Kind = InputHTTP
		case strings.Contains(from, "://"):
			c.errorOnce(is.fromNode, fromPath(), "input %q: expected az://, https:// or a path relative to the spec's folder", redactURL(from))
		default:
			in.Kind = InputFile
			switch {
			case from == "" && !unk:
				c.errorOnce(is.fromNode, fromPath(), "input from is empty")
			case absolute(from):
				// A value not known yet is shown as <params.x>, which is
				// not absolute: what is known decides. A warning, not an
				// error: on a shared filesystem the path holds for every
				// local run; validate --strict refuses it where a spec
				// must hold on any machine.
				c.warnOnce(is.fromNode, fromPath(), "give a path relative to the spec's folder (../ may climb out of it), or an az:// or https:// location",
					"input from %q is absolute: it names a file on this machine only, and another file, or none, on any other", from)
			}
		}
		pathUnk := false
		if is.path != nil {
			in.Path, pathUnk = eval(is.path, s, broken)
		}
		if in.Path == "" {
			in.Path = defaultInputPath(in)
		}
		at, atPath := is.pathNode, func() []any { return p("inputs", j, "path") }
		if at == nil {
			at, atPath = is.fromNode, fromPath
		}
		ok := is.pathNode == nil || c.checkRelPath(is.pathNode, atPath, in.Path, "input path")
		// What staging would refuse, once the task is on its node, is
		// refused now: a file landing on the working directory itself, or
		// where another input of the task lands. A blob or a URL is one
		// file; a prefix lands in a directory, and a spec-relative path
		// may name one: those may share a directory.
		dir := in.Kind == InputBlobPrefix || in.Kind == InputFile
		if ok && !unk && !pathUnk && !strings.Contains(in.Path, "${{") {
			clean := path.Clean(in.Path)
			switch {
			case clean == "." && !dir && is.pathNode != nil:
				c.errorOnce(at, atPath(), "input path %q names the working directory itself: the path must name a file in the working directory", in.Path)
			case clean == "." && !dir:
				c.errorOnce(at, atPath(), "input %q has no file name to land under: give path, naming a file in the working directory", redactURL(from))
			default:
				if first, dup := landed[clean]; dup && !(dir && first.dir) {
					d := c.errorOnceDiag(at, atPath(), "input path %q is where inputs[%d] lands too (first at %d:%d): each input needs a path of its own", in.Path, first.j, first.at.Pos.Line, first.at.Pos.Col)
					if d != nil {
						d.Related = []schema.Pos{first.at.Pos}
					}
				} else if file, inside := c.underFile(landed, clean, dir); inside {
					d := c.errorOnceDiag(at, atPath(), "input path %q and inputs[%d]'s %q (at %d:%d) cannot both land: a file is where the other needs a directory", in.Path, file.j, file.path, file.at.Pos.Line, file.at.Pos.Col)
					if d != nil {
						d.Related = []schema.Pos{file.at.Pos}
					}
				} else if !dup {
					if landed == nil {
						landed = map[string]landing{}
					}
					landed[clean] = landing{j: j, dir: dir, at: at, path: in.Path}
				}
			}
		}
		out = append(out, in)
	}
	return out
}

// landing is where an input of a task lands, for the next inputs to be
// checked against.
type landing struct {
	j    int
	dir  bool
	at   *schema.Node
	path string
}

// underFile finds where an input landing at clean and the inputs landed
// before it cannot both be: a file (a blob, a URL) landed on a directory
// above clean, or, when the new input is one file itself (dir false), an
// input landed below clean, which needs it to be a directory. A
// spec-relative path may be a folder or a file, and is not held against
// either. Of several, the first landed is told.
func (c *compiler) underFile(landed map[string]landing, clean string, dir bool) (landing, bool) {
	for p := path.Dir(clean); p != "." && p != "/"; p = path.Dir(p) {
		if l, ok := landed[p]; ok && !l.dir {
			return l, true
		}
	}
	var found landing
	ok := false
	if !dir {
		for p, l := range landed {
			if strings.HasPrefix(p, clean+"/") && (!ok || l.j < found.j) {
				found, ok = l, true
			}
		}
	}
	return found, ok
}

// defaultInputPath is where an input lands when the spec does not say: a
// file under its own base name, a prefix into the working directory.
func defaultInputPath(in Input) string {
	if in.Kind == InputBlobPrefix {
		return "."
	}
	from := in.From
	if in.Kind == InputHTTP {
		if i := strings.IndexAny(from, "?#"); i >= 0 {
			from = from[:i]
		}
		// The name is the URL path's: a URL with none, such as
		// https://host:8080/, has no file name, and its host is none.
		_, rest, _ := strings.Cut(from, "://")
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return "."
		}
		from = rest[i:]
	}
	b := path.Base(strings.TrimSuffix(from, "/"))
	if b == "/" || b == "." || b == ".." || b == "" {
		return "."
	}
	return b
}

// outputs evaluates and checks the outputs of a task or of the finalize
// step, whose path in the spec p makes; a template in broken is unknown.
func (c *compiler) outputs(specs []outputSpec, s *scope, p func(...any) []any, broken map[*template]bool) []Output {
	if len(specs) == 0 {
		return nil
	}
	out := make([]Output, 0, len(specs))
	for _, o := range specs {
		j := o.j
		pat, patUnk := eval(o.path, s, broken)
		to, unk := eval(o.to, s, broken)
		// Paths are made only for an error: this runs for every member.
		pp := func() []any { return p("outputs", j, "path") }
		// What collecting the outputs would refuse, after the task ran, is
		// refused now. checkRelPath has refused absolute and escaping
		// patterns; the rest that can fail hold a [ or name the directory
		// itself, and only those are parsed: a sweep's every member has a
		// pattern of its own.
		rel := c.checkRelPath(o.pathNode, pp, pat, "output path")
		if suffix, folder := namesFolder(pat); rel && !patUnk && folder && !namesDir(pat) {
			// Batch's filePattern matches files only: out/ or out/. would
			// upload nothing, and say nothing about it.
			c.errorOnce(o.pathNode, pp(), "output path %q ends in %q: a pattern matches files, not a folder; write %q for the files in it", pat, suffix, filesIn(pat))
		} else if rel && !patUnk && !strings.Contains(pat, "${{") &&
			(strings.IndexByte(pat, '[') >= 0 || namesDir(pat)) {
			if err := filepattern.Check(pat); err != nil {
				c.errorOnce(o.pathNode, pp(), "output path: %v", err)
			}
		}
		if !unk {
			c.checkBlobURL(o.toNode, func() []any { return p("outputs", j, "to") }, to, true)
		}
		out = append(out, Output{Pattern: pat, To: to, When: o.when})
	}
	return out
}

// namesDir reports whether a relative path names the directory itself.
func namesDir(p string) bool { return path.Clean(p) == "." }

// namesFolder reports whether a pattern can only name a folder, not files:
// it ends in "/", or its last element is ".". suffix is the ending that
// says so.
func namesFolder(p string) (suffix string, ok bool) {
	switch {
	case strings.HasSuffix(p, "/"):
		return "/", true
	case p == "." || strings.HasSuffix(p, "/."):
		return "/.", true
	}
	return "", false
}

// filesIn is the pattern for the files in the folder a pattern that
// namesFolder names: a/ and a/. become a/**/*, and a/**/ becomes a/**/*
// rather than a/**/**/*.
func filesIn(p string) string {
	dir := p
	for {
		if d, ok := strings.CutSuffix(dir, "/"); ok {
			dir = d
		} else if d, ok := strings.CutSuffix(dir, "/."); ok {
			dir = d
		} else {
			break
		}
	}
	if dir == "**" || strings.HasSuffix(dir, "/**") {
		return dir + "/*"
	}
	return dir + "/**/*"
}

// hasher computes task content hashes with a canonical, length-prefixed
// encoding: cheaper than JSON and unambiguous.
type hasher struct {
	h    hash.Hash
	buf  []byte
	sum0 [sha256.Size]byte
}

func newHasher() *hasher { return &hasher{h: sha256.New()} }

func (h *hasher) str(s string) {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
}

func (h *hasher) sum(t *Task) string {
	h.buf = h.buf[:0]
	h.str("run")
	h.str(t.Run)
	h.str("command")
	h.buf = binary.AppendUvarint(h.buf, uint64(len(t.Command)))
	for _, a := range t.Command {
		h.str(a)
	}
	h.str("env")
	keys := make([]string, 0, len(t.Env))
	for k := range t.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		h.str(k)
		h.str(t.Env[k])
	}
	h.str("inputs")
	for _, in := range t.Inputs {
		h.str(in.From)
		h.str(in.Path)
	}
	h.str("packages")
	for _, p := range t.Packages {
		h.str(p.Name)
		h.str(p.Version)
	}
	h.str("container")
	if t.Container != nil {
		h.str(t.Container.Image)
		h.str(t.Container.Options)
	}
	h.h.Reset()
	h.h.Write(h.buf)
	sum := h.h.Sum(h.sum0[:0])
	// Written in one allocation: every member of a matrix keeps one.
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum)
	var b strings.Builder
	b.Grow(len("sha256:") + len(hexSum))
	b.WriteString("sha256:")
	b.Write(hexSum[:])
	return b.String()
}

// Package compiler turns a bmc/v1 workload spec into a Program: it parses
// the YAML keeping positions, validates it against the schema (once, on the
// spec as written), expands params, expressions and matrices, resolves
// dependsOn, checks the graph and emits plain, deterministic data.
//
// The compiler is pure: no network, no clock, no environment. Every problem
// it finds is a positioned Diagnostic, and all of them come back together.
package compiler

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bmc-dev/bmc/internal/loopback"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/schema"
)

// Options are the inputs of a compile besides the spec.
type Options struct {
	// Params are values given with --set; they override defaults.
	Params map[string]any
	// Partial tolerates required params with no value, as validate does:
	// checks that need their values are skipped.
	Partial bool
}

// MaxTasks bounds the number of tasks after expansion.
const MaxTasks = 5_000_000

// CompileFile reads and compiles a spec file.
func CompileFile(file string, opts Options) (*Program, []byte, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	p, diags := Compile(file, src, opts)
	if err := diags.Err(); err != nil {
		return nil, src, err
	}
	return p, src, nil
}

// Compile compiles one spec. file names it in diagnostics. When any
// diagnostic is returned the program must not be used.
//
// Diagnostics hold no secrets: a value quoted in a message, such as a
// mistyped https:// location given with --set, has its SAS signature (and
// any key or token) replaced by REDACTED, as everywhere bmc shows one.
func Compile(file string, src []byte, opts Options) (*Program, schema.Diagnostics) {
	p, diags, _ := compileRedacted(file, src, opts)
	return p, diags
}

// Validate compiles one spec as bmc validate does, and returns its errors
// and its warnings apart. Unlike Compile, which has no program to give
// them with, it returns the warnings of a spec with errors too: those
// found before the errors stopped the compile. The warnings that need
// the whole program, such as two tasks uploading to one blob without
// waiting for each other, are looked for only in a spec without errors:
// a dependency in error is no edge, and two tasks would look unordered.
func Validate(file string, src []byte, opts Options) (errs, warnings schema.Diagnostics) {
	_, errs, warnings = compileRedacted(file, src, opts)
	return errs, warnings
}

// compileRedacted is compile with the secrets taken out of the messages.
func compileRedacted(file string, src []byte, opts Options) (*Program, schema.Diagnostics, schema.Diagnostics) {
	p, diags, warnings := compile(file, src, opts)
	for _, ds := range []schema.Diagnostics{diags, warnings} {
		for _, d := range ds {
			d.Msg, d.Hint = redact.String(d.Msg), redact.String(d.Hint)
		}
	}
	return p, diags, warnings
}

// compile returns the program, or nil with errors, and the warnings found
// either way.
func compile(file string, src []byte, opts Options) (*Program, schema.Diagnostics, schema.Diagnostics) {
	src, d := checkEncoding(file, src)
	if d != nil {
		return nil, schema.Diagnostics{d}, nil
	}
	c := &compiler{file: file, opts: opts}
	// Build the schema on another core while this one parses the YAML:
	// the first compile in a process pays for both.
	go schema.Load()
	root, diags := schema.Parse(file, src)
	if root == nil || diags.Fatal() {
		return nil, diags, nil
	}
	// A duplicate key or a second document leaves the tree whole: the
	// spec's other errors are reported with them.
	c.root = root
	s, err := schema.Load()
	if err != nil {
		return nil, schema.Diagnostics{{Pos: schema.Pos{File: file}, Msg: err.Error()}}, nil
	}
	c.diags = append(diags, s.Validate(root)...)
	if root.Kind != schema.KindMap {
		return nil, c.diags, nil
	}
	c.compile()
	c.diags.Sort()
	c.warnings.Sort()
	if len(c.diags) > 0 {
		return nil, c.diags, c.warnings
	}
	c.prog.warnings = c.warnings
	c.sources()
	return c.prog, nil, c.warnings
}

// sources records where the program's tasks and pool are written, for
// what is found about them later (a backend's limits) to be positioned
// as the compile's own errors are.
func (c *compiler) sources() {
	p := c.prog
	if pool := c.root.Get("pool"); pool != nil {
		p.poolPos = pool.Pos
	}
	if fin := c.root.Get("finalize"); fin != nil {
		p.finInputPos = inputsFrom(fin)
	}
	if len(c.taskNode) != len(p.Tasks) {
		return
	}
	spec := map[*schema.Node]int32{}
	p.specOf = make([]int32, len(p.Tasks))
	for i, n := range c.taskNode {
		k, ok := spec[n]
		if !ok {
			k = int32(len(p.specPos))
			spec[n] = k
			pos := n.Pos
			if id := n.Get("id"); id != nil {
				pos = id.Pos
			}
			p.specPos = append(p.specPos, pos)
			p.inputPos = append(p.inputPos, inputsFrom(n))
		}
		p.specOf[i] = k
	}
}

// inputsFrom is where the from of each input of a task or of the finalize
// step, n, is written: those with a from, as inputSpecs takes them.
func inputsFrom(n *schema.Node) []schema.Pos {
	ins := n.Get("inputs")
	if ins == nil || ins.Kind != schema.KindList {
		return nil
	}
	var out []schema.Pos
	for _, e := range ins.Vals {
		if from := e.Get("from"); from != nil {
			out = append(out, from.Pos)
		}
	}
	return out
}

type compiler struct {
	file     string
	opts     Options
	root     *schema.Node
	diags    schema.Diagnostics
	warnings schema.Diagnostics
	prog     *Program

	params   map[string]any
	missing  map[string]bool
	workload map[string]any
	packages map[string]Package
	defaults taskDefaults

	// taskNode maps each expanded task to the spec node it came from.
	taskNode  []*schema.Node
	depNodes  [][]*schema.Node // per expanded task, the dependsOn entry nodes
	reported  map[*schema.Node]bool
	warned    map[*schema.Node]bool
	cycleSeen map[string]bool
	// droppedSpecs are the task specs whose id or matrix had errors:
	// not compiled, but their ids are checked against the others' and
	// stand for dependsOn names.
	droppedSpecs []*taskSpec
	// droppedDeps are their dependsOn names, checked all the same.
	droppedDeps []droppedDep
}

type taskDefaults struct {
	retries   int
	timeout   Duration
	slots     int
	env       map[string]*template
	envOrder  []string
	envNodes  map[string]*schema.Node
	container *schema.Node
	// image is the template of container.image, parsed once.
	image     *template
	imageNode *schema.Node
	// broken are the templates with errors whatever the task (a name
	// that is no param), reported once at defaults: their values are
	// unknown in every task and in the finalize step.
	broken map[*template]bool
	// told are the errors of defaults templates that depend on the task
	// (a matrix key it lacks), reported once, for the first such task.
	told map[toldKey]bool
}

// toldKey is an error at an expression of a defaults template.
type toldKey struct {
	n   *schema.Node
	off int
	msg string
}

func (c *compiler) errorf(n *schema.Node, path []any, format string, args ...any) *schema.Diagnostic {
	d := &schema.Diagnostic{Pos: n.Pos, Path: schema.PathString(path), Msg: fmt.Sprintf(format, args...)}
	c.diags = append(c.diags, d)
	return d
}

// errorOnce reports at most one error per node: a matrix task's members
// share their spec nodes.
func (c *compiler) errorOnce(n *schema.Node, path []any, format string, args ...any) {
	if c.reported == nil {
		c.reported = map[*schema.Node]bool{}
	}
	if c.reported[n] {
		return
	}
	c.reported[n] = true
	c.errorf(n, path, format, args...)
}

// warnOnce reports at most one warning per node, as errorOnce does
// errors: a matrix task's members share their spec nodes.
func (c *compiler) warnOnce(n *schema.Node, path []any, hint, format string, args ...any) {
	if c.warned[n] {
		return
	}
	if c.warned == nil {
		c.warned = map[*schema.Node]bool{}
	}
	c.warned[n] = true
	c.warnings = append(c.warnings, &schema.Diagnostic{Pos: n.Pos, Path: schema.PathString(path), Warning: true,
		Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// errorOnceHint is errorOnce with a hint.
func (c *compiler) errorOnceHint(n *schema.Node, path []any, hint, format string, args ...any) {
	if d := c.errorOnceDiag(n, path, format, args...); d != nil {
		d.Hint = hint
	}
}

// errorOnceDiag is errorOnce returning the diagnostic it added, or nil.
func (c *compiler) errorOnceDiag(n *schema.Node, path []any, format string, args ...any) *schema.Diagnostic {
	if c.reported[n] {
		return nil
	}
	c.errorOnce(n, path, format, args...)
	return c.diags[len(c.diags)-1]
}

func (c *compiler) exprErr(n *schema.Node, path []any, e *exprError) {
	d := &schema.Diagnostic{Pos: n.PosAt(e.off), Path: schema.PathString(path), Msg: e.msg, Hint: e.hint}
	c.diags = append(c.diags, d)
}

func str(n *schema.Node) string {
	if n == nil {
		return ""
	}
	if n.Kind == schema.KindString {
		return n.Str
	}
	switch n.Kind {
	case schema.KindInt, schema.KindFloat, schema.KindBool:
		return n.Str
	}
	return ""
}

func intOf(n *schema.Node, def int) int {
	if n == nil || n.Kind != schema.KindInt {
		return def
	}
	return int(n.Int)
}

func (c *compiler) compile() {
	r := c.root
	c.prog = &Program{
		APIVersion:  "bmc/v1",
		Name:        str(r.Get("name")),
		Description: str(r.Get("description")),
	}
	c.asWritten(r.Get("description"), []any{"description"}, "the description")
	c.labels()
	c.params2()
	c.workload = map[string]any{"name": c.prog.Name, "description": c.prog.Description}
	labels := map[string]any{}
	for k, v := range c.prog.Labels {
		labels[k] = v
	}
	c.workload["labels"] = labels
	c.packages2()
	c.pool()
	c.storage()
	c.defaults2()
	c.tasks()
	c.finalize()
}

func (c *compiler) top() *scope {
	return &scope{params: c.params, missing: c.missing, workload: c.workload}
}

// tmpl parses a string node's template, reporting syntax errors.
func (c *compiler) tmpl(n *schema.Node, path []any) *template {
	if n == nil {
		return nil
	}
	t, errs := parseTemplateAll(scalarText(n))
	for _, err := range errs {
		c.exprErr(n, path, err)
	}
	return t
}

func scalarText(n *schema.Node) string {
	if n.Kind == schema.KindNull {
		return ""
	}
	return n.Str
}

// evalStr parses and evaluates a string in scope s, reporting every
// error in it. It returns the value, whether it is unknown (a param
// validate has no value for, or an expression that did not parse), and
// false when a name in it is in error: the value is then "", and no
// check of it may follow.
func (c *compiler) evalStr(n *schema.Node, path []any, s *scope) (string, bool, bool) {
	if n == nil {
		return "", false, true
	}
	t := c.tmpl(n, path)
	if errs := t.check(s); len(errs) > 0 {
		for _, err := range errs {
			c.exprErr(n, path, err)
		}
		return "", false, false
	}
	v, unk, err := t.eval(s)
	if err != nil {
		c.exprErr(n, path, err)
		return "", false, false
	}
	return v, unk, true
}

// checkTmpl reports every error in the names of t, a template of node n,
// in scope s, and puts t in broken when it has errors, of its names or
// of its syntax (reported when it was parsed): its value is then unknown,
// as a missing param's is, so that no check of it adds to the errors.
func (c *compiler) checkTmpl(t *template, n *schema.Node, path []any, s *scope, broken map[*template]bool) {
	if t == nil {
		return
	}
	errs := t.check(s)
	for _, err := range errs {
		c.exprErr(n, path, err)
	}
	if t.bad || len(errs) > 0 {
		broken[t] = true
	}
}

func (c *compiler) labels() {
	n := c.root.Get("labels")
	if n == nil || n.Kind != schema.KindMap {
		return
	}
	c.prog.Labels = map[string]string{}
	for i, k := range n.Keys {
		// bmc keeps a run's state in the job's metadata under bmc.
		// names, beside the labels: a label of such a name would
		// override it (a run would show as cancelled, say).
		if len(k.Str) >= 4 && strings.EqualFold(k.Str[:4], "bmc.") {
			c.errorf(k, []any{"labels", k.Str}, "label %q: names starting with bmc. are bmc's own, for the run's state in the job's metadata; give the label another name", k.Str)
		}
		c.asWritten(n.Vals[i], []any{"labels", k.Str}, "a label")
		c.prog.Labels[k.Str] = scalarText(n.Vals[i])
	}
}

// asWritten refuses "${{" in a value taken as written (what), where no
// expression is evaluated: a task that reads it (through matrix or
// workload) would have the names bmc fills in at run time, such as
// ${{ run.id }}, filled in and the others left as text. There is no
// escape for a literal "${{".
func (c *compiler) asWritten(n *schema.Node, path []any, what string) {
	if n != nil && n.Kind == schema.KindString && strings.Contains(n.Str, "${{") {
		c.errorf(n, path, "%s is taken as written, and holds ${{: expressions are not evaluated here", what)
	}
}

func (c *compiler) params2() {
	c.params = map[string]any{}
	c.missing = map[string]bool{}
	n := c.root.Get("params")
	declared := map[string]bool{}
	if n != nil && n.Kind == schema.KindMap {
		for i, k := range n.Keys {
			declared[k.Str] = true
			p := n.Vals[i]
			if v, ok := c.opts.Params[k.Str]; ok {
				if holdsExpr(v) {
					c.errorf(k, []any{"params", k.Str}, "--set %s: a param's value holds no expressions, and ${{ cannot be written in one", k.Str)
				}
				if msg := badNumber(v); msg != "" {
					c.errorf(k, []any{"params", k.Str}, "--set %s: %s", k.Str, msg)
				}
				c.params[k.Str] = v
			} else if d := p.Get("default"); d != nil {
				if holdsNull(d.Value()) {
					// A null would stay unfilled, as a value known only
					// at run time does, and reach the task as ${{ }} text.
					c.errorf(d, []any{"params", k.Str, "default"}, "param %q: a default holding null is no value; write \"\" for the empty string, or leave default out to make the param required", k.Str)
					c.missing[k.Str] = true
					continue
				}
				if holdsExpr(d.Value()) {
					c.errorf(d, []any{"params", k.Str, "default"}, "param %q: a param's value holds no expressions, and ${{ cannot be written in one", k.Str)
				}
				c.params[k.Str] = d.Value()
			} else {
				// Marked missing either way, so that expressions naming it
				// are not reported again as unknown names.
				c.missing[k.Str] = true
				if c.opts.Partial {
					continue
				}
				c.errorf(k, []any{"params", k.Str}, "param %q is required: it has no default; give it with --set %s=VALUE", k.Str, k.Str)
			}
		}
	}
	var names []string
	for k := range declared {
		names = append(names, k)
	}
	keys := make([]string, 0, len(c.opts.Params))
	for k := range c.opts.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// An unknown --set name is the spec's error as much as the flag's: it
	// is reported at the spec's params (or its start), naming the flag.
	at := schema.Pos{File: c.file, Line: 1, Col: 1}
	if n != nil {
		if k := c.root.KeyNode("params"); k != nil {
			at = k.Pos
		}
	}
	for _, k := range keys {
		if !declared[k] {
			d := &schema.Diagnostic{Pos: at, Path: "params", Msg: fmt.Sprintf("--set %s: the spec declares no param %q", k, k)}
			if s := schema.Suggest(k, names); s != "" {
				d.Hint = "did you mean " + s + "?"
			}
			c.diags = append(c.diags, d)
		}
	}
	if len(c.params) > 0 {
		c.prog.Params = c.params
	}
}

func (c *compiler) packages2() {
	c.packages = map[string]Package{}
	n := c.root.Get("packages")
	if n == nil || n.Kind != schema.KindList {
		return
	}
	for i, p := range n.Vals {
		name := str(p.Get("name"))
		if name == "" {
			continue
		}
		pk := Package{Name: name, Version: str(p.Get("version"))}
		if _, dup := c.packages[strings.ToLower(name)]; dup {
			c.errorf(p.Get("name"), []any{"packages", i, "name"}, "duplicate package %q", name)
			continue
		}
		c.packages[strings.ToLower(name)] = pk
		c.prog.Packages = append(c.prog.Packages, pk)
	}
}

func (c *compiler) pool() {
	n := c.root.Get("pool")
	if n == nil || n.Kind != schema.KindMap {
		return
	}
	s := c.top()
	at := func(key string) string {
		v, _, _ := c.evalStr(n.Get(key), []any{"pool", key}, s)
		return v
	}
	p := &Pool{ID: at("id"), VMSize: at("vmSize"), NodeAgentSKU: at("nodeAgentSku"), Identity: at("identity"),
		SlotsPerNode: intOf(n.Get("slotsPerNode"), 1)}
	if img := n.Get("image"); img != nil && img.Kind == schema.KindMap {
		p.Image = &Image{Publisher: str(img.Get("publisher")), Offer: str(img.Get("offer")), SKU: str(img.Get("sku")), Version: str(img.Get("version"))}
		if p.Image.Version == "" {
			p.Image.Version = "latest"
		}
	}
	nodes, auto := n.Get("nodes"), n.Get("autoscale")
	if nodes != nil && nodes.Kind == schema.KindMap {
		p.Dedicated = intOf(nodes.Get("dedicated"), 0)
		p.Spot = intOf(nodes.Get("spot"), 0)
	}
	if nodes != nil && auto != nil {
		c.errorf(n.KeyNode("autoscale"), []any{"pool", "autoscale"}, "nodes and autoscale are exclusive: a pool has a fixed size or an autoscale formula")
	}
	if auto != nil && auto.Kind == schema.KindMap {
		p.Autoscale = &Autoscale{Formula: str(auto.Get("formula")), Interval: Duration(15 * 60e9)}
		if iv := auto.Get("interval"); iv != nil {
			if d, ok := c.duration(iv, []any{"pool", "autoscale", "interval"}); ok {
				if d < 5*60e9 || d > 168*3600e9 {
					c.errorf(iv, []any{"pool", "autoscale", "interval"}, "autoscale interval %s is out of range: Batch takes 5m to 168h", d)
				}
				p.Autoscale.Interval = d
			}
		}
	}
	if st := n.Get("startTask"); st != nil && st.Kind == schema.KindMap {
		t := &StartTask{Run: evalKey(c, st, "run", []any{"pool", "startTask", "run"}, s), Elevated: st.Get("elevated") != nil && st.Get("elevated").Bool, WaitForSuccess: true}
		if w := st.Get("waitForSuccess"); w != nil && w.Kind == schema.KindBool {
			t.WaitForSuccess = w.Bool
		}
		c.checkEnvNames(st.Get("env"), []any{"pool", "startTask", "env"}, true)
		t.Env = c.envMap(st.Get("env"), []any{"pool", "startTask", "env"}, s)
		p.StartTask = t
	}
	c.prog.Pool = p
}

func evalKey(c *compiler, n *schema.Node, key string, path []any, s *scope) string {
	v, _, _ := c.evalStr(n.Get(key), path, s)
	return v
}

// checkEnvNames refuses the variables bmc and Azure Batch set for every
// task, which would replace the spec's without a word. A start task runs
// outside any run, and gets Batch's node variables only.
func (c *compiler) checkEnvNames(n *schema.Node, path []any, startTask bool) {
	if n == nil || n.Kind != schema.KindMap {
		return
	}
	for _, k := range n.Keys {
		if who := envSetter(k.Str, startTask); who != "" {
			c.errorf(k, append(slices.Clip(path), k.Str), "%s is set by %s: a spec cannot set it", k.Str, who)
		}
	}
}

// bmcEnv are the variables bmc sets for tasks and the finalize step.
var bmcEnv = []string{"BMC_RUN_ID", "BMC_WORKLOAD", "BMC_TASK_ATTEMPT", "BMC_RUN_SUMMARY", "BMC_SESSION"}

// envSetter names who sets a variable for every task, or "".
func envSetter(name string, startTask bool) string {
	switch {
	case strings.HasPrefix(name, "AZ_BATCH_"):
		return "Azure Batch (and by the local backend, as on Batch)"
	case !startTask && slices.Contains(bmcEnv, name):
		return "bmc"
	}
	return ""
}

func (c *compiler) envMap(n *schema.Node, path []any, s *scope) map[string]string {
	if n == nil || n.Kind != schema.KindMap {
		return nil
	}
	m := make(map[string]string, len(n.Keys))
	for i, k := range n.Keys {
		v, _, _ := c.evalStr(n.Vals[i], append(slices.Clip(path), k.Str), s)
		m[k.Str] = v
	}
	return m
}

func (c *compiler) storage() {
	if n := c.root.Get("storage"); n != nil && n.Kind == schema.KindMap {
		c.prog.Storage = &Storage{Backend: str(n.Get("backend")), AccountURL: str(n.Get("accountUrl"))}
	}
	if n := c.root.Get("logs"); n != nil {
		v, unk, ok := c.evalStr(n, []any{"logs"}, c.top())
		if ok && !unk {
			c.checkBlobURL(n, func() []any { return []any{"logs"} }, v, true)
		}
		c.prog.Logs = v
	}
}

// duration parses a duration node; the schema has already reported one
// that does not look like a duration.
func (c *compiler) duration(n *schema.Node, path []any) (Duration, bool) {
	if n == nil || n.Kind != schema.KindString {
		return 0, false
	}
	d, err := ParseDuration(n.Str)
	if err != nil {
		// The schema has reported a malformed one already.
		if errors.Is(err, ErrDurationTooLong) {
			c.errorf(n, path, "%v", err)
		}
		return 0, false
	}
	if d <= 0 {
		c.errorf(n, path, "duration %q must be positive", n.Str)
		return 0, false
	}
	return Duration(d), true
}

func (c *compiler) defaults2() {
	c.defaults = taskDefaults{slots: 1}
	n := c.root.Get("defaults")
	if n == nil || n.Kind != schema.KindMap {
		return
	}
	c.defaults.retries = intOf(n.Get("retries"), 0)
	c.defaults.slots = intOf(n.Get("slots"), 1)
	if d, ok := c.duration(n.Get("timeout"), []any{"defaults", "timeout"}); ok {
		c.defaults.timeout = d
	}
	c.checkEnvNames(n.Get("env"), []any{"defaults", "env"}, false)
	if env := n.Get("env"); env != nil && env.Kind == schema.KindMap {
		c.defaults.env = map[string]*template{}
		c.defaults.envNodes = map[string]*schema.Node{}
		for i, k := range env.Keys {
			if t := c.tmpl(env.Vals[i], []any{"defaults", "env", k.Str}); t != nil {
				c.defaults.env[k.Str] = t
				c.defaults.envNodes[k.Str] = env.Vals[i]
				c.defaults.envOrder = append(c.defaults.envOrder, k.Str)
			}
		}
	}
	c.defaults.container = n.Get("container")
	if cont := c.defaults.container; cont != nil && cont.Kind == schema.KindMap {
		c.defaults.imageNode = cont.Get("image")
		c.defaults.image = c.tmpl(c.defaults.imageNode, []any{"defaults", "container", "image"})
	}
	// The templates are checked once here, for what they name that is
	// the same in every task; matrix keys, which depend on the task, are
	// unknown here and checked in each task that takes the template.
	s := c.top()
	s.taskOK, s.taskID = true, "task-id"
	s.matrix, s.matrixOK, s.matrixKeyless = map[string]any{}, true, true
	c.defaults.broken = map[*template]bool{}
	for _, k := range c.defaults.envOrder {
		c.checkTmpl(c.defaults.env[k], c.defaults.envNodes[k], []any{"defaults", "env", k}, s, c.defaults.broken)
	}
	c.checkTmpl(c.defaults.image, c.defaults.imageNode, []any{"defaults", "container", "image"}, s, c.defaults.broken)
}

// defaultsErr reports an error of a defaults template that depends on
// the task ts (a matrix key it lacks): once, at defaults, naming the first
// task it is an error in. field names what the task may give of its own.
func (c *compiler) defaultsErr(ts *taskSpec, n *schema.Node, path []any, field string, e *exprError) {
	key := toldKey{n, e.off, e.msg}
	if c.defaults.told[key] {
		return
	}
	if c.defaults.told == nil {
		c.defaults.told = map[toldKey]bool{}
	}
	c.defaults.told[key] = true
	id := scalarText(ts.idNode)
	d := &schema.Diagnostic{Pos: n.PosAt(e.off), Path: schema.PathString(path), Msg: fmt.Sprintf("%s (task %s takes it from defaults)", e.msg, id),
		Hint: e.hint, Related: []schema.Pos{ts.idNode.Pos}}
	if d.Hint == "" {
		d.Hint = fmt.Sprintf("give task %s its own %s: a task's replaces the default", id, field)
	}
	c.diags = append(c.diags, d)
}

// checkCallbackURL refuses a callback URL no request could be sent to,
// which would otherwise be found only once every task has run. The URL is
// quoted as written (url.Parse would re-encode it), its query and user
// info left out.
func (c *compiler) checkCallbackURL(n *schema.Node, path []any, v string) {
	shown := redactURL(v)
	u, err := url.Parse(v)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text quotes the whole URL, query and all
		}
		c.errorf(n, path, "callback URL %q is not a valid URL: %v", shown, err)
	case u.Scheme != "https" && u.Scheme != "http":
		c.errorf(n, path, "callback URL %q is not an absolute https:// URL", shown)
	case u.Hostname() == "":
		c.errorf(n, path, "callback URL %q has no host", shown)
	case u.Port() != "" && !validPort(u.Port()):
		c.errorf(n, path, "callback URL %q: port %s is out of range: 1-65535", shown, u.Port())
	case u.Scheme != "https" && !loopback.Host(u.Hostname()):
		c.errorf(n, path, "callback URL must use https (http is allowed only for loopback hosts such as 127.0.0.1 and localhost)")
	}
}

// validPort reports whether p, the digits url.Parse found after a host's
// colon, is a port a connection can be made to.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// redactURL is a URL as written, for messages, without its query,
// fragment and user info: any may hold a token, a username too
// (https://TOKEN@host). The user info is what url.Parse would take: up
// to the authority's last @. With no //, the text up to the first / is
// taken for the authority, scheme aside, so that tok@host/x loses tok.
func redactURL(v string) string {
	if i := strings.IndexAny(v, "?#"); i >= 0 {
		v = v[:i]
	}
	head, rest := "", v
	if i := strings.Index(v, "//"); i >= 0 && !strings.Contains(v[:i], "/") {
		head, rest = v[:i+2], v[i+2:]
	} else if i := strings.IndexByte(v, ':'); i > 0 && !strings.ContainsAny(v[:i], "/@") {
		head, rest = v[:i+1], v[i+1:]
	}
	auth := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		auth = rest[:i]
	}
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return head + rest
}

// checkBlobURL checks an az://container/path location. path is made
// only for an error: this runs for every matrix member.
func (c *compiler) checkBlobURL(n *schema.Node, path func() []any, v string, prefix bool) bool {
	rest, ok := strings.CutPrefix(v, "az://")
	if !ok {
		c.errorOnce(n, path(), "%q is not an az://container/path location", v)
		return false
	}
	container, blob, _ := strings.Cut(rest, "/")
	if strings.Contains(container, "${{") {
		return true
	}
	if !validContainer(container) {
		c.errorOnce(n, path(), "invalid container name %q in %s: 3-63 lower-case letters, digits and single dashes", container, v)
		return false
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(blob, "/"), "/") {
		if seg == "." || seg == ".." || (seg == "" && blob != "") {
			c.errorOnce(n, path(), "blob path in %s may not hold empty, . or .. segments", v)
			return false
		}
	}
	return true
}

func validContainer(s string) bool {
	if len(s) < 3 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// checkRelPath rejects absolute paths and .. escapes in a working-dir
// path. p is made only for an error: this runs for every matrix member.
func (c *compiler) checkRelPath(n *schema.Node, p func() []any, v, what string) bool {
	// Names filled in at run time (run.id, task.attempt) are left in v:
	// they hold no "..", so what is around them decides.
	lit := v
	if strings.Contains(v, "${{") {
		lit = lateExpr.ReplaceAllString(v, "x")
	}
	if absolute(lit) || (len(lit) > 1 && lit[1] == ':') {
		c.errorOnce(n, p(), "%s %q is absolute: paths are relative to the task's working directory", what, v)
		return false
	}
	if !strings.Contains(lit, "..") {
		return true // nothing climbs: no need to clean it
	}
	clean := path.Clean(lit)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		c.errorOnce(n, p(), "%s %q escapes the task's working directory", what, v)
		return false
	}
	return true
}

// absolute reports whether a path names a place from a root of the
// machine reading it rather than from a folder: /x, \x, or a Windows
// drive, C:\x or C:/x. Such a path names another file, or none, on
// another machine.
func absolute(p string) bool {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) {
		return true
	}
	return len(p) > 2 && isLetter(p[0]) && p[1] == ':' && (p[2] == '/' || p[2] == '\\')
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// lateExpr is an expression left in a value for run time.
var lateExpr = regexp.MustCompile(`\$\{\{.*?\}\}`)

// checkEncoding drops a UTF-8 byte-order mark, which editors on Windows
// write and YAML allows, and refuses text that is not UTF-8: a YAML
// parser would turn a stray byte into U+FFFD, and the task would run a
// script other than the one in the file.
func checkEncoding(file string, src []byte) ([]byte, *schema.Diagnostic) {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(src, []byte("\xff\xfe")) || bytes.HasPrefix(src, []byte("\xfe\xff")) {
		return nil, &schema.Diagnostic{Pos: schema.Pos{File: file, Line: 1, Col: 1}, Msg: "the spec is UTF-16 text: save it as UTF-8"}
	}
	if utf8.Valid(src) {
		return src, nil
	}
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n <= 1 {
			return nil, &schema.Diagnostic{Pos: schema.Pos{File: file, Line: line, Col: col}, Msg: fmt.Sprintf("the spec is not valid UTF-8: byte 0x%02x here; save it as UTF-8", src[i])}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	return src, nil
}

// holdsExpr reports whether a param value holds "${{" anywhere: it would
// be taken for an expression once in a task's string (there is no escape
// for a literal one), and filled in at run time.
func holdsExpr(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.Contains(v, "${{")
	case []any:
		return slices.ContainsFunc(v, holdsExpr)
	case map[string]any:
		for k, e := range v {
			if strings.Contains(k, "${{") || holdsExpr(e) {
				return true
			}
		}
	}
	return false
}

// badNumber says why a --set value holds a number a program cannot
// hold, or "": the schema checks the spec's own numbers the same way.
func badNumber(v any) string {
	switch v := v.(type) {
	case float64:
		switch {
		case math.IsInf(v, 1):
			return "invalid number .inf: " + schema.FiniteOnly
		case math.IsInf(v, -1):
			return "invalid number -.inf: " + schema.FiniteOnly
		case math.IsNaN(v):
			return "invalid number .nan: " + schema.FiniteOnly
		}
	case *big.Int:
		return fmt.Sprintf("integer %s is out of range: %s", v, schema.IntRange)
	case uint64:
		if v > math.MaxInt64 {
			return fmt.Sprintf("integer %d is out of range: %s", v, schema.IntRange)
		}
	case []any:
		for _, e := range v {
			if msg := badNumber(e); msg != "" {
				return msg
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if msg := badNumber(v[k]); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// holdsNull reports whether a param value is, or holds, a null: it would
// stay unfilled, as a value known only at run time does, and reach the
// task as ${{ }} text.
func holdsNull(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case []any:
		return slices.ContainsFunc(v, holdsNull)
	case map[string]any:
		for _, e := range v {
			if holdsNull(e) {
				return true
			}
		}
	}
	return false
}

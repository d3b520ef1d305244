// Package schema owns the bmc/v1 workload schema: the CUE source embedded
// in the binary, the YAML parse that keeps positions, the validation of a
// parsed spec against the schema with every error positioned and reported
// at once, and the JSON Schema export for editors.
//
// Validation runs on the spec as written, before any expansion: CUE never
// runs once per expanded task. The walker below visits the YAML tree and the
// compiled CUE schema side by side and asks CUE about each value, so that a
// struct with three bad fields yields three errors (a single unification
// stops at the first error inside a struct) and every error carries the
// position of the YAML node it is about.
package schema

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/encoding/jsonschema"
)

//go:embed bmc.cue
var source []byte

// Source returns the CUE schema.
func Source() []byte { return source }

// Schema is the compiled bmc/v1 schema. It is safe for concurrent use.
type Schema struct {
	ctx  *cue.Context
	file cue.Value
	root *snode

	mu sync.Mutex // guards the lazily derived snode tree and caches
}

var (
	loadOnce sync.Once
	loaded   *Schema
	loadErr  error
)

// Load compiles the embedded schema once.
func Load() (*Schema, error) {
	loadOnce.Do(func() {
		ctx := cuecontext.New()
		v := ctx.CompileBytes(source, cue.Filename("bmc.cue"))
		if err := v.Err(); err != nil {
			loadErr = fmt.Errorf("compile schema: %w", err)
			return
		}
		w := v.LookupPath(cue.ParsePath("#Workload"))
		if err := w.Err(); err != nil {
			loadErr = fmt.Errorf("schema has no #Workload: %w", err)
			return
		}
		s := &Schema{ctx: ctx, file: v}
		s.root = s.derive(w)
		loaded = s
	})
	return loaded, loadErr
}

// JSONSchema returns a JSON Schema (draft 2020-12) of a workload, generated
// from the CUE schema, for editors such as yaml-language-server.
func JSONSchema() ([]byte, error) {
	s, err := Load()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The generator gives up on a struct that has both fields and a
	// pattern: the fields are generated alone, and tighten adds the
	// extension fields' pattern.
	expr, err := jsonschema.Generate(s.file.LookupPath(cue.ParsePath("#WorkloadFields")), nil)
	if err != nil {
		return nil, fmt.Errorf("generate JSON Schema: %w", err)
	}
	v := s.ctx.BuildExpr(expr)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("generate JSON Schema: %w", err)
	}
	var m map[string]any
	if err := v.Decode(&m); err != nil {
		return nil, fmt.Errorf("generate JSON Schema: %w", err)
	}
	m["$id"] = "https://bmc.dev/schema/bmc-v1.json"
	m["title"] = "bmc/v1 Workload"
	tighten(m)
	return json.MarshalIndent(m, "", "  ")
}

// tighten adds to the generated JSON Schema what the generator leaves out
// of the CUE schema, or what bmc validate checks beyond it, so that an
// editor flags what validate refuses, as far as a JSON Schema can say it:
// the top-level extension fields (x-…); the finalize step's matchN(<=1,
// run, command); the matrix keys' pattern, which is all a matrix may
// have, and a matrix with no keys or a key with no values; an empty run script; a param default of null; a
// pool with both nodes and autoscale; callback header names that are not
// HTTP tokens; and durations that are zero.
func tighten(m map[string]any) {
	m["patternProperties"] = map[string]any{"^x-": true}
	defs, _ := m["$defs"].(map[string]any)
	def := func(name string) map[string]any {
		d, _ := defs[name].(map[string]any)
		return d
	}
	prop := func(d map[string]any, name string) map[string]any {
		props, _ := d["properties"].(map[string]any)
		p, _ := props[name].(map[string]any)
		return p
	}
	if f := def("Finalize"); f != nil {
		f["not"] = map[string]any{"required": []any{"run", "command"}}
	}
	if t := def("Task"); t != nil {
		if mx := prop(t, "matrix"); mx != nil && mx["patternProperties"] != nil {
			mx["additionalProperties"] = false
			mx["minProperties"] = 1
			pats, _ := mx["patternProperties"].(map[string]any)
			for _, v := range pats {
				vm, _ := v.(map[string]any)
				alts, _ := vm["anyOf"].([]any)
				for _, alt := range alts {
					if am, _ := alt.(map[string]any); am["type"] == "array" {
						am["minItems"] = 1
					}
				}
			}
		}
		if run := prop(t, "run"); run != nil {
			run["minLength"] = 1
		}
	}
	if d := prop(def("Param"), "default"); d != nil {
		d["not"] = map[string]any{"type": "null"}
	}
	if p := def("Pool"); p != nil {
		p["not"] = map[string]any{"required": []any{"nodes", "autoscale"}}
	}
	if h := prop(def("Callback"), "headers"); h != nil {
		h["propertyNames"] = map[string]any{"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}
	}
	if d := def("Duration"); d != nil {
		d["not"] = map[string]any{"pattern": "^(0+(\\.0+)?(ms|s|m|h|d))+$"}
	}
}

// snode is the part of the CUE schema that applies at one place in a spec,
// with what the walker needs to know about it worked out once.
type snode struct {
	v     cue.Value
	kind  cue.Kind
	plain bool     // a bare type (string, int, _): the kind check is the whole check
	enum  []string // the allowed values when the schema is a disjunction of literals
	ref   string   // the definition it refers to, such as #Duration

	// structs
	fields   map[string]*snode
	required []string
	closed   bool
	patterns map[string]*snode // by key, for keys allowed by a pattern constraint
	oneOf    *matchN

	// lists
	elems [1]*snode // the element type

	// disjunctions of several kinds (string | list)
	alts []*snode

	leafCache map[string]string // scalar text → error message ("" = valid)
	// match is the pattern of a schema that is a regular expression
	// constraint and nothing else (=~"..."), directly or through a
	// definition: a string it matches is valid without asking CUE, which
	// uses the same regexp engine.
	match *regexp.Regexp
}

// matchN is a struct-level "n of these field sets must be present"
// constraint, read from a matchN(n, [{a!: _}, {b!: _}]) in the schema.
type matchN struct {
	min, max int
	sets     [][]string
}

func (s *Schema) derive(v cue.Value) *snode {
	n := &snode{v: v, kind: v.IncompleteKind()}
	if n.kind == cue.BottomKind {
		// CUE evaluates a struct's matchN against the bare definition and
		// reports "0 matched"; the struct is still a struct.
		if it, err := v.Fields(cue.Optional(true)); err == nil && it.Next() {
			n.kind = cue.StructKind
		}
	}
	if _, p := v.ReferencePath(); len(p.Selectors()) > 0 {
		n.ref = p.String()
	}
	op, args := v.Expr()
	n.plain = isBareType(v, op, n.kind)
	if op == cue.AndOp && n.kind == cue.TopKind && !v.IsConcrete() {
		// A field a pattern allows, looked up through a probe: _ & _.
		n.plain = true
		for _, a := range args {
			aop, _ := a.Expr()
			n.plain = n.plain && isBareType(a, aop, a.IncompleteKind())
		}
	}
	if dop, dargs := cue.Dereference(v).Expr(); dop == cue.RegexMatchOp && len(dargs) == 1 {
		if pat, err := dargs[0].String(); err == nil {
			n.match, _ = regexp.Compile(pat)
		}
	}
	if v.IsConcrete() && n.kind == cue.StringKind {
		str, _ := v.String()
		n.enum = []string{str}
	}
	if op == cue.OrOp {
		lit := true
		for _, a := range args {
			if !a.IsConcrete() || a.IncompleteKind() != cue.StringKind {
				lit = false
			}
		}
		if lit {
			for _, a := range args {
				str, _ := a.String()
				n.enum = append(n.enum, str)
			}
		} else if kinds := kindCount(args); kinds > 1 {
			for _, a := range args {
				n.alts = append(n.alts, s.derive(a))
			}
		}
	}
	if n.kind == cue.StructKind && n.alts == nil {
		n.fields = map[string]*snode{}
		n.patterns = map[string]*snode{}
		it, err := v.Fields(cue.Optional(true))
		if err == nil {
			for it.Next() {
				sel := it.Selector()
				name := sel.Unquoted()
				n.fields[name] = nil // derived on first use
				if sel.ConstraintType() == cue.RequiredConstraint {
					n.required = append(n.required, name)
				}
			}
		}
		n.closed = !v.Allows(cue.Str("\x00no such field"))
		n.oneOf = findMatchN(v)
		if n.oneOf == nil && n.ref != "" {
			n.oneOf = findMatchN(s.file.LookupPath(cue.ParsePath(n.ref)))
		}
	}
	return n
}

// isBareType reports whether v is a type and nothing more: _, string,
// int, number, bool, float. Such a value is no operation on anything, is
// not concrete, and is no struct or list (except _, which is any kind).
func isBareType(v cue.Value, op cue.Op, kind cue.Kind) bool {
	return op == cue.NoOp && !v.IsConcrete() && (kind == cue.TopKind || kind&(cue.StructKind|cue.ListKind) == 0)
}

func kindCount(args []cue.Value) int {
	seen := map[cue.Kind]bool{}
	for _, a := range args {
		seen[a.IncompleteKind()] = true
	}
	return len(seen)
}

// findMatchN reads a matchN(n, [{a!: _}, ...]) embedded in a struct.
func findMatchN(v cue.Value) *matchN {
	var m *matchN
	for _, src := range sources(v) {
		ast.Walk(src, func(node ast.Node) bool {
			call, ok := node.(*ast.CallExpr)
			if !ok || m != nil {
				return m == nil
			}
			id, ok := call.Fun.(*ast.Ident)
			if !ok || id.Name != "matchN" || len(call.Args) != 2 {
				return true
			}
			mn := &matchN{}
			switch a := call.Args[0].(type) {
			case *ast.BasicLit:
				k, _ := strconv.Atoi(a.Value)
				mn.min, mn.max = k, k
			case *ast.UnaryExpr:
				if lit, ok := a.X.(*ast.BasicLit); ok && a.Op.String() == "<=" {
					k, _ := strconv.Atoi(lit.Value)
					mn.min, mn.max = 0, k
				}
			}
			list, ok := call.Args[1].(*ast.ListLit)
			if !ok {
				return false
			}
			for _, e := range list.Elts {
				st, ok := e.(*ast.StructLit)
				if !ok {
					return false
				}
				var set []string
				for _, d := range st.Elts {
					if f, ok := d.(*ast.Field); ok {
						name, _, _ := ast.LabelName(f.Label)
						set = append(set, name)
					}
				}
				mn.sets = append(mn.sets, set)
			}
			m = mn
			return false
		}, nil)
	}
	return m
}

func sources(v cue.Value) []ast.Node {
	var out []ast.Node
	if src := v.Source(); src != nil {
		out = append(out, src)
	}
	if op, args := v.Expr(); op == cue.AndOp {
		for _, c := range args {
			if src := c.Source(); src != nil {
				out = append(out, src)
			}
		}
	}
	return out
}

func (s *Schema) field(n *snode, key string) (*snode, bool) {
	if c, ok := n.fields[key]; ok {
		if c == nil {
			c = s.derive(n.v.LookupPath(cue.MakePath(cue.Str(key).Optional())))
			n.fields[key] = c
		}
		return c, true
	}
	if c, ok := n.patterns[key]; ok {
		return c, c != nil
	}
	if !n.v.Allows(cue.Str(key)) {
		n.patterns[key] = nil
		return nil, false
	}
	probe := s.ctx.BuildExpr(&ast.StructLit{Elts: []ast.Decl{&ast.Field{Label: ast.NewString(key), Value: ast.NewIdent("_")}}})
	c := s.derive(n.v.Unify(probe).LookupPath(cue.MakePath(cue.Str(key))))
	if len(n.patterns) < 10000 {
		n.patterns[key] = c
	}
	return c, true
}

func (s *Schema) elem(n *snode) *snode {
	if n.elems[0] != nil {
		return n.elems[0]
	}
	// The element type is read from the schema's [...T]: CUE does not
	// look up an element pattern through a conjunction such as
	// list.MinItems(1) & [...#Task].
	var typ ast.Expr
	for _, src := range sources(n.v) {
		ast.Walk(src, func(node ast.Node) bool {
			if e, ok := node.(*ast.Ellipsis); ok && typ == nil {
				typ = e.Type
			}
			return typ == nil
		}, nil)
	}
	v := s.ctx.BuildExpr(ast.NewIdent("_"))
	if id, ok := typ.(*ast.Ident); ok && strings.HasPrefix(id.Name, "#") {
		v = s.file.LookupPath(cue.ParsePath(id.Name))
	} else if typ != nil {
		v = s.ctx.BuildExpr(typ, cue.Scope(s.file), cue.InferBuiltins(true))
	}
	n.elems[0] = s.derive(v)
	return n.elems[0]
}

// Validate checks a parsed spec against the schema and returns every
// problem found, each at the position of the node it is about.
func (s *Schema) Validate(root *Node) Diagnostics {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := walker{s: s}
	w.walk(root, s.root, nil)
	w.numbers(root, nil, map[Pos]bool{})
	return w.diags
}

// numbers reports every number a spec cannot hold, wherever it is: an
// integer beyond 64 bits, .inf and .nan (a program holds JSON numbers).
// A value repeated through an alias is reported once, where it is written.
func (w *walker) numbers(n *Node, path []any, seen map[Pos]bool) {
	if n.reported {
		return
	}
	switch n.Kind {
	case KindInt, KindFloat:
		if msg := numberProblem(n); msg != "" && !seen[n.Pos] {
			seen[n.Pos] = true
			w.errorf(n, path, fmt.Sprintf("write %q in quotes for the text", n.Str), "%s", msg)
		}
	case KindList:
		for i, v := range n.Vals {
			w.numbers(v, append(path, i), seen)
		}
	case KindMap:
		for i, k := range n.Keys {
			if len(path) == 0 && extension(k.Str) {
				continue // bmc ignores it; where an alias repeats it, it is checked there
			}
			w.numbers(n.Vals[i], append(path, k.Str), seen)
		}
	}
}

// extension reports whether a top-level key is an extension field
// (x-…), which bmc ignores.
func extension(key string) bool {
	return strings.HasPrefix(key, "x-")
}

// numberProblem says why a number node is not a value bmc takes, or "".
func numberProblem(n *Node) string {
	switch {
	case n.tooBig:
		return fmt.Sprintf("integer %s is out of range: %s", n.Str, IntRange)
	case n.Kind == KindFloat && (math.IsInf(n.Float, 0) || math.IsNaN(n.Float)):
		return fmt.Sprintf("invalid number %s: %s", n.Str, FiniteOnly)
	}
	return ""
}

// What the numbers of a spec, and of --set values, must be.
const (
	IntRange   = "whole numbers must fit in 64 bits (-9223372036854775808 to 9223372036854775807)"
	FiniteOnly = "numbers must be finite (not .inf or .nan)"
)

type walker struct {
	s     *Schema
	diags Diagnostics
}

func (w *walker) errorf(n *Node, path []any, hint string, format string, args ...any) *Diagnostic {
	d := &Diagnostic{Pos: n.Pos, Path: PathString(path), Msg: fmt.Sprintf(format, args...), Hint: hint}
	w.diags = append(w.diags, d)
	return d
}

func cueKind(k Kind) cue.Kind {
	switch k {
	case KindNull:
		return cue.NullKind
	case KindBool:
		return cue.BoolKind
	case KindInt:
		return cue.IntKind
	case KindFloat:
		return cue.FloatKind
	case KindString:
		return cue.StringKind
	case KindList:
		return cue.ListKind
	}
	return cue.StructKind
}

func kindName(k cue.Kind) string {
	var names []string
	for _, c := range []struct {
		k    cue.Kind
		name string
	}{{cue.StringKind, "string"}, {cue.NumberKind, "number"}, {cue.IntKind, "int"}, {cue.FloatKind, "number"},
		{cue.BoolKind, "bool"}, {cue.ListKind, "list"}, {cue.StructKind, "map"}, {cue.NullKind, "null"}} {
		if k&c.k == c.k {
			names = append(names, c.name)
			k &^= c.k
		}
	}
	switch len(names) {
	case 0:
		return "nothing"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func describe(n *Node) string {
	switch n.Kind {
	case KindString:
		return fmt.Sprintf("string %q", truncate(n.Str, 60))
	case KindList:
		return "list"
	case KindMap:
		return "map"
	case KindNull:
		return "null"
	}
	return n.Kind.String() + " " + n.Str
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (w *walker) walk(n *Node, sn *snode, path []any) {
	if sn.kind == cue.TopKind && sn.plain || n.reported {
		return
	}
	if sn.alts != nil {
		for _, a := range sn.alts {
			if a.kind&cueKind(n.Kind) != 0 {
				w.walk(n, a, path)
				return
			}
		}
	}
	if sn.kind&cueKind(n.Kind) == 0 {
		msg, hint := w.wrongKind(n, sn, path)
		w.errorf(n, path, hint, "%s", msg).from = checkKind
		return
	}
	switch n.Kind {
	case KindMap:
		w.walkMap(n, sn, path)
	case KindList:
		if len(n.Vals) == 0 && sn.v.Unify(w.s.ctx.Encode([]any{})).Validate(cue.Concrete(true)) != nil {
			w.errorf(n, path, "", "expected at least one item").from = checkValue
		}
		el := w.s.elem(sn)
		for i, item := range n.Vals {
			w.walk(item, el, append(path, i))
		}
	default:
		w.leaf(n, sn, path)
	}
}

// wrongKind says that n is not of the kind sn takes, and what would be
// right where a common mistake can be told: a number or a duration
// written without quotes or a unit, a param written as its value, a
// key and value with no colon between them.
func (w *walker) wrongKind(n *Node, sn *snode, path []any) (msg, hint string) {
	msg = fmt.Sprintf("expected %s, got %s", kindName(sn.kind), describe(n))
	scalar := n.Kind == KindInt || n.Kind == KindFloat || n.Kind == KindBool
	switch {
	case n.tag != "":
		hint = fmt.Sprintf("the %s tag makes it %s", n.tag, map[Kind]string{KindNull: "null", KindBool: "a bool",
			KindInt: "an integer", KindFloat: "a number", KindString: "a string"}[n.Kind])
		if sn.ref == "#Duration" {
			msg = fmt.Sprintf("expected a duration such as 10s, 5m, 1h30m, got %s", describe(n))
		}
	case sn.ref == "#Duration":
		msg = fmt.Sprintf("expected a duration such as 10s, 5m, 1h30m, got %s", describe(n))
		if (n.Kind == KindInt || n.Kind == KindFloat) && !n.tooBig {
			if n.Float <= 0 {
				hint = "a duration must be positive"
			} else {
				hint = fmt.Sprintf("a duration needs a unit: %[1]ss, %[1]sm or %[1]sh", n.Str)
			}
		}
	case len(path) == 2 && path[0] == "params" && sn.kind == cue.StructKind:
		name := PathString(path[1:])
		switch n.Kind {
		case KindNull:
			hint = fmt.Sprintf("a param is declared as a map; one with no default, which --set must give, is %s: {}", name)
		case KindList:
			hint = fmt.Sprintf("a param is declared as a map, its value as the default: %s: {default: [...]}", name)
		default:
			hint = fmt.Sprintf("a param is declared as a map, its value as the default: %s: {default: %s}", name, yamlScalar(n))
		}
	case scalar && sn.kind == cue.StringKind:
		hint = fmt.Sprintf("write %q in quotes for the text", n.Str)
	case n.Kind == KindString && sn.kind&cue.NumberKind != 0 && sn.kind&cue.StringKind == 0 && plainNumber(n.Str, sn.kind):
		hint = fmt.Sprintf("write %s without quotes for the number", n.Str)
	case n.Kind == KindString && sn.kind == cue.StructKind && len(sn.fields) > 0:
		// "- id b": a key and a value with the colon left out.
		if k, v, ok := strings.Cut(n.Str, " "); ok && !strings.ContainsAny(k, ":\n") {
			if _, field := sn.fields[k]; field && strings.TrimSpace(v) != "" {
				hint = fmt.Sprintf("did you mean %s: %s? A key is followed by a colon", k, strings.TrimSpace(v))
			}
		}
	}
	return msg, hint
}

// plainNumber reports whether s, written without quotes, is a number
// of a kind k takes.
func plainNumber(s string, k cue.Kind) bool {
	if plainDecimal(s) {
		return true
	}
	_, ok := parseFloat(s)
	return ok && k&cue.FloatKind != 0 && !strings.ContainsAny(s, "nN") // not .inf, .nan
}

// yamlScalar writes a scalar as YAML would read it back: a number or a
// bool as written, a string quoted.
func yamlScalar(n *Node) string {
	if n.Kind == KindString {
		return strconv.Quote(truncate(n.Str, 60))
	}
	return n.Str
}

func (w *walker) walkMap(n *Node, sn *snode, path []any) {
	present := make(map[string]bool, len(n.Keys))
	for i, k := range n.Keys {
		present[k.Str] = true
		child, ok := w.s.field(sn, k.Str)
		if !ok {
			hint := ""
			if len(sn.fields) > 0 {
				if h := synonym(k.Str, sn.fields, n.Vals[i]); h != "" {
					hint = h
				} else if s := Suggest(k.Str, keys(sn.fields)); s != "" {
					hint = "did you mean " + s + "?"
				} else if len(path) == 0 && len(k.Str) > 2 && strings.EqualFold(k.Str[:1], "x") && (k.Str[1] == '-' || k.Str[1] == '_') {
					hint = "extension fields, which bmc ignores, start with x- (lower case, then a dash)"
				}
			}
			if len(sn.fields) == 0 {
				if form := w.s.keyForm(sn); form != "" {
					w.errorf(k, append(path, k.Str), hint, "invalid key %q: %s", k.Str, form)
				} else {
					w.errorf(k, append(path, k.Str), hint, "invalid key %q", k.Str)
				}
			} else {
				w.errorf(k, append(path, k.Str), hint, "unknown field %q", k.Str)
			}
			continue
		}
		w.walk(n.Vals[i], child, append(path, k.Str))
	}
	for _, r := range sn.required {
		if !present[r] {
			w.errorf(n, path, "", "missing required field %q", r)
		}
	}
	if m := sn.oneOf; m != nil {
		var matched [][]string
		for _, set := range m.sets {
			all := true
			for _, f := range set {
				all = all && present[f]
			}
			if all {
				matched = append(matched, set)
			}
		}
		names := make([]string, len(m.sets))
		for i, set := range m.sets {
			names[i] = strings.Join(set, "+")
		}
		switch {
		case len(matched) < m.min:
			w.errorf(n, path, "", "one of %s is required", strings.Join(names, " or "))
		case len(matched) > m.max:
			// Point at the later of the clashing fields.
			last := n
			for i, k := range n.Keys {
				for _, set := range matched[1:] {
					if k.Str == set[0] {
						last = n.Keys[i]
					}
				}
			}
			w.errorf(last, path, "", "%s are exclusive: give only one", strings.Join(names, " and "))
		}
	}
}

// keyForm says what the keys of a map must look like, read from the
// pattern constraint of its schema ({[#Ident]: T}); "" when it has none.
func (s *Schema) keyForm(n *snode) string {
	vals := []cue.Value{n.v}
	if n.ref != "" {
		vals = append(vals, s.file.LookupPath(cue.ParsePath(n.ref)))
	}
	var label ast.Expr
	for _, v := range vals {
		for _, src := range sources(v) {
			ast.Walk(src, func(node ast.Node) bool {
				if f, ok := node.(*ast.Field); ok && label == nil {
					if l, ok := f.Label.(*ast.ListLit); ok && len(l.Elts) == 1 {
						label = l.Elts[0]
					}
				}
				return label == nil
			}, nil)
		}
	}
	switch l := label.(type) {
	case *ast.Ident:
		return friendly[l.Name]
	case *ast.UnaryExpr:
		if lit, ok := l.X.(*ast.BasicLit); ok && l.Op.String() == "=~" {
			if pat, err := strconv.Unquote(lit.Value); err == nil {
				return "must match " + pat
			}
		}
	}
	return ""
}

func keys(m map[string]*snode) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// friendly says what a value of a named definition must look like.
var friendly = map[string]string{
	"#Duration":   "expected a duration: a number with a unit, such as 90s, 15m, 2h, 1d or 1h30m",
	"#Name":       "expected 1-48 lower-case ASCII letters (a-z), digits and dashes, starting with a letter or digit",
	"#Ident":      "expected a name of ASCII letters, digits and _, not starting with a digit",
	"#EnvName":    "expected an environment variable name: ASCII letters, digits and _, not starting with a digit",
	"#TaskID":     "expected ASCII letters, digits, _ and - (and ${{ }} expressions)",
	"#BlobPrefix": "expected an az://container/path location",
	"#LabelKey":   "expected 1-64 ASCII letters, digits, _, . and -",
}

func (w *walker) leaf(n *Node, sn *snode, path []any) {
	if numberProblem(n) != "" {
		return // numbers reports it
	}
	if sn.plain || sn.match != nil && n.Kind == KindString && sn.match.MatchString(n.Str) {
		return
	}
	key := n.Kind.String() + ":" + n.Str
	msg, ok := sn.leafCache[key]
	if !ok {
		err := sn.v.Unify(w.s.ctx.Encode(n.value(false))).Validate(cue.Concrete(true))
		if err != nil {
			msg = w.leafMessage(n, sn, err)
		}
		if sn.leafCache == nil {
			sn.leafCache = map[string]string{}
		}
		if len(sn.leafCache) < 10000 {
			sn.leafCache[key] = msg
		}
	}
	if msg != "" {
		w.errorf(n, path, "", "%s", msg).from = checkValue
	}
}

func (w *walker) leafMessage(n *Node, sn *snode, err error) string {
	if len(sn.enum) == 1 {
		return fmt.Sprintf("invalid value %s: expected %s", quoteScalar(n), sn.enum[0])
	}
	if sn.enum != nil {
		return fmt.Sprintf("invalid value %s: expected one of %s", quoteScalar(n), strings.Join(sn.enum, ", "))
	}
	if sn.ref == "#Duration" && n.Kind == KindString {
		if rest, ok := strings.CutPrefix(n.Str, "-"); ok && sn.match != nil && sn.match.MatchString(rest) {
			return fmt.Sprintf("invalid value %s: a duration must be positive", quoteScalar(n))
		}
	}
	if f, ok := friendly[sn.ref]; ok {
		return fmt.Sprintf("invalid value %s: %s", quoteScalar(n), f)
	}
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "#") {
		msg = msg[i+2:]
	}
	if i := strings.Index(msg, "(out of bound "); i >= 0 {
		bound := strings.TrimSuffix(msg[i+len("(out of bound "):], ")")
		if strings.HasPrefix(bound, "=~") {
			return fmt.Sprintf("invalid value %s: must match %s", quoteScalar(n), bound[2:])
		}
		return fmt.Sprintf("invalid value %s: must be %s", quoteScalar(n), bound)
	}
	return msg
}

func quoteScalar(n *Node) string {
	if n.Kind == KindString {
		return strconv.Quote(truncate(n.Str, 60))
	}
	return n.Str
}

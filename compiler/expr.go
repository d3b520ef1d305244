package compiler

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/bmc-dev/bmc/schema"
)

// An expression is ${{ path }}: a dotted path over the contexts params,
// matrix, run, task and workload. Most are resolved at compile time; the
// ones only a run knows (run.id, run.name, run.storage, task.attempt) stay
// in the program as ${{ run.id }} for the executor to fill in, which keeps
// the program, and the task hashes, the same for every run.

// lateNames are resolved by the executor, per run or per attempt.
var lateNames = map[string]bool{"run.id": true, "run.name": true, "run.storage": true, "task.attempt": true}

// LateNames lists the expressions a program may still hold, for the
// executor.
func LateNames() []string { return []string{"run.id", "run.name", "run.storage", "task.attempt"} }

// template is a parsed string: literal text and expressions in turn.
type template struct {
	parts []part
	// whole is set when the string is exactly one expression: its value
	// keeps its type (a list can feed a matrix).
	whole bool
	// bad is set when some of it did not parse: its value is unknown,
	// as a missing param's is, so that no check of it adds to the error.
	bad bool
}

type part struct {
	// lit is a literal's text; for an expression, the text it stays as
	// while its value is not known (${{ run.id }}), made once.
	lit  string
	path []string // nil for a literal
	off  int      // byte offset of the expression in the string
}

func (t *template) constant() bool {
	return len(t.parts) <= 1 && (len(t.parts) == 0 || t.parts[0].path == nil)
}

// usesContext reports whether any expression is rooted at ctx.
func (t *template) usesContext(ctx string) bool {
	for _, p := range t.parts {
		if len(p.path) > 0 && p.path[0] == ctx {
			return true
		}
	}
	return false
}

type exprError struct {
	off  int
	msg  string
	hint string
}

// parseTemplate splits s into literal text and ${{ }} expressions. On a
// syntax error it returns the first; parseTemplateAll returns them all.
func parseTemplate(s string) (*template, *exprError) {
	t, errs := parseTemplateAll(s)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return t, nil
}

// parseTemplateAll is parseTemplate reporting every syntax error: after a
// bad expression it goes on after its }}. With errors, the template holds
// the expressions that parsed, for their names to be checked too; it must
// not be compiled.
func parseTemplateAll(s string) (*template, []*exprError) {
	t := &template{}
	if !strings.Contains(s, "${{") {
		if s != "" {
			t.parts = []part{{lit: s}}
		}
		return t, nil
	}
	var errs []*exprError
	rest, off := s, 0
	for {
		i := strings.Index(rest, "${{")
		if i < 0 {
			if rest != "" {
				t.parts = append(t.parts, part{lit: rest})
			}
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			errs = append(errs, &exprError{off: off + i, msg: "unterminated expression: ${{ without }}"})
			break
		}
		body := rest[i+3 : i+j]
		if path, err := parsePath(body); err != "" {
			errs = append(errs, &exprError{off: off + i, msg: fmt.Sprintf("invalid expression ${{%s}}: %s", body, err)})
		} else {
			t.parts = append(t.parts, part{path: path, off: off + i, lit: "${{ " + strings.Join(path, ".") + " }}"})
		}
		off += i + j + 2
		rest = rest[i+j+2:]
	}
	t.bad = len(errs) > 0
	t.whole = !t.bad && len(t.parts) == 1 && t.parts[0].path != nil
	return t, errs
}

func parsePath(body string) ([]string, string) {
	body = strings.TrimSpace(body)
	if body == "" {
		return nil, "empty expression"
	}
	segs := strings.Split(body, ".")
	for _, s := range segs {
		if s == "" {
			return nil, "empty name in path"
		}
		for i, r := range s {
			if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
				return nil, fmt.Sprintf("%q is not a name: expressions are dotted paths such as params.threads", s)
			}
		}
	}
	return segs, ""
}

// scope is what expressions may name at one place in the spec.
type scope struct {
	params   map[string]any
	missing  map[string]bool // required params with no value (validate only)
	workload map[string]any
	matrix   map[string]any // nil outside a matrix task
	matrixOK bool           // the place may name matrix values
	// matrixKeyless is set in a task whose matrix has no keys, an error
	// reported already: any matrix.<key> stands for an unknown value.
	matrixKeyless bool
	taskID        string // "" where task is not available
	taskOK        bool
	in            field
	// intText holds the text of the matrix's whole-number values, made
	// once for all members: each member's fields interpolate them.
	intText map[int64]string
}

// interpolated is the package's interpolated, with the texts of the
// matrix's whole numbers made once.
func (s *scope) interpolated(v any) string {
	if i, ok := v.(int64); ok && s.intText != nil {
		if t, ok := s.intText[i]; ok {
			return t
		}
	}
	return interpolated(v)
}

// field is a task field that takes fewer contexts than the others, as
// docs/spec.md's table says: it is fixed before the task's matrix is
// expanded (an id, a matrix) or before the run (those and dependsOn).
type field uint8

const (
	anyField field = iota // no limit but the task's own
	idField
	matrixField
	dependsOnField
)

func (f field) String() string {
	return [...]string{"", "a task id", "a matrix", "dependsOn"}[f]
}

// forbids reports whether values of context ctx are not allowed in f,
// whatever task it is in.
func (f field) forbids(ctx string) bool {
	switch f {
	case idField, matrixField:
		return ctx == "matrix" || ctx == "task" || ctx == "run"
	case dependsOnField:
		return ctx == "task" || ctx == "run"
	}
	return false
}

// notAllowed is the error for values of context ctx named in f.
func (f field) notAllowed(ctx, name string) *exprError {
	e := &exprError{msg: fmt.Sprintf("%s: %s values are not allowed in %s", name, ctx, f)}
	switch {
	case ctx == "matrix" && f == idField:
		e.hint = "the members of a matrix task get their ids from the matrix values: <id>-<value>-<value>…"
	case ctx == "run":
		e.hint = fmt.Sprintf("run values are known only at run time; %s is fixed at compile time", f)
	}
	return e
}

// unknown marks a value not known at validate time (a required param with
// no value): checks that need the value are skipped.
type unknown struct{ name string }

func (s *scope) lookup(path []string) (any, *exprError) {
	// The name is made only for a message or an unknown value: this runs
	// for every expression of every matrix member.
	name := func() string { return strings.Join(path, ".") }
	root := path[0]
	if s.in.forbids(root) {
		return nil, s.in.notAllowed(root, name())
	}
	switch root {
	case "params":
		if len(path) < 2 {
			return nil, &exprError{msg: "params needs a name: params.<name>"}
		}
		v, ok := s.params[path[1]]
		if !ok {
			if s.missing[path[1]] {
				return unknown{name()}, nil
			}
			return nil, s.unknownName(name(), "params", keysOf(s.params, s.missing))
		}
		if len(path) == 2 {
			return v, nil
		}
		return index(v, path[2:], name())
	case "workload":
		if len(path) < 2 {
			return nil, &exprError{msg: "workload needs a name: workload.name, workload.description or workload.labels.<key>"}
		}
		v, ok := s.workload[path[1]]
		if !ok {
			return nil, s.unknownName(name(), "workload", []string{"name", "description", "labels"})
		}
		if labels, isMap := v.(map[string]any); isMap && path[1] == "labels" && len(path) > 2 {
			// Labels are flat, and their keys may hold dots: the rest
			// of the path is one key.
			key := strings.Join(path[2:], ".")
			if l, ok := labels[key]; ok {
				return l, nil
			}
			return nil, s.unknownName(name(), "workload.labels", keysOf(labels, nil))
		}
		return index(v, path[2:], name())
	case "matrix":
		if !s.matrixOK {
			return nil, &exprError{msg: fmt.Sprintf("%s: matrix values exist only in a task with a matrix", name())}
		}
		if len(path) != 2 {
			return nil, &exprError{msg: "matrix needs a key: matrix.<key>"}
		}
		v, ok := s.matrix[path[1]]
		if !ok {
			if s.matrixKeyless {
				return unknown{name()}, nil
			}
			return nil, s.unknownName(name(), "matrix", keysOf(s.matrix, nil))
		}
		return v, nil
	case "run":
		if len(path) == 2 && lateNames["run."+path[1]] {
			return nil, nil
		}
		return nil, s.unknownName(name(), "run", []string{"id", "name", "storage"})
	case "task":
		if !s.taskOK {
			return nil, &exprError{msg: fmt.Sprintf("%s: task values exist only inside a task", name())}
		}
		if len(path) == 2 && path[1] == "id" {
			if s.taskID == "" {
				return nil, &exprError{msg: "task.id is not known here"}
			}
			return s.taskID, nil
		}
		if len(path) == 2 && path[1] == "attempt" {
			return nil, nil
		}
		return nil, s.unknownName(name(), "task", []string{"id", "attempt"})
	}
	ex := s.unknownName(name(), "", []string{"params", "matrix", "run", "task", "workload"})
	ex.msg = fmt.Sprintf("unknown context %q in %s: expected params, matrix, run, task or workload", root, name())
	return nil, ex
}

func (s *scope) unknownName(name, ctx string, names []string) *exprError {
	e := &exprError{msg: "unknown name " + name}
	cands := make([]string, len(names))
	for i, n := range names {
		cands[i] = n
		if ctx != "" {
			cands[i] = ctx + "." + n
		}
	}
	if ctx != "" {
		if s := schema.Suggest(name, cands); s != "" {
			e.hint = "did you mean " + s + "?"
		} else if len(cands) > 0 && len(cands) <= 12 {
			e.hint = "known names: " + strings.Join(cands, ", ")
		}
	} else if s := schema.Suggest(strings.SplitN(name, ".", 2)[0], names); s != "" {
		e.hint = "did you mean " + s + "?"
	}
	return e
}

func keysOf(m map[string]any, more map[string]bool) []string {
	out := make([]string, 0, len(m)+len(more))
	for k := range m {
		out = append(out, k)
	}
	for k := range more {
		out = append(out, k)
	}
	return out
}

// index walks into maps for paths longer than context.name.
func index(v any, rest []string, name string) (any, *exprError) {
	for _, k := range rest {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, &exprError{msg: fmt.Sprintf("%s: cannot take .%s of a %s", name, k, typeName(v))}
		}
		v, ok = m[k]
		if !ok {
			return nil, &exprError{msg: "unknown name " + name}
		}
	}
	return v, nil
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64, float64, json.Number:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return "value"
}

// check looks up every expression of the template and returns each
// error, where eval stops at the first: validate reports them all.
func (t *template) check(s *scope) []*exprError {
	if t == nil {
		return nil
	}
	var errs []*exprError
	for _, p := range t.parts {
		if p.path == nil {
			continue
		}
		if _, err := s.lookup(p.path); err != nil {
			err.off = p.off
			errs = append(errs, err)
		}
	}
	return errs
}

// evalValue evaluates a whole-expression template to a typed value, or
// any template to a string.
func (t *template) evalValue(s *scope) (any, bool, *exprError) {
	if t.bad {
		return unknown{name: "?"}, true, nil
	}
	if t.whole {
		v, err := s.lookup(t.parts[0].path)
		if err != nil {
			err.off = t.parts[0].off
			return nil, false, err
		}
		if v == nil { // late
			return "${{ " + strings.Join(t.parts[0].path, ".") + " }}", false, nil
		}
		if u, ok := v.(unknown); ok {
			return u, true, nil
		}
		return v, false, nil
	}
	str, unk, err := t.eval(s)
	return str, unk, err
}

// eval renders the template as a string. unk reports that it held a value
// not known at validate time.
func (t *template) eval(s *scope) (string, bool, *exprError) {
	if t.bad {
		return "", true, nil
	}
	if t.constant() {
		if len(t.parts) == 0 {
			return "", false, nil
		}
		return t.parts[0].lit, false, nil
	}
	// The parts' texts are found first and the string made in one
	// allocation of its length: a matrix member's fields are made so,
	// for every member, and kept.
	var buf [8]string
	texts := buf[:0]
	size := 0
	unk := false
	for _, p := range t.parts {
		text := p.lit
		if p.path != nil {
			v, err := s.lookup(p.path)
			if err != nil {
				err.off = p.off
				return "", false, err
			}
			switch v := v.(type) {
			case nil:
				text = p.lit
			case unknown:
				unk = true
				text = "<" + v.name + ">"
			default:
				text = s.interpolated(v)
			}
		}
		texts = append(texts, text)
		size += len(text)
	}
	if len(texts) == 1 {
		return texts[0], unk, nil
	}
	var b strings.Builder
	b.Grow(size)
	for _, text := range texts {
		b.WriteString(text)
	}
	return b.String(), unk, nil
}

// interpolated renders a value interpolated into a string: as stringify
// does, but a number keeps its text as written in the spec or --set
// (1.50 stays 1.50, 0.000001 does not become 1e-06), as a number written
// in a task's field does. Numbers read from YAML come as json.Number
// for that (schema.Node.Value); in lists and maps, JSON keeps them so.
func interpolated(v any) string {
	if n, ok := v.(json.Number); ok {
		return string(n)
	}
	return stringify(v)
}

// stringify renders a value where a string is needed: scalars as text,
// numbers in their shortest form (1.50 as 1.5), lists and maps as JSON.
// Member ids are made of it, so that 0.10 and 0.1 give one id.
func stringify(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return strconv.FormatInt(i, 10)
		}
		if f, err := v.Float64(); err == nil {
			return shortest(f)
		}
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case float64:
		return shortest(v)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// shortest writes f in its shortest form, as JSON writes it: plain
// digits (1000000, 0.000001) unless the exponent is below -6 or 21 or
// above, then with an exponent (1e-7, 1e+21). A run's params are kept in
// JSON and read back as written: a value made from them the same way
// then reads the same (1e-7, not 1e-07).
func shortest(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(nil, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 as 1e-7, as JSON has it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

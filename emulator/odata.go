package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The OData $filter subset Batch supports on listings: comparisons
// (eq, ne, gt, ge, lt, le) of a property with a literal, joined by and,
// or, not and parentheses, plus startswith(property, 'text'). Literals are
// 'strings' (quotes doubled inside), integers, true, false, null and
// datetime'2025-01-01T00:00:00Z' (or a bare RFC 3339 time). String
// comparisons ignore case, as Batch's enum values do. A property that is
// absent is null: it equals only null, differs from everything else, and
// orders with nothing.

type value struct {
	kind valueKind
	s    string
	n    int64
	t    time.Time
	b    bool
}

type valueKind int

const (
	vNull valueKind = iota
	vString
	vInt
	vBool
	vTime
)

func str(s string) value   { return value{kind: vString, s: s} }
func num(n int64) value    { return value{kind: vInt, n: n} }
func boolean(b bool) value { return value{kind: vBool, b: b} }
func timeVal(t *Time) value {
	if t == nil {
		return value{}
	}
	return value{kind: vTime, t: t.Time}
}
func int32Val(p *int32) value {
	if p == nil {
		return value{}
	}
	return num(int64(*p))
}
func strOpt(s string) value {
	if s == "" {
		return value{}
	}
	return str(s)
}

type filterNode interface {
	eval(get func(string) value) bool
}

type cmpNode struct {
	prop string
	op   string
	lit  value
}

type boolNode struct {
	op   string // and, or
	l, r filterNode
}

type notNode struct{ x filterNode }

type startsNode struct {
	prop, prefix string
}

func (n *boolNode) eval(get func(string) value) bool {
	if n.op == "and" {
		return n.l.eval(get) && n.r.eval(get)
	}
	return n.l.eval(get) || n.r.eval(get)
}

func (n *notNode) eval(get func(string) value) bool { return !n.x.eval(get) }

func (n *startsNode) eval(get func(string) value) bool {
	v := get(n.prop)
	return v.kind == vString && strings.HasPrefix(strings.ToLower(v.s), strings.ToLower(n.prefix))
}

func (n *cmpNode) eval(get func(string) value) bool {
	v := get(n.prop)
	if v.kind == vNull || n.lit.kind == vNull {
		same := v.kind == n.lit.kind
		switch n.op {
		case "eq":
			return same
		case "ne":
			return !same
		}
		return false
	}
	c, ok := compare(v, n.lit)
	if !ok {
		return n.op == "ne"
	}
	switch n.op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}

func compare(a, b value) (int, bool) {
	if a.kind == vTime && b.kind == vString {
		t, err := time.Parse(time.RFC3339Nano, b.s)
		if err != nil {
			return 0, false
		}
		b = value{kind: vTime, t: t}
	}
	if a.kind != b.kind {
		return 0, false
	}
	switch a.kind {
	case vString:
		return strings.Compare(strings.ToLower(a.s), strings.ToLower(b.s)), true
	case vInt:
		switch {
		case a.n < b.n:
			return -1, true
		case a.n > b.n:
			return 1, true
		}
		return 0, true
	case vBool:
		if a.b == b.b {
			return 0, true
		}
		if !a.b {
			return -1, true
		}
		return 1, true
	case vTime:
		return a.t.Compare(b.t), true
	}
	return 0, false
}

// parseFilter parses a $filter; known says which property paths exist.
func parseFilter(s string, known func(string) bool) (filterNode, error) {
	p := &filterParser{toks: tokenize(s), known: known}
	if p.err != nil {
		return nil, p.err
	}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i].text)
	}
	return n, nil
}

type token struct {
	kind string // ident, string, number, punct, datetime
	text string
}

type filterParser struct {
	toks  []token
	i     int
	known func(string) bool
	err   error
}

func tokenize(s string) []token {
	var out []token
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(' || r == ')' || r == ',':
			out = append(out, token{"punct", string(r)})
			i++
		case r == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(rs); j++ {
				if rs[j] == '\'' {
					if j+1 < len(rs) && rs[j+1] == '\'' {
						b.WriteRune('\'')
						j++
						continue
					}
					break
				}
				b.WriteRune(rs[j])
			}
			out = append(out, token{"string", b.String()})
			i = j + 1
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '(' && rs[j] != ')' && rs[j] != ',' && rs[j] != '\'' {
				j++
			}
			word := string(rs[i:j])
			if strings.EqualFold(word, "datetime") && j < len(rs) && rs[j] == '\'' {
				k := j + 1
				for k < len(rs) && rs[k] != '\'' {
					k++
				}
				out = append(out, token{"datetime", string(rs[j+1 : min(k, len(rs))])})
				i = k + 1
				continue
			}
			if j == i { // a lone quote-adjacent character; skip it
				j++
			}
			kind := "ident"
			if _, err := strconv.ParseInt(word, 10, 64); err == nil {
				kind = "number"
			} else if _, err := time.Parse(time.RFC3339Nano, word); err == nil {
				kind = "datetime"
			}
			out = append(out, token{kind, word})
			i = j
		}
	}
	return out
}

func (p *filterParser) peek() (token, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return token{}, false
}

func (p *filterParser) keyword(w string) bool {
	t, ok := p.peek()
	if ok && t.kind == "ident" && strings.EqualFold(t.text, w) {
		p.i++
		return true
	}
	return false
}

func (p *filterParser) punct(c string) bool {
	t, ok := p.peek()
	if ok && t.kind == "punct" && t.text == c {
		p.i++
		return true
	}
	return false
}

func (p *filterParser) or() (filterNode, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &boolNode{"or", l, r}
	}
	return l, nil
}

func (p *filterParser) and() (filterNode, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &boolNode{"and", l, r}
	}
	return l, nil
}

func (p *filterParser) unary() (filterNode, error) {
	if p.keyword("not") {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	}
	if p.punct("(") {
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.punct(")") {
			return nil, fmt.Errorf("missing )")
		}
		return x, nil
	}
	t, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("the filter ends too early")
	}
	if t.kind == "ident" && strings.EqualFold(t.text, "startswith") {
		p.i++
		if !p.punct("(") {
			return nil, fmt.Errorf("startswith needs (property, 'text')")
		}
		prop, err := p.property()
		if err != nil {
			return nil, err
		}
		if !p.punct(",") {
			return nil, fmt.Errorf("startswith needs (property, 'text')")
		}
		lit, ok := p.peek()
		if !ok || lit.kind != "string" {
			return nil, fmt.Errorf("startswith needs a string literal")
		}
		p.i++
		if !p.punct(")") {
			return nil, fmt.Errorf("missing )")
		}
		return &startsNode{prop, lit.s()}, nil
	}
	prop, err := p.property()
	if err != nil {
		return nil, err
	}
	opTok, ok := p.peek()
	op := strings.ToLower(opTok.text)
	if !ok || opTok.kind != "ident" || !strings.Contains(" eq ne gt ge lt le ", " "+op+" ") {
		return nil, fmt.Errorf("expected a comparison (eq, ne, gt, ge, lt, le) after %s", prop)
	}
	p.i++
	lit, err := p.literal()
	if err != nil {
		return nil, err
	}
	return &cmpNode{prop, op, lit}, nil
}

func (t token) s() string { return t.text }

func (p *filterParser) property() (string, error) {
	t, ok := p.peek()
	if !ok || t.kind != "ident" {
		return "", fmt.Errorf("expected a property name")
	}
	p.i++
	if !p.known(t.text) {
		return "", fmt.Errorf("%s is not a property that can be filtered on", t.text)
	}
	return t.text, nil
}

func (p *filterParser) literal() (value, error) {
	t, ok := p.peek()
	if !ok {
		return value{}, fmt.Errorf("expected a value")
	}
	p.i++
	switch t.kind {
	case "string":
		return str(t.text), nil
	case "number":
		n, _ := strconv.ParseInt(t.text, 10, 64)
		return num(n), nil
	case "datetime":
		v, err := time.Parse(time.RFC3339Nano, t.text)
		if err != nil {
			return value{}, fmt.Errorf("%q is not an RFC 3339 time", t.text)
		}
		return value{kind: vTime, t: v}, nil
	case "ident":
		switch strings.ToLower(t.text) {
		case "true":
			return boolean(true), nil
		case "false":
			return boolean(false), nil
		case "null":
			return value{}, nil
		}
	}
	return value{}, fmt.Errorf("%q is not a value", t.text)
}

package schema

import (
	"bytes"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// parseFast builds the node tree with go.yaml.in/yaml/v3, several times
// faster than the positioned parser Parse otherwise uses, and reports
// false when the document holds anything whose reading it leaves to
// that parser: a syntax error (yaml/v3 gives no column), a duplicate
// or merge key, a tag, anchor or alias, a folded scalar, an unusual number,
// a directive, more than one document or none, a document that is not a map, tabs,
// carriage returns, blanks at the end of a line, and the other cases
// each marked below. What it builds is the same tree, positions included, as that parser's.
func parseFast(file string, src []byte) (*Node, bool) {
	return parseFastTabs(file, src, false)
}

// parseFastTabs is parseFast, which with tabs set takes a document with
// tabs too: for one the positioned parser misreads (see Parse).
func parseFastTabs(file string, src []byte, tabs bool) (*Node, bool) {
	if !tabs && bytes.IndexByte(src, '\t') >= 0 || bytes.IndexByte(src, '\r') >= 0 || bytes.Contains(src, []byte(" \n")) || bytes.HasSuffix(src, []byte(" ")) {
		// The positioned parser counts columns differently around tabs,
		// carriage returns and blanks at the end of a line.
		return nil, false
	}
	if bytes.ContainsAny(src, "\u0085\u2028\u2029\ufeff") {
		return nil, false // line breaks and marks beyond ASCII, which only yaml/v3 reads as such
	}
	if docMarker.Match(src) {
		return nil, false // "..." and "---" glued to text: read apart differently
	}
	if len(src) > 0 && src[0] == '%' || bytes.Contains(src, []byte("\n%")) {
		return nil, false // a directive, which the positioned parser's reading checks
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, false
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, false
	}
	f := fastBuilder{file: file, src: lineIndex{src: src}, text: newSourceText(src)}
	return f.node(doc.Content[0], 0)
}

type fastBuilder struct {
	file  string
	flow  int // depth of flow collections around the node being built
	src   lineIndex
	text  *sourceText
	ascii []int8 // per line: 1 when it is all ASCII, -1 when not, 0 unknown
}

func (f *fastBuilder) pos(n *yaml.Node) Pos {
	return Pos{File: f.file, Line: n.Line, Col: n.Column}
}

func (f *fastBuilder) node(n *yaml.Node, depth int) (*Node, bool) {
	if depth > maxDepth || n.Style&yaml.TaggedStyle != 0 {
		return nil, false
	}
	if n.Kind != yaml.AliasNode {
		if at := f.lineFrom(n.Line, n.Column); len(at) > 0 && (at[0] == '!' || at[0] == '&') {
			return nil, false // a tag or an anchor: positions are counted differently
		}
	}
	switch n.Kind {
	case yaml.AliasNode:
		// Aliases are expanded by the positioned parser, which bounds
		// their expansion (an anchor would send the spec there anyway).
		return nil, false
	case yaml.ScalarNode:
		return f.scalar(n)
	case yaml.MappingNode:
		if n.Style&yaml.FlowStyle != 0 {
			f.flow++
			defer func() { f.flow-- }()
		}
		out := &Node{Kind: KindMap, Pos: f.pos(n)}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !f.mapValue(out, n.Content[i], n.Content[i+1], depth) {
				return nil, false
			}
		}
		if len(out.Keys) > 0 {
			out.Pos = out.Keys[0].Pos
		}
		return out, true
	case yaml.SequenceNode:
		if n.Style&yaml.FlowStyle != 0 {
			f.flow++
			defer func() { f.flow-- }()
		}
		out := &Node{Kind: KindList, Pos: f.pos(n), Vals: make([]*Node, 0, len(n.Content))}
		for _, c := range n.Content {
			v, ok := f.node(c, depth+1)
			if !ok {
				return nil, false
			}
			out.Vals = append(out.Vals, v)
		}
		if len(out.Vals) > 0 && n.Style&yaml.FlowStyle == 0 {
			out.Pos = out.Vals[0].Pos
		}
		return out, true
	}
	return nil, false
}

func (f *fastBuilder) scalar(n *yaml.Node) (*Node, bool) {
	p := f.pos(n)
	switch n.Tag {
	case "!!null":
		if n.Value == "" {
			return nil, false // nothing written: where it is, is the positioned parser's call
		}
		return &Node{Kind: KindNull, Pos: p, Str: "null"}, true
	case "!!bool":
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			return nil, false
		}
		return &Node{Kind: KindBool, Pos: p, Bool: b, Str: n.Value}, true
	case "!!int":
		if !plainDecimal(n.Value) {
			return nil, false // 0x1F, 0o17, 017, 1_000: read as the positioned parser reads them
		}
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return nil, false
		}
		return &Node{Kind: KindInt, Pos: p, Int: v, Float: float64(v), Str: n.Value}, true
	case "!!float":
		v, ok := parseFloat(n.Value)
		if !ok {
			return nil, false
		}
		return &Node{Kind: KindFloat, Pos: p, Float: v, Str: n.Value}, true
	case "!!str":
	default:
		return nil, false
	}
	if _, ok := bigInteger(n.Value); ok && n.Style == 0 {
		return nil, false // an integer beyond 64 bits: the positioned parser marks it
	}
	rest := f.lineFrom(n.Line, n.Column)
	switch n.Style {
	case yaml.FoldedStyle:
		return nil, false // the parsers fold lines differently
	case yaml.LiteralStyle:
		if !blockHeader.Match(rest) || n.Value == "" {
			return nil, false // indentation indicators, empty text: read apart differently
		}
	case 0:
		if !bytes.HasPrefix(rest, []byte(n.Value)) {
			return nil, false // a plain scalar over several lines
		}
		if f.flow > 0 && (strings.Contains(strings.ReplaceAll(n.Value, "://", ""), ":") || strings.Contains(n.Value, "#")) {
			return nil, false // the parsers split these differently inside [ ] and { }; URLs they agree on
		}
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		if len(rest) == 0 || len(bytes.TrimLeft(f.lineBefore(n.Line, n.Column), " ")) == 0 {
			return nil, false // a quoted value that starts a line: its column depends on what came before
		}
	}
	return &Node{Kind: KindString, Pos: p, Str: n.Value, text: f.text}, true
}

// docMarker finds document markers the parsers do not read alike: "..."
// anywhere, "---" with text right after it.
var docMarker = regexp.MustCompile(`(?m)^(\.\.\.|---[^ \n])`)

// blockHeader is the header line of a literal or folded scalar as both
// parsers read it.
var blockHeader = regexp.MustCompile(`^[|>][-+]?([ ]+(#.*)?)?$`)

// plainDecimal reports whether s is an integer written in decimal without
// leading zeros or separators: the form both parsers agree on.
func plainDecimal(s string) bool {
	s = strings.TrimLeft(s, "+-")
	return s != "" && (len(s) == 1 || s[0] != '0') && digits(s)
}

// digits reports whether s holds only ASCII digits.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseFloat reads the floats both parsers agree on: .inf, .nan and
// decimals with a point, no leading zeros and perhaps an exponent.
func parseFloat(s string) (float64, bool) {
	switch strings.TrimPrefix(s, "+") {
	case ".inf", ".Inf", ".INF":
		return math.Inf(1), true
	case "-.inf", "-.Inf", "-.INF":
		return math.Inf(-1), true
	case ".nan", ".NaN", ".NAN":
		return math.NaN(), true
	}
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	whole, frac, dot := strings.Cut(mant, ".")
	if !dot {
		return 0, false
	}
	if w := strings.Trim(whole, "+-"); w != "" && !plainDecimal(w) || !digits(frac) || !digits(strings.TrimLeft(exp, "+-")) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// lineBefore returns the source line line up to column col.
func (f *fastBuilder) lineBefore(line, col int) []byte {
	all, rest := f.lineFrom(line, 1), f.lineFrom(line, col)
	return all[:len(all)-len(rest)]
}

// lineFrom returns the source line line from column col on (both
// 1-based, col counted in runes), without its newline.
func (f *fastBuilder) lineFrom(line, col int) []byte {
	if line < 1 || line > f.src.count() {
		return nil
	}
	rest := f.src.line(line)
	if f.ascii == nil {
		f.ascii = make([]int8, f.src.count())
	}
	if f.ascii[line-1] == 0 {
		f.ascii[line-1] = -1
		if isASCII(rest) {
			f.ascii[line-1] = 1
		}
	}
	if f.ascii[line-1] == 1 {
		// Columns are bytes: no need to walk the runes of a long line
		// (a matrix of a thousand values) once for each value on it.
		return rest[min(col-1, len(rest)):]
	}
	for c := 1; c < col && len(rest) > 0; c++ {
		_, size := utf8.DecodeRune(rest)
		rest = rest[size:]
	}
	return rest
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (f *fastBuilder) mapValue(out *Node, k, v *yaml.Node, depth int) bool {
	if k.Kind == yaml.ScalarNode && (k.Tag == "!!merge" || strings.Contains(k.Value, "<<")) {
		return false // merge keys: the positioned parser's reading
	}
	if f.flow > 0 && strings.Contains(k.Value, ":") {
		return false // a key with a colon inside { }: the positioned parser splits it there
	}
	if before := bytes.TrimRight(f.lineBefore(k.Line, k.Column), " \t"); bytes.HasSuffix(before, []byte("?")) {
		return false // an explicit "? key", which bmc does not take
	}
	key, ok := f.node(k, depth+1)
	if !ok {
		return false
	}
	switch key.Kind {
	case KindList, KindMap:
		return false
	}
	key.Kind = KindString
	if out.KeyNode(key.Str) != nil {
		return false // the positioned parser reports it
	}
	val, ok := f.node(v, depth+1)
	if !ok {
		return false
	}
	out.Keys = append(out.Keys, key)
	out.Vals = append(out.Vals, val)
	return true
}

// tabValues sets the strings of root, read by the positioned parser from
// src, which holds tabs, to what yaml/v3 reads: the positioned parser
// drops a tab inside a plain scalar (the tab of cut -d'<TAB>' is lost),
// and the task would run another command than the one written. Where the
// two trees do not line up (merge keys), the positioned parser's stand.
func tabValues(root *Node, src []byte) {
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return
	}
	var walk func(n *Node, y *yaml.Node)
	walk = func(n *Node, y *yaml.Node) {
		for y.Kind == yaml.AliasNode && y.Alias != nil {
			y = y.Alias
		}
		switch {
		case n.Kind == KindMap && y.Kind == yaml.MappingNode:
			if len(y.Content) != 2*len(n.Keys) {
				return
			}
			for i, k := range n.Keys {
				if k.Str != y.Content[2*i].Value {
					return
				}
			}
			for i := range n.Keys {
				walk(n.Vals[i], y.Content[2*i+1])
			}
		case n.Kind == KindList && y.Kind == yaml.SequenceNode:
			if len(y.Content) != len(n.Vals) {
				return
			}
			for i := range n.Vals {
				walk(n.Vals[i], y.Content[i])
			}
		case n.Kind == KindString && y.Kind == yaml.ScalarNode && y.ShortTag() == "!!str":
			n.Str = y.Value
		}
	}
	walk(root, doc.Content[0])
}

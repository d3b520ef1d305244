package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Kind is the kind of a YAML value.
type Kind uint8

const (
	KindNull Kind = iota
	KindBool
	KindInt
	KindFloat
	KindString
	KindList
	KindMap
)

func (k Kind) String() string {
	return [...]string{"null", "bool", "int", "number", "string", "list", "map"}[k]
}

// Node is a YAML value with its position: the spec as written, before any
// expansion. Maps keep their key order.
type Node struct {
	Kind   Kind
	Pos    Pos
	Str    string // string value; for other scalars, the source text
	Int    int64
	Float  float64
	Bool   bool
	Keys   []*Node         // map keys (strings), in source order
	Vals   []*Node         // map values, parallel to Keys; list items
	merged map[string]bool // keys that came from a YAML merge key (<<)
	// tooBig marks an integer written beyond 64 bits: Str holds it, and
	// Validate reports it.
	tooBig bool
	// text is the source a string was read from, for PosAt.
	text *sourceText
	// tag is the YAML tag the value was written with (!!str), if any,
	// for messages to name.
	tag string
	// reported marks a value the parser found at fault (a !!int tag on
	// text that is no integer): Validate does not report it again.
	reported bool
}

// Pos is a position in a spec file.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Get returns the value of key in a map node, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != KindMap {
		return nil
	}
	for i, k := range n.Keys {
		if k.Str == key {
			return n.Vals[i]
		}
	}
	return nil
}

// KeyNode returns the key node of key in a map node, or nil.
func (n *Node) KeyNode(key string) *Node {
	if n == nil || n.Kind != KindMap {
		return nil
	}
	for _, k := range n.Keys {
		if k.Str == key {
			return k
		}
	}
	return nil
}

// Value converts the node to plain Go values: nil, bool, int64, float64,
// json.Number, string, []any, map[string]any. A number with a point or an
// exponent written as JSON writes numbers (1.50, 0.000001, 2.5e-3) is a
// json.Number holding its text as written, so that an expression gives
// it as written (1.50, not 1.5); other such numbers (.5, +1.5, and .inf
// and .nan, which Validate refuses) are float64. An integer beyond 64
// bits, which Validate refuses, is a *big.Int.
func (n *Node) Value() any {
	return n.value(true)
}

// value is Value, with numbers as json.Number (their text) when
// asWritten is set, as float64 otherwise: CUE would take a json.Number
// for a string.
func (n *Node) value(asWritten bool) any {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case KindBool:
		return n.Bool
	case KindInt:
		if n.tooBig {
			v, _ := bigInteger(n.Str)
			return v
		}
		return n.Int
	case KindFloat:
		if asWritten {
			if t, ok := writtenNumber(n.Str, n.Float); ok {
				return t
			}
		}
		return n.Float
	case KindString:
		return n.Str
	case KindList:
		l := make([]any, len(n.Vals))
		for i, v := range n.Vals {
			l[i] = v.value(asWritten)
		}
		return l
	case KindMap:
		m := make(map[string]any, len(n.Keys))
		for i, k := range n.Keys {
			m[k.Str] = n.Vals[i].value(asWritten)
		}
		return m
	}
	return nil
}

// writtenNumber returns s, the text of the number f, as a json.Number if
// it is finite and written as JSON writes numbers: JSON (a list
// interpolated into a string, the program) holds such a number as
// written, and could not hold .5 or +1.5 so.
func writtenNumber(s string, f float64) (json.Number, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) || s == "" || !(s[0] == '-' || s[0] >= '0' && s[0] <= '9') || !json.Valid([]byte(s)) {
		return "", false
	}
	return json.Number(s), true
}

// Parse parses one YAML document into a node tree. Syntax errors come back
// as Diagnostics with positions.
//
// Line ends are read as YAML reads them: a CR LF, a lone CR and an LF are
// each one line break, and a spec reads the same whichever its editor
// wrote. Lines are numbered the same way (SourceLines too).
func Parse(file string, src []byte) (*Node, Diagnostics) {
	src = lfBreaks(src)
	if root, ok := parseFast(file, src); ok {
		return root, nil
	}
	root, diags := parsePositioned(file, src)
	if bytes.IndexByte(src, '\t') >= 0 {
		// The positioned parser misreads tabs inside values: it drops one
		// in a plain scalar, and takes one in a quoted scalar in a flow
		// map for a syntax error. yaml/v3 reads them as YAML says.
		if root != nil && !diags.Fatal() {
			tabValues(root, src)
		} else if fast, ok := parseFastTabs(file, src, true); ok {
			return fast, nil
		}
	}
	return root, diags
}

// lfBreaks returns src with every line break an LF. goccy/go-yaml reads a
// CR LF inside a quoted scalar as two line breaks, which changes the
// value (a fold into a space becomes a newline) and puts every later
// token a line further down; with LF alone, values, positions and the
// lines errors echo agree with the file as its editor shows it. src is
// returned as it is when it holds no CR.
func lfBreaks(src []byte) []byte {
	if bytes.IndexByte(src, '\r') < 0 {
		return src
	}
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		switch {
		case src[i] != '\r':
			out = append(out, src[i])
		case i+1 < len(src) && src[i+1] == '\n':
			// The LF is copied next.
		default:
			out = append(out, '\n')
		}
	}
	return out
}

// parsePositioned parses with goccy/go-yaml, which gives every syntax
// error a line and column.
func parsePositioned(file string, src []byte) (*Node, Diagnostics) {
	src = lfBreaks(src)
	masked, mask := maskQuotedTabs(src)
	// The parser reads neither directives nor tags with nothing after
	// them as YAML does: both are taken out of what it reads, columns
	// kept, and told to the builder.
	masked, dirDiags := directives(file, masked)
	// Duplicate keys are left to the builder, which reports every one of
	// them with the place of the first; the parser would stop at the first.
	f, masked, empty, err := parseTags(masked, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, append(dirDiags, syntaxDiag(file, masked, err))
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil, append(dirDiags, &Diagnostic{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: "the spec is empty: expected a bmc/v1 Workload"})
	}
	b := builder{file: file, src: lineIndex{src: masked}, text: newSourceText(src), anchors: map[string]ast.Node{}, mergeKeys: map[*Node]Pos{}, mask: mask,
		emptyTags: empty, diags: dirDiags}
	b.tagShift = tagShifts(masked, docs[0].Body.GetToken())
	root := b.node(docs[0].Body, 0)
	if len(docs) > 1 {
		b.diags = append(b.diags, &Diagnostic{Pos: b.docPos(docs[1]), Msg: "a spec file holds one document; found another here", treeWhole: true})
	}
	return root, b.diags
}

// docPos is where a document starts: its --- line, or, with none, the
// start of its first line (the token of a map is the colon after its
// first key).
func (b *builder) docPos(d *ast.DocumentNode) Pos {
	if d.Start != nil {
		return Pos{File: b.file, Line: d.Start.Position.Line, Col: d.Start.Position.Column}
	}
	tk := d.Body.GetToken()
	switch n := d.Body.(type) {
	case *ast.MappingNode:
		if len(n.Values) > 0 {
			tk = n.Values[0].Key.GetToken()
		}
	case *ast.MappingValueNode:
		tk = n.Key.GetToken()
	}
	return Pos{File: b.file, Line: tk.Position.Line, Col: 1}
}

// tabIndent is the parser's message for a tab where indentation is read.
const tabIndent = "found character '\t' that cannot start any token"

func syntaxDiag(file string, src []byte, err error) *Diagnostic {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return &Diagnostic{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: "YAML syntax: " + err.Error()}
	}
	tk := ye.GetToken()
	d := &Diagnostic{Pos: Pos{File: file, Line: tk.Position.Line, Col: tk.Position.Column + tagsBefore(tk)}, Msg: "YAML syntax: " + ye.GetMessage()}
	if ye.GetMessage() == tabIndent {
		d.Msg = "YAML syntax: tabs are not allowed for indentation in YAML; use spaces"
	}
	// A line indented past the key above it reads as more of that key's
	// plain value, up to a colon that would make it a key. The parser
	// blames the value's first line; the mistake is on the colon's line.
	x := lineIndex{src: src}
	if next := tk.Next; tk.Type == token.StringType && next != nil && next.Type == token.MappingValueType && next.Position.Line > tk.Position.Line {
		line := x.line(next.Position.Line)
		indent := len(line) - len(bytes.TrimLeft(line, " ")) + 1
		// "- id b" over "  run: echo" at the column of id: the colon
		// after id is missing, and the next line, a key where it
		// stands, reads as more of the text "id b".
		if k, v, ok := keyAndValue(lineFrom(x.line(tk.Position.Line), d.Pos.Col)); ok && next.Position.Line == tk.Position.Line+1 && indent == d.Pos.Col {
			d.Msg = fmt.Sprintf("YAML syntax: missing ':' after the key %s", k)
			d.Hint = fmt.Sprintf("write %s: %s; without the colon, this line and the next read as one text", k, v)
			return d
		}
		d.Pos.Line = next.Position.Line
		d.Pos.Col = indent
		if prev := tk.Prev; prev != nil {
			switch prev.Type {
			case token.MappingValueType:
				d.Hint = "this line is indented more than the key above it, so it reads as more of that key's value"
			case token.SequenceEntryType:
				d.Hint = "this line is indented more than the - above it, so it reads as more of that list item"
			}
		}
		return d
	}
	if p := tk.Prev; p != nil && p.Type == token.TagType && coreTag(p.Value) != "" {
		// "!!str [b]": the parser reads the value by its tag.
		d.Hint = fmt.Sprintf("the %s tag does not fit the value after it: !!map tags a map, !!seq a list, the other core tags a single value", p.Value)
	}
	switch ye.GetMessage() {
	case "non-map value is specified":
		// "run echo" among the keys of a map.
		if k, v, ok := keyAndValue(lineFrom(x.line(tk.Position.Line), d.Pos.Col)); ok && tk.Type == token.StringType {
			d.Hint = fmt.Sprintf("did you mean %s: %s? A key is followed by a colon", k, v)
		}
	case "',' or ']' must be specified", "',' or '}' must be specified":
		if open := unclosed(tk); open != nil {
			at := Pos{File: file, Line: open.Position.Line, Col: open.Position.Column + tagsBefore(open)}
			closer := map[token.Type]string{token.SequenceStartType: "]", token.MappingStartType: "}"}[open.Type]
			d.Msg = fmt.Sprintf("YAML syntax: this %s is not closed: ',' or '%s' must come before %d:%d", open.Value, closer, d.Pos.Line, d.Pos.Col)
			d.Related = []Pos{d.Pos}
			d.Pos = at
		}
	}
	return d
}

// tagShifts returns, for the tokens of the document that holds tk, how
// many columns goccy/go-yaml places each too far left, where it is not
// 0: the parser does not count the blank after a tag, so every token
// after a tag on its line is a column further left than it is, two
// after two tags.
func tagShifts(src []byte, tk *token.Token) map[*token.Token]int {
	if tk == nil || bytes.IndexByte(src, '!') < 0 {
		return nil
	}
	for tk.Prev != nil {
		tk = tk.Prev
	}
	var out map[*token.Token]int
	line, tags := 0, 0
	for ; tk != nil; tk = tk.Next {
		if tk.Position.Line != line {
			line, tags = tk.Position.Line, 0
		}
		if tags > 0 {
			if out == nil {
				out = map[*token.Token]int{}
			}
			out[tk] = tags
		}
		if tk.Type == token.TagType {
			tags++
		}
	}
	return out
}

// tagsBefore is tagShifts for one token.
func tagsBefore(tk *token.Token) int {
	n := 0
	for p := tk.Prev; p != nil && p.Position.Line == tk.Position.Line; p = p.Prev {
		if p.Type == token.TagType {
			n++
		}
	}
	return n
}

// unclosed returns the [ or { that the flow collection the parser was
// reading at tk opened, if it is never closed: tk is inside it, and no
// bracket after tk closes it. nil when it is closed further on (a comma
// is missing, not a bracket).
func unclosed(tk *token.Token) *token.Token {
	depth := 0
	var open *token.Token
	for p := tk.Prev; p != nil; p = p.Prev {
		switch p.Type {
		case token.SequenceEndType, token.MappingEndType:
			depth++
		case token.SequenceStartType, token.MappingStartType:
			if depth == 0 {
				open = p
			}
			depth--
		}
		if open != nil {
			break
		}
	}
	if open == nil {
		return nil
	}
	closer := map[token.Type]token.Type{token.SequenceStartType: token.SequenceEndType, token.MappingStartType: token.MappingEndType}[open.Type]
	depth = 0
	for n := tk; n != nil; n = n.Next {
		switch n.Type {
		case token.SequenceStartType, token.MappingStartType:
			depth++
		case token.SequenceEndType, token.MappingEndType:
			if depth == 0 {
				if n.Type == closer {
					return nil
				}
				return open // closed by the other kind of bracket
			}
			depth--
		}
	}
	return open
}

// keyAndValue reads text (a line from where a plain scalar starts) as
// a key and a value with the colon between them left out: "id b".
func keyAndValue(text []byte) (key, value string, ok bool) {
	m := keyNoColon.FindSubmatch(text)
	if m == nil {
		return "", "", false
	}
	return string(m[1]), string(bytes.TrimSpace(m[2])), true
}

// keyNoColon is a key-like word, blanks, and a value on the same line.
var keyNoColon = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_-]*) +([^ #:][^#:]*)$`)

// lineFrom is line from column col (1-based, in characters) on.
func lineFrom(line []byte, col int) []byte {
	for c := 1; c < col && len(line) > 0; c++ {
		_, size := utf8.DecodeRune(line)
		line = line[size:]
	}
	return line
}

type builder struct {
	file string
	// src is the source the parser read, with any tabs masked (see
	// maskQuotedTabs); text is the source as written.
	src  lineIndex
	text *sourceText
	// mask stands for a tab in the source the parser read, or is "".
	mask string
	// tagShift is how many columns the parser places a token too far
	// left (see tagShifts).
	tagShift map[*token.Token]int
	anchors  map[string]ast.Node
	// mergeKeys is where each map's merge key (<<) is written.
	mergeKeys map[*Node]Pos
	// emptyTags are the tags with nothing after them that emptyTags took
	// out of the source, by line and column: an empty quoted scalar
	// stands in each one's place.
	emptyTags map[[2]int]string
	diags     Diagnostics
	// inAlias counts the aliases being expanded around the current node;
	// aliased counts the nodes built for them, and overflow is set once
	// that passed maxAliased.
	inAlias, aliased int
	overflow         bool
}

const maxDepth = 100

// maxAliased bounds the nodes aliases may expand to, so that a few lines
// of nested aliases ("billion laughs") cannot exhaust memory: far above
// what any spec repeats with anchors, far below what would hurt.
const maxAliased = 100_000

func (b *builder) pos(tk *token.Token) Pos {
	if tk == nil {
		return Pos{File: b.file}
	}
	return Pos{File: b.file, Line: tk.Position.Line, Col: b.col(tk)}
}

// col is the column of a token. goccy/go-yaml places a plain scalar that
// has blanks after it at the end of its (first) line as many columns too
// far to the right as there are blanks (it counts back from the line's
// end); such a column is put back where the scalar starts. A column that
// fits that pattern cannot be right: the scalar would then end in blanks,
// which a plain scalar never does.
func (b *builder) col(tk *token.Token) int {
	col := tk.Position.Column + b.tagShift[tk]
	if tk.Value == "" {
		return col
	}
	line := b.src.line(tk.Position.Line)
	trimmed := bytes.TrimRight(line, " ")
	blanks := len(line) - len(trimmed)
	if blanks == 0 || col <= blanks {
		return col
	}
	// Were the scalar to start blanks columns to the left, the rest of
	// the line would be its text, or the first line of it, folded into
	// a space or a newline.
	start := col - blanks
	first := trimmed
	for c := 1; c < start && len(first) > 0; c++ {
		_, size := utf8.DecodeRune(first)
		first = first[size:]
	}
	rest, ok := strings.CutPrefix(tk.Value, string(first))
	if ok && len(first) > 0 && (rest == "" || rest[0] == ' ' || rest[0] == '\n') {
		return start
	}
	return col
}

// lineIndex gives the lines of a source, indexing where they start on
// first use.
type lineIndex struct {
	src    []byte
	starts []int
}

// count is the number of lines.
func (x *lineIndex) count() int {
	if x.starts == nil {
		x.starts = []int{0}
		for i, c := range x.src {
			if c == '\n' {
				x.starts = append(x.starts, i+1)
			}
		}
	}
	return len(x.starts)
}

// line is the text of line n (1-based), without its end; nil if there
// is no such line.
func (x *lineIndex) line(n int) []byte {
	if n < 1 || n > x.count() {
		return nil
	}
	end := len(x.src)
	if n < len(x.starts) {
		end = x.starts[n] - 1
	}
	return x.src[x.starts[n-1]:end]
}

func (b *builder) errorf(tk *token.Token, format string, args ...any) {
	b.diags = append(b.diags, &Diagnostic{Pos: b.pos(tk), Msg: fmt.Sprintf(format, args...)})
}

func (b *builder) node(an ast.Node, depth int) *Node {
	if depth > maxDepth {
		b.errorf(an.GetToken(), "YAML nested deeper than %d levels", maxDepth)
		return &Node{Kind: KindNull, Pos: b.pos(an.GetToken())}
	}
	if b.inAlias > 0 {
		if b.aliased++; b.aliased > maxAliased {
			return &Node{Kind: KindNull, Pos: b.pos(an.GetToken())}
		}
	}
	switch n := an.(type) {
	case *ast.AnchorNode:
		if name, ok := n.Name.(*ast.StringNode); ok {
			b.anchors[name.Value] = n.Value
		}
		return b.node(n.Value, depth+1)
	case *ast.AliasNode:
		name := ""
		if s, ok := n.Value.(*ast.StringNode); ok {
			name = s.Value
		}
		target, ok := b.anchors[name]
		if !ok {
			b.errorf(n.GetToken(), "unknown YAML alias *%s", name)
			return &Node{Kind: KindNull, Pos: b.pos(n.GetToken())}
		}
		b.inAlias++
		out := b.node(target, depth+1)
		b.inAlias--
		if b.aliased > maxAliased && !b.overflow {
			b.overflow = true
			b.errorf(n.GetToken(), "YAML aliases expand to more than %d values; the expansion stops here", maxAliased)
		}
		return out
	case *ast.TagNode:
		return b.tagged(n, depth)
	case *ast.NullNode:
		if tag, ok := b.emptyTag(n.Token); ok {
			return b.emptyTagged(n, tag)
		}
		return &Node{Kind: KindNull, Pos: b.pos(n.Token), Str: "null"}
	case *ast.BoolNode:
		return &Node{Kind: KindBool, Pos: b.pos(n.Token), Bool: n.Value, Str: n.Token.Value}
	case *ast.IntegerNode:
		return intNode(b.pos(n.Token), n.Token.Value, n.Value)
	case *ast.FloatNode:
		return &Node{Kind: KindFloat, Pos: b.pos(n.Token), Float: n.Value, Str: n.Token.Value}
	case *ast.InfinityNode:
		return &Node{Kind: KindFloat, Pos: b.pos(n.Token), Float: n.Value, Str: n.Token.Value}
	case *ast.NanNode:
		return &Node{Kind: KindFloat, Pos: b.pos(n.Token), Float: math.NaN(), Str: n.Token.Value}
	case *ast.StringNode:
		if tag, ok := b.emptyTag(n.Token); ok {
			return b.emptyTagged(n, tag)
		}
		if n.Token.Type == token.StringType {
			// The parser reads a plain integer beyond 64 bits as a
			// string; it is written as a number, and Validate reports it.
			if _, ok := bigInteger(n.Value); ok {
				return &Node{Kind: KindInt, Pos: b.pos(n.Token), Str: n.Value, tooBig: true}
			}
		}
		return &Node{Kind: KindString, Pos: b.pos(n.Token), Str: b.unmask(n.Value), text: b.text}
	case *ast.LiteralNode:
		return &Node{Kind: KindString, Pos: b.pos(n.Start), Str: n.Value.Value, text: b.text}
	case *ast.MappingNode:
		out := &Node{Kind: KindMap, Pos: b.pos(n.GetToken())}
		for _, mv := range n.Values {
			b.mapValue(out, mv, depth)
		}
		if len(out.Keys) > 0 {
			out.Pos = out.Keys[0].Pos
		}
		return out
	case *ast.MappingValueNode:
		out := &Node{Kind: KindMap}
		b.mapValue(out, n, depth)
		if len(out.Keys) > 0 {
			out.Pos = out.Keys[0].Pos
		}
		return out
	case *ast.SequenceNode:
		out := &Node{Kind: KindList, Pos: b.pos(n.GetToken())}
		for _, v := range n.Values {
			out.Vals = append(out.Vals, b.node(v, depth+1))
		}
		if len(n.Values) > 0 && !n.IsFlowStyle {
			out.Pos = out.Vals[0].Pos
		}
		return out
	case *ast.CommentGroupNode, nil:
		return &Node{Kind: KindNull, Str: "null"}
	}
	b.errorf(an.GetToken(), "unsupported YAML construct %s", an.Type())
	return &Node{Kind: KindNull, Pos: b.pos(an.GetToken())}
}

// emptyTag returns the tag that tk, a scalar, stands in for, if it is
// one emptyTags put in the source.
func (b *builder) emptyTag(tk *token.Token) (string, bool) {
	if b.emptyTags == nil || tk == nil || tk.Position == nil {
		return "", false
	}
	tag, ok := b.emptyTags[[2]int{tk.Position.Line, b.col(tk)}]
	return tag, ok
}

// intNode is the node of an integer written as text and read as v, an
// int64 or a uint64.
func intNode(p Pos, text string, v any) *Node {
	out := &Node{Kind: KindInt, Pos: p, Str: text}
	switch v := v.(type) {
	case int64:
		out.Int = v
	case uint64:
		// Validate reports it, with the field it is in.
		out.tooBig = v > math.MaxInt64
		if !out.tooBig {
			out.Int = int64(v)
		}
	}
	out.Float = float64(out.Int)
	return out
}

// unmask puts back the tabs maskQuotedTabs masked in s.
func (b *builder) unmask(s string) string {
	if b.mask == "" {
		return s
	}
	return strings.ReplaceAll(s, b.mask, "\t")
}

// bigInteger reads an integer literal as YAML writes one (decimal, 0x,
// 0o, 0b, a leading 0 for octal, _ between digits) that does not fit in
// 64 bits.
func bigInteger(s string) (*big.Int, bool) {
	if s == "" || !(s[0] >= '0' && s[0] <= '9' || s[0] == '-' || s[0] == '+') {
		return nil, false
	}
	v, ok := new(big.Int).SetString(s, 0)
	if !ok || v.IsInt64() {
		return nil, false
	}
	return v, true
}

// ParseValue reads one YAML value given outside a spec, such as a --set
// value, as a spec's values are read (see Value): a number such as 1.50
// comes back as a json.Number holding its text. An integer beyond 64
// bits comes back as a *big.Int and .inf and .nan as float64, for the
// caller to refuse where the value is used.
func ParseValue(src []byte) (any, error) {
	src = lfBreaks(src)
	masked, mask := maskQuotedTabs(src)
	f, masked, empty, err := parseTags(masked)
	if err != nil {
		return nil, err
	}
	b := builder{src: lineIndex{src: masked}, text: newSourceText(src), anchors: map[string]ast.Node{}, mergeKeys: map[*Node]Pos{}, mask: mask, emptyTags: empty}
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		b.tagShift = tagShifts(masked, d.Body.GetToken())
		n := b.node(d.Body, 0)
		if len(b.diags) > 0 {
			return nil, errors.New(b.diags[0].Msg)
		}
		return n.Value(), nil
	}
	return nil, nil
}

// duplicate reports a key written again in the same map, mv, with the
// path of the key (the map's, plus the key) as the parser gives it: the
// builder keeps none. A map repeated through an alias had its duplicates
// reported where it was written.
func (b *builder) duplicate(mv *ast.MappingValueNode, key string, at, first Pos) {
	if b.inAlias > 0 {
		return
	}
	b.diags = append(b.diags, &Diagnostic{Pos: at, Path: yamlPath(b.unmask(mv.GetPath())), Msg: fmt.Sprintf("duplicate key %q (first at %d:%d)", key, first.Line, first.Col), Related: []Pos{first}, treeWhole: true})
}

func (b *builder) mapValue(out *Node, mv *ast.MappingValueNode, depth int) {
	if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
		at := b.pos(mv.Key.GetToken())
		if first, dup := b.mergeKeys[out]; dup {
			b.duplicate(mv, "<<", at, first)
			return
		}
		b.mergeKeys[out] = at
		src := b.node(mv.Value, depth+1)
		var maps []*Node
		switch src.Kind {
		case KindMap:
			maps = []*Node{src}
		case KindList:
			maps = src.Vals
		}
		if out.merged == nil {
			out.merged = map[string]bool{}
		}
		for _, m := range maps {
			if m.Kind != KindMap {
				b.errorf(mv.Key.GetToken(), "a YAML merge key takes a map or a list of maps")
				continue
			}
			for i, k := range m.Keys {
				if out.Get(k.Str) == nil {
					out.Keys = append(out.Keys, k)
					out.Vals = append(out.Vals, m.Vals[i])
					out.merged[k.Str] = true
				}
			}
		}
		return
	}
	key := b.node(mv.Key, depth+1)
	switch key.Kind {
	case KindList, KindMap:
		b.errorf(mv.Key.GetToken(), "map keys must be scalars")
		return
	}
	key.Kind = KindString
	if out.merged[key.Str] {
		// A key written beside a merge key overrides the merged value.
		delete(out.merged, key.Str)
		for i, k := range out.Keys {
			if k.Str == key.Str {
				out.Keys = append(out.Keys[:i], out.Keys[i+1:]...)
				out.Vals = append(out.Vals[:i], out.Vals[i+1:]...)
				break
			}
		}
	}
	if dup := out.KeyNode(key.Str); dup != nil {
		b.duplicate(mv, key.Str, key.Pos, dup.Pos)
		return
	}
	var val *Node
	if mv.Value == nil {
		val = &Node{Kind: KindNull, Pos: key.Pos, Str: "null"}
	} else {
		val = b.node(mv.Value, depth+1)
		if val.Kind == KindNull && val.Pos.Line == 0 {
			val.Pos = key.Pos
		}
	}
	out.Keys = append(out.Keys, key)
	out.Vals = append(out.Vals, val)
}

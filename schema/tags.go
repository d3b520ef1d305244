package schema

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// CoreTags names the YAML tags a spec may use: those of the YAML 1.2
// core schema. Any other tag is an error, not a value silently read as
// if it were untagged.
const CoreTags = "!!str, !!int, !!float, !!bool, !!null, !!map and !!seq"

// coreTag returns the short name of a core schema tag written as tag,
// in its short (!!str) or verbatim (!<tag:yaml.org,2002:str>) form,
// or "".
func coreTag(tag string) string {
	if s, ok := strings.CutPrefix(tag, "!<tag:yaml.org,2002:"); ok && strings.HasSuffix(s, ">") {
		tag = "!!" + strings.TrimSuffix(s, ">")
	}
	switch tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq", "!":
		// "!" is YAML's non-specific tag: a string, or the map or list
		// it tags.
		return tag
	}
	return ""
}

// tagged builds a tagged value as YAML defines the tag: !!str makes the
// text of a scalar a string whatever it looks like (0755 stays 0755),
// !!int, !!float, !!bool and !!null read the text, quoted or not, as
// that type and refuse text that is not one, and !!map and !!seq only
// check what they tag. The goccy parser reads the value as if it were
// untagged, which is where the text comes from.
func (b *builder) tagged(n *ast.TagNode, depth int) *Node {
	name := n.Start.Value
	if a, ok := n.Value.(*ast.AnchorNode); ok {
		// "!!str &a 3": the anchor names the tagged value.
		if an, ok := a.Name.(*ast.StringNode); ok {
			b.anchors[an.Value] = &ast.TagNode{BaseNode: n.BaseNode, Directive: n.Directive, Start: n.Start, Value: a.Value}
		}
		n = &ast.TagNode{BaseNode: n.BaseNode, Directive: n.Directive, Start: n.Start, Value: a.Value}
	}
	val := b.node(n.Value, depth+1)
	// With nothing after the tag, the parser makes up a value (0 for
	// !!int) one column into the tag, or an implicit null at the end of
	// the document; YAML reads the empty text.
	empty := false
	if n.Value == nil {
		empty = true
		val.Pos = b.pos(n.Start)
	} else if tk := n.Value.GetToken(); tk != nil && tk.Position != nil && n.Start.Position != nil && (tk.Type == token.ImplicitNullType ||
		len(name) > 1 && tk.Position.Line == n.Start.Position.Line && tk.Position.Column == n.Start.Position.Column+1) {
		empty = true
		val.Pos = b.pos(n.Start)
	}
	text, ok := b.scalarText(n.Value)
	if empty {
		text = ""
	}
	return b.tagValue(name, n.Directive != nil, b.pos(n.Start), n.GetPath(), val, text, ok, empty)
}

// emptyTagged builds the value of a tag that had nothing after it, which
// emptyTags took out of the source: an, the empty quoted scalar left in
// its place, gives its position and path.
func (b *builder) emptyTagged(an ast.Node, name string) *Node {
	p := b.pos(an.GetToken())
	return b.tagValue(name, false, p, an.GetPath(), &Node{Kind: KindNull, Pos: p, Str: "null"}, "", true, true)
}

// tagValue is the value val, read as if untagged from text (a scalar's
// text, when scalar is set; "" when empty, nothing written), tagged with
// name at at. path is the parser's path of the value.
func (b *builder) tagValue(name string, directive bool, at Pos, path string, val *Node, text string, scalar, empty bool) *Node {
	tag := coreTag(name)
	if tag == "" || directive {
		// The value is checked on as if it were untagged.
		b.tagError(path, at, "unsupported YAML tag %s: a spec may use only the YAML core tags %s", name, CoreTags)
		return val
	}
	switch tag {
	case "!":
		if val.Kind == KindMap || val.Kind == KindList {
			return val
		}
		tag = "!!str"
	case "!!map", "!!seq":
		want := map[string]Kind{"!!map": KindMap, "!!seq": KindList}[tag]
		if val.Kind != want {
			b.tagError(path, val.Pos, "%s tag on a %s: it tags a %s", name, kindWord(val.Kind), kindWord(want))
			val.reported = true
		}
		return val
	}
	if !scalar {
		b.tagError(path, val.Pos, "%s tag on a %s: it tags a single value", name, kindWord(val.Kind))
		val.reported = true
		return val
	}
	out, msg := tagScalar(tag, text, val.Pos)
	if out == nil && empty {
		// The tag's zero stands in, reported: a field that takes the
		// tag's type has no other error to tell of it.
		b.tagError(path, val.Pos, "the %s tag needs a value: %s", name, msg)
		zero := map[string]*Node{"!!int": {Kind: KindInt, Str: "0"}, "!!float": {Kind: KindFloat, Str: "0"}, "!!bool": {Kind: KindBool, Str: "false"}}[tag]
		if zero == nil {
			zero = &Node{Kind: KindNull, Str: "null"}
		}
		zero.Pos, zero.reported = val.Pos, true
		return zero
	}
	if out == nil {
		b.tagError(path, val.Pos, "invalid %s value %s: %s", name, strconv.Quote(truncate(text, 60)), msg)
		val.reported = true
		return val
	}
	if out.Kind == KindString {
		out.text = b.text
	}
	out.tag = name
	return out
}

// parseTags parses src as parser.ParseBytes does, with the tags that
// have nothing after them read as YAML reads them (see emptyTags): it
// returns the file, the source the parser read (src, or src with such
// tags replaced), and the tags replaced. The source is looked at again
// only when it holds a tag: on a successful parse, in the tokens the
// parser read, and lexed again only when it failed.
func parseTags(src []byte, opts ...parser.Option) (*ast.File, []byte, map[[2]int]string, error) {
	f, err := parser.ParseBytes(src, 0, opts...)
	if bytes.IndexByte(src, '!') < 0 {
		return f, src, nil, err
	}
	var first *token.Token
	if err == nil {
		first = firstToken(f)
	} else if tks := lexer.Tokenize(string(src)); len(tks) > 0 {
		first = tks[0]
	}
	fixed, tags := emptyTags(src, first)
	if tags == nil {
		return f, src, nil, err
	}
	f, err = parser.ParseBytes(fixed, 0, opts...)
	return f, fixed, tags, err
}

// firstToken is the first token of the stream a parsed file was read
// from, or nil.
func firstToken(f *ast.File) *token.Token {
	var tk *token.Token
	for _, d := range f.Docs {
		if d == nil {
			continue
		}
		if tk = d.Start; tk == nil && d.Body != nil {
			tk = d.Body.GetToken()
		}
		if tk != nil {
			break
		}
	}
	for tk != nil && tk.Prev != nil {
		tk = tk.Prev
	}
	return tk
}

// emptyTags returns src with every tag in the tokens from first on that
// has nothing after it, where goccy/go-yaml would refuse it or read what
// follows as its value, replaced by an empty quoted scalar padded to the
// tag's width (so that no later column moves), and the tags so replaced
// by where they were (line and column); src and nil when there is none.
// YAML reads such a tag as tagging the empty text: "{a: !!str }", and
// "a: !!str" before the next key, are a: "". The parser reads an empty
// tag before a comma or a colon, or at the end of the document, itself;
// it refuses one right before the closing bracket of a flow map or list,
// and in block form, a tag that ends its line before a key or an item no
// deeper than the one it is in it refuses, or reads the next key as its
// value ("a: !!map" then "b: 1" as a: {b: 1}).
func emptyTags(src []byte, first *token.Token) ([]byte, map[[2]int]string) {
	x := lineIndex{src: src}
	var out []byte
	var tags map[[2]int]string
	flow := 0
	for tk := first; tk != nil; tk = tk.Next {
		switch tk.Type {
		case token.MappingStartType, token.SequenceStartType:
			flow++
		case token.MappingEndType, token.SequenceEndType:
			flow = max(flow-1, 0)
		case token.TagType:
			if tk.Position == nil || !emptyTag(tk, flow > 0) {
				continue
			}
			line, col := tk.Position.Line, tk.Position.Column+tagsBefore(tk)
			text := x.line(line)
			rest := lineFrom(text, col)
			if !bytes.HasPrefix(rest, []byte(tk.Value)) {
				continue // not where the parser said: left to it
			}
			at := x.starts[line-1] + len(text) - len(rest)
			width := len(tk.Value)
			repl := `""` + strings.Repeat(" ", max(width-2, 0))
			if width < 2 {
				if len(rest) > width && rest[width] == ' ' {
					width++ // "! }": the blank after the tag makes room
				} else {
					repl = "~"
				}
			}
			if len(repl) != width {
				continue
			}
			if out == nil {
				out = slices.Clone(src)
				tags = map[[2]int]string{}
			}
			copy(out[at:], repl)
			tags[[2]int{line, col}] = tk.Value
		}
	}
	if out == nil {
		return src, nil
	}
	return out, tags
}

// emptyTag reports whether the tag tk has nothing after it that the
// parser would not read as its value itself: in a flow collection, the
// bracket that closes it; in block form, on a later line, a token no
// deeper than the key or the - before the tag (a list at the key's
// column is the key's value).
func emptyTag(tk *token.Token, inFlow bool) bool {
	next := tk.Next
	for next != nil && next.Type == token.CommentType {
		next = next.Next
	}
	if next == nil || next.Position == nil {
		return false // the end of the document: the parser reads it
	}
	if inFlow {
		return next.Type == token.MappingEndType || next.Type == token.SequenceEndType
	}
	if next.Position.Line == tk.Position.Line {
		return false
	}
	prev := tk.Prev
	if prev != nil && prev.Prev != nil && prev.Prev.Type == token.AnchorType {
		prev = prev.Prev.Prev // "&a !!str": the anchor's name, then &
	}
	if prev == nil || prev.Position == nil {
		return false
	}
	col := func(t *token.Token) int { return t.Position.Column + tagsBefore(t) }
	switch prev.Type {
	case token.SequenceEntryType:
		return col(next) <= col(prev)
	case token.MappingValueType:
		key := prev.Prev
		if key == nil || key.Position == nil {
			return false
		}
		// A key's own tag or anchor, written before it, is where it starts.
		for p := key.Prev; p != nil && p.Position != nil && p.Position.Line == key.Position.Line; p = p.Prev {
			anchorName := p.Prev != nil && p.Prev.Type == token.AnchorType
			if p.Type != token.TagType && p.Type != token.AnchorType && !anchorName {
				break
			}
			key = p
		}
		if next.Type == token.SequenceEntryType && col(next) == col(key) {
			return false
		}
		return col(next) <= col(key)
	}
	return false
}

// tagScalar reads text as the core tag tag says; nil and what the text
// should be when it is not of that type.
func tagScalar(tag, text string, p Pos) (*Node, string) {
	switch tag {
	case "!!str":
		return &Node{Kind: KindString, Pos: p, Str: text}, ""
	case "!!int":
		// An integer as bmc reads an untagged one: decimal, 0x, 0o, 0b,
		// a leading 0 for octal, _ between digits.
		if num := token.ToNumber(text); num != nil && num.Type != token.NumberTypeFloat {
			return intNode(p, text, num.Value), ""
		}
		if _, ok := bigInteger(text); ok {
			return &Node{Kind: KindInt, Pos: p, Str: text, tooBig: true}, ""
		}
		return nil, "expected an integer such as 42, -7 or 0x1F"
	case "!!float":
		if f, ok := coreFloat(text); ok {
			return &Node{Kind: KindFloat, Pos: p, Float: f, Str: text}, ""
		}
		return nil, "expected a number such as 1.5, -2 or 1e3"
	case "!!bool":
		switch text {
		case "true", "True", "TRUE":
			return &Node{Kind: KindBool, Pos: p, Bool: true, Str: text}, ""
		case "false", "False", "FALSE":
			return &Node{Kind: KindBool, Pos: p, Str: text}, ""
		}
		return nil, "expected true or false"
	case "!!null":
		switch text {
		case "", "~", "null", "Null", "NULL":
			return &Node{Kind: KindNull, Pos: p, Str: "null"}, ""
		}
		return nil, "expected null, ~ or nothing"
	}
	return nil, "unknown tag"
}

// floatForm is a float as the YAML 1.2 core schema writes one.
var floatForm = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

func coreFloat(s string) (float64, bool) {
	switch strings.TrimPrefix(s, "+") {
	case ".inf", ".Inf", ".INF":
		return math.Inf(1), true
	case "-.inf", "-.Inf", "-.INF":
		return math.Inf(-1), true
	}
	switch s {
	case ".nan", ".NaN", ".NAN":
		return math.NaN(), true
	}
	if !floatForm.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// Out of range: ParseFloat gives ±Inf, which Validate refuses.
		return f, math.IsInf(f, 0)
	}
	return f, true
}

// scalarText is the text of a scalar before its type is resolved: a
// plain scalar's as written, a quoted one's with its escapes read, a
// block's lines; false for a map, a list or an alias.
func (b *builder) scalarText(an ast.Node) (string, bool) {
	switch n := an.(type) {
	case *ast.StringNode:
		return b.unmask(n.Value), true
	case *ast.LiteralNode:
		return n.Value.Value, true
	case *ast.NullNode:
		if n.Token.Type == token.ImplicitNullType {
			return "", true // nothing written
		}
		return n.Token.Value, true
	case *ast.IntegerNode:
		return n.Token.Value, true
	case *ast.FloatNode:
		return n.Token.Value, true
	case *ast.BoolNode:
		return n.Token.Value, true
	case *ast.InfinityNode:
		return n.Token.Value, true
	case *ast.NanNode:
		return n.Token.Value, true
	case *ast.CommentGroupNode, nil:
		return "", true
	}
	return "", false
}

// kindWord names a kind in a sentence.
func kindWord(k Kind) string {
	switch k {
	case KindList:
		return "list"
	case KindMap:
		return "map"
	case KindNull:
		return "null"
	}
	return "single value"
}

// tagError reports a tag at fault, with the path of the field it tags,
// as the parser gives it (path).
// The tree stays whole: the rest of the spec is checked too.
func (b *builder) tagError(path string, p Pos, format string, args ...any) {
	b.diags = append(b.diags, &Diagnostic{Pos: p, Path: yamlPath(b.unmask(path)), Msg: fmt.Sprintf(format, args...), treeWhole: true})
}

// yamlPath turns the path the parser gives a node, as $.tasks[0].env.A
// with a key holding $ * . [ or ] in single quotes, into a field path as
// PathString writes it. The tree is built bottom up, so the parser's is
// the path known where a tag is read. A path it cannot read is "".
func yamlPath(p string) string {
	rest, ok := strings.CutPrefix(p, "$")
	if !ok {
		return ""
	}
	var path []any
	for rest != "" {
		switch rest[0] {
		case '[':
			end := strings.IndexByte(rest, ']')
			i, err := strconv.Atoi(rest[1:max(end, 1)])
			if end < 0 || err != nil {
				return ""
			}
			path, rest = append(path, i), rest[end+1:]
		case '.':
			rest = rest[1:]
			var key string
			if strings.HasPrefix(rest, "'") {
				// Quoted keys are not escaped: the key ends at the quote
				// that the end of the path, or a . or [, follows.
				end := -1
				for i := 1; i < len(rest); i++ {
					if rest[i] == '\'' && (i+1 == len(rest) || rest[i+1] == '.' || rest[i+1] == '[') {
						end = i
						break
					}
				}
				if end < 0 {
					return ""
				}
				key, rest = rest[1:end], rest[end+1:]
			} else {
				end := strings.IndexAny(rest, ".[")
				if end < 0 {
					end = len(rest)
				}
				key, rest = rest[:end], rest[end:]
			}
			path = append(path, key)
		default:
			return ""
		}
	}
	return PathString(path)
}

// directives reads the directives that open the document (%YAML, %TAG)
// and returns src with each turned into a comment, columns kept, and what
// is wrong with them. The parser takes a directive for a document of its
// own, and two in a row for a syntax error. bmc reads YAML 1.2 and no
// custom tags: %YAML 1.x is taken as it is, and %TAG, which only names
// tags bmc does not read, is an error of its own, beside those of the
// tags it names. src is returned as it is when it opens with none.
func directives(file string, src []byte) ([]byte, Diagnostics) {
	if len(src) == 0 || src[0] != '%' && !bytes.Contains(src, []byte("\n%")) {
		return src, nil
	}
	x := lineIndex{src: src}
	var out []byte
	var diags Diagnostics
	first := 0 // the line of the first directive
	errorf := func(line int, format string, args ...any) {
		diags = append(diags, &Diagnostic{Pos: Pos{File: file, Line: line, Col: 1}, Msg: fmt.Sprintf(format, args...), treeWhole: true})
	}
	for n := 1; n <= x.count(); n++ {
		line := x.line(n)
		if t := bytes.TrimLeft(line, " \t"); len(t) == 0 || t[0] == '#' {
			continue
		}
		if line[0] != '%' {
			if first > 0 && !docStart.Match(line) {
				name, _, _ := strings.Cut(string(x.line(first)), " ")
				errorf(n, "YAML syntax: a directive (%s at %d:1) must be followed by a --- line, where the document starts", name, first)
			}
			break
		}
		if first == 0 {
			first = n
			out = slices.Clone(src)
		}
		out[x.starts[n-1]] = '#'
		fields := strings.Fields(string(line[1:]))
		name, arg := "", ""
		if len(fields) > 0 {
			name = fields[0]
		}
		if len(fields) > 1 {
			arg = fields[1]
		}
		switch {
		case name == "TAG":
			errorf(n, "unsupported YAML directive %%TAG: custom tags are not supported; a spec may use only the YAML core tags %s", CoreTags)
		case name == "YAML" && arg == "":
			errorf(n, "YAML syntax: %%YAML needs a version, such as %%YAML 1.2")
		case name == "YAML" && !strings.HasPrefix(arg, "1."):
			errorf(n, "unsupported YAML version %s: bmc reads YAML 1.2", arg)
		case name != "YAML":
			errorf(n, "unsupported YAML directive %%%s", name)
		}
	}
	if out == nil {
		return src, nil
	}
	return out, diags
}

// docStart is a --- line, which starts a document.
var docStart = regexp.MustCompile(`^---([ \t]|$)`)

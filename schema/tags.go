package schema

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
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
	tag := coreTag(name)
	if tag == "" || n.Directive != nil {
		// The value is checked on as if it were untagged.
		b.tagError(n, b.pos(n.Start), "unsupported YAML tag %s: a spec may use only the YAML core tags %s", name, CoreTags)
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
			b.tagError(n, val.Pos, "%s tag on a %s: it tags a %s", name, kindWord(val.Kind), kindWord(want))
			val.reported = true
		}
		return val
	}
	text, ok := b.scalarText(n.Value)
	if empty {
		text = ""
	}
	if !ok {
		b.tagError(n, val.Pos, "%s tag on a %s: it tags a single value", name, kindWord(val.Kind))
		val.reported = true
		return val
	}
	out, msg := tagScalar(tag, text, val.Pos)
	if out == nil {
		b.tagError(n, val.Pos, "invalid %s value %s: %s", name, strconv.Quote(truncate(text, 60)), msg)
		val.reported = true
		return val
	}
	if out.Kind == KindString {
		out.text = b.text
	}
	out.tag = name
	return out
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

// tagError reports a tag at fault, with the path of the field it tags.
// The tree stays whole: the rest of the spec is checked too.
func (b *builder) tagError(n *ast.TagNode, p Pos, format string, args ...any) {
	b.diags = append(b.diags, &Diagnostic{Pos: p, Path: yamlPath(b.unmask(n.GetPath())), Msg: fmt.Sprintf(format, args...), treeWhole: true})
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

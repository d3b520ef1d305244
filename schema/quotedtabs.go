package schema

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	yaml3 "go.yaml.in/yaml/v3"
)

// maskQuotedTabs returns src with the tabs of its double-quoted scalars
// that the positioned parser miscounts replaced by mask, a character src
// does not hold, and that mask; src itself and "" when there is none.
//
// goccy/go-yaml steps over such a tab twice: every token after the
// scalar is read that many characters further on, so that a line break
// after the closing quote is skipped and every later position is a line
// too high, or a key loses its first letters. The tabs it miscounts are
// those it keeps in the value with text after them on their line, not
// right before the closing quote. A one-character mask is counted as the
// tab should be; the builder puts the tabs back in the values.
//
// The double-quoted scalars are found with yaml/v3, which reads them
// right; a document it cannot read is left as it is.
func maskQuotedTabs(src []byte) ([]byte, string) {
	if bytes.IndexByte(src, '\t') < 0 || bytes.IndexByte(src, '"') < 0 {
		return src, ""
	}
	mask := ""
	for r := rune(0xE000); r < 0xF8FF; r++ {
		if !bytes.ContainsRune(src, r) {
			mask = string(r)
			break
		}
	}
	if mask == "" {
		return src, ""
	}
	x := lineIndex{src: src}
	var tabs []int // byte offsets, ascending within each scalar
	var walk func(n *yaml3.Node)
	walk = func(n *yaml3.Node) {
		if n.Kind == yaml3.ScalarNode && n.Style&yaml3.DoubleQuotedStyle != 0 {
			if at, ok := quoteStart(&x, n.Line, n.Column); ok {
				tabs = append(tabs, miscountedTabs(src, at)...)
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	dec := yaml3.NewDecoder(bytes.NewReader(src))
	for {
		var doc yaml3.Node
		if err := dec.Decode(&doc); err != nil {
			if !errors.Is(err, io.EOF) {
				return src, ""
			}
			break
		}
		walk(&doc)
	}
	if len(tabs) == 0 {
		return src, ""
	}
	out := make([]byte, 0, len(src)+2*len(tabs))
	last := 0
	for _, t := range sortedUnique(tabs) {
		out = append(out, src[last:t]...)
		out = append(out, mask...)
		last = t + 1
	}
	return append(out, src[last:]...), mask
}

// quoteStart is the byte offset of the opening quote of a double-quoted
// scalar yaml/v3 places at line and col (1-based, col in characters):
// there, or after the tag and anchor written before it.
func quoteStart(x *lineIndex, line, col int) (int, bool) {
	text := x.line(line)
	if text == nil {
		return 0, false
	}
	i := 0
	for c := 1; c < col && i < len(text); c++ {
		_, size := utf8.DecodeRune(text[i:])
		i += size
	}
	for i < len(text) && (text[i] == '!' || text[i] == '&') {
		for i < len(text) && text[i] != ' ' && text[i] != '\t' {
			i++
		}
		for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
			i++
		}
	}
	if i >= len(text) || text[i] != '"' {
		return 0, false
	}
	return x.starts[line-1] + i, true
}

// miscountedTabs returns the offsets of the tabs goccy/go-yaml
// miscounts in the double-quoted scalar whose opening quote is at
// src[at]: tabs past the indentation of their line, not escaped, not
// right before the closing quote, with more than blanks after them on
// their line.
func miscountedTabs(src []byte, at int) []int {
	var out []int
	lineStart := false // in the blanks that start a continuation line
	for i := at + 1; i < len(src); i++ {
		switch c := src[i]; {
		case c == '\n':
			lineStart = true
		case c == ' ' && lineStart:
		case c == '\t' && lineStart:
		case c == '\\':
			lineStart = false
			i++ // the escaped character, a line break included
		case c == '"':
			return out
		case c == '\t':
			if i+1 < len(src) && src[i+1] != '"' && strings.TrimLeft(string(restOfLine(src, i+1)), " \t") != "" {
				out = append(out, i)
			}
		default:
			lineStart = false
		}
	}
	return out
}

// restOfLine is src from i to the end of its line.
func restOfLine(src []byte, i int) []byte {
	if j := bytes.IndexByte(src[i:], '\n'); j >= 0 {
		return src[i : i+j]
	}
	return src[i:]
}

func sortedUnique(a []int) []int {
	slices.Sort(a)
	return slices.Compact(a)
}

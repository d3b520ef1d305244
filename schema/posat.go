package schema

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// sourceText is the text a spec was parsed from, its line breaks LFs
// (lfBreaks), shared by its nodes. A position inside a scalar is worked
// out from it only when an error asks for one, so that parsing a valid
// spec pays nothing for it.
type sourceText struct {
	once  sync.Once // indexes lines on the first PosAt
	lines lineIndex
}

func newSourceText(src []byte) *sourceText {
	return &sourceText{lines: lineIndex{src: src}}
}

// PosAt returns the position in the source of the byte at offset off of
// a string's value n.Str, so that an error in an expression inside a
// string points at the expression. It knows every scalar style: plain,
// quoted with escapes and folded lines, literal and folded blocks. It
// returns n.Pos when it cannot tell.
func (n *Node) PosAt(off int) Pos {
	if p, ok := n.posAt(off); ok {
		return p
	}
	return n.Pos
}

func (n *Node) posAt(off int) (Pos, bool) {
	if n.text == nil || off < 0 || off >= len(n.Str) {
		return Pos{}, false
	}
	s := n.text
	s.once.Do(func() { s.lines.count() })
	start, ok := s.offset(n.Pos.Line, n.Pos.Col)
	if !ok {
		return Pos{}, false
	}
	at, ok := scalarOffset(s.lines.src, start, n.Str, off)
	if !ok {
		return Pos{}, false
	}
	return s.pos(n.Pos.File, at), true
}

// offset is the byte offset of a line and column.
func (s *sourceText) offset(line, col int) (int, bool) {
	if line < 1 || line > s.lines.count() || col < 1 {
		return 0, false
	}
	text := s.lines.line(line)
	i := 0
	for c := 1; c < col; c++ {
		if i >= len(text) {
			return 0, false
		}
		_, size := utf8.DecodeRune(text[i:])
		i += size
	}
	return s.lines.starts[line-1] + i, true
}

// pos is the line and column of a byte offset.
func (s *sourceText) pos(file string, at int) Pos {
	text := s.lines.src
	for at > 0 && at < len(text) && !utf8.RuneStart(text[at]) {
		at-- // a byte inside a character is at the character
	}
	line := sort.Search(len(s.lines.starts), func(i int) bool { return s.lines.starts[i] > at })
	col := utf8.RuneCount(text[s.lines.starts[line-1]:at]) + 1
	return Pos{File: file, Line: line, Col: col}
}

// scalarOffset reads the scalar that starts at byte start of text as YAML
// does, and returns where in text the byte at offset off of its value
// comes from. The value read must be val, as the parser read it, up to
// off: if it is not, the scalar is not where it was thought to be, or is
// read differently, and the answer is no.
func scalarOffset(text []byte, start int, val string, off int) (int, bool) {
	// A column can land on the blanks before a value: the positioned
	// parser counts some tabs as nothing.
	start = skipBlanks(text, start)
	if start >= len(text) {
		return 0, false
	}
	switch c := text[start]; c {
	case '|', '>':
		return blockOffset(text, start, val, off)
	case '\'', '"':
		d := decoder{text: text, val: val, off: off}
		d.flow(start+1, c)
		return d.result()
	default:
		d := decoder{text: text, val: val, off: off}
		d.flow(start, 0)
		return d.result()
	}
}

// blockOffset is scalarOffset for a literal (|) or folded (>) block
// scalar.
func blockOffset(text []byte, start int, val string, off int) (int, bool) {
	folded := text[start] == '>'
	indicator, i := 0, start+1
	for ; i < len(text) && i < start+3; i++ {
		if c := text[i]; c >= '1' && c <= '9' && indicator == 0 {
			indicator = int(c - '0')
		} else if c != '-' && c != '+' {
			break
		}
	}
	// The content starts on the line after the header.
	for i < len(text) && lineBreak(text, i) == 0 {
		i++
	}
	if i == len(text) {
		return 0, false
	}
	i += lineBreak(text, i)
	if indicator == 0 {
		d := decoder{text: text, val: val, off: off}
		d.block(i, autoIndent(text, i), folded)
		return d.result()
	}
	// An indentation indicator counts from the indentation of the map or
	// list around the scalar, which lies left of the header: of the
	// indentations that allows, only the right one reads as val does,
	// since each gives the line holding off other leading blanks.
	header := utf8.RuneCount(text[lineStart(text, start):start])
	for parent := 0; parent == 0 || parent < header; parent++ {
		d := decoder{text: text, val: val, off: off}
		d.block(i, parent+indicator, folded)
		if at, ok := d.result(); ok {
			return at, true
		}
	}
	return 0, false
}

// autoIndent is the indentation of a block scalar without an indicator:
// that of its first line with text, or of a longer blank line before it.
func autoIndent(text []byte, i int) int {
	indent := 1
	for i < len(text) {
		spaces := countSpaces(text, i)
		indent = max(indent, spaces)
		n := lineBreak(text, i+spaces)
		if n == 0 {
			break
		}
		i += spaces + n
	}
	return indent
}

// decoder reads a scalar's source, checking what it reads against the
// value the parser read, until it reaches the byte of the value asked
// about.
type decoder struct {
	text []byte
	val  string // the value as the parser read it
	off  int    // the offset in val asked about
	n    int    // how much of val has been read
	at   int    // where in text val[off] comes from, once n > off
	bad  bool   // what was read is not val
}

func (d *decoder) done() bool {
	return d.bad || d.n > d.off
}

func (d *decoder) result() (int, bool) {
	return d.at, !d.bad && d.n > d.off
}

// verbatim reads text[i:j], which the value holds as written.
func (d *decoder) verbatim(i, j int) {
	if d.done() {
		return
	}
	k := min(j-i, d.off+1-d.n)
	if string(d.text[i:i+k]) != d.val[d.n:d.n+k] {
		d.bad = true
		return
	}
	if d.n+k > d.off {
		d.at = i + d.off - d.n
	}
	d.n += k
}

// put reads s, which the value holds for what is written at text[at]: an
// escape, or line breaks folded.
func (d *decoder) put(s string, at int) {
	if d.done() {
		return
	}
	if !strings.HasPrefix(d.val[d.n:], s) {
		d.bad = true
		return
	}
	if d.n+len(s) > d.off {
		d.at = at
	}
	d.n += len(s)
}

// flow reads a plain scalar (quote 0) or the inside of a quoted one from
// i on.
func (d *decoder) flow(i int, quote byte) {
	text := d.text
	for !d.done() {
		if i >= len(text) {
			d.bad = true
			return
		}
		switch c := text[i]; {
		case c == quote && quote == '\'' && i+1 < len(text) && text[i+1] == '\'':
			d.put("'", i)
			i += 2
		case c == quote && quote != 0:
			d.bad = true // the value ends before off
			return
		case c == '\\' && quote == '"':
			i = d.escape(i)
		case c == ' ' || c == '\t':
			j := skipBlanks(text, i)
			if lineBreak(text, j) > 0 {
				i = d.fold(j) // blanks that end a line are not part of the value
			} else {
				d.verbatim(i, j)
				i = j
			}
		case lineBreak(text, i) > 0:
			i = d.fold(i)
		default:
			d.verbatim(i, i+1)
			i++
		}
	}
}

// fold reads the line break at i, the blank lines after it and the
// blanks that start the next line: one break folds into a space, more
// into one newline for each after the first.
func (d *decoder) fold(i int) int {
	n, next := d.countBreaks(i)
	if n == 1 {
		d.put(" ", i)
	} else {
		d.put(strings.Repeat("\n", n-1), i)
	}
	return next
}

// escapes are the double-quoted escapes of one character.
var escapes = map[byte]string{
	'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n", 'v': "\v", 'f': "\f", 'r': "\r",
	'e': "\x1b", ' ': " ", '"': `"`, '/': "/", '\\': `\`, 'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029",
}

// hexDigits is the number of hex digits after \x, \u and \U.
var hexDigits = map[byte]int{'x': 2, 'u': 4, 'U': 8}

// escape reads the escape whose backslash is at i and returns where the
// text goes on.
func (d *decoder) escape(i int) int {
	text := d.text
	if i+1 >= len(text) {
		d.bad = true
		return i + 1
	}
	if b := lineBreak(text, i+1); b > 0 {
		// An escaped line break joins the lines without a space; blank
		// lines after it are newlines.
		n, next := d.countBreaks(skipBlanks(text, i+1+b))
		d.put(strings.Repeat("\n", n), i)
		return next
	}
	c := text[i+1]
	if s, ok := escapes[c]; ok {
		d.put(s, i)
		return i + 2
	}
	width, ok := hexDigits[c]
	if !ok || i+2+width > len(text) {
		d.bad = true
		return i + 2
	}
	r, err := strconv.ParseUint(string(text[i+2:i+2+width]), 16, 32)
	if err != nil {
		d.bad = true
		return i + 2
	}
	d.put(string(rune(r)), i)
	return i + 2 + width
}

// block reads the lines of a literal or folded block scalar from i on,
// indent being the indentation of its content.
func (d *decoder) block(i, indent int, folded bool) {
	text := d.text
	breaks, breakAt := 0, i // the line breaks since the last line with text, and the first of them
	first, prevText := true, false
	for !d.done() {
		spaces := countSpaces(text, i)
		if n := lineBreak(text, i+spaces); i < len(text) && spaces <= indent && (n > 0 || i+spaces == len(text)) {
			if breaks == 0 {
				breakAt = i
			}
			breaks++
			i += spaces + n
			continue
		}
		if i >= len(text) || spaces < indent {
			// The end, or a line indented less, which ends the scalar:
			// what is left of the value are the breaks chomping kept.
			for range breaks {
				d.put("\n", breakAt)
			}
			if !d.done() {
				d.bad = true
			}
			return
		}
		content := i + indent
		// A folded scalar joins lines of text; the breaks around a line
		// that starts with a blank it keeps, as a literal keeps all.
		isText := text[content] != ' ' && text[content] != '\t'
		switch {
		case folded && !first && prevText && isText && breaks == 1:
			d.put(" ", breakAt)
		case folded && !first && prevText && isText:
			d.put(strings.Repeat("\n", breaks-1), breakAt)
		default:
			d.put(strings.Repeat("\n", breaks), breakAt)
		}
		end := content
		for end < len(text) && lineBreak(text, end) == 0 {
			end++
		}
		d.verbatim(content, end)
		first, prevText = false, isText
		breaks, breakAt = 1, end
		i = end + lineBreak(text, end)
	}
}

// lineBreak is the length of the line break at i: 1 for an LF, 0 for
// none. The text was parsed with its line breaks made LFs (lfBreaks).
func lineBreak(text []byte, i int) int {
	if i < len(text) && text[i] == '\n' {
		return 1
	}
	return 0
}

// countBreaks counts the line breaks from i on, with the blanks that
// start each next line, and returns where the text goes on.
func (d *decoder) countBreaks(i int) (n, next int) {
	for {
		b := lineBreak(d.text, i)
		if b == 0 {
			return n, i
		}
		n++
		i = skipBlanks(d.text, i+b)
	}
}

func skipBlanks(text []byte, i int) int {
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	return i
}

func countSpaces(text []byte, i int) int {
	n := 0
	for i+n < len(text) && text[i+n] == ' ' {
		n++
	}
	return n
}

// lineStart is the offset where the line holding offset i starts.
func lineStart(text []byte, i int) int {
	for i > 0 && text[i-1] != '\n' {
		i--
	}
	return i
}

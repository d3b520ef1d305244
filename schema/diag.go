package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bmc-dev/bmc/internal/redact"
)

// Diagnostic is one problem with a spec, at a position, with the field path
// of the offending value (tasks[0].retries).
type Diagnostic struct {
	Pos  Pos    `json:"-"`
	Path string `json:"path,omitempty"`
	Msg  string `json:"message"`
	// Hint is an extra line such as "did you mean params.threads?".
	Hint string `json:"hint,omitempty"`
	// Related points at other places the problem involves, such as the
	// first of two duplicate task ids.
	Related []Pos `json:"-"`
	// Warning marks a hazard rather than an error: the spec is valid.
	Warning bool `json:"-"`
	// from is the check that found the problem, for Sort to report a
	// problem two checks find once.
	from check
	// treeWhole marks a problem of the YAML that left the parsed tree
	// whole (a duplicate key, a second document): the spec is checked on.
	treeWhole bool
}

// Fatal reports whether a parse's diagnostics leave no tree worth
// checking further: any but those that leave it whole.
func (ds Diagnostics) Fatal() bool {
	for _, d := range ds {
		if !d.treeWhole {
			return true
		}
	}
	return false
}

// check is which kind of check a diagnostic comes from.
type check uint8

const (
	// checkOther is the parser, the compiler, or a schema check of a
	// map's fields (missing, unknown, exclusive).
	checkOther check = iota
	// checkKind is the schema finding a value of the wrong kind.
	checkKind
	// checkValue is the schema refusing a value of the right kind.
	checkValue
)

func (d *Diagnostic) Error() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	if d.Warning {
		b.WriteString("warning: ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Diagnostics is every problem found in a spec: they are reported together.
type Diagnostics []*Diagnostic

func (ds Diagnostics) Error() string {
	switch len(ds) {
	case 0:
		return "no errors"
	case 1:
		return ds[0].Error()
	}
	return fmt.Sprintf("%s (and %d more errors)", ds[0].Error(), len(ds)-1)
}

// Err returns ds as an error, or nil when it is empty.
func (ds Diagnostics) Err() error {
	if len(ds) == 0 {
		return nil
	}
	ds.Sort()
	return ds
}

// Sort orders diagnostics by file and position, then message, and drops
// exact duplicates and second reports of one problem (see dropRepeats).
func (ds *Diagnostics) Sort() {
	*ds = dropRepeats(*ds)
	slices.SortStableFunc(*ds, func(a, b *Diagnostic) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col), cmp.Compare(a.Msg, b.Msg))
	})
	*ds = slices.CompactFunc(*ds, func(a, b *Diagnostic) bool {
		return a.Pos == b.Pos && a.Msg == b.Msg && a.Path == b.Path
	})
}

// dropRepeats drops what the schema and the compiler both report about
// one field. Where the schema found a value of the wrong kind, what the
// compiler says about that field follows from it (a param declared as
// "y: 3" has no default, so it is "required") and is dropped. Where the
// schema refused a value the compiler refuses at the same place (a task
// id, an az:// location), the schema's message is dropped: the
// compiler's says more precisely what is wrong.
func dropRepeats(ds Diagnostics) Diagnostics {
	type field struct{ file, path string }
	type place struct {
		pos  Pos
		path string
	}
	if !slices.ContainsFunc(ds, func(d *Diagnostic) bool { return d.from != checkOther }) {
		return ds
	}
	wrongKind, otherAt := map[field]bool{}, map[place]bool{}
	for _, d := range ds {
		switch d.from {
		case checkKind:
			wrongKind[field{d.Pos.File, d.Path}] = true
		case checkOther:
			otherAt[place{d.Pos, d.Path}] = true
		}
	}
	return slices.DeleteFunc(ds, func(d *Diagnostic) bool {
		switch d.from {
		case checkOther:
			// A problem of the YAML itself (a duplicate key, a tag) is no
			// consequence of the kind of the value the schema refused.
			return d.Path != "" && !d.treeWhole && wrongKind[field{d.Pos.File, d.Path}]
		case checkValue:
			return otherAt[place{d.Pos, d.Path}]
		}
		return false
	})
}

// SourceLines is the text of a spec file indexed by line, so that
// formatting all of the file's diagnostics reads it once, however many
// there are. It is not safe for concurrent use.
type SourceLines struct {
	index lineIndex
	// shown is the line last prepared for showing: diagnostics come
	// sorted, and those on one long line (a spec written as JSON on one
	// line) prepare it once.
	shown shownLine
}

// shownLine is a source line as a diagnostic shows it: tabs as spaces,
// secrets redacted.
type shownLine struct {
	n     int    // the line number; 0 for none
	text  string // what is shown
	runes int    // its length in characters
	ascii bool   // characters are bytes
	// redacted is set when redaction changed the line, and columns in
	// it are no longer those of the file.
	redacted bool
	// src is the line as written, for placing a column in a redacted one.
	src string
}

// NewSourceLines returns the lines of src, indexed on first use. Its
// lines end where Parse's do: at a CR LF, a lone CR or an LF.
func NewSourceLines(src []byte) *SourceLines {
	return &SourceLines{index: lineIndex{src: lfBreaks(src)}}
}

// line is line n (1-based) prepared for showing; false if there is no
// such line.
func (l *SourceLines) line(n int) (*shownLine, bool) {
	if l.shown.n == n && n > 0 {
		return &l.shown, true
	}
	b := l.index.line(n)
	if b == nil {
		return nil, false
	}
	src := string(b)
	text := strings.ReplaceAll(src, "\t", " ")
	// A signature written into the spec is not shown either. The whole
	// line is redacted before any of it is cut away, so that a window of
	// it never shows the part of a secret that a cut left unrecognised.
	red := redact.String(text)
	l.shown = shownLine{n: n, text: red, runes: utf8.RuneCountInString(red), redacted: red != text, src: text}
	l.shown.ascii = l.shown.runes == len(red)
	return &l.shown, true
}

// col is the 0-based character in the shown line that the 1-based column
// col of the file names, at most the line's length (a column past the
// end). Where redaction shortened the line before the column, the part
// of the line before it is redacted alone to find where it went.
func (s *shownLine) col(col int) int {
	c := max(col-1, 0)
	if s.redacted {
		c = utf8.RuneCountInString(redact.String(s.src[:byteIndex(s.src, c)]))
	}
	return min(c, s.runes)
}

// slice is the characters from..to (0-based, to excluded) of the line.
func (s *shownLine) slice(from, to int) string {
	if s.ascii {
		return s.text[from:to]
	}
	i := byteIndex(s.text, from)
	return s.text[i : i+byteIndex(s.text[i:], to-from)]
}

// A line longer than shownWidth characters is shown cut to a window of
// that many around the column, with cutMark where it was cut: what is
// printed then grows with the number of errors, not with that times the
// length of the line. shownBefore characters come before the column.
const (
	shownWidth  = 120
	shownBefore = 50
	cutMark     = "..."
)

// Format writes d as a person reads it: file:line:col: path: message, the
// source line, a caret under the column, and any hint or related places.
// Formatting several diagnostics of one file, FormatLines does not read
// the file again for each.
func (d *Diagnostic) Format(src []byte) string {
	return d.FormatLines(NewSourceLines(src))
}

// FormatLines is Format with the file's lines indexed once.
func (d *Diagnostic) FormatLines(lines *SourceLines) string {
	var b strings.Builder
	b.WriteString(d.Error())
	b.WriteByte('\n')
	if line, ok := lines.line(d.Pos.Line); ok && d.Pos.Col > 0 {
		// Columns count characters; so do the window and the caret's pad.
		col := line.col(d.Pos.Col)
		from, to := 0, line.runes
		if line.runes > shownWidth {
			from = max(0, min(col-shownBefore, line.runes-shownWidth))
			to = from + shownWidth
		}
		pad := col - from
		b.WriteString("    ")
		if from > 0 {
			b.WriteString(cutMark)
			pad += len(cutMark)
		}
		b.WriteString(line.slice(from, to))
		if to < line.runes {
			b.WriteString(cutMark)
		}
		b.WriteString("\n    ")
		b.WriteString(strings.Repeat(" ", pad))
		b.WriteString("^\n")
	}
	if d.Hint != "" {
		fmt.Fprintf(&b, "    %s\n", d.Hint)
	}
	for _, r := range d.Related {
		fmt.Fprintf(&b, "    see %s\n", r)
	}
	return b.String()
}

// byteIndex is the byte offset of character n (0-based) of s, or len(s).
func byteIndex(s string, n int) int {
	i := 0
	for at := range s {
		if i == n {
			return at
		}
		i++
	}
	return len(s)
}

// PathString renders a field path: tasks[0].outputs[1].when.
func PathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			if isPlainKey(p) {
				b.WriteString(p)
			} else {
				fmt.Fprintf(&b, "%q", p)
			}
		}
	}
	return b.String()
}

func isPlainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

package schema

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

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
}

func (d *Diagnostic) Error() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
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
// exact duplicates.
func (ds *Diagnostics) Sort() {
	slices.SortStableFunc(*ds, func(a, b *Diagnostic) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col), cmp.Compare(a.Msg, b.Msg))
	})
	*ds = slices.CompactFunc(*ds, func(a, b *Diagnostic) bool {
		return a.Pos == b.Pos && a.Msg == b.Msg && a.Path == b.Path
	})
}

// Format writes d as a person reads it: file:line:col: path: message, the
// source line, a caret under the column, and any hint or related places.
func (d *Diagnostic) Format(src []byte) string {
	var b strings.Builder
	b.WriteString(d.Error())
	b.WriteByte('\n')
	if line, ok := sourceLine(src, d.Pos.Line); ok && d.Pos.Col > 0 {
		line = strings.ReplaceAll(line, "\t", " ")
		// A signature written into the spec is not shown either (the
		// caret may then stand off by the difference in length).
		line = redact.String(line)
		fmt.Fprintf(&b, "    %s\n", line)
		col := min(d.Pos.Col-1, len(line))
		// Columns count runes; the caret line must count them the same way.
		pad := len([]rune(line[:clampByteIndex(line, col)]))
		fmt.Fprintf(&b, "    %s^\n", strings.Repeat(" ", pad))
	}
	if d.Hint != "" {
		fmt.Fprintf(&b, "    %s\n", d.Hint)
	}
	for _, r := range d.Related {
		fmt.Fprintf(&b, "    see %s\n", r)
	}
	return b.String()
}

func clampByteIndex(s string, runes int) int {
	i := 0
	for n := range s {
		if i == runes {
			return n
		}
		i++
	}
	return len(s)
}

func sourceLine(src []byte, n int) (string, bool) {
	if n <= 0 {
		return "", false
	}
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(src, '\n')
		if j < 0 {
			return "", false
		}
		src = src[j+1:]
	}
	if j := bytes.IndexByte(src, '\n'); j >= 0 {
		src = src[:j]
	}
	return strings.TrimRight(string(src), "\r"), true
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

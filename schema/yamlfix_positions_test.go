package schema

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// positions lists every node of a tree as path@line:col=value, keys
// included, in document order.
func positions(n *Node) []string {
	var out []string
	var walk func(n *Node, path string)
	walk = func(n *Node, path string) {
		switch n.Kind {
		case KindMap:
			for i, k := range n.Keys {
				p := strings.TrimPrefix(path+"."+k.Str, ".")
				out = append(out, fmt.Sprintf("%s@%d:%d", p, k.Pos.Line, k.Pos.Col))
				walk(n.Vals[i], p)
			}
		case KindList:
			for i, v := range n.Vals {
				walk(v, fmt.Sprintf("%s[%d]", path, i))
			}
		default:
			out = append(out, fmt.Sprintf("%s@%d:%d=%q", path, n.Pos.Line, n.Pos.Col, n.Str))
		}
	}
	walk(n, "")
	return out
}

// TestYamlfixQuotedTabPositions: a tab inside a double-quoted value does
// not move what follows it. The positioned parser stepped over each
// such tab twice, so that the line break after a closing quote was lost
// and every later position was a line too high (a spec's errors all
// pointing at the line above), or a key lost its first letter.
func TestYamlfixQuotedTabPositions(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{name: "closing quote at column 1", src: "tasks:\n  - id: x\n    run: \"\t\tt\n\"\n  - id: b\n    run: x\n",
			want: []string{"tasks@1:1", "tasks[0].id@2:5", `tasks[0].id@2:9="x"`, "tasks[0].run@3:5", `tasks[0].run@3:10="\t\tt "`,
				"tasks[1].id@5:5", `tasks[1].id@5:9="b"`, "tasks[1].run@6:5", `tasks[1].run@6:10="x"`}},
		{name: "tab inside one line", src: "a: \"x\ty\"\nb: 1\n",
			want: []string{"a@1:1", `a@1:4="x\ty"`, "b@2:1", `b@2:4="1"`}},
		{name: "two tabs and a comment", src: "a: \"x\t\ty\" # c\nbb: 1\n",
			want: []string{"a@1:1", `a@1:4="x\t\ty"`, "bb@2:1", `bb@2:5="1"`}},
		{name: "tabs before the closing quote", src: "a: \"x\t\t\" # c\nb: 1\n",
			want: []string{"a@1:1", `a@1:4="x\t\t"`, "b@2:1", `b@2:4="1"`}},
		{name: "in a flow list", src: "a: [\"x\ty\", z]\nb: 1\n",
			want: []string{"a@1:1", `a[0]@1:5="x\ty"`, `a[1]@1:12="z"`, "b@2:1", `b@2:4="1"`}},
		{name: "several lines", src: "a: \"\tone\n  \ttwo\tthree\"\nb: [c]\n",
			want: []string{"a@1:1", `a@1:4="\tone two\tthree"`, "b@3:1", `b[0]@3:5="c"`}},
		{name: "escaped quote and tab", src: "a: \"\\\"\tq\"\nb: 1\n",
			want: []string{"a@1:1", `a@1:4="\"\tq"`, "b@2:1", `b@2:4="1"`}},
		{name: "with a tag", src: "a: !!str \"x\ty\"\nb: 1\n",
			want: []string{"a@1:1", `a@1:10="x\ty"`, "b@2:1", `b@2:4="1"`}},
		{name: "after tags on the line", src: "a: [!!str 1.0, !!str 1, x]\n",
			want: []string{"a@1:1", `a[0]@1:11="1.0"`, `a[1]@1:22="1"`, `a[2]@1:25="x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, diags := Parse("s.yaml", []byte(tc.src))
			if len(diags) > 0 {
				t.Fatalf("diagnostics: %v", diagLines(diags))
			}
			if diff := cmp.Diff(tc.want, positions(root)); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
			// The tree the positioned parser alone builds is the same.
			root, diags = parsePositioned("s.yaml", []byte(tc.src))
			if len(diags) > 0 {
				t.Fatalf("positioned parser: %v", diagLines(diags))
			}
			if diff := cmp.Diff(tc.want, positions(root)); diff != "" {
				t.Errorf("positioned parser's positions (-want +got):\n%s", diff)
			}
		})
	}
	v, err := ParseValue([]byte("[\"a\tb\", c]"))
	if err != nil || !cmp.Equal(v, []any{"a\tb", "c"}) {
		t.Errorf("ParseValue: %#v, %v", v, err)
	}
}

// TestYamlfixQuotedTabPosAt: an expression inside a double-quoted value
// with tabs is placed where it is written.
func TestYamlfixQuotedTabPosAt(t *testing.T) {
	src := "a: x\nb: \"\t\tone ${{ x }}\n\"\nc: \"\t${{ y }}\"\n"
	root, diags := Parse("s.yaml", []byte(src))
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %v", diagLines(diags))
	}
	for key, want := range map[string]Pos{"b": {File: "s.yaml", Line: 2, Col: 11}, "c": {File: "s.yaml", Line: 4, Col: 6}} {
		n := root.Get(key)
		if got := n.PosAt(strings.Index(n.Str, "${{")); got != want {
			t.Errorf("%s: ${{ at %v, want %v", key, got, want)
		}
	}
}

package schema

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPosAt checks where PosAt places a part of a string's value (by
// default the "${{" of an expression) for each way YAML writes a string.
func TestPosAt(t *testing.T) {
	fast := 0
	for _, tc := range []struct {
		name, src string
		find      string // the part of the value looked for, "${{" if empty
		want      string // line:col
	}{
		{name: "plain", src: "v: echo ${{ x }}\n", want: "1:9"},
		{name: "plain at start", src: "v: ${{ x }}\n", want: "1:4"},
		{name: "plain multi-byte", src: "v: héllo ${{ x }}\n", want: "1:10"},
		{name: "plain later line", src: "v: echo\n  more ${{ x }}\n", want: "2:8"},
		{name: "plain first of two lines", src: "v: a ${{ x }}\n  b\n", want: "1:6"},
		{name: "plain blank line", src: "v: a\n\n  b ${{ x }}\n", want: "3:5"},
		{name: "plain blanks ending the first line", src: "v: a   \n  b ${{ x }}\n", want: "2:5"},
		{name: "plain in a list", src: "v:\n  - a\n    b ${{ x }}\n", want: "3:7"},
		{name: "single-quoted", src: "v: 'a ${{ x }}'\n", want: "1:7"},
		{name: "single-quoted escaped quotes", src: "v: 'it''s ''${{ x }}'''\n", want: "1:13"},
		{name: "single-quoted escaped quote itself", src: "v: 'it''s ${{ x }}'\n", find: "'", want: "1:7"},
		{name: "single-quoted folded", src: "v: 'a''\n\n  b ${{ x }}'\n", want: "3:5"},
		{name: "single-quoted tab", src: "v: 'a\tb ${{ x }}'\n", want: "1:9"},
		{name: "double-quoted", src: "v: \"héllo ${{ x }}\"\n", want: "1:11"},
		{name: "double-quoted tab escape", src: `v: "echo \t ${{ x }}"` + "\n", want: "1:13"},
		{name: "double-quoted the escape itself", src: `v: "echo \t ${{ x }}"` + "\n", find: "\t", want: "1:10"},
		{name: "double-quoted newline escape", src: `v: "l1\nl2 ${{ x }}"` + "\n", want: "1:12"},
		{name: "double-quoted quote and backslash", src: `v: "say \"hi\" \\ ${{ x }}"` + "\n", want: "1:19"},
		{name: "double-quoted hex escapes", src: `v: "\x41\xe9\u00e9\U0001F600 ${{ x }}"` + "\n", want: "1:30"},
		{name: "double-quoted slash", src: `v: "a\/b ${{ x }}"` + "\n", want: "1:10"},
		{name: "double-quoted multi-byte and escape", src: `v: "ü\tö ${{ x }}"` + "\n", want: "1:10"},
		{name: "double-quoted escaped line break", src: "v: \"a \\\n  b ${{ x }}\"\n", want: "2:5"},
		{name: "double-quoted folded", src: "v: \"a\n  b\n\n  c ${{ x }}\"\n", want: "4:5"},
		{name: "double-quoted starting a line", src: "v:\n  \"q ${{ x }}\"\n", want: "2:6"},
		{name: "double-quoted in flow", src: "v: [a, \"b ${{ x }}\"]\n", want: "1:11"},
		{name: "double-quoted over lines in flow", src: "v: [a, \"b\n   c ${{ x }}\"]\n", want: "2:6"},
		{name: "double-quoted anchored", src: "a: &x \"q ${{ y }}\"\nb: *x\n", want: "1:10"},
		{name: "double-quoted tagged", src: "v: !!str \"x ${{ y }}\"\n", want: "1:13"},
		{name: "double-quoted after a tab", src: "v:\t\"x ${{ y }}\"\n", want: "1:7"},
		{name: "literal", src: "v: |\n  set -x\n  echo start\n  aligner --threads ${{ params.thread }}\n", want: "4:21"},
		{name: "literal without a last break", src: "v: |\n  a\n  b ${{ x }}", want: "3:5"},
		{name: "literal its last break", src: "v: |\n  a ${{ x }}\nw: 1\n", find: "\n", want: "2:13"},
		{name: "literal first line", src: "v: |\n  ${{ x }}\n  b\n", want: "2:3"},
		{name: "literal strip", src: "v: |-\n  a\n  b ${{ x }}\n", want: "3:5"},
		{name: "literal keep", src: "v: |+\n  a\n\n  b ${{ x }}\n\n", want: "4:5"},
		{name: "literal leading blank lines", src: "v: |\n\n\n  a ${{ x }}\n", want: "4:5"},
		{name: "literal header comment", src: "v: | # note\n  a ${{ x }}\n", want: "2:5"},
		{name: "literal more indented line", src: "v: |\n  a\n    b ${{ x }}\n", want: "3:7"},
		{name: "literal tab", src: "v: |\n  a\tb ${{ x }}\n", want: "2:7"},
		{name: "literal multi-byte", src: "v: |\n  ü\n  é ${{ x }}\n", want: "3:5"},
		{name: "literal indentation indicator", src: "v: |2\n    indented ${{ x }}\n", want: "2:14"},
		{name: "literal indicator and chomping", src: "v: |-2\n   a\n  ${{ x }}\n", want: "3:3"},
		{name: "literal indicator nested", src: "tasks:\n  - id: a\n    run: |2\n        deep\n      ${{ x }}\n", want: "5:7"},
		{name: "literal indicator in a list", src: "v:\n  - >2\n     x ${{ y }}\n", want: "3:8"},
		{name: "folded", src: "v: >\n  folded\n  text ${{ x }}\n", want: "3:8"},
		{name: "folded first line", src: "v: >\n  ${{ x }}\n  text\n", want: "2:3"},
		{name: "folded paragraphs", src: "v: >-\n  a\n\n  b\n    c\n  d ${{ x }}\n", want: "6:5"},
		{name: "folded keep", src: "v: >+\n  a\n  b ${{ x }}\n\n", want: "3:5"},
		{name: "folded indicator", src: "v: >1\n  a\n b ${{ x }}\n", want: "3:4"},
		{name: "crlf plain", src: "v: a\r\n  b ${{ x }}\r\n", want: "2:5"},
		{name: "crlf double-quoted", src: "v: \"a\r\n\r\n  b ${{ x }}\"\r\n", want: "3:5"},
		{name: "crlf escaped line break", src: "v: \"a\\\r\n  b ${{ x }}\"\r\n", want: "2:5"},
		{name: "crlf literal", src: "v: |\r\n  a\r\n  é ${{ x }}\r\n", want: "3:5"},
		{name: "crlf folded", src: "v: >\r\n  a\r\n\r\n  b ${{ x }}\r\n", want: "4:5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			find := tc.find
			if find == "" {
				find = "${{"
			}
			src := []byte(tc.src)
			slow, diags := parsePositioned("spec.yaml", src)
			if len(diags) > 0 {
				t.Fatal(diags)
			}
			trees := map[string]*Node{"positioned": slow}
			if root, ok := parseFast("spec.yaml", src); ok {
				trees["fast"] = root
				fast++
			}
			for parser, root := range trees {
				n := stringWith(root, find)
				if n == nil {
					t.Fatalf("%s: no string holds %q", parser, find)
				}
				p, ok := n.posAt(strings.Index(n.Str, find))
				if !ok {
					t.Fatalf("%s: no position for %q in %q", parser, find, n.Str)
				}
				if got := fmt.Sprintf("%d:%d", p.Line, p.Col); got != tc.want || p.File != "spec.yaml" {
					t.Errorf("%s: %q of %q at %s:%s, want %s", parser, find, n.Str, p.File, got, tc.want)
				}
			}
		})
	}
	if fast < 20 {
		t.Errorf("the fast parser took only %d of the cases", fast)
	}
}

// stringWith returns the first string in the tree whose value holds s.
func stringWith(n *Node, s string) *Node {
	if n.Kind == KindString && strings.Contains(n.Str, s) {
		return n
	}
	for _, c := range n.Vals {
		if found := stringWith(c, s); found != nil {
			return found
		}
	}
	return nil
}

func TestPosAtUnknown(t *testing.T) {
	root, diags := parsePositioned("spec.yaml", []byte("v: abc\nn: 12\n"))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	v, n := root.Get("v"), root.Get("n")
	for _, tc := range []struct {
		node *Node
		off  int
	}{{v, -1}, {v, 3}, {n, 0}} {
		if got := tc.node.PosAt(tc.off); got != tc.node.Pos {
			t.Errorf("PosAt(%d) of %q = %v, want the node's own %v", tc.off, tc.node.Str, got, tc.node.Pos)
		}
	}
	// A value the source does not hold: the position is not known.
	moved := *v
	moved.Str = "abd"
	if got := moved.PosAt(2); got != v.Pos {
		t.Errorf("PosAt of a value the source does not hold = %v, want %v", got, v.Pos)
	}
}

// TestPosAtCorpus checks every expression in every spec the project has:
// PosAt must find it, at its "${{".
func TestPosAtCorpus(t *testing.T) {
	found := 0
	for name, src := range corpus(t) {
		root, diags := parsePositioned(name, src)
		if root == nil || len(diags) > 0 {
			continue
		}
		walkStrings(root, func(n *Node) {
			for off := 0; ; off++ {
				i := strings.Index(n.Str[off:], "${{")
				if i < 0 {
					return
				}
				off += i
				p, ok := n.posAt(off)
				if !ok {
					t.Errorf("%s: no position for byte %d of %q (at %v)", name, off, n.Str, n.Pos)
					return
				}
				if at, _ := n.text.offset(p.Line, p.Col); !strings.HasPrefix(string(src[at:]), "${{") {
					t.Errorf("%s: byte %d of %q placed at %v, which holds %.10q", name, off, n.Str, p, src[at:])
				}
				found++
			}
		})
	}
	if found < 50 {
		t.Errorf("only %d expressions in the corpus", found)
	}
}

func walkStrings(n *Node, fn func(*Node)) {
	if n.Kind == KindString {
		fn(n)
	}
	for i := range n.Keys {
		walkStrings(n.Keys[i], fn)
	}
	for _, v := range n.Vals {
		walkStrings(v, fn)
	}
}

// checkPosAt fails when PosAt places a byte of a string somewhere that
// cannot have given it: each byte comes from the same character, or an
// escape, or, for a blank or a newline, from folded blanks and breaks;
// and bytes come in the order of the source.
func checkPosAt(t *testing.T, src []byte) {
	root, diags := parsePositioned("spec.yaml", src)
	if root == nil || len(diags) > 0 {
		return
	}
	walkStrings(root, func(n *Node) {
		last, lastPos := 0, n.Pos
		for off := range len(n.Str) {
			if !utf8.RuneStart(n.Str[off]) {
				continue
			}
			p, ok := n.posAt(off)
			if !ok {
				return
			}
			at, ok := n.text.offset(p.Line, p.Col)
			if !ok || at < last {
				t.Fatalf("byte %d of %q placed at %v, before the byte ahead of it at %v\nsource:\n%s", off, n.Str, p, lastPos, src)
			}
			last, lastPos = at, p
			// Positions are in the text as parsed, its line breaks LFs.
			text := n.text.lines.src
			c := byte('\n') // the end of a last line that has no break
			if at < len(text) {
				c = text[at]
			}
			switch {
			case c == n.Str[off], c == '\\':
			case strings.IndexByte(" \n", n.Str[off]) >= 0 && strings.IndexByte(" \t\r\n", c) >= 0:
			default:
				t.Fatalf("byte %d (%q) of %q placed at %v, which holds %q\nsource:\n%s", off, n.Str[off], n.Str, p, c, src)
			}
		}
	})
}

func TestPosAtReadsAsTheParser(t *testing.T) {
	for _, src := range corpus(t) {
		checkPosAt(t, src)
	}
}

func FuzzPosAt(f *testing.F) {
	for _, src := range corpus(f) {
		f.Add(src)
	}
	f.Add([]byte("v: \"a\\tb\\\n  c\\x41 ${{ x }}\"\nw: 'a''\n\n  b'\nx: |2-\n   a\n  b\ny: >\n  a\n\n  b\n   c\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		checkPosAt(t, src)
	})
}

// BenchmarkParse parses a large valid spec: nothing PosAt needs may slow
// that down.
func BenchmarkParse(b *testing.B) {
	var spec strings.Builder
	spec.WriteString("apiVersion: bmc/v1\nkind: Workload\nname: big\ntasks:\n")
	for i := range 2000 {
		fmt.Fprintf(&spec, "  - id: task-%d\n    run: |\n      echo %d > out.txt\n      gzip out.txt\n    env: {N: \"%d\", M: 'x'}\n    outputs:\n      - {path: out.txt.gz, to: \"az://out/${{ run.id }}/%d.gz\"}\n", i, i, i, i)
	}
	for _, bc := range []struct {
		name string
		src  []byte
	}{
		{"fast", []byte(spec.String())},
		// A folded scalar sends the spec to the positioned parser.
		{"positioned", []byte(strings.Replace(spec.String(), "name: big\n", "name: big\ndescription: >\n  folded\n", 1))},
	} {
		src := bc.src
		b.Run(bc.name, func(b *testing.B) {
			if _, ok := parseFast("bench.yaml", src); ok != (bc.name == "fast") {
				b.Fatalf("the fast parser took it: %v", ok)
			}
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, diags := Parse("bench.yaml", src); len(diags) > 0 {
					b.Fatal(diags)
				}
			}
		})
	}
}

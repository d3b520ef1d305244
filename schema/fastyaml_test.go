package schema

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpus is every spec the project has: the examples, the specs of the
// compiler's golden and invalid-spec tests, and its fuzz corpus.
func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	add := func(pattern string, extract func([]byte) []byte) {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = extract(b)
		}
	}
	same := func(b []byte) []byte { return b }
	txtar := func(b []byte) []byte {
		_, spec, _ := strings.Cut(string(b), "-- spec.yaml --\n")
		spec, _, _ = strings.Cut(spec, "\n-- ")
		return []byte(spec)
	}
	fuzz := func(b []byte) []byte {
		// go test fuzz v1 \n []byte("...")
		_, lit, _ := strings.Cut(string(b), "\n")
		lit = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(lit), "[]byte("), ")")
		var s string
		if _, err := fmt.Sscanf(lit, "%q", &s); err != nil {
			return nil
		}
		return []byte(s)
	}
	add("../examples/*.yaml", same)
	add("../compiler/testdata/invalid/*.txtar", txtar)
	add("../compiler/testdata/golden/*.txtar", txtar)
	add("../compiler/testdata/fuzz/FuzzCompile/*", fuzz)
	if len(out) < 40 {
		t.Fatalf("only %d specs found", len(out))
	}
	return out
}

// sameTree describes the first difference between two node trees.
func sameTree(a, b *Node, path string) string {
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil || b == nil:
		return fmt.Sprintf("%s: %v vs %v", path, a, b)
	}
	floatsEqual := a.Float == b.Float || math.IsNaN(a.Float) && math.IsNaN(b.Float)
	if a.Kind != b.Kind || a.Pos != b.Pos || a.Str != b.Str || a.Int != b.Int || !floatsEqual || a.Bool != b.Bool || a.tooBig != b.tooBig || (a.text == nil) != (b.text == nil) {
		return fmt.Sprintf("%s: %+v vs %+v", path, *a, *b)
	}
	for off := range len(a.Str) {
		if pa, pb := a.PosAt(off), b.PosAt(off); pa != pb {
			return fmt.Sprintf("%s: byte %d of %q at %v vs %v", path, off, a.Str, pa, pb)
		}
	}
	if len(a.Keys) != len(b.Keys) || len(a.Vals) != len(b.Vals) {
		return fmt.Sprintf("%s: %d/%d keys/values vs %d/%d", path, len(a.Keys), len(a.Vals), len(b.Keys), len(b.Vals))
	}
	for i := range a.Keys {
		if d := sameTree(a.Keys[i], b.Keys[i], fmt.Sprintf("%s.key[%d]", path, i)); d != "" {
			return d
		}
	}
	for i := range a.Vals {
		if d := sameTree(a.Vals[i], b.Vals[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
			return d
		}
	}
	return ""
}

// checkSameParse fails when the fast parser reads src differently from
// the positioned one. Documents it declines are not its business, nor
// are those that break a rule of YAML the positioned parser enforces and
// yaml/v3 does not (a comment glued to a block scalar's header): those it
// reads as yaml/v3 does, the reading most YAML tools share.
func checkSameParse(t *testing.T, src []byte) bool {
	t.Helper()
	fast, ok := parseFast("spec.yaml", src)
	if !ok {
		return false
	}
	slow, sdiags := parsePositioned("spec.yaml", src)
	if len(sdiags) == 1 && strings.HasPrefix(sdiags[0].Msg, "YAML syntax: ") {
		return true
	}
	if len(sdiags) > 0 {
		t.Fatalf("the positioned parser reports %v; the fast one took the document\nsource:\n%s", sdiags, src)
	}
	if d := sameTree(fast, slow, "$"); d != "" {
		t.Fatalf("trees differ at %s\nsource:\n%s", d, src)
	}
	return true
}

func TestFastParseMatchesPositioned(t *testing.T) {
	fast := 0
	for name, src := range corpus(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			if checkSameParse(t, src) {
				fast++
			} else if strings.HasPrefix(name, "../examples/") {
				t.Errorf("the fast parser declined the example %s", name)
			}
		})
	}
	if fast < 10 {
		t.Errorf("the fast parser took only %d of the corpus", fast)
	}
	// Constructs the corpus may lack, each read the same way by both.
	for _, src := range []string{
		"a: 1\nb: -0x1F\nc: 0o17\nd: 1_000\ne: 1.5e3\nf: .inf\ng: -.Inf\nh: .nan\ni: ~\nj: null\nk: True\nl: FALSE\nm:\nn: ''\n",
		"s: 'it''s'\nt: \"tab\\there\"\nu: plain text\nv: \"héllo ${{ x }}\"\nw: 'é ${{ y }}'\n",
		"l: |\n  line 1\n  line 2\nf: >\n  folded\n  text\nm: plain\n  continued\n",
		"x: &a {k: v, n: [1, 2]}\ny: *a\nz: [*a, {q: 1}]\n",
		"- a\n- [b, c]\n- {d: e}\n-\n  - f\n",
		"k: 017\nj: 09\nh: 0b101\nq: +12\nr: 12:30\n",
		"\"quoted key\": 1\n'single': 2\n? complex\n: 3\n",
		"z: {k: a:b}\n",
		"a: >-\n  folded\n\n  with a blank line\nb: |+\n  kept\n\nc: 1\n",
		"a: 99999999999999999999\nb: -9223372036854775809\nc: 0x1FFFFFFFFFFFFFFFF\nd: 18446744073709551615\ne: '99999999999999999999'\nf: 9223372036854775807\n",
	} {
		checkSameParse(t, []byte(src))
	}
	// Specs as people write them take the fast path.
	for _, src := range []string{
		"y: {k: az://a/b, j: x}\n",
		"---\n# a comment\napiVersion: bmc/v1 # trailing comment\nkind: Workload\nname: x\ntasks:\n  - id: a # the first\n    run: |\n      echo \"ünïcode ${{ run.id }}\"\n      exit 0\n    env: {GREETING: \"héllo ${{ matrix.k }}\", K: 'x'}\n",
		"tasks:\n  - id: é-${{ matrix.k }}\n    command: [\"echo\", 'ça va', \"${{ x }}\"]\n    outputs:\n      - path: out/**/*.txt\n        to: az://c/${{ run.id }}/\n",
	} {
		if !checkSameParse(t, []byte(src)) {
			t.Errorf("the fast parser declined:\n%s", src)
		}
	}
}

func FuzzFastParse(f *testing.F) {
	for _, src := range corpus(f) {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		checkSameParse(t, src)
	})
}

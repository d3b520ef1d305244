package schema

import (
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseErrors checks where Parse places syntax and document errors,
// and what they say: one line per diagnostic, line:col: message, then its
// hint and related places.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{name: "second document", src: "a: 1\n---\nb: 2\nc: 3\n",
			want: []string{"2:1: a spec file holds one document; found another here"}},
		{name: "second document after ...", src: "a: 1\n...\n  b: 2\n",
			want: []string{"3:1: a spec file holds one document; found another here"}},
		{name: "second document a list", src: "a: 1\n---\n- b\n",
			want: []string{"2:1: a spec file holds one document; found another here"}},
		{name: "key indented past the one above", src: "tasks:\n  - id: x\n     run: echo\n",
			want: []string{"3:6: YAML syntax: mapping value is not allowed in this context",
				"hint: this line is indented more than the key above it, so it reads as more of that key's value"}},
		{name: "key indented past a value of several lines", src: "a: x\n  y\n   z: 1\n",
			want: []string{"3:4: YAML syntax: mapping value is not allowed in this context",
				"hint: this line is indented more than the key above it, so it reads as more of that key's value"}},
		{name: "key indented past a list item", src: "- x\n  y: 1\n",
			want: []string{"2:3: YAML syntax: unexpected key name",
				"hint: this line is indented more than the - above it, so it reads as more of that list item"}},
		{name: "tab indentation", src: "a:\n\tb: 1\n",
			want: []string{"2:1: YAML syntax: tabs are not allowed for indentation in YAML; use spaces"}},
		{name: "duplicate keys, each reported", src: "a: 1\nb: {c: 1, c: 2}\na: 3\n",
			want: []string{"2:11: b.c: duplicate key \"c\" (first at 2:5)", "see s.yaml:2:5",
				"3:1: a: duplicate key \"a\" (first at 1:1)", "see s.yaml:1:1"}},
		{name: "duplicate key quoted", src: "a: 1\n'a': 2\n",
			want: []string{"2:1: a: duplicate key \"a\" (first at 1:1)", "see s.yaml:1:1"}},
		{name: "duplicate key in an anchored map, reported once", src: "x: &m {k: 1, k: 2}\ny: *m\nz: [*m, *m]\n",
			want: []string{"1:14: x.k: duplicate key \"k\" (first at 1:8)", "see s.yaml:1:8"}},
		{name: "duplicate merge key", src: "x: &m {k: 1}\ny:\n  <<: *m\n  <<: *m\n",
			want: []string{"4:3: y.\"<<\": duplicate key \"<<\" (first at 3:3)", "see s.yaml:3:3"}},
		// Positions of other syntax errors are the parser's.
		{name: "mapping value on one line", src: "a: b: c\n",
			want: []string{"1:4: YAML syntax: mapping value is not allowed in this context"}},
		{name: "unclosed flow map", src: "a: {b: 1\n",
			want: []string{"1:4: YAML syntax: could not find flow mapping end token '}'"}},
		{name: "unterminated quote", src: "k: \"unterminated\n",
			want: []string{"1:4: YAML syntax: could not find end character of double-quoted text"}},
		{name: "map after a list", src: "- a\nb: 1\n",
			want: []string{"2:1: YAML syntax: value is not allowed in this context"}},
		{name: "key after a quoted value", src: "a: \"x\"\n  b: 1\n",
			want: []string{"2:3: YAML syntax: value is not allowed in this context. map key-value is pre-defined"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("s.yaml", []byte(tc.src))
			var got []string
			for _, d := range diags {
				got = append(got, strings.TrimPrefix(d.Error(), "s.yaml:"))
				if d.Hint != "" {
					got = append(got, "hint: "+d.Hint)
				}
				for _, r := range d.Related {
					got = append(got, "see "+r.String())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\nsource:\n%s", diff, tc.src)
			}
		})
	}
}

// TestParseValue reads values as a spec's are read: integers beyond 64
// bits come back as *big.Int, for the compiler to refuse with the place
// they are used, instead of as strings.
func TestParseValue(t *testing.T) {
	bigInt := func(s string) *big.Int {
		v, _ := new(big.Int).SetString(s, 0)
		return v
	}
	for _, tc := range []struct {
		src  string
		want any
	}{
		{"8", int64(8)},
		{"1.5", json.Number("1.5")},
		{"1.50", json.Number("1.50")},
		{"[0.000001, -2.5e-3]", []any{json.Number("0.000001"), json.Number("-2.5e-3")}},
		{".5", 0.5},   // not a JSON number: no text is kept
		{"+1.5", 1.5}, // nor this
		{"text", "text"},
		{"true", true},
		{"[a, 2]", []any{"a", int64(2)}},
		{"{k: [1]}", map[string]any{"k": []any{int64(1)}}},
		{"9223372036854775807", int64(math.MaxInt64)},
		{"-9223372036854775808", int64(math.MinInt64)},
		{"99999999999999999999", bigInt("99999999999999999999")},
		{"-9223372036854775809", bigInt("-9223372036854775809")},
		{"18446744073709551615", bigInt("18446744073709551615")},
		{"[1, 0x1FFFFFFFFFFFFFFFF]", []any{int64(1), bigInt("0x1FFFFFFFFFFFFFFFF")}},
		{`"99999999999999999999"`, "99999999999999999999"},
		{".inf", math.Inf(1)},
		{"null", nil},
	} {
		t.Run(tc.src, func(t *testing.T) {
			got, err := ParseValue([]byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ParseValue([]byte("[a")); err == nil {
		t.Error("no error for [a")
	}
}

// TestValidateNumbers: the numbers a program cannot hold are reported
// with their field path wherever they are, a repeated alias once.
func TestValidateNumbers(t *testing.T) {
	src := "apiVersion: bmc/v1\nkind: Workload\nname: t\nparams:\n  a: {default: &n 18446744073709551615}\n  b: {default: *n}\n  c: {default: {x: [.NaN]}}\ntasks:\n  - {id: a, run: echo, env: {X: 99999999999999999999}}\n"
	root, diags := Parse("s.yaml", []byte(src))
	if len(diags) > 0 {
		t.Fatalf("parse: %v", diags)
	}
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range s.Validate(root) {
		got = append(got, d.Error())
	}
	const bits = "whole numbers must fit in 64 bits (-9223372036854775808 to 9223372036854775807)"
	want := []string{
		"s.yaml:5:19: params.a.default: integer 18446744073709551615 is out of range: " + bits,
		"s.yaml:7:21: params.c.default.x[0]: invalid number .NaN: numbers must be finite (not .inf or .nan)",
		"s.yaml:9:33: tasks[0].env.X: integer 99999999999999999999 is out of range: " + bits,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

package schema

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// diagLines renders diagnostics one a line, line:col: message, with
// their hints and related places after each, as the tests compare them.
func diagLines(ds Diagnostics) []string {
	ds.Sort()
	var out []string
	for _, d := range ds {
		s := d.Error()
		s = strings.TrimPrefix(s, d.Pos.File+":")
		out = append(out, s)
		if d.Hint != "" {
			out = append(out, "hint: "+d.Hint)
		}
		for _, r := range d.Related {
			out = append(out, "see "+r.String())
		}
	}
	return out
}

// TestYamlfixTagValues: the YAML core tags give their values the type
// the tag names, as YAML defines them, whichever parser reads the spec.
func TestYamlfixTagValues(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want map[string]any
	}{
		{"a: !!str 0755\n", map[string]any{"a": "0755"}},
		{"a: !!str 3\nb: !!str 2.10\nc: !!str true\nd: !!str ~\ne: !!str 0x1F\n",
			map[string]any{"a": "3", "b": "2.10", "c": "true", "d": "~", "e": "0x1F"}},
		{"a: !!str \"x\\ty\"\nb: !!str 'it''s'\n", map[string]any{"a": "x\ty", "b": "it's"}},
		{"a: !!str |\n  line\nb: 1\n", map[string]any{"a": "line\n", "b": int64(1)}},
		{"a: !!int \"2\"\nb: !!int 0x1F\nc: !!int '-7'\nd: !!int 0755\n",
			map[string]any{"a": int64(2), "b": int64(31), "c": int64(-7), "d": int64(493)}},
		{"a: !!float 1\nb: !!float \"2.50\"\n", map[string]any{"a": json.Number("1"), "b": json.Number("2.50")}},
		{"a: !!bool \"true\"\nb: !!bool FALSE\n", map[string]any{"a": true, "b": false}},
		{"a: !!null ~\nb: !!null\n", map[string]any{"a": nil, "b": nil}},
		{"a: !!map {b: 1}\nc: !!seq [d]\n", map[string]any{"a": map[string]any{"b": int64(1)}, "c": []any{"d"}}},
		{"a: ! 12\n", map[string]any{"a": "12"}},
		{"!!str 1: a\n", map[string]any{"1": "a"}},
		{"a: {x: !!str , y: 1}\n", map[string]any{"a": map[string]any{"x": "", "y": int64(1)}}},
		{"a: [!!str 1.0, !!str 1]\n", map[string]any{"a": []any{"1.0", "1"}}},
		{"a: !<tag:yaml.org,2002:str> 10\n", map[string]any{"a": "10"}},
		// An anchor names the tagged value, before or after the tag.
		{"a: &x !!str 3\nb: *x\nc: !!str &y 4\nd: *y\n", map[string]any{"a": "3", "b": "3", "c": "4", "d": "4"}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			root, diags := Parse("s.yaml", []byte(tc.src))
			if len(diags) > 0 {
				t.Fatalf("diagnostics: %v", diagLines(diags))
			}
			if diff := cmp.Diff(tc.want, root.Value()); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
			v, err := ParseValue([]byte(tc.src))
			if err != nil {
				t.Fatalf("ParseValue: %v", err)
			}
			if diff := cmp.Diff(tc.want, v); diff != "" {
				t.Errorf("ParseValue (-want +got):\n%s", diff)
			}
		})
	}
}

// TestYamlfixTagErrors: a tag bmc does not read, or a value that is not
// of its tag's type, is an error at the tag or the value, with the rest
// of the document still read.
func TestYamlfixTagErrors(t *testing.T) {
	const core = "a spec may use only the YAML core tags !!str, !!int, !!float, !!bool, !!null, !!map and !!seq"
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{"a: !!int abc\n", []string{`1:10: a: invalid !!int value "abc": expected an integer such as 42, -7 or 0x1F`}},
		{"a: !!int 1.5\n", []string{`1:10: a: invalid !!int value "1.5": expected an integer such as 42, -7 or 0x1F`}},
		{"a: !!float abc\n", []string{`1:12: a: invalid !!float value "abc": expected a number such as 1.5, -2 or 1e3`}},
		{"a: !!bool yes\n", []string{`1:11: a: invalid !!bool value "yes": expected true or false`}},
		{"a: !!null x\n", []string{`1:11: a: invalid !!null value "x": expected null, ~ or nothing`}},
		{"a: !!binary aGVsbG8=\n", []string{"1:4: a: unsupported YAML tag !!binary: " + core}},
		{"a: !!timestamp 2001-12-14\n", []string{"1:4: a: unsupported YAML tag !!timestamp: " + core}},
		{"a: !custom a\nb: !!set {c}\n", []string{"1:4: a: unsupported YAML tag !custom: " + core, "2:4: b: unsupported YAML tag !!set: " + core}},
		{"a: !!map [b]\n", []string{"1:10: YAML syntax: could not find map",
			"hint: the !!map tag does not fit the value after it: !!map tags a map, !!seq a list, the other core tags a single value"}},
		// Every error of the document comes back, the duplicate key too.
		{"a: !!int x\nb: !!int y\nb: 1\n", []string{
			`1:10: a: invalid !!int value "x": expected an integer such as 42, -7 or 0x1F`,
			`2:10: b: invalid !!int value "y": expected an integer such as 42, -7 or 0x1F`,
			`3:1: b: duplicate key "b" (first at 2:1)`, "see s.yaml:2:1"}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, diags := Parse("s.yaml", []byte(tc.src))
			if diff := cmp.Diff(tc.want, diagLines(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ParseValue([]byte("!!binary aGVsbG8=")); err == nil || !strings.Contains(err.Error(), "unsupported YAML tag !!binary") {
		t.Errorf("ParseValue of a !!binary value: %v", err)
	}
}

// TestYamlfixTagsValidate: a tagged value is checked as the type its tag
// gives it, and a value found at fault for its tag is not reported again.
func TestYamlfixTagsValidate(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	head := "apiVersion: bmc/v1\nkind: Workload\nname: x\n"
	for _, tc := range []struct {
		body string
		want []string
	}{
		{"labels: {num: !!str 3}\npackages:\n  - {name: p, version: !!str 2.10}\ntasks:\n  - {id: a, run: echo, slots: !!int \"2\"}\n", nil},
		{"tasks:\n  - id: a\n    run: echo\n    retries: !!str 3\n", []string{
			`7:20: tasks[0].retries: expected int, got string "3"`, "hint: the !!str tag makes it a string"}},
		{"tasks:\n  - id: a\n    run: echo\n    retries: !!int x\n", []string{
			`7:20: tasks[0].retries: invalid !!int value "x": expected an integer such as 42, -7 or 0x1F`}},
		{"tasks:\n  - id: !custom a\n    run: echo\n", []string{"5:9: tasks[0].id: unsupported YAML tag !custom: a spec may use only the YAML core tags !!str, !!int, !!float, !!bool, !!null, !!map and !!seq"}},
	} {
		t.Run(tc.body, func(t *testing.T) {
			root, diags := Parse("s.yaml", []byte(head+tc.body))
			if diags.Fatal() {
				t.Fatalf("parse: %v", diagLines(diags))
			}
			diags = append(diags, s.Validate(root)...)
			if diff := cmp.Diff(tc.want, diagLines(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

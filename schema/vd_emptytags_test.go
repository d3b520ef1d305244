package schema

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVdEmptyTaggedValues reads core tags with nothing after them as
// YAML does: !!str alone is the empty string, !!null alone null, ! alone
// the empty string; in a flow map or list before its closing bracket,
// and in block form before the next key or item, where the parser
// refuses them. An empty !!int, !!float or !!bool is an error at the
// tag, with the field's path, saying the tag needs a value.
func TestVdEmptyTaggedValues(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      any      // the value of the document, when it has no errors
		errs      []string // otherwise
	}{{
		name: "!!str in a flow map",
		src:  "p: {default: !!str }\n",
		want: map[string]any{"p": map[string]any{"default": ""}},
	}, {
		name: "!!str in a flow map, before another key",
		src:  "p: {default: !!str , d: x}\n",
		want: map[string]any{"p": map[string]any{"default": "", "d": "x"}},
	}, {
		name: "!!null in a flow map",
		src:  "p: {default: !!null }\n",
		want: map[string]any{"p": map[string]any{"default": nil}},
	}, {
		name: "! in a flow map",
		src:  "p: {default: ! }\n",
		want: map[string]any{"p": map[string]any{"default": ""}},
	}, {
		name: "verbatim str in block form",
		src:  "p:\n  default: !<tag:yaml.org,2002:str>\nq: 1\n",
		want: map[string]any{"p": map[string]any{"default": ""}, "q": int64(1)},
	}, {
		name: "flow map closed on the next line",
		src:  "p: {default: !!str\n  }\nq: 1\n",
		want: map[string]any{"p": map[string]any{"default": ""}, "q": int64(1)},
	}, {
		name: "flow list, first and last",
		src:  "a: [!!str , x]\nb: [x, !!str ]\n",
		want: map[string]any{"a": []any{"", "x"}, "b": []any{"x", ""}},
	}, {
		name: "block map, before the next key",
		src:  "a:\n  default: !!str\n  d: x\nb: !!str\nc: !!null\nd: 1\n",
		want: map[string]any{"a": map[string]any{"default": "", "d": "x"}, "b": "", "c": nil, "d": int64(1)},
	}, {
		name: "block map, a comment between",
		src:  "a: !!str # nothing\n# more\nb: 1\n",
		want: map[string]any{"a": "", "b": int64(1)},
	}, {
		name: "block map in a list item",
		src:  "tasks:\n  - id: !!str\n    run: x\n  - id: b\n",
		want: map[string]any{"tasks": []any{map[string]any{"id": "", "run": "x"}, map[string]any{"id": "b"}}},
	}, {
		name: "block list, before the next item",
		src:  "a:\n  - !!str\n  - x\n  - !!str\nb: 1\n",
		want: map[string]any{"a": []any{"", "x", ""}, "b": int64(1)},
	}, {
		name: "anchored, and its alias",
		src:  "a: &e !!str\nb: *e\n",
		want: map[string]any{"a": "", "b": ""},
	}, {
		name: "a value on the next line, indented, is the tag's",
		src:  "a: !!str\n  x y\nb: !!seq\n- 1\n",
		want: map[string]any{"a": "x y", "b": []any{int64(1)}},
	}, {
		name: "the end of the document",
		src:  "a: 1\nb: !!str\n",
		want: map[string]any{"a": int64(1), "b": ""},
	}, {
		name: "!!int in a flow map",
		src:  "p: {default: !!int }\nq: 1\n",
		errs: []string{"1:14 p.default: the !!int tag needs a value: expected an integer such as 42, -7 or 0x1F"},
	}, {
		name: "!!float and !!bool in block form, each reported",
		src:  "p:\n  a: !!float\n  b: !!bool\nq: [!!int , 1]\n",
		errs: []string{
			"2:6 p.a: the !!float tag needs a value: expected a number such as 1.5, -2 or 1e3",
			"3:6 p.b: the !!bool tag needs a value: expected true or false",
			"4:5 q[0]: the !!int tag needs a value: expected an integer such as 42, -7 or 0x1F",
		},
	}, {
		name: "!!map with nothing after it",
		src:  "a: !!map\nb: 1\n",
		errs: []string{"1:4 a: !!map tag on a null: it tags a map"},
	}, {
		name: "an unknown tag with nothing after it",
		src:  "a: {b: !secret }\n",
		errs: []string{"1:8 a.b: unsupported YAML tag !secret: a spec may use only the YAML core tags " + CoreTags},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			root, diags := Parse("s.yaml", []byte(tc.src))
			if diff := cmp.Diff(tc.errs, vdDiags(diags)); diff != "" {
				t.Fatalf("diagnostics (-want +got):\n%s\nsource:\n%s", diff, tc.src)
			}
			if tc.errs != nil {
				return
			}
			if diff := cmp.Diff(tc.want, root.Value()); diff != "" {
				t.Errorf("value (-want +got):\n%s\nsource:\n%s", diff, tc.src)
			}
		})
	}
}

// TestVdEmptyTaggedPositions checks that a value after an empty tagged
// value on its line keeps its column, and that the empty value is where
// the tag is.
func TestVdEmptyTaggedPositions(t *testing.T) {
	root, diags := Parse("s.yaml", []byte("p: {a: !!str , b: !!str }\nq: [!!str ]\n"))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	p := root.Get("p")
	for key, want := range map[string]Pos{"a": {"s.yaml", 1, 8}, "b": {"s.yaml", 1, 19}} {
		if got := p.Get(key).Pos; got != want {
			t.Errorf("p.%s at %v, want %v", key, got, want)
		}
	}
	if got, want := p.KeyNode("b").Pos, (Pos{"s.yaml", 1, 16}); got != want {
		t.Errorf("key b at %v, want %v", got, want)
	}
	if got, want := root.Get("q").Vals[0].Pos, (Pos{"s.yaml", 2, 5}); got != want {
		t.Errorf("q[0] at %v, want %v", got, want)
	}
}

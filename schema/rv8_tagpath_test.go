package schema

import (
	"testing"
)

// TestRv8TagErrorPath: a tag at fault is reported with the path of the
// field it tags, as other diagnostics are, also in a list, under a key
// that needs quoting, and through an alias (where the tag is written).
func TestRv8TagErrorPath(t *testing.T) {
	for _, tc := range []struct {
		src, path string
	}{
		{"name: !foo x\n", "name"},
		{"tasks:\n  - id: a\n    retries: !!int abc\n", "tasks[0].retries"},
		{"tasks:\n  - id: a\n    matrix: {v: [1, !!int q]}\n", "tasks[0].matrix.v[1]"},
		{"labels: {\"bmc.io/x\": !!int z}\n", `labels."bmc.io/x"`},
		{"x-a:\n  - !!float abc\n", "x-a[0]"},
		{"tasks:\n  - id: a\n    env:\n      A: !!null x\n", "tasks[0].env.A"},
		{"x-k:\n  'it''s.a': !!bool nope\n", `x-k."it's.a"`},
		{"x-d: &d !!bool maybe\nname: *d\n", "x-d"},
		{"!!int x\n", ""},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, diags := Parse("s.yaml", []byte(tc.src))
			diags.Sort() // an alias repeats what its anchor's value has
			if len(diags) != 1 {
				t.Fatalf("want one diagnostic, got %d: %v", len(diags), diagLines(diags))
			}
			if diags[0].Path != tc.path {
				t.Errorf("%s: path %q, want %q", diags[0], diags[0].Path, tc.path)
			}
		})
	}
}

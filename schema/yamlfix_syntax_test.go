package schema

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestYamlfixSyntaxPositions: a syntax error is placed where the
// mistake is when that can be told for sure: at an unclosed [ or {
// (with where the parser found it still open), and at a key whose colon
// is left out, not on the line after.
func TestYamlfixSyntaxPositions(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{name: "unclosed list", src: "tasks:\n  - id: a\n    dependsOn: [b\n    run: echo\n",
			want: []string{"3:16: YAML syntax: this [ is not closed: ',' or ']' must come before 4:5", "see s.yaml:4:5"}},
		{name: "unclosed list before the next item", src: "tasks:\n  - id: a\n    dependsOn: [b, c\n  - id: b\n    run: echo\n",
			want: []string{"3:16: YAML syntax: this [ is not closed: ',' or ']' must come before 4:3", "see s.yaml:4:3"}},
		{name: "unclosed list, later lists closed", src: "tasks:\n  - id: x\n    dependsOn: [a, b\n    run: echo\n  - id: y\n    dependsOn: [c]\n",
			want: []string{"3:16: YAML syntax: this [ is not closed: ',' or ']' must come before 4:5", "see s.yaml:4:5"}},
		{name: "unclosed map", src: "tasks:\n  - id: a\n    env: {A: b\n    run: echo\n",
			want: []string{"3:10: YAML syntax: this { is not closed: ',' or '}' must come before 4:5", "see s.yaml:4:5"}},
		{name: "list closed by a brace", src: "a: {b: [1, 2}\n",
			want: []string{"1:8: YAML syntax: this [ is not closed: ',' or ']' must come before 1:13", "see s.yaml:1:13"}},
		// A list closed further on lacks a comma, not a bracket: the
		// parser's place stands.
		{name: "missing comma", src: "a: [\"x\" \"y\"]\n",
			want: []string{"1:9: YAML syntax: ',' or ']' must be specified"}},
		{name: "missing colon in a list item", src: "tasks:\n  - id b\n    run: echo\n",
			want: []string{"2:5: YAML syntax: missing ':' after the key id",
				"hint: write id: b; without the colon, this line and the next read as one text"}},
		{name: "missing colon in a map", src: "a:\n  b 1\n  c: 2\n",
			want: []string{"2:3: YAML syntax: missing ':' after the key b",
				"hint: write b: 1; without the colon, this line and the next read as one text"}},
		{name: "missing colon after the first key", src: "tasks:\n  - id: a\n    run echo\n    retries: 2\n",
			want: []string{"3:5: YAML syntax: non-map value is specified",
				"hint: did you mean run: echo? A key is followed by a colon"}},
		// A line indented past the one above still says so.
		{name: "over-indented key", src: "- x\n  y: 1\n",
			want: []string{"2:3: YAML syntax: unexpected key name",
				"hint: this line is indented more than the - above it, so it reads as more of that list item"}},
		{name: "tag that does not fit", src: "a: !!str [b]\n",
			want: []string{"1:10: YAML syntax: unexpected scalar value type",
				"hint: the !!str tag does not fit the value after it: !!map tags a map, !!seq a list, the other core tags a single value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("s.yaml", []byte(tc.src))
			if diff := cmp.Diff(tc.want, diagLines(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

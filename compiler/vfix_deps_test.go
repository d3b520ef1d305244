package compiler

import (
	"strings"
	"testing"
)

// TestVfixDependsOnHintSanitized pairs matrix members whose values are
// not valid in ids: the members' ids are sanitized, the dependsOn values
// are not, and the hint names the member the value sanitizes to, not the
// group's first member.
func TestVfixDependsOnHintSanitized(t *testing.T) {
	const src = `apiVersion: bmc/v1
kind: Workload
name: pair
params:
  samples: {default: [s.1, s 2, s3]}
tasks:
  - id: trim
    matrix: {sample: "${{ params.samples }}"}
    run: echo
  - id: align
    matrix: {sample: "${{ params.samples }}"}
    dependsOn: ["trim-${{ matrix.sample }}"]
    run: echo
  - id: other
    dependsOn: [trim-s_22]
    run: echo
`
	_, diags := Compile("spec.yaml", []byte(src), Options{})
	hints := map[string]string{}
	for _, d := range diags {
		hints[d.Msg] = d.Hint
	}
	// The two members whose targets are unknown are one error at the
	// entry, its hint saying how ids are sanitized.
	msg := `unknown dependsOn targets "trim-s.1" and "trim-s 2": no task or matrix group has those ids (2 of the 3 members of matrix task "align" depend on one)`
	h, ok := hints[msg]
	if !ok {
		t.Errorf("no error %q in %v", msg, diags)
	}
	delete(hints, msg)
	if !strings.HasPrefix(h, "did you mean trim-s_1?") {
		t.Errorf("hint %q, want did you mean trim-s_1?", h)
	}
	for _, s := range []string{"sanitized", "dependsOn", "docs/spec.md#dependson"} {
		if !strings.Contains(h, s) {
			t.Errorf("hint %q lacks %q", h, s)
		}
	}
	// A plain typo is told as before, with a plain suggestion.
	msg = `unknown dependsOn target "trim-s_22": no task or matrix group has that id`
	if h, ok := hints[msg]; !ok || strings.Contains(h, "sanitized") {
		t.Errorf("typo: hint %q (found %v)", h, ok)
	}
	delete(hints, msg)
	for m := range hints {
		t.Errorf("unexpected error %q", m)
	}
}

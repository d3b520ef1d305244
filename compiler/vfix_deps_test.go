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
	for name, want := range map[string]string{"trim-s 2": "trim-s_2", "trim-s.1": "trim-s_1"} {
		msg := `unknown dependsOn target "` + name + `": no task or matrix group has that id`
		h, ok := hints[msg]
		if !ok {
			t.Errorf("no error %q in %v", msg, diags)
			continue
		}
		delete(hints, msg)
		if !strings.HasPrefix(h, "did you mean "+want+"?") {
			t.Errorf("%s: hint %q, want did you mean %s?", name, h, want)
		}
		for _, s := range []string{"sanitized", "dependsOn", "docs/spec.md#dependson"} {
			if !strings.Contains(h, s) {
				t.Errorf("%s: hint %q lacks %q", name, h, s)
			}
		}
	}
	// A plain typo is told as before, with a plain suggestion.
	msg := `unknown dependsOn target "trim-s_22": no task or matrix group has that id`
	if h, ok := hints[msg]; !ok || strings.Contains(h, "sanitized") {
		t.Errorf("typo: hint %q (found %v)", h, ok)
	}
	delete(hints, msg)
	for m := range hints {
		t.Errorf("unexpected error %q", m)
	}
}

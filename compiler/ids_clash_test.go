package compiler

import (
	"fmt"
	"strings"
	"testing"
)

// TestMatrixIDClashesCapped compiles a matrix whose values give 25 ids
// twice, each pair in one list: every clash is told once, at its second
// value.
func TestMatrixIDClashesCapped(t *testing.T) {
	var vals []string
	for i := range 25 {
		vals = append(vals, fmt.Sprintf("a.%d", i), fmt.Sprintf("a_%d", i))
	}
	spec := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: t
tasks:
  - id: t
    matrix: {v: [%s]}
    run: echo
`, strings.Join(vals, ", "))
	_, diags := Compile("spec.yaml", []byte(spec), Options{})
	var pairs, more int
	for _, d := range diags {
		switch {
		case strings.Contains(d.Msg, " both give task id "):
			pairs++
		case d.Msg == "and 5 more pairs of matrix values that give one task id":
			more++
		default:
			t.Errorf("unexpected error: %v", d)
		}
	}
	// Each clash is told at its value, which has a place of its own: none
	// is capped (TestVfixMatrixCrossKeyClashesCapped caps those that share
	// one).
	if pairs != 25 || more != 0 {
		t.Errorf("%d pairs and %d summaries told, want 25 and 0:\n%v", pairs, more, diags)
	}
}

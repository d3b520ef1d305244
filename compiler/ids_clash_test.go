package compiler

import (
	"fmt"
	"strings"
	"testing"
)

// TestMatrixIDClashesCapped compiles a matrix whose values give 25 ids
// twice, each pair in one list: the first 20 clashes are told, each at
// its second value, and the rest counted, at the first of those not told.
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
		case d.Msg == "and 5 more values of matrix v that repeat an earlier value's id" && d.Path == "tasks[0].matrix.v[41]":
			more++
		default:
			t.Errorf("unexpected error: %v", d)
		}
	}
	// Capped as clashes at one place are (TestVfixMatrixCrossKeyClashesCapped):
	// a long list would otherwise bury the spec's other errors.
	if pairs != maxClashes || more != 1 {
		t.Errorf("%d pairs and %d summaries told, want %d and 1:\n%v", pairs, more, maxClashes, diags)
	}
}

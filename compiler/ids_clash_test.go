package compiler

import (
	"fmt"
	"strings"
	"testing"
)

// TestMatrixIDClashesCapped compiles a matrix whose values give 25 ids
// twice: the first 20 pairs are told, and the rest counted in one more
// error, so that a huge matrix does not bury the other errors.
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
	if pairs != 20 || more != 1 {
		t.Errorf("%d pairs and %d summaries told, want 20 and 1:\n%v", pairs, more, diags)
	}
}

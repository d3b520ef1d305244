package compiler

import (
	"testing"
)

// TestVfixMatrixAllocsPerMember bounds the allocations validating a
// matrix costs per member. A member keeps a few (its id, matrix map, run
// script, outputs and hash); what its checks and expressions cost beside
// them grows a million-member sweep's time and memory, and was 28 per
// member before checks made their messages' paths only for an error and
// ids were made from values sanitized once.
func TestVfixMatrixAllocsPerMember(t *testing.T) {
	src := matrixSpec(100, 100)
	if _, diags := Compile("spec.yaml", src, Options{Partial: true}); len(diags) > 0 {
		t.Fatal(diags)
	}
	allocs := testing.AllocsPerRun(2, func() {
		Compile("spec.yaml", src, Options{Partial: true})
	})
	per := allocs / 10_000
	t.Logf("%.1f allocations per member", per)
	if per > 12 {
		t.Errorf("%.1f allocations per member, want at most 12", per)
	}
}

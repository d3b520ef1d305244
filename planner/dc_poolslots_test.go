package planner

import "testing"

// TestDcPoolSlotsWarningNames: the warning about a task wider than a node
// of the spec's pool names the pool when the spec gives its id, and reads
// well when it gives none (the pool is then --pool's on Azure Batch).
func TestDcPoolSlotsWarningNames(t *testing.T) {
	for _, tc := range []struct {
		pool, want string
	}{
		{"{id: p, slotsPerNode: 2}", "task takes 3 slots, more than the 2 of a node of pool p (slotsPerNode): on Azure Batch it would never start"},
		{"{slotsPerNode: 2}", "task takes 3 slots, more than the 2 of a node of the spec's pool (slotsPerNode): on Azure Batch it would never start"},
	} {
		prog := compile(t, `apiVersion: bmc/v1
kind: Workload
name: w
pool: `+tc.pool+`
tasks:
  - {id: wide, run: "true", slots: 3}
`)
		got := check(prog, Capabilities{Name: "local", Slots: 4})
		if len(got) != 1 || got[0].Severity != Warning || got[0].Task != "wide" || got[0].Message != tc.want {
			t.Errorf("pool %s: checks %+v, want one warning for wide: %q", tc.pool, got, tc.want)
		}
	}
}

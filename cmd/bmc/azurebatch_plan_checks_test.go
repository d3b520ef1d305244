package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/executor"
)

// TestPlanAzureBatchPoolChecks: what bmc plan and bmc run say, before
// anything is submitted, of a pool with no nodes, a pool the spec does
// not size, and a task with both timeout and retries.
func TestPlanAzureBatchPoolChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zero := write("zero.yaml", `apiVersion: bmc/v1
kind: Workload
name: zero
pool:
  id: zero-pool
  vmSize: Standard_D2s_v5
  image: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server}
  nodeAgentSku: batch.node.ubuntu 24.04
  nodes: {dedicated: 0, spot: 0}
tasks:
  - {id: t, run: echo hi}
`)
	const noNodes = "pool zero-pool: 0 dedicated and 0 spot nodes, and no autoscale: created from the spec, the pool would never run a task"

	t.Run("a fixed pool of no nodes is refused", func(t *testing.T) {
		code, out, _ := bmcRun(t, "plan", "--backend", "azurebatch", zero)
		if code != exitFailed || !strings.Contains(out, "error:         "+noNodes) {
			t.Errorf("plan: exit %d\n%s", code, out)
		}
		// bmc run refuses it before it reaches Batch: no account is set,
		// and no run is recorded.
		for _, k := range []string{"AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCOUNT", "AZURE_BATCH_ACCESS_KEY"} {
			t.Setenv(k, "")
		}
		state := filepath.Join(dir, "state")
		code, _, serr := bmcRun(t, "run", "--backend", "azurebatch", "--state-dir", state, zero)
		if code != exitFailed || !strings.Contains(serr, "bmc: error: "+noNodes) {
			t.Errorf("run: exit %d\n%s", code, serr)
		}
		if ids, _ := executor.ListRunIDs(state); len(ids) != 0 {
			t.Errorf("runs recorded: %v", ids)
		}
	})

	t.Run("slots of a pool the spec does not size", func(t *testing.T) {
		code, out, serr := bmcRun(t, "plan", "--backend", "azurebatch", "--pool", "p1", "../../examples/hello.yaml")
		if code != 0 || !strings.HasPrefix(out, "workload hello on the azurebatch backend (as many slots as the pool has)\n") {
			t.Errorf("exit %d\n%s%s", code, out, serr)
		}
		code, out, serr = bmcRun(t, "plan", "--backend", "azurebatch", "../../examples/genomics.yaml")
		if code != 0 || !strings.HasPrefix(out, "workload genome-align on the azurebatch backend (16 slots)\n") {
			t.Errorf("exit %d\n%s%s", code, out, serr)
		}
	})

	t.Run("timeout with retries", func(t *testing.T) {
		spec := write("tmo.yaml", `apiVersion: bmc/v1
kind: Workload
name: tmo
tasks:
  - {id: t, run: sleep 10, timeout: 1s, retries: 2}
  - {id: u, run: "true", timeout: 1s}
`)
		code, out, serr := bmcRun(t, "plan", "--backend", "azurebatch", "--pool", "p1", spec)
		if code != 0 || !strings.Contains(out, "warning:       t: has timeout and retries: on Batch an attempt that times out is the last") ||
			strings.Contains(out, "u: has timeout") {
			t.Errorf("exit %d\n%s%s", code, out, serr)
		}
	})
}

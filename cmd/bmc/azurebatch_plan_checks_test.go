package main

import (
	"os"
	"path/filepath"
	"regexp"
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
		// Placed at the pool in the spec.
		if code != exitFailed || !strings.Contains(out, "error:         "+zero+":5:3: "+noNodes) {
			t.Errorf("plan: exit %d\n%s", code, out)
		}
		// bmc run refuses it before it reaches Batch: no account is set,
		// and no run is recorded.
		for _, k := range []string{"AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCOUNT", "AZURE_BATCH_ACCESS_KEY"} {
			t.Setenv(k, "")
		}
		state := filepath.Join(dir, "state")
		code, _, serr := bmcRun(t, "run", "--backend", "azurebatch", "--state-dir", state, zero)
		if code != exitFailed || !strings.Contains(serr, "bmc: error: "+zero+":5:3: "+noNodes) {
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
		if code != 0 || !regexp.MustCompile(`warning:       \S+\.yaml:\d+:\d+: t: has timeout and retries: on Batch an attempt that times out is the last`).MatchString(out) ||
			strings.Contains(out, "u: has timeout") {
			t.Errorf("exit %d\n%s%s", code, out, serr)
		}
	})

	t.Run("a task needing every slot of the one node the finalize step keeps one of", func(t *testing.T) {
		one := write("one.yaml", `apiVersion: bmc/v1
kind: Workload
name: one
pool:
  id: one-pool
  vmSize: Standard_D4s_v5
  image: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server}
  nodeAgentSku: batch.node.ubuntu 24.04
  nodes: {dedicated: 1}
  slotsPerNode: 4
tasks:
  - {id: big, slots: 4, run: echo hi}
  - {id: small, slots: 3, run: echo hi}
`)
		identity := "/subscriptions/s/resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i"
		code, out, _ := bmcRun(t, "plan", "--backend", "azurebatch", "--pool-identity", identity, one)
		if code != exitFailed || !regexp.MustCompile(`error:         \S+\.yaml:\d+:\d+: big: takes 4 slots, every slot of pool one-pool's one node`).MatchString(out) || strings.Contains(out, "small:") {
			t.Errorf("finalize on the pool: exit %d\n%s", code, out)
		}
		if code, out, _ := bmcRun(t, "plan", "--backend", "azurebatch", "--finalize-on", "client", one); code != 0 {
			t.Errorf("finalize on the client: exit %d\n%s", code, out)
		}
	})

	t.Run("a spec whose storage is the local folder store", func(t *testing.T) {
		local := write("local.yaml", `apiVersion: bmc/v1
kind: Workload
name: local
storage: {backend: local}
tasks:
  - {id: t, run: echo hi}
`)
		code, out, _ := bmcRun(t, "plan", "--backend", "azurebatch", "--pool", "p1", local)
		if code != exitFailed || !strings.Contains(out, "error:         storage.backend is local: the pool's nodes cannot reach this machine's folder store") {
			t.Errorf("plan: exit %d\n%s", code, out)
		}
	})

	t.Run("a file name with a backslash in a local folder input", func(t *testing.T) {
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		write(filepath.Join("data", `a\b.txt`), "x")
		write(filepath.Join("data", "ok.txt"), "x")
		spec := write("bs.yaml", `apiVersion: bmc/v1
kind: Workload
name: bs
tasks:
  - {id: t, run: ls, inputs: [{from: data}]}
`)
		code, out, _ := bmcRun(t, "plan", "--backend", "azurebatch", "--pool", "p1", spec)
		if code != exitFailed || !strings.Contains(out, `input data holds a\b.txt: a file name with a backslash cannot be brought to a Batch node`) || strings.Contains(out, "ok.txt") {
			t.Errorf("plan: exit %d\n%s", code, out)
		}
	})
}

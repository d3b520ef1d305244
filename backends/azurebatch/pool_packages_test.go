package azurebatch

import (
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
)

// TestEnsurePoolPackages: a pool bmc creates names the spec's packages by
// their ARM id, which the emulator, as Batch, insists on; without the
// account's id bmc says what to set rather than drop the packages.
func TestEnsurePoolPackages(t *testing.T) {
	e := newEmu(t, emulator.Options{Instant: true, Packages: []emulator.Package{{Name: "tool", Version: "1.0", Dir: t.TempDir()}}})
	prog := func(id string) *compiler.Program {
		return &compiler.Program{Name: "w", Packages: []compiler.Package{{Name: "tool", Version: "1.0"}},
			Pool: &compiler.Pool{ID: id, VMSize: "Standard_D2s_v5", SlotsPerNode: 1, Dedicated: 1,
				Image: &compiler.Image{Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server"}, NodeAgentSKU: "batch.node.ubuntu 24.04"}}
	}
	err := NewBackend(BackendOptions{Client: e.c}).EnsurePool(t.Context(), prog("nopkg"))
	if err == nil || !strings.Contains(err.Error(), "AZURE_BATCH_ACCOUNT_ID") {
		t.Errorf("no account id: %v", err)
	}
	const account = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/emulator"
	if err := NewBackend(BackendOptions{Client: e.c, AccountID: account}).EnsurePool(t.Context(), prog("pkg")); err != nil {
		t.Fatalf("with the account id: %v", err)
	}
	p, err := e.c.GetPool(t.Context(), "pkg")
	if err != nil || len(p.ApplicationPackageReferences) != 1 || p.ApplicationPackageReferences[0].ApplicationID != account+"/applications/tool" {
		t.Errorf("pool packages: %+v, %v", p, err)
	}
}

package azurebatch

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
)

// TestBbMissingPoolIdentityWording: a pool that does not exist, for a
// run that names a managed identity, is refused saying where the
// identity came from: --pool-identity, or the spec's pool.identity.
func TestBbMissingPoolIdentityWording(t *testing.T) {
	for _, c := range []struct {
		fromFlag  bool
		want, not string
	}{
		{true, "--pool-identity names a managed identity for it", "the spec"},
		{false, "the spec gives it a managed identity (pool.identity)", "--pool-identity"},
	} {
		f := newFakeBatch(t)
		f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
			if r.Method == "GET" && r.URL.Path == "/pools/gone" {
				writeBatchError(w, http.StatusNotFound, "PoolNotFound", "The specified pool does not exist.")
				return
			}
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
			w.WriteHeader(500)
		})
		cl, _ := f.client(Options{})
		prog := &compiler.Program{APIVersion: "bmc/v1", Name: "idn", Pool: &compiler.Pool{ID: "gone", VMSize: "Standard_D4s_v5", SlotsPerNode: 1,
			Image: &compiler.Image{Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server", Version: "latest"}, NodeAgentSKU: "batch.node.ubuntu 24.04",
			Dedicated: 1, Identity: "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x"}}
		b := NewBackend(BackendOptions{Client: cl, PoolIdentityFlag: c.fromFlag})
		err := b.EnsurePool(context.Background(), prog)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.not) {
			t.Errorf("from the flag %v: %v; want it to say %q", c.fromFlag, err, c.want)
		}
	}
}
